"""The golden check with the real host driver (ExecuTorch runtime on this CPU): its real output
is compared with the golden eager output; a wrong golden fails the check and quarantines."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents import health_check, runner
from agents.drivers.host import HostDriver
from agents.health_schedule import new_request
from device_inventory.fleet import Fleet
from orchestrator.celery_app import device_id_queue
from orchestrator.export.artifacts import ArtifactStore


@pytest.fixture
def host_ctx(hc_env: dict[str, str], shared_artifacts: Path, tmp_path: Path) -> Iterator[runner.DeviceContext]:
    driver = HostDriver(slot="hc", workdir=tmp_path / "host")
    [device] = driver.discover()
    fleet = Fleet.from_url(hc_env["REDIS_URL"])
    fleet.register(device.id, {**{k: v for k, v in device.as_dict().items() if k != "extra"}})
    ctx = runner.DeviceContext(driver=driver, device=device, fleet=fleet, store=ArtifactStore(shared_artifacts),
                               lease_ttl=30, heartbeat_every=1)
    yield ctx
    driver.close()


def test_a_host_check_compares_the_real_output_with_the_golden_and_passes(host_ctx: runner.DeviceContext) -> None:
    started = time.monotonic()
    result = health_check.run_check(host_ctx, new_request(host_ctx.device.id, "on_demand"))
    print(f"host-driver health check: {time.monotonic() - started:.1f} s "
          f"(steps {[(s['step'], s['duration_s']) for s in result.timeline]})")
    assert result.verdict == "passed", result.detail
    assert result.backend == "xnnpack" and result.simulated is False
    assert result.output_check.startswith("matched")
    assert result.comparison["compared_values"] > 0 and result.comparison["top1_agrees"]
    assert result.comparison["max_abs_error"] <= result.comparison["tolerance"]
    assert {"golden_artifact", "health", "prepare", "run", "validate", "cleanup"} <= {
        s["step"] for s in result.timeline}
    assert result.transition == "unchanged" and host_ctx.fleet.device(host_ctx.device.id)["state"] == "available"


def test_a_wrong_golden_fails_the_check_and_quarantines_the_device(
        host_ctx: runner.DeviceContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = health_check.golden_backend("host-cpu")
    real = health_check.ensure_golden_artifact(host_ctx.store, backend, host_ctx.fleet.r)
    gold = host_ctx.store.golden(real.key)
    wrong = ArtifactStore(tmp_path / "wrong-golden")  # same program, golden values shifted by 1
    wrong.put(real.key, real.path.read_bytes(), real.meta,
              golden=dict(gold, values=[v + 1.0 for v in gold["values"]], head=[v + 1.0 for v in gold["head"]]))
    monkeypatch.setattr(host_ctx, "store", wrong)
    monkeypatch.setattr(runner, "_ctx", host_ctx)  # what device_worker installs in a worker process

    request = new_request(host_ctx.device.id, "on_demand")
    result = health_check.execute(request)
    assert result is not None and result.verdict == "failed", result.detail
    assert result.output_check.startswith("mismatched") and result.comparison["max_abs_error"] > 0.9
    assert result.transition == "quarantined"
    dev = host_ctx.fleet.device(host_ctx.device.id)
    assert dev["state"] == "quarantined" and "output mismatched" in dev["state_reason"]
    record = host_ctx.fleet.health_check(request["check_id"])
    assert record["verdict"] == "failed" and record["transition"] == "quarantined"
    # the device stays quarantined: its first recheck is queued on its own queue, with a countdown
    assert host_ctx.fleet.r.llen(device_id_queue(host_ctx.device.id)) == 1


def test_no_check_runs_while_a_job_holds_the_lease(host_ctx: runner.DeviceContext) -> None:
    fleet, dev = host_ctx.fleet, host_ctx.device
    fleet.dispatch_attempt("a1")
    job_lease = fleet.acquire(dev.id, "a1", "j1", ttl=30)
    result = health_check.run_check(host_ctx, new_request(dev.id, "periodic"))
    assert result.verdict == "inconclusive" and "leased" in result.detail
    assert not {"prepare", "run"} & {s["step"] for s in result.timeline}  # the driver was never asked to run
    assert fleet.lease_valid(job_lease) and fleet.device(dev.id)["state"] == "leased"
