"""The driver's ``tunneld`` mode: pymobiledevice3's own ``remote tunneld`` (a separate process, kernel
TUN, as on a lab host) finds the virtual iOS 26 devices through the virtual usbmuxd, opens one
CoreDeviceProxy tunnel per device, and two drivers (two agents) benchmark through it at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from agents.drivers.ios import IosDriver
from agents.drivers.ios_ipa import write_placeholder_ipa
from agents.harness.contract import parse_result
from agents.timeline import Timeline
from agents.virtual.device import VirtualDevice
from agents.virtual.testing import running_fleet
from tests.conftest import free_port, stop_process
from tests.ios.test_driver_virtual import make_job

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0 or not os.path.exists("/dev/net/tun"),
                       reason="tunneld needs root and /dev/net/tun (it creates a kernel TUN per tunnel)"),
]


def _tunnels(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
        return json.loads(resp.read())


@pytest.fixture
def tunneld(tmp_path: Path):
    devices = [VirtualDevice(1, "iPhone16,1", "26.1", "tunneld A17", tls=True),
               VirtualDevice(2, "iPad14,3", "26.1", "tunneld M2", tls=False)]
    with running_fleet(devices=devices, control=None) as fleet:
        port = free_port()
        env = {**os.environ, "HOME": str(tmp_path), "USBMUXD_SOCKET_ADDRESS": fleet.usbmux_address}
        log = (tmp_path / "tunneld.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "pymobiledevice3", "remote", "tunneld", "--host", "127.0.0.1", "--port", str(port),
             "--no-usb", "--no-wifi", "--no-mobdev2", "--usbmux-address", fleet.usbmux_address, "-p", "tcp"],
            env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                assert proc.poll() is None, (tmp_path / "tunneld.log").read_text()[-2000:]
                try:
                    if set(fleet.udids) <= set(_tunnels(port)):
                        break
                except OSError:
                    pass
                time.sleep(0.3)
            else:
                pytest.fail(f"tunneld made no tunnels: {(tmp_path / 'tunneld.log').read_text()[-2000:]}")
            yield fleet, port
        finally:
            stop_process(proc, 15)
            log.close()


def test_two_agents_benchmark_through_one_tunneld(tunneld, tmp_path: Path) -> None:
    fleet, port = tunneld
    listing = _tunnels(port)
    model = tmp_path / "tiny.pte"
    model.write_bytes(bytes(range(256)) * 100)
    results: dict[str, object] = {}

    def agent(udid: str, n: int) -> None:
        drv = IosDriver(harness_ipa=write_placeholder_ipa(tmp_path / f"h{n}.ipa"), usbmux_address=fleet.usbmux_address,
                        pairing_records_dir=tmp_path / f"pairs{n}", timeline=Timeline(), ios17_tunnel="tunneld",
                        tunneld_address=f"127.0.0.1:{port}", startup_allowance_s=10.0, poll_interval_s=0.1)
        try:
            dev = next(d for d in drv.discover() if d.id == udid)
            for attempt in ("t1", "t2"):
                job = make_job(model, attempt=attempt)
                drv.prepare(dev, job, model)
                results[f"{udid}:{attempt}"] = parse_result(drv.run(dev, job))
                drv.cleanup(dev, job)
            results[udid] = [s for s in drv.timeline.steps if s["step"] == "tunnel"]
        except BaseException as exc:  # surfaced in the test thread below
            results[udid] = exc
        finally:
            drv.close()

    threads = [threading.Thread(target=agent, args=(u, i)) for i, u in enumerate(fleet.udids)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(100)
    for udid in fleet.udids:
        steps = results[udid]
        assert not isinstance(steps, BaseException), repr(steps)
        assert steps and all(s["mode"] == "tunneld" for s in steps)
        # the address the driver used is the tunnel tunneld announced for that device
        assert {s["address"] for s in steps} == {listing[udid][0]["tunnel-address"]}
        for attempt in ("t1", "t2"):
            doc = results[f"{udid}:{attempt}"]
            assert doc["status"] == "ok" and doc["attempt_id"] == attempt and doc["simulated"] is True
        assert fleet.device(udid)["processes"] == []
    # tunneld kept one tunnel per device for the whole time, shared by both agents
    assert set(_tunnels(port)) == set(fleet.udids)
    assert all(len(fleet.call(lambda s, u=u: s.device(u).tunnels)) == 1 for u in fleet.udids)
