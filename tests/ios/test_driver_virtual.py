"""The iOS driver against virtual devices over real sockets: usbmux, lockdown (TLS on and off),
AFC, house_arrest, installation_proxy, diagnostics_relay and DVT, all through unchanged
pymobiledevice3. Faults are injected through the virtual fleet, never by patching.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest

from agents.drivers.ios import SIMULATED_KEY, IosDriver
from agents.drivers.ios_ipa import HARNESS_BUNDLE_ID, write_placeholder_ipa
from agents.harness.contract import parse_result
from agents.protocols import DriverError
from agents.timeline import Timeline
from agents.virtual.device import VirtualDevice
from agents.virtual.testing import running_fleet

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def fleet():
    # an A17 Pro on iOS 26 (DVT over the CoreDeviceProxy tunnel + RSD, lockdown TLS on) and an A15
    # kept on iOS 16 (DVT over lockdown, TLS off): both launch paths in every test that launches
    devices = [VirtualDevice(1, "iPhone16,1", "26.1", "bench A17", tls=True),
               VirtualDevice(2, "iPhone14,5", "16.6", "bench A15", tls=False)]
    with running_fleet(devices=devices, control=None) as handle:
        yield handle


@pytest.fixture
def driver(fleet, tmp_path):
    drv = IosDriver(harness_ipa=write_placeholder_ipa(tmp_path / "harness.ipa"),
                    usbmux_address=fleet.usbmux_address, pairing_records_dir=tmp_path / "pairs",
                    timeline=Timeline(), startup_allowance_s=5.0, poll_interval_s=0.1, call_timeout_s=10.0)
    yield drv
    drv.close()


@pytest.fixture
def model(tmp_path) -> Path:
    path = tmp_path / "tiny.pte"
    path.write_bytes(bytes(range(256)) * 400)
    return path


def make_job(model: Path, attempt: str = "a1", timeout_s: float = 20.0) -> dict:
    return {"schema_version": 1, "job_id": "job-1", "attempt_id": attempt, "attempt_token": 7,
            "model_file": model.name, "model_sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
            "backend": "xnnpack", "compute_units": "all", "input_shape": [1, 3, 32, 32], "warmup": 2,
            "iterations": 10, "timeout_s": timeout_s, "golden_input": {"kind": "seeded-uniform", "seed": 5}}


def device_of(driver, fleet, name: str):
    return next(d for d in driver.discover() if d.name == name)


def container_file(fleet, udid: str, name: str) -> bytes | None:
    try:
        return fleet.read_file(udid, f"Documents/{name}", bundle_id=HARNESS_BUNDLE_ID)
    except Exception:
        return None


def test_discovery_reads_lockdown_values_and_catalog_class(driver, fleet):
    found = {d.id: d for d in driver.discover()}
    assert set(found) == set(fleet.udids)
    a17 = next(d for d in found.values() if d.name == "bench A17")
    assert (a17.product_type, a17.os, a17.os_version, a17.device_class, a17.driver) == (
        "iPhone16,1", "iOS", "26.1", "A17-Pro", "ios")
    assert a17.extra["marketing_name"] == "iPhone 15 Pro" and a17.extra["dvt_path"] == "rsd"
    assert a17.extra["build"] == "23B85"
    assert found[a17.id].chip == "A17 Pro"


def test_virtual_devices_are_flagged_simulated_and_get_the_placeholder(fleet, model, tmp_path):
    assert VirtualDevice(9, "iPhone14,5", "18.6.2", "probe").lockdown_values()[SIMULATED_KEY] is True
    drv = IosDriver(usbmux_address=fleet.usbmux_address, pairing_records_dir=tmp_path / "pairs")  # no .ipa
    try:
        found = drv.discover()
        assert found and all(d.simulated for d in found)
        job = make_job(model)
        drv.prepare(found[0], job, model)  # installs the built-in placeholder
        assert parse_result(drv.run(found[0], job))["simulated"] is True
    finally:
        drv.close()


def test_health_readings_and_faults(driver, fleet):
    dev = device_of(driver, fleet, "bench A17")
    h = driver.health(dev)
    assert (h.ok, h.action, h.battery_level, h.charging, h.thermal_state) == (True, "run", 87.0, True, "nominal")
    assert h.temperature_c == pytest.approx(30.5) and h.free_bytes > 10**9
    fleet.inject_fault(dev.id, "low_battery", level=8)
    low = driver.health(dev)
    assert (low.ok, low.action, low.battery_level, low.charging) == (False, "release", 8.0, False)
    fleet.clear_faults(dev.id, "low_battery")
    fleet.inject_fault(dev.id, "thermal", state="serious")
    hot = driver.health(dev)
    assert (hot.thermal_state, hot.action) == ("serious", "cool_down")
    assert driver.health(dev, model_bytes=200 * 10**9).action == "release"  # larger than the disk


def test_prepare_installs_once_and_pushes_files(driver, fleet, model, tmp_path):
    dev = device_of(driver, fleet, "bench A15")  # session TLS off
    job = make_job(model)
    driver.prepare(dev, job, model)
    installs = [s for s in driver.timeline.steps if s["step"] == "install"]
    assert installs[-1]["reason"] == "not installed"
    assert json.loads(container_file(fleet, dev.id, "job.json")) == job
    assert container_file(fleet, dev.id, model.name) == model.read_bytes()

    driver.prepare(dev, make_job(model, attempt="a2"), model)
    assert [s for s in driver.timeline.steps if s["step"] == "install"][-1]["reason"] == "same build installed"

    newer = IosDriver(harness_ipa=write_placeholder_ipa(tmp_path / "v2.ipa", version="0.0.2"),
                      usbmux_address=fleet.usbmux_address, pairing_records_dir=tmp_path / "pairs",
                      timeline=Timeline())
    try:
        newer.prepare(dev, job, model)
        reinstall = [s for s in newer.timeline.steps if s["step"] == "install"][-1]
        assert "installed version 0.0.1" in reinstall["reason"]
    finally:
        newer.close()
    apps = fleet.call(lambda s: s.device(dev.id).apps)
    assert apps[HARNESS_BUNDLE_ID].info["CFBundleShortVersionString"] == "0.0.2"


def test_full_attempt_run_pull_kill_cleanup(driver, fleet, model):
    dev = device_of(driver, fleet, "bench A17")  # TLS on, DVT over TLS
    job = make_job(model)
    driver.prepare(dev, job, model)
    doc = parse_result(driver.run(dev, job))
    assert (doc["job_id"], doc["attempt_id"], doc["attempt_token"], doc["status"]) == ("job-1", "a1", 7, "ok")
    assert doc["simulated"] is True and doc["producer"]["name"] == "virtual-harness"
    assert len(doc["latencies_ms"]) == 10
    assert fleet.device(dev.id)["processes"] == []  # the harness was killed or had exited
    steps = [s["step"] for s in driver.timeline.steps]
    for step in ("lockdown", "launch", "wait_result", "pull_result", "kill"):
        assert step in steps
    driver.cleanup(dev, job)
    assert [container_file(fleet, dev.id, n) for n in ("job.json", "result.json", model.name)] == [None] * 3


def _expect(category: str, fn, *args):
    with pytest.raises(DriverError) as info:
        fn(*args)
    assert info.value.category == category, str(info.value)
    return info.value


def test_unplugged_device_is_lost(driver, fleet, model):
    dev = device_of(driver, fleet, "bench A17")
    fleet.unplug(dev.id)
    _expect("device_lost", driver.health, dev)
    _expect("device_lost", driver.prepare, dev, make_job(model), model)


def test_unplug_during_run_is_device_lost(driver, fleet, model):
    dev = device_of(driver, fleet, "bench A17")
    job = make_job(model)
    driver.prepare(dev, job, model)
    fleet.inject_fault(dev.id, "hang")
    timer = threading.Timer(1.0, fleet.unplug, args=(dev.id,))
    timer.start()
    try:
        _expect("device_lost", driver.run, dev, job)
    finally:
        timer.join()


def test_not_paired(driver, fleet, model):
    dev = device_of(driver, fleet, "bench A15")
    assert dev.extra["paired"] is True
    fleet.inject_fault(dev.id, "not_paired")
    # a paired device that stays attached keeps its cached description; a replug re-reads it
    assert device_of(driver, fleet, "bench A15").extra["paired"] is True
    fleet.unplug(dev.id)
    assert all(d.id != dev.id for d in driver.discover())
    fleet.plug(dev.id)
    listed = device_of(driver, fleet, "bench A15")  # still discovered, flagged
    assert (listed.id, listed.product_type, listed.extra["paired"]) == (dev.id, "iPhone14,5", False)
    _expect("not_paired", driver.prepare, dev, make_job(model), model)
    h = driver.health(dev)
    assert (h.ok, h.action) == (False, "release") and "not_paired" in h.problems[0]


def test_install_failure(driver, fleet, model):
    dev = device_of(driver, fleet, "bench A17")
    fleet.inject_fault(dev.id, "install_failure")
    err = _expect("install_failed", driver.prepare, dev, make_job(model), model)
    assert "APIInternalError" in str(err)


def test_unhealthy_device_refuses_prepare(driver, fleet, model):
    dev = device_of(driver, fleet, "bench A17")
    fleet.inject_fault(dev.id, "low_battery", level=3)
    _expect("unhealthy", driver.prepare, dev, make_job(model), model)


@pytest.mark.parametrize("fault,params,category", [
    ("hang", {}, "timeout"),
    ("harness_crash", {}, "harness_crashed"),
    ("missing_result", {}, "harness_crashed"),
    ("corrupt_result", {"mode": "garbage"}, "bad_result"),
    ("corrupt_result", {"mode": "schema"}, "bad_result"),
])
def test_harness_faults(driver, fleet, model, fault, params, category):
    dev = device_of(driver, fleet, "bench A15")
    job = make_job(model, timeout_s=1.0)
    driver.startup_allowance_s = 1.0
    driver.prepare(dev, job, model)
    fleet.inject_fault(dev.id, fault, count=1, **params)
    _expect(category, driver.run, dev, job)
    assert fleet.device(dev.id)["processes"] == []  # nothing left running after a failure
    driver.cleanup(dev, job)


def test_stale_result_of_another_attempt_is_rejected(driver, fleet, model):
    dev = device_of(driver, fleet, "bench A15")
    job = make_job(model)
    driver.prepare(dev, job, model)
    # the harness answers for the job.json on the device; the agent asks about another attempt
    other = dict(job, attempt_id="a-other")
    err = _expect("bad_result", driver.run, dev, other)
    assert "attempt_id" in str(err)


def test_ios26_tunnel_is_built_once_and_reused_across_calls(driver, fleet, model):
    """The modern path end to end: install and push over lockdown, launch/wait/pull/kill over DVT
    behind the userspace CoreDeviceProxy tunnel, which the next job of the lease reuses."""
    dev = device_of(driver, fleet, "bench A17")
    for attempt in ("a1", "a2"):
        job = make_job(model, attempt=attempt)
        driver.prepare(dev, job, model)
        doc = parse_result(driver.run(dev, job))
        assert (doc["attempt_id"], doc["status"], doc["device"]["model"]) == (attempt, "ok", "iPhone16,1")
        driver.cleanup(dev, job)
    tunnels = [s for s in driver.timeline.steps if s["step"] == "tunnel"]
    assert [t["reused"] for t in tunnels][:2] == [False, True] and all(t["reused"] for t in tunnels[1:])
    assert tunnels[0]["mode"] == "userspace" and tunnels[0]["address"].startswith("fd")
    assert tunnels[0]["duration_s"] >= 0  # the set-up time is on the attempt timeline
    launched = fleet.call(lambda s: s.device(dev.id).tunnels)
    assert len(launched) == 1  # one tunnel held open for the device
