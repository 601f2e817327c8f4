"""Imported once by the isolated exporter's forkserver (``orchestrator.export.isolated``):
everything a lowering imports, so that each forked export child starts with it in memory
(seconds of imports per export otherwise). Importing has no other effect; a module that
cannot be imported on this exporter (e.g. a macOS-only backend) is skipped, as the
lowering would skip it."""

from __future__ import annotations

import importlib

from orchestrator.export.lowering import PARTITIONERS

_MODULES = ("torch", "torch.export", "executorch.exir", "executorch.devtools",
            "torchao.quantization.pt2e.quantize_pt2e", "executorch.backends.xnnpack.quantizer.xnnpack_quantizer",
            "orchestrator.export.pipeline", "orchestrator.export.golden", "orchestrator.export.analysis",
            "orchestrator.export.zoo", *(p.module for p in PARTITIONERS.values()))

for _name in _MODULES:
    try:
        importlib.import_module(_name)
    except Exception:  # noqa: S112 (unavailable here: the lowering reports it if it is ever needed)
        continue


def _warm_up() -> None:
    # A process's first lowering pays torch.export's lazy set-up (tens of seconds); doing it
    # here once means each forked child starts warm. One thread: an OpenMP pool created
    # before a fork is not fork-safe, so none is created here.
    import torch

    from orchestrator.export.pipeline import lower_torch_source
    from orchestrator.export.registry import registry
    from orchestrator.export.request import ExportRequest

    torch.set_num_threads(1)
    try:
        lower_torch_source(ExportRequest("warm-up", "zoo:tiny_cnn", "xnnpack", 32), registry().resolve("xnnpack"))
    except Exception:  # noqa: S110 (only a warm-up: the real export reports its own failure)
        pass


_warm_up()
