"""Developer Mode off and a missing developer image are device states, end to end: a real agent
with the iOS driver, virtual iPhones over real sockets, a real coordinator worker.

The device takes the state (with its remedy in ``benchfarm devices``), takes no job while in it,
and returns to service once fixed: Developer Mode turned back on, then the developer image
mounted by the agent itself once one is on the host (offline it cannot download one).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from agents.virtual.testing import running_fleet
from device_inventory.fleet import Fleet
from orchestrator.store.db import session
from orchestrator.store.models import Attempt, Job
from tests.conftest import Procs, wait_until
from tests.health.test_agent_ios import FLEET, run_once, the_iphone

DEVICE_SUPPORT = ".pymobiledevice3/Xcode.app/Contents/Developer/Platforms/iPhoneOS.platform/DeviceSupport"


@pytest.mark.timeout(300)
def test_developer_mode_and_missing_image_hold_the_device_until_fixed(
        hc_env: dict[str, str], hc_procs: Procs, tmp_path: Path) -> None:
    fleet = Fleet.from_url(hc_env["REDIS_URL"])
    home = Path(hc_env["BENCHFARM_HOME"])
    (home / ".pymobiledevice3").mkdir(parents=True, exist_ok=True)  # where auto-mount looks for Xcode images
    path = tmp_path / "fleet.yaml"
    path.write_text(FLEET)
    with running_fleet(path) as vfleet:
        udid = vfleet.udids[0]
        vfleet.inject_fault(udid, "developer_mode_off")
        vfleet.inject_fault(udid, "ddi_missing")
        hc_procs.env = dict(hc_env, HOME=str(home), BENCHFARM_CONDITION_RECHECK_S="1")
        hc_procs.start("worker", "worker", "--queues", "coordinator,export.linux", "--concurrency", "2")
        hc_procs.start("agent", "agent", "--driver", "ios", "--usbmux", vfleet.usbmux_address, "--name", "ios",
                       "--lease-ttl", "10")
        finished: dict[str, object] = {}  # a run submitted now (its export overlaps the agent's start)
        runner = threading.Thread(target=lambda: finished.update(run=run_once(fleet, 240)), daemon=True)
        runner.start()
        wait_until(lambda: the_iphone(fleet).get("state") == "developer_mode_off", 90,
                   f"the device to show Developer Mode off\n{hc_procs.log('agent')[-3000:]}")
        assert "Settings > Privacy & Security > Developer Mode" in the_iphone(fleet)["state_reason"]
        out = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "devices", "--wide"], env=hc_procs.env,
                             capture_output=True, text=True, timeout=60)
        assert "developer_mode_off" in out.stdout and "Developer Mode" in out.stdout, out.stdout + out.stderr

        # its job reaches the device and is handed back, not run and not failed as a launch failure
        wait_until(lambda: hc_procs.log("agent").count("gated: developer_mode_off") >= 2, 180,
                   f"the job to be offered and bounced\n{hc_procs.log('agent')[-3000:]}")
        with session() as s:
            assert {a.state for a in s.scalars(select(Attempt))} == {"dispatched"}

        vfleet.clear_faults(udid, "developer_mode_off")  # the user turned it on: now the image is missing
        wait_until(lambda: the_iphone(fleet).get("state") == "ddi_missing", 60,
                   f"the device to show the missing image\n{hc_procs.log('agent')[-3000:]}")
        reason = the_iphone(fleet)["state_reason"]
        version = ".".join(vfleet.device(udid)["product_version"].split(".")[:2])
        assert "offline" in reason and f"DeviceSupport/{version}" in reason, reason

        support = home / DEVICE_SUPPORT / version  # the operator copies Xcode's image: the agent mounts it itself
        support.mkdir(parents=True)
        (support / "DeveloperDiskImage.dmg.signature").write_bytes(os.urandom(128))
        (support / "DeveloperDiskImage.dmg").write_bytes(os.urandom(8192))
        wait_until(lambda: the_iphone(fleet).get("state") in ("available", "leased", "busy"), 60,
                   f"the device to return to service\n{hc_procs.log('agent')[-3000:]}")
        assert vfleet.device(udid)["faults"] == []  # mounted through mobile_image_mounter
        runner.join(200)
        assert finished["run"].status == "succeeded"  # type: ignore[attr-defined]
        with session() as s:
            (job,) = s.scalars(select(Job)).all()
            assert job.state == "succeeded" and [a.state for a in job.attempts] == ["succeeded"]
