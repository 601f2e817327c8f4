"""The seed's frame pipeline around one inference: preprocessing, inference, postprocessing.

The AbacusKit guide's 30 FPS budget is per camera frame: preprocessing < 10 ms + inference
< 15 ms + postprocessing < 8 ms, total < 33 ms. Every producer records the three stages per
timed iteration (``preprocess_ms``, ``latencies_ms``, ``postprocess_ms``) and summarises them
in the result's ``frame_pipeline`` block; :func:`stage_times` is the one definition of that
summary (numpy's linear-interpolation percentiles, like ``orchestrator.analysis.stats``; the
Swift core implements the same formula, tests/core/test_frame_pipeline.py checks the
fixtures against it).

This module is numpy only: the host harness uses it for its real stages, the virtual harness
(no torch) for the block of its simulated ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# What a phone's camera delivers (AVCaptureVideoDataOutput, kCVPixelFormatType_32BGRA at 1080p).
FRAME_WIDTH, FRAME_HEIGHT = 1920, 1080
FRAME_FORMAT = "BGRA8"
# torchvision's ImageNet statistics on values in [0, 1] (the zoo's models are trained with them)
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
TOP_K = 5
HOST_PREPROCESS = ("bilinear resize (4 taps, as cv2.INTER_LINEAR) of the frame to the model's input, "
                   "BGRA to planar RGB, ImageNet normalisation into the float32 input tensor (numpy)")
HOST_POSTPROCESS = f"softmax and top-{TOP_K} of output 0, per batch row (numpy)"


def image_input(shape: Sequence[int]) -> bool:
    """Whether the input is an NCHW RGB image, i.e. whether a camera frame feeds it."""
    return len(shape) == 4 and shape[1] == 3


def synthetic_frame(width: int = FRAME_WIDTH, height: int = FRAME_HEIGHT, seed: int = 1) -> np.ndarray:
    """A deterministic opaque BGRA frame (height, width, 4): the benchmark has no camera, but
    the pipeline must do a camera-sized frame's work."""
    frame = np.random.default_rng(seed).integers(0, 256, size=(height, width, 4), dtype=np.uint8)
    frame[..., 3] = 255
    return frame


class Preprocessor:
    """Resize + normalise one frame into a preallocated NCHW float32 array, in place.

    Sampling positions and weights are computed once per geometry (as an app keeps its
    vImage/Metal state): the timed step is the per-frame work only.
    """

    def __init__(self, frame: np.ndarray, out: np.ndarray):
        if out.ndim != 4 or out.shape[1] != 3 or out.dtype != np.float32:
            raise ValueError(f"preprocessing needs an N x 3 x H x W float32 input, got {out.shape} {out.dtype}")
        if frame.ndim != 3 or frame.shape[2] != 4 or frame.dtype != np.uint8:
            raise ValueError(f"a frame is H x W x 4 (BGRA) uint8, got {frame.shape} {frame.dtype}")
        self.frame, self.out = np.ascontiguousarray(frame), out
        self.pixels = self.frame.view(np.uint32).reshape(frame.shape[:2])
        fh, fw = frame.shape[:2]
        h, w = out.shape[2:]
        # pixel centres (align_corners=False), clamped at the border
        ys = np.clip((np.arange(h, dtype=np.float32) + 0.5) * (fh / h) - 0.5, 0, fh - 1)
        xs = np.clip((np.arange(w, dtype=np.float32) + 0.5) * (fw / w) - 0.5, 0, fw - 1)
        y0, x0 = ys.astype(np.intp), xs.astype(np.intp)
        self.y0, self.y1 = y0[:, None], np.minimum(y0 + 1, fh - 1)[:, None]
        self.x0, self.x1 = x0[None, :], np.minimum(x0 + 1, fw - 1)[None, :]
        self.wy = (ys - y0)[:, None, None]
        self.wx = (xs - x0)[None, :, None]
        # BGRA -> RGB and /255 and the ImageNet statistics folded into one multiply-add
        self.scale = (1.0 / (255.0 * STD)).astype(np.float32)
        self.shift = (MEAN / STD).astype(np.float32)

    def run(self) -> None:
        top = self._taps(self.y0, self.x0)
        top += (self._taps(self.y0, self.x1) - top) * self.wx
        bottom = self._taps(self.y1, self.x0)
        bottom += (self._taps(self.y1, self.x1) - bottom) * self.wx
        top += (bottom - top) * self.wy  # (h, w, 3) RGB in [0, 255]
        rgb = top * self.scale - self.shift
        for n in range(self.out.shape[0]):  # every image of the batch is one camera frame
            self.out[n] = rgb.transpose(2, 0, 1)

    def _taps(self, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        # one 32-bit gather per pixel (BGRA as a word), then RGB as float32
        h, w = self.out.shape[2:]
        return self.pixels[y, x].view(np.uint8).reshape(h, w, 4)[..., 2::-1].astype(np.float32)


def postprocess(logits: np.ndarray, k: int = TOP_K) -> list[list[tuple[int, float]]]:
    """Softmax and the top-k (class, probability) per batch row, best first; NaN never wins."""
    x = logits.reshape(logits.shape[0] if logits.ndim > 1 else 1, -1).astype(np.float32, copy=False)
    x = np.where(np.isnan(x), -np.inf, x)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    k = min(k, p.shape[1])
    idx = np.argpartition(-p, k - 1, axis=1)[:, :k]
    rows = []
    for r in range(p.shape[0]):
        best = idx[r][np.argsort(-p[r, idx[r]], kind="stable")]
        rows.append([(int(i), float(p[r, i])) for i in best])
    return rows


def stage_times(samples: Sequence[float]) -> dict[str, float]:
    """p10 / p50 / p90 / mean of one stage's per-iteration samples ($defs/times)."""
    x = np.asarray(samples, dtype=float)
    p10, p50, p90 = np.percentile(x, [10, 50, 90])
    return {"p10": float(p10), "p50": float(p50), "p90": float(p90), "mean": float(x.mean())}


def pipeline_block(pre: Sequence[float], inference: Sequence[float], post: Sequence[float], *,
                   simulated: bool, source: str, preprocess: str, postprocess: str,
                   frame: tuple[int, int] = (FRAME_WIDTH, FRAME_HEIGHT)) -> dict[str, Any] | None:
    """The result's ``frame_pipeline`` block, or None without aligned samples of all three stages."""
    if not inference or len(pre) != len(inference) or len(post) != len(inference):
        return None
    total = [a + b + c for a, b, c in zip(pre, inference, post, strict=True)]
    return {
        "simulated": simulated, "source": source,
        "frame": {"width": frame[0], "height": frame[1], "format": FRAME_FORMAT},
        "preprocess": preprocess, "postprocess": postprocess, "iterations": len(inference),
        "preprocess_ms": stage_times(pre), "inference_ms": stage_times(inference),
        "postprocess_ms": stage_times(post), "total_ms": stage_times(total),
    }
