"""What writing an ETRecord at export costs: lowering MobileNetV3-Small (XNNPACK fp32) with and
without ``generate_etrecord=True`` (alternating, REPEATS each), plus the ETRecord's save time
and size next to the program's. Writes bench/results/etrecord_cost.json.
Usage: python bench/etrecord_cost.py [MODEL]
"""

from __future__ import annotations

import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 2


def main(name: str = "mobilenet_v3_small") -> dict:
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from orchestrator.export import zoo

    model = zoo.build(name)
    example = (torch.rand(1, 3, 224, 224),)
    runs: dict[str, list[float]] = {"without": [], "with": []}
    save_s, sizes = [], {}
    for _ in range(REPEATS):
        for mode in ("without", "with"):
            t = time.perf_counter()
            exported = torch.export.export(model, example, strict=False)
            edge = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()],
                                               generate_etrecord=mode == "with")
            program = edge.to_executorch()
            runs[mode].append(time.perf_counter() - t)
            if mode == "with":
                buf = io.BytesIO()
                t = time.perf_counter()
                program.get_etrecord().save(buf)
                save_s.append(time.perf_counter() - t)
                sizes = {"etrecord_bytes": len(buf.getvalue()), "pte_bytes": len(program.buffer)}
    out = {"bench": "etrecord_cost", "model": name, "backend": "xnnpack", "repeats": REPEATS,
           "lower_s_without_etrecord": [round(x, 2) for x in runs["without"]],
           "lower_s_with_etrecord": [round(x, 2) for x in runs["with"]],
           "added_lower_s": round(statistics.median(runs["with"]) - statistics.median(runs["without"]), 2),
           "etrecord_save_s": [round(x, 2) for x in save_s], **sizes,
           "loadavg": [round(x, 2) for x in os.getloadavg()],
           "note": "shared 2-core machine with other suites running: absolute times are noisy"}
    (ROOT / "bench" / "results" / "etrecord_cost.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main(*sys.argv[1:])
