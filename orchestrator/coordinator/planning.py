"""Run planning: a matrix spec becomes cells (jobs) and the artifacts they need."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.export.registry import registry
from orchestrator.export.request import ExportRequest
from orchestrator.spec.matrix import MatrixSpec


@dataclass(frozen=True)
class Cell:
    model: str
    source: str
    backend: str
    device_class: str
    device_selector: str
    input_resolution: int
    batch_size: int
    repeat_index: int
    blocked_reason: str = ""

    def export_request(self, compute_units: str) -> ExportRequest:
        return ExportRequest(self.model, self.source, self.backend, self.input_resolution, self.batch_size,
                             compute_units)


@dataclass(frozen=True)
class Plan:
    cells: list[Cell]
    not_applicable: list[str]  # (backend, class) pairs that cannot run at all, for the summary


def plan(spec: MatrixSpec) -> Plan:
    cells: list[Cell] = []
    skipped: list[str] = []
    p = spec.parameters
    for sel in spec.devices:
        for backend_name in spec.backends:
            backend = registry().resolve(backend_name)
            if not backend.runs_on_class(sel.device_class):
                skipped.append(f"{backend.name} does not run on {sel.device_class}")
                continue
            for m in spec.models:
                reason = spec.disabled_reason(m.name, backend.name, sel.device_class)
                for res in p.input_resolution:
                    for batch in p.batch_size:
                        for rep in range(p.repeats):
                            cells.append(Cell(m.name, m.source, backend.name, sel.device_class, sel.label(),
                                              res, batch, rep, reason))
    return Plan(cells, skipped)
