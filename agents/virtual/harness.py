"""The simulated harness: what runs when ``dev.benchfarm.harness`` is launched on a virtual device.

Like the iOS harness app it reads ``Documents/job.json`` (validated by the harness
contract) and the pushed ``.pte`` from its container, "runs" the benchmark through the
performance model (``perf_model.yaml``), and writes ``Documents/result.json``, which
``validate_result`` accepts, with ``simulated: true`` and producer ``virtual-harness``.
It sleeps the simulated duration divided by the device's time compression (at least
``min_run_s``), so a minutes-long benchmark takes a second of wall clock.

Faults (see ``agents.virtual.faults``) act here: harness_crash (exit by SIGSEGV, no
result), hang (never writes, never exits), missing_result (exit 0, no result),
corrupt_result (an invalid result.json), stale_harness (an older ExecuTorch runtime_version);
thermal and low_battery shape the numbers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import statistics
from datetime import UTC, datetime
from typing import Any

from agents.harness import frame
from agents.harness.contract import JOB_FILE, RESULT_FILE, ContractError, executorch_version, validate_job
from agents.virtual import op_profile
from agents.virtual.device import HARNESS_BUNDLE_ID, SIGSEGV, Process, VirtualDevice
from agents.virtual.instruments.processes import BENCH_CPU_PCT, Load, set_load
from agents.virtual.perf_model import Workload, device_factor, model, simulate
from agents.virtual.vfs import FsError

PRODUCER = {"name": "virtual-harness", "version": "1"}
DOCUMENTS = "Documents"
# Energy the rest of the phone draws while the benchmark runs (screen on, SoC idle), and
# the battery it drains: ~12.6 Wh, an iPhone 13/15 Pro class battery.
BASELINE_W = 1.0
BATTERY_J = 12.6 * 3600
SIMULATED_PREPROCESS = ("simulated: the seed guide's Strategy 2 table (Preprocessing per resolution), "
                        "scaled by the chip's CPU speed (agents/virtual/perf_model.yaml)")
SIMULATED_POSTPROCESS = "simulated: softmax and top-5, ~0.1 ms (not in the seed)"


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _workload(job: dict[str, Any], backend: str, pte_bytes: int) -> Workload:
    shape = job["input_shape"]
    side = math.sqrt(shape[-1] * shape[-2]) if len(shape) >= 3 else float(shape[-1])
    return Workload(
        backend=backend,
        pte_bytes=pte_bytes,
        resolution=int(job.get("input_resolution") or round(side)),
        batch=int(job.get("batch_size") or (shape[0] if len(shape) == 4 else 1)),
        warmup=int(job["warmup"]),
        iterations=int(job["iterations"]),
        timeout_s=float(job["timeout_s"]),
        frame=frame.image_input(shape),
    )


def _canonical_backend(name: str) -> str:
    from orchestrator.export.registry import UnknownBackend, registry

    try:
        return registry().resolve(name).name
    except UnknownBackend:
        return name.strip().lower()


def _battery(device: VirtualDevice) -> dict[str, Any]:
    return {"level": round(device.current_battery_level(), 2), "charging": device.is_charging(),
            "temperature_c": device.temperature_c()}


def _error(doc: dict[str, Any], category: str, message: str) -> dict[str, Any]:
    return {**doc, "status": "error", "error": {"category": category, "message": message[:4000]}}


def benchmark(device: VirtualDevice, job: dict[str, Any], model_bytes: bytes | None) -> tuple[dict[str, Any], float]:
    """The result document for ``job`` and the simulated seconds the run took."""
    doc, simulated_s = _simulated_run(device, job, model_bytes)
    return {**doc, "finished_at": _now()}, simulated_s


def _simulated_run(device: VirtualDevice, job: dict[str, Any],
                   model_bytes: bytes | None) -> tuple[dict[str, Any], float]:
    d = device
    doc: dict[str, Any] = {
        **benchmark_header(d, job), "output": None, "energy_mj_per_inference": None,
        "thermal_before": d.thermal_state(), "battery_before": _battery(d),
    }
    m = model()
    if model_bytes is None:
        return _error(doc, "model_load_failed", f"{job['model_file']} is not in Documents/"), m.overhead_s
    if hashlib.sha256(model_bytes).hexdigest() != job["model_sha256"]:
        return _error(doc, "model_load_failed", f"{job['model_file']}: sha256 does not match the job"), m.overhead_s
    backend = _canonical_backend(job["backend"])
    work = _workload(job, backend, len(model_bytes))
    heat0 = d.current_heat()
    run = simulate(m, d.device_class.id, work, heat0, d.rng, device_factor(d.udid, m), d.thermal_floor())
    if run is None:
        return _error(doc, "unsupported_op", f"backend {job['backend']!r} has no delegate for the "
                      f"{d.device_class.display} in the virtual performance model: program failed to load "
                      "(operator or delegate not supported)"), m.overhead_s
    d.heat_s = run.heat_s
    spent_j = (run.energy_mj * (len(run.latencies_ms) + len(run.warmup_ms))) / 1000 + BASELINE_W * run.simulated_s
    if not d.is_charging():
        d.battery_level = max(0.0, d.battery_level - spent_j / BATTERY_J * 100)
    doc.update(load_time_ms=round(run.load_ms, 3), warmup_latencies_ms=run.warmup_ms, latencies_ms=run.latencies_ms,
               peak_memory_bytes=run.peak_memory_bytes, energy_mj_per_inference=round(run.energy_mj, 4),
               thermal_after=d.thermal_state(), battery_after=_battery(d))
    if work.frame and run.preprocess_ms:
        doc.update(preprocess_ms=run.preprocess_ms, postprocess_ms=run.postprocess_ms,
                   frame_pipeline=frame.pipeline_block(
                       run.preprocess_ms, run.latencies_ms, run.postprocess_ms, simulated=True, source="simulated",
                       preprocess=SIMULATED_PREPROCESS, postprocess=SIMULATED_POSTPROCESS))
    if run.timed_out:
        done = len(run.latencies_ms)
        doc = _error(doc, "timeout", f"timed out after {done} of {work.iterations} iterations "
                     f"({job['timeout_s']} s budget)")
    else:
        doc["status"] = "ok"
        if job.get("profile"):  # the untimed pass: a simulated breakdown of this program's operators
            doc["profile"] = op_profile.simulate(model_bytes, run.latencies_ms, int(job["profile"]["iterations"]))
            return doc, run.simulated_s + int(job["profile"]["iterations"]) * statistics.fmean(run.latencies_ms) / 1000
    return doc, run.simulated_s


def _corrupt(doc: dict[str, Any], mode: str) -> bytes:
    text = json.dumps(doc).encode()
    if mode == "truncated":
        return text[: len(text) // 2]
    if mode == "schema":
        return json.dumps({**doc, "status": "finished", "simulated": "yes"}).encode()
    return b"\x00\xffthis is not a result document\x7f"


async def run_harness(device: VirtualDevice, proc: Process) -> tuple[int | None, int | None]:
    """The harness process body: returns (exit code, signal) as the process table records it."""
    faults = device.faults
    say = lambda text: device.emit_output(proc.pid, text)  # noqa: E731
    docs = device.container(HARNESS_BUNDLE_ID)
    if faults.take("harness_crash"):
        await asyncio.sleep(device.min_run_s / 2)
        say("harness: EXC_BAD_ACCESS (SIGSEGV)")
        _crash_report(device, proc)
        return None, SIGSEGV
    hang, missing, corrupt = faults.take("hang"), faults.take("missing_result"), faults.take("corrupt_result")
    stale = faults.take("stale_harness")
    try:
        job = json.loads(docs.read(f"{DOCUMENTS}/{JOB_FILE}"))
    except (FsError, ValueError) as exc:
        say(f"harness: cannot read {JOB_FILE}: {exc}")
        return 1, None
    try:
        validate_job(job)
    except ContractError as exc:
        if not all(isinstance(job.get(k), t) for k, t in (("job_id", str), ("attempt_id", str),
                                                           ("attempt_token", int))) or not job.get("backend"):
            say(f"harness: {exc}")
            return 1, None
        doc = _error(benchmark_header(device, job), "bad_job", str(exc))
        simulated_s = model().overhead_s
    else:
        try:
            model_bytes = docs.read(f"{DOCUMENTS}/{job['model_file']}")
        except FsError:
            model_bytes = None
        say(f"harness: running {job['job_id']} ({job['backend']}, {job['iterations']} iterations)")
        doc, simulated_s = benchmark(device, job, model_bytes)
    set_load(device, proc.pid, _load(doc))
    try:
        await asyncio.sleep(max(device.min_run_s, simulated_s / device.time_compression))
    finally:
        set_load(device, proc.pid, None)
    if hang:
        say("harness: stuck")
        await asyncio.Event().wait()  # until the host kills it
    doc["finished_at"] = _now()
    if stale:
        doc["runtime_version"] = stale.params["runtime"]
    if missing:
        say("harness: exiting without a result")
        return 0, None
    data = _corrupt(doc, corrupt.params["mode"]) if corrupt else json.dumps(doc).encode()
    docs.write(f"{DOCUMENTS}/{RESULT_FILE}", data)
    say(f"harness: wrote {RESULT_FILE} ({doc.get('status')})")
    return 0, None


def _load(doc: dict[str, Any]) -> Load | None:
    """What the device's instruments see of the harness while it benchmarks (sysmontap, energy gauge)."""
    lat = doc.get("latencies_ms") or []
    if doc.get("status") != "ok" or not lat:
        return None
    mean_ms = sum(lat) / len(lat)
    # the process draws its inference power; the rest of the phone (BASELINE_W) is not the harness's
    power_w = (doc.get("energy_mj_per_inference") or 0.0) / mean_ms
    cpu = BENCH_CPU_PCT.get(_canonical_backend(doc["backend"]), 100.0)
    return Load(cpu, int(doc.get("peak_memory_bytes") or 0), power_w)


def _crash_report(device: VirtualDevice, proc: Process) -> None:
    """What ReportCrash leaves behind when the harness dies: an .ips in the crash-report directory."""
    from agents.virtual.crashlog import write_crash

    app = device.apps.get(proc.bundle_id)
    record = app.record() if app else {"CFBundleExecutable": "BenchfarmHarness", "Path": "/var/containers"}
    name = str(record["CFBundleExecutable"])
    write_crash(device, proc.pid, proc.bundle_id, name, f"{record['Path']}/{name}", SIGSEGV,
                [f"{name}`executorch::runtime::Method::execute()", f"{name}`BenchmarkRunner.runIterations()",
                 f"{name}`BenchmarkRunner.run(job:)", "libdispatch.dylib`_dispatch_call_block_and_release",
                 "UIKitCore`UIApplicationMain", f"{name}`main", "dyld`start"])


def benchmark_header(device: VirtualDevice, job: dict[str, Any]) -> dict[str, Any]:
    """The identity part of every result, also for a job that could not run at all."""
    return {
        "schema_version": 1, "job_id": str(job["job_id"])[:64], "attempt_id": str(job["attempt_id"])[:64],
        "attempt_token": max(0, job["attempt_token"]), "simulated": True, "producer": dict(PRODUCER),
        "device": {"model": device.product_type, "name": device.name[:256], "chip": device.device_class.chip,
                   "os": device.os_name, "os_version": device.product_version, "udid": device.udid},
        "backend": str(job["backend"])[:64], "started_at": _now(),
        # the simulated app is built like the real one: against the exporter's ExecuTorch release
        **({"runtime_version": v} if (v := executorch_version()) else {}),
    }
