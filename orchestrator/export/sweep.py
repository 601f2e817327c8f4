"""The artifacts a matrix spec needs: one per (model, backend, resolution, batch size).

Device classes do not appear: one program serves every device that runs its backend,
which is why a 3-device x 2-backend run exports 2 artifacts, not 6. The seed's sweeps
(input resolution 224/160/128, batch size, architectures, quantization on/off as a
backend with an INT8 quantizer) are all axes of this product.
"""

from __future__ import annotations

from orchestrator.export.pipeline import ExportRequest
from orchestrator.spec.matrix import MatrixSpec


def export_requests(spec: MatrixSpec) -> list[ExportRequest]:
    p = spec.parameters
    seen: dict[ExportRequest, None] = {}
    for model in spec.models:
        for backend in spec.backends:
            for res in p.input_resolution:
                for batch in p.batch_size:
                    seen.setdefault(ExportRequest(model.name, model.source, backend, res, batch,
                                                  p.compute_units))
    return list(seen)
