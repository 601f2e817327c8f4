"""What the .ci/run Swift harness step costs on this machine.

Runs ``agents/harness/ios/scripts/swift-env.sh`` twice in one go: first with the SwiftPM build
directory of this repository removed (the toolchain chroot stays: building it is a one-time
debootstrap + apt-get of ~3.2 GB), then again unchanged (the CI case once the machine has run it
before). Records wall time, the XCTest count and the load average: the machine is shared (2
cores, other suites running), so the numbers are noisy. Root only, like the step itself.
Usage: python bench/swift_harness.py      Writes bench/results/swift_harness.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "agents" / "harness" / "ios" / "scripts" / "swift-env.sh"
CHROOT = Path(os.environ.get("BENCHFARM_SWIFT_ROOT", "/var/cache/benchfarm/swift-trixie"))


def _run() -> dict:
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run([str(SCRIPT)], capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t0
    out = proc.stdout + proc.stderr
    tests = re.findall(r"Executed (\d+) tests?,", out)
    return {"wall_s": round(wall, 1), "exit_code": proc.returncode, "skipped": "SKIP swift harness" in out,
            "xctests": int(tests[-1]) if tests else None, "loadavg_1m_before": round(load, 2)}


def main() -> None:
    key = hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]
    shutil.rmtree(CHROOT / "var" / "tmp" / f"benchfarm-harness-{key}", ignore_errors=True)
    cold = _run()
    warm = _run()
    doc = {"bench": "swift_harness", "machine": {"cpus": os.cpu_count()},
           "toolchain": (CHROOT / ".benchfarm-swift-ready").read_text().split("\n")[:-1] if CHROOT.exists() else None,
           "build_dir_removed": cold, "cached": warm,
           "note": "chroot already built; its one-time cost (debootstrap + apt-get swiftlang) is not included"}
    out = ROOT / "bench" / "results" / "swift_harness.json"
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
