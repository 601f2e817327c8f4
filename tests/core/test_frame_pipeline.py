"""The seed's frame pipeline (agents/harness/frame.py): real preprocessing and postprocessing,
checked against torch's own resize and softmax, and the one definition of the stage summary."""

import json
import math

import numpy as np
import pytest
import torch

from agents.harness.contract import FIXTURES_DIR, validate_result
from agents.harness.frame import (
    MEAN,
    STD,
    Preprocessor,
    image_input,
    pipeline_block,
    postprocess,
    stage_times,
    synthetic_frame,
)


@pytest.mark.parametrize("size", [(224, 224), (160, 128), (64, 64)])
def test_preprocessing_is_torchs_bilinear_resize_then_imagenet_normalisation(size):
    frame = synthetic_frame(seed=3)
    out = np.full((2, 3, *size), np.nan, dtype=np.float32)
    Preprocessor(frame, out).run()
    rgb = torch.from_numpy(frame[..., 2::-1].copy()).permute(2, 0, 1)[None].float()
    ref = torch.nn.functional.interpolate(rgb, size=size, mode="bilinear", align_corners=False, antialias=False)
    ref = ((ref[0].numpy() / 255.0) - MEAN[:, None, None]) / STD[:, None, None]
    assert np.abs(out[0] - ref).max() < 1e-3  # float32 rounding of the folded multiply-add
    assert np.array_equal(out[0], out[1])  # every image of the batch is the frame


def test_preprocessing_refuses_what_is_not_a_frame_or_an_image_input():
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        Preprocessor(synthetic_frame(64, 36), np.zeros((1, 1, 8, 8), np.float32))
    with pytest.raises(ValueError, match="BGRA"):
        Preprocessor(np.zeros((36, 64, 3), np.uint8), np.zeros((1, 3, 8, 8), np.float32))
    assert image_input([1, 3, 224, 224]) and not image_input([1, 16]) and not image_input([1, 1, 28, 28])


def test_postprocessing_is_softmax_and_top5_and_nan_never_wins():
    logits = np.random.default_rng(0).normal(size=(2, 1000)).astype(np.float32)
    logits[1, 7] = np.nan
    rows = postprocess(logits)
    ref = torch.softmax(torch.from_numpy(np.nan_to_num(logits, nan=-np.inf)), dim=1).numpy()
    for r, best in enumerate(rows):
        assert [i for i, _ in best] == list(np.argsort(-ref[r], kind="stable")[:5])
        assert all(math.isclose(p, float(ref[r, i]), rel_tol=1e-5) for i, p in best)
    assert 7 not in [i for i, _ in rows[1]]
    assert len(postprocess(np.array([1.0, 2.0], np.float32))[0]) == 2  # k clamped to the classes


def test_block_is_the_stage_summaries_and_needs_every_stage_per_iteration():
    block = pipeline_block([1.0, 2.0], [10.0, 20.0], [0.5, 0.5], simulated=False, source="measured",
                           preprocess="p", postprocess="q")
    assert block is not None and block["total_ms"]["p50"] == 17.0 and block["iterations"] == 2
    assert block["frame"] == {"width": 1920, "height": 1080, "format": "BGRA8"}
    assert pipeline_block([1.0], [10.0, 20.0], [0.5, 0.5], simulated=False, source="measured",
                          preprocess="p", postprocess="q") is None
    assert stage_times([4.125, 4.0, 3.9375, 4.0625, 5.5]) == pytest.approx(
        {"p10": 3.9625, "p50": 4.0625, "p90": 4.95, "mean": 4.325})  # the Swift core's test has the same


def test_every_fixture_block_summarises_its_own_samples():
    """One definition per figure: a block's numbers are stage_times of the document's arrays."""
    seen = 0
    for path in sorted((FIXTURES_DIR / "result" / "valid").glob("*.json")):
        doc = validate_result(json.loads(path.read_text()))
        if (fp := doc.get("frame_pipeline")) is None:
            continue
        seen += 1
        pre, inf, post = doc["preprocess_ms"], doc["latencies_ms"], doc["postprocess_ms"]
        total = [a + b + c for a, b, c in zip(pre, inf, post, strict=True)]
        for key, xs in (("preprocess_ms", pre), ("inference_ms", inf), ("postprocess_ms", post), ("total_ms", total)):
            assert fp[key] == pytest.approx(stage_times(xs), rel=1e-12), (path.name, key)
        assert fp["simulated"] is doc["simulated"] and fp["iterations"] == len(inf)
    assert seen >= 3  # the iOS, host and virtual producers each have one
