"""A device worker: one process, one device, one solo Celery consumer on ``device.<class>``
(benchmarks) and ``device-id.<device>`` (this device's health checks), so a health check
runs between two benchmarks of the device, never beside one.

Started by the agent supervisor with the device description in ``BENCHFARM_DEVICE``
(JSON) and the driver options in ``BENCHFARM_DRIVER_OPTIONS`` (JSON). With
``BENCHFARM_HEALTH_ONLY=1`` (a quarantined device) it consumes only ``device-id.<device>``:
the device takes no benchmarks but can still pass the health check that returns it.
"""

from __future__ import annotations

import json
import os
import re
import sys

from agents import runner
from agents.drivers import make_driver
from agents.protocols import DeviceInfo
from device_inventory.fleet import Fleet
from orchestrator import config
from orchestrator.celery_app import app, device_id_queue, device_queue
from orchestrator.export.remote import RemoteArtifactStore
from orchestrator.observability.logs import bind_process, setup_logging


def main() -> int:
    info = json.loads(os.environ["BENCHFARM_DEVICE"])
    options = json.loads(os.environ.get("BENCHFARM_DRIVER_OPTIONS", "{}"))
    device = DeviceInfo(**info)
    driver = make_driver(device.driver, **options)
    runner.install(runner.DeviceContext(
        driver=driver, device=device, fleet=Fleet.from_url(config.redis_url()), store=RemoteArtifactStore.from_env(),
        lease_ttl=float(os.environ.get("BENCHFARM_LEASE_TTL", "30")),
        heartbeat_every=float(os.environ.get("BENCHFARM_HEARTBEAT_S", "5")),
        cool_down_max_s=float(os.environ.get("BENCHFARM_COOL_DOWN_MAX_S", "120")),
        cool_down_poll_s=float(os.environ.get("BENCHFARM_COOL_DOWN_POLL_S", "5")),
    ))
    setup_logging()
    bind_process(device_id=device.id, host=device.host)
    node = re.sub(r"[^A-Za-z0-9_.-]", "_", device.id)
    queues = [device_id_queue(device.id)]
    if os.environ.get("BENCHFARM_HEALTH_ONLY") != "1":
        queues.insert(0, device_queue(device.device_class))
    try:
        app.worker_main([
            "worker", "--pool=solo", "--concurrency=1", f"--queues={','.join(queues)}",
            f"--hostname={node}@{device.host}", "--without-gossip", "--without-mingle",
            "--loglevel=INFO", "--prefetch-multiplier=1",
        ])
    finally:
        close = getattr(driver, "close", None)
        if close:
            close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
