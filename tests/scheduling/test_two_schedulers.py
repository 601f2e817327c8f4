"""Two real scheduler processes (beat on RedBeat) and a real worker: one run per slot.

The RedBeat entry is seeded as overdue (last run two days ago), so the leader sends the
trigger as soon as it starts instead of at 02:00; the standby must stay blocked on the
lock. Then the trigger is sent twice more by hand (what a second leader would do): the
per-slot SET NX claim still leaves exactly one run.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from redbeat.schedulers import RedBeatSchedulerEntry
from sqlalchemy import select

from orchestrator.celery_app import COORDINATOR_QUEUE, make_app
from orchestrator.scheduling.beat import TRIGGER_TASK, configure
from orchestrator.scheduling.schedules import load_schedules
from orchestrator.store.db import session
from orchestrator.store.models import Run
from tests.conftest import Procs, wait_until

SPEC = "name: nightly-two\nmodels: [tiny_cnn]\nbackends: [xnnpack]\ndevices: [host-cpu]\n"
DONE = re.compile(r"benchfarm\.nightly_trigger\[[0-9a-f-]+\] succeeded")
SCHEDULER = ("import typer; from orchestrator.cli.service import scheduler_command; "
             "typer.run(scheduler_command)")


def _runs() -> list[Run]:
    with session() as s:
        return list(s.scalars(select(Run)))


def _start_scheduler(procs: Procs, name: str, schedules: Path) -> subprocess.Popen:
    log = open(procs.logdir / f"{name}.log", "ab")
    proc = subprocess.Popen([sys.executable, "-c", SCHEDULER, "--schedules", str(schedules), "--max-interval", "2"],
                            env=procs.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    procs.procs.append((name, proc))
    return proc


def test_two_schedulers_one_run(svc_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "matrix.yaml").write_text(SPEC)
    schedules = tmp_path / "schedules.yaml"
    schedules.write_text('schedules:\n  - name: nightly\n    cron: "0 2 * * *"\n    spec: matrix.yaml\n')
    app = make_app(svc_env["REDIS_URL"])
    configure(app, load_schedules(schedules), svc_env["REDIS_URL"], max_interval_s=2)
    overdue = datetime.now(UTC) - timedelta(days=2)
    RedBeatSchedulerEntry("nightly", TRIGGER_TASK, app.conf.beat_schedule["nightly"]["schedule"], args=["nightly"],
                          options={"queue": COORDINATOR_QUEUE}, app=app, last_run_at=overdue).save()
    procs = Procs(dict(svc_env, BENCHFARM_TASK_LOG_LEVEL="INFO"), tmp_path)  # DONE reads the task lines
    try:
        procs.start("worker", "worker", "--queues", COORDINATOR_QUEUE, "--concurrency", "2")
        beats = [_start_scheduler(procs, f"beat{i}", schedules) for i in (1, 2)]
        wait_until(lambda: _runs(), 90, "the nightly run")
        time.sleep(6)  # three more beat ticks: a second send would show up by now
        assert all(b.poll() is None for b in beats), "a scheduler exited"
        logs = [procs.log(f"beat{i}") for i in (1, 2)]
        assert sum("Acquired lock" in log for log in logs) == 1, logs
        assert sum(log.count("Sending due task nightly") for log in logs) == 1, logs
        for _ in range(2):  # a double send for the same slot
            app.send_task(TRIGGER_TASK, args=["nightly"], queue=COORDINATOR_QUEUE)
        wait_until(lambda: len(DONE.findall(procs.log("worker"))) >= 3, 60, "the worker to handle three triggers")
        runs = _runs()
        assert len(runs) == 1, [(r.id, r.meta) for r in runs]
        assert runs[0].trigger == "nightly" and runs[0].meta["schedule"] == "nightly"
    finally:
        procs.stop_all()
