"""What the coordinator asks an exporter for: one model, one backend, one input shape.

Torch-free on purpose: the coordinator, the API and the planner build requests without
the ML stack; only the exporter (``orchestrator.export.pipeline``) turns one into a program.
"""

from __future__ import annotations

from dataclasses import dataclass

# the seed of the golden input: the exporter's reference output and the harness's input agree on it
GOLDEN_SEED = 1234


@dataclass(frozen=True)
class ExportRequest:
    model: str  # display name used in the spec
    source: str  # zoo:<name> | import:<pkg.mod:factory> | pte:<path>
    backend: str
    input_resolution: int = 224
    batch_size: int = 1
    compute_units: str = "all"

    def input_shape(self) -> list[int]:
        return [self.batch_size, 3, self.input_resolution, self.input_resolution]
