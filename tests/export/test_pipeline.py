"""Real exports through the pipeline: cache hit/miss, metadata, golden outputs on the runtime."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from agents.harness.contract import golden_input, summarize_output
from orchestrator.export.pipeline import GOLDEN_SEED, artifact_key, compare_to_golden, export_artifact

from .conftest import TINY_RES, tiny


def _run_on_host(path, shape: list[int]) -> np.ndarray:
    from executorch.runtime import Runtime

    method = Runtime.get().load_program(str(path)).load_method("forward")
    return method.execute([torch.from_numpy(golden_input(shape, GOLDEN_SEED))])[0].numpy()


def test_first_export_is_a_miss_then_hits(store, tiny_xnnpack) -> None:
    art, hit = tiny_xnnpack
    assert hit is False
    assert art.key == artifact_key(tiny())
    t = time.perf_counter()
    again, hit2 = export_artifact(tiny(), store)
    assert hit2 is True and again.key == art.key and again.meta == art.meta
    assert time.perf_counter() - t < art.meta["export_time_s"]


def test_metadata_records_what_the_export_learnt(tiny_xnnpack) -> None:
    m = tiny_xnnpack[0].meta
    assert m["size_bytes"] == tiny_xnnpack[0].path.stat().st_size > 100_000
    assert m["export_time_s"] > 0
    assert m["params"] == 792_456
    assert m["macs"] > 10_000_000 and m["flops"] == 2 * m["macs"]
    d = m["delegation"]
    assert d["delegated_ops"] >= 15 and d["delegated_ratio"] == 1.0 and d["non_delegated_ops"] == 0
    assert set(m["exporter"]["versions"]) >= {"torch", "executorch"}
    assert m["input_shape"] == [1, 3, TINY_RES, TINY_RES] and m["backend"] == "xnnpack"


def test_runtime_output_matches_golden(store, tiny_xnnpack) -> None:
    art = tiny_xnnpack[0]
    out = summarize_output(_run_on_host(art.path, [1, 3, TINY_RES, TINY_RES]))
    cmp = compare_to_golden(store, art.key, out)
    assert cmp["top1_agrees"] is True
    assert cmp["max_abs_error"] < 1e-3
    assert cmp["compared_values"] == 16


def test_golden_compare_flags_a_wrong_output(store, tiny_xnnpack) -> None:
    key = tiny_xnnpack[0].key
    gold = store.golden(key)
    assert len(gold["values"]) == 1000 and gold["input"]["seed"] == GOLDEN_SEED
    wrong_top1 = (gold["top1"] + 1) % 1000
    bad = {"shape": gold["shape"], "top1": wrong_top1, "head": [v + 0.5 for v in gold["head"]],
           "digest": "0" * 64}
    cmp = compare_to_golden(store, key, bad)
    assert cmp["top1_agrees"] is False and cmp["max_abs_error"] == pytest.approx(0.5, abs=1e-6)
    cmp = compare_to_golden(store, key, dict(bad, shape=[1, 10]))
    assert cmp["shape_matches"] is False and cmp["top1_agrees"] is False

