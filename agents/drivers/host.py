"""The host driver: the agent's own CPU as a device, running programs with executorch.runtime.

Each job runs in a child process (``agents.drivers.host_harness``) that speaks the
same job/result documents as the iOS harness app.
"""

from __future__ import annotations

import json
import os
import platform
import select
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from agents.drivers import host_profile
from agents.drivers.host_harness import cpu_model
from agents.harness.contract import JOB_FILE, RESULT_FILE, validate_job
from agents.protocols import DeviceInfo, DriverError, Health

# Importing torch + executorch in the harness costs ~8 s; the job's own timeout covers
# the benchmark, this covers a harness (re)start on a loaded 2-core machine.
STARTUP_ALLOWANCE_S = 90
# Below this the model and its result may not fit; refuse rather than fail half-way.
MIN_FREE_BYTES = 256 * 1024 * 1024


class HostDriver:
    name = "host"

    def __init__(self, slot: str = "0", workdir: Path | None = None):
        self.slot = slot
        self.workdir = Path(workdir or tempfile.gettempdir()) / "benchfarm-host"
        self._dirs: dict[str, Path] = {}
        self._proc: subprocess.Popen | None = None

    def discover(self) -> list[DeviceInfo]:
        hostname = socket.gethostname()
        return [DeviceInfo(
            id=f"host:{hostname}:{self.slot}",
            device_class="host-cpu",
            product_type="host",
            name=f"{hostname} CPU",
            os=platform.system(),
            os_version=platform.release(),
            chip=cpu_model(),
            host=hostname,
            driver=self.name,
            extra={"cpus": os.cpu_count() or 1},
        )]

    def health(self, device: DeviceInfo) -> Health:
        self.workdir.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.workdir).free
        problems = [] if free >= MIN_FREE_BYTES else [f"only {free} bytes free in {self.workdir}"]
        return Health(ok=not problems, free_bytes=free, problems=problems,
                      action="run" if not problems else "release")

    def prepare(self, device: DeviceInfo, job: dict[str, Any], model_path: Path) -> None:
        validate_job(job)
        job_dir = Path(tempfile.mkdtemp(prefix=f"{job['attempt_id']}-", dir=self._base()))
        _link(model_path, job_dir / job["model_file"])
        etrecord = model_path.with_suffix(".etrecord")  # the store keeps it beside the program
        if job.get("profile") and etrecord.exists():
            name = Path(job["model_file"]).with_suffix(".etrecord").name
            _link(etrecord, job_dir / name)
            job = dict(job, profile=dict(job["profile"], etrecord_file=name))
        (job_dir / JOB_FILE).write_text(json.dumps(job))
        self._dirs[job["attempt_id"]] = job_dir

    def run(self, device: DeviceInfo, job: dict[str, Any]) -> bytes:
        job_dir = self._dirs[job["attempt_id"]]
        harness = self._harness()
        timeout = float(job["timeout_s"]) + 5
        if job.get("profile"):
            timeout += float(job["profile"].get("timeout_s", host_profile.DEFAULT_TIMEOUT_S))
        try:
            assert harness.stdin is not None  # opened with stdin=PIPE
            harness.stdin.write(f"{job_dir}\n")
            harness.stdin.flush()
            line = _readline(harness, timeout)
        except (BrokenPipeError, OSError) as exc:
            self._stop_harness()
            raise DriverError("harness_crashed", f"host harness pipe broke: {exc}") from None
        if line is None:
            self._stop_harness()
            salvaged = host_profile.salvage(job_dir, f"timeout after {timeout:.0f} s")
            if salvaged is not None:
                return salvaged
            raise DriverError("timeout", f"host harness did not finish within {timeout:.0f} s")
        result = job_dir / RESULT_FILE
        if not line.startswith("done") or not result.exists():
            code = self._stop_harness()
            # died in the profiling pass: the timing result is complete, only the profile is lost
            salvaged = host_profile.salvage(job_dir, f"harness exit status {code}")
            if salvaged is not None:
                return salvaged
            raise DriverError("harness_crashed", f"host harness exited ({code}) without a result")
        return result.read_bytes()

    def _harness(self) -> subprocess.Popen:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "agents.drivers.host_harness", "--serve"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        if _readline(self._proc, STARTUP_ALLOWANCE_S) != "ready":
            self._stop_harness()
            raise DriverError("harness_crashed", "host harness did not start")
        return self._proc

    def _stop_harness(self) -> int | None:
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        proc.kill()
        return proc.wait()

    def abort(self, device: DeviceInfo) -> None:
        """Stop a running benchmark now (the run was cancelled)."""
        self._stop_harness()

    def close(self) -> None:
        self._stop_harness()

    def fetch_file(self, device: DeviceInfo, job: dict[str, Any], name: str) -> Path | None:
        """A file the harness left in the job's directory (the profile's ETDump), or None."""
        job_dir = self._dirs.get(job["attempt_id"])
        path = job_dir / Path(name).name if job_dir else None
        return path if path is not None and path.is_file() else None

    def cleanup(self, device: DeviceInfo, job: dict[str, Any]) -> None:
        job_dir = self._dirs.pop(job["attempt_id"], None)
        if job_dir:
            shutil.rmtree(job_dir, ignore_errors=True)

    def _base(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        return self.workdir


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _readline(proc: subprocess.Popen, timeout: float) -> str | None:
    """One line from the harness, or None on timeout / exit."""
    assert proc.stdout is not None  # opened with stdout=PIPE
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        return None
    line = proc.stdout.readline()
    return line.strip() if line else ""
