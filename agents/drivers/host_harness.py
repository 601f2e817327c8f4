"""The host harness: a child process that runs one job document with executorch.runtime.

It mirrors the iOS harness app (job.json in, result.json out) so the host driver is
validated by the same contract, and running in a child gives each job its own peak
RSS and keeps a crashing program from taking the agent with it.

Usage: python -m agents.drivers.host_harness JOB_DIR        (one job)
       python -m agents.drivers.host_harness --serve         (job dirs on stdin, one per line)

Serve mode exists because importing executorch.runtime costs ~8 s (it pulls in exir):
the driver keeps one warm harness process per device and restarts it if it dies. Peak
memory stays per job: the high-water mark is reset before each job (Linux clear_refs).
"""

from __future__ import annotations

import json
import platform
import resource
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from agents.drivers import host_profile
from agents.harness import frame
from agents.harness.contract import (
    JOB_FILE,
    RESULT_FILE,
    executorch_version,
    golden_input,
    summarize_output,
    validate_job,
)

PRODUCER_VERSION = "1"


def cpu_model() -> str:
    """The CPU's marketing name (``AMD EPYC 7B13``): what a host benchmark ran on. The kernel
    release says nothing about speed; ``platform.processor()`` is empty on most Linux hosts."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _reset_peak_rss() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    except OSError:
        pass


def _proc_status_bytes(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _peak_rss_bytes() -> int:
    peak = _proc_status_bytes("VmHWM")
    if peak is not None:
        return peak
    # ru_maxrss is KiB on Linux, bytes on macOS (lifetime peak: an upper bound)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


def _error_category(exc: BaseException) -> str:
    text = str(exc).lower()
    if "memory" in text:
        return "out_of_memory"
    if "delegate" in text or "backend" in text or "not registered" in text or "operator" in text:
        return "unsupported_op"
    return "runtime_error"


def run_job(job_dir: Path) -> dict:
    job = validate_job(json.loads((job_dir / JOB_FILE).read_text()))
    started = _now()
    doc: dict = {
        "schema_version": 1,
        "job_id": job["job_id"],
        "attempt_id": job["attempt_id"],
        "attempt_token": job["attempt_token"],
        "simulated": False,
        "producer": {"name": "host-driver", "version": PRODUCER_VERSION},
        "device": {
            "model": "host",
            "name": socket.gethostname(),
            "chip": cpu_model(),
            "os": platform.system(),
            "os_version": platform.release(),
        },
        "backend": job["backend"],
        **({"runtime_version": v} if (v := executorch_version()) else {}),
        "thermal_before": "unknown",
        "thermal_after": "unknown",
        "energy_mj_per_inference": None,
        "started_at": started,
    }
    try:
        import torch
        from executorch.runtime import Runtime

        _reset_peak_rss()
        # The harness process itself (Python + torch + the runtime) is ~380 MB before any
        # program is loaded; an app on a phone has no such baseline. Report what the
        # program adds (load + inference peak over the idle harness), comparable to a
        # small app's footprint, and keep the baseline in the document's producer note.
        idle_rss = _proc_status_bytes("VmRSS") or 0
        t0 = time.perf_counter()
        program = Runtime.get().load_program(str(job_dir / job["model_file"]))
        method = program.load_method("forward")
        load_ms = (time.perf_counter() - t0) * 1000
        shape = job["input_shape"]
        x_np = np.zeros(shape, dtype=np.float32)
        x = torch.from_numpy(x_np)  # shares x_np's memory: preprocessing writes the tensor in place
        frames = frame.Preprocessor(frame.synthetic_frame(), x_np) if frame.image_input(shape) else None
        if frames is None:
            x_np[...] = golden_input(shape, job["golden_input"]["seed"])
        warm: list[float] = []
        lat: list[float] = []
        pre: list[float] = []
        post: list[float] = []
        deadline = time.monotonic() + float(job["timeout_s"])
        for i in range(job["warmup"] + job["iterations"]):
            t0 = time.perf_counter()
            if frames is not None:
                frames.run()
            t1 = time.perf_counter()
            out = method.execute([x])
            t2 = time.perf_counter()
            if frames is not None:
                frame.postprocess(out[0].detach().numpy())
            t3 = time.perf_counter()
            if i < job["warmup"]:
                warm.append((t2 - t1) * 1000)
            else:
                lat.append((t2 - t1) * 1000)
                pre.append((t1 - t0) * 1000)
                post.append((t3 - t2) * 1000)
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {len(lat)} of {job['iterations']} iterations")
        # the output the coordinator checks comes from the contract's golden input, untimed
        x_np[...] = golden_input(shape, job["golden_input"]["seed"])
        golden = method.execute([x])
        doc.update(
            status="ok",
            load_time_ms=load_ms,
            warmup_latencies_ms=warm,
            latencies_ms=lat,
            peak_memory_bytes=max(0, _peak_rss_bytes() - idle_rss),
            output=summarize_output(golden[0].detach().numpy()),
        )
        if frames is not None:
            doc.update(preprocess_ms=pre, postprocess_ms=post, frame_pipeline=frame.pipeline_block(
                pre, lat, post, simulated=False, source="measured",
                preprocess=frame.HOST_PREPROCESS, postprocess=frame.HOST_POSTPROCESS))
    except TimeoutError as exc:
        doc.update(status="error", error={"category": "timeout", "message": str(exc)[:4000]})
    except Exception as exc:  # the model failed, not the harness: report it as data
        doc.update(status="error", error={"category": _error_category(exc), "message": str(exc)[:4000]})
    doc["finished_at"] = _now()
    return doc


def write_result(job_dir: Path, doc: dict) -> None:
    tmp = job_dir / (RESULT_FILE + ".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(job_dir / RESULT_FILE)  # atomic: the agent never reads half a document


def run_and_write(job_dir: Path) -> None:
    doc = run_job(job_dir)
    write_result(job_dir, doc)
    # the untimed profiling pass, after the timing result is safely on disk
    host_profile.profile_after_timing(job_dir, doc, write_result)


def serve() -> int:
    from executorch.runtime import Runtime  # noqa: F401  (pay the import once, up front)

    print("ready", flush=True)
    for line in sys.stdin:
        job_dir = Path(line.strip())
        if not line.strip():
            continue
        run_and_write(job_dir)
        print(f"done {job_dir}", flush=True)
    return 0


def main() -> int:
    if sys.argv[1:] == ["--serve"]:
        return serve()
    run_and_write(Path(sys.argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
