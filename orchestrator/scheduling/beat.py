"""``benchfarm scheduler``: Celery beat on RedBeat, a schedule shared in Redis with one leader.

Every scheduler process loads the same schedules file; RedBeat's Redis lock lets exactly
one of them tick (the others wait on the lock and take over when the leader's lock
expires). The beat sends ``benchfarm.nightly_trigger(name)`` to the coordinator queue;
the trigger itself is idempotent per scheduled time (:mod:`.trigger`).
"""

from __future__ import annotations

from pathlib import Path

from celery import Celery

from device_inventory import keys
from device_inventory.fleet import Fleet
from orchestrator import config
from orchestrator.celery_app import COORDINATOR_QUEUE
from orchestrator.scheduling.schedules import ScheduleFile, load_schedules
from orchestrator.scheduling.trigger import publish

TRIGGER_TASK = "benchfarm.nightly_trigger"
KEY_PREFIX = keys.REDBEAT_PREFIX
# The leader re-checks the schedule (and extends its lock) at least this often; a
# follower takes over within LOCK_FACTOR x this after the leader dies.
DEFAULT_MAX_INTERVAL_S = 30
LOCK_FACTOR = 5


def configure(app: Celery, schedules: ScheduleFile, redis_url: str,
              max_interval_s: float = DEFAULT_MAX_INTERVAL_S) -> None:
    app.conf.update(
        beat_scheduler="redbeat.RedBeatScheduler",
        beat_max_loop_interval=max_interval_s,
        redbeat_redis_url=redis_url,
        # explicit: the broker's transport options are not Redis client options
        redbeat_redis_options={},
        redbeat_key_prefix=KEY_PREFIX,
        redbeat_lock_timeout=int(max_interval_s * LOCK_FACTOR),
        beat_schedule={
            s.name: {"task": TRIGGER_TASK, "schedule": s.crontab(), "args": [s.name],
                     "options": {"queue": COORDINATOR_QUEUE}}
            for s in schedules.schedules if s.enabled
        },
    )


def run_scheduler(schedules_path: Path, max_interval_s: float = DEFAULT_MAX_INTERVAL_S,
                  loglevel: str = "INFO") -> None:
    """Validate the schedules, publish them, then run beat until SIGTERM/SIGINT."""
    from orchestrator.celery_app import app

    schedules = load_schedules(schedules_path)
    url = config.redis_url()
    publish(Fleet.from_url(url), schedules)
    configure(app, schedules, url, max_interval_s)
    app.Beat(loglevel=loglevel, max_interval=max_interval_s, scheduler="redbeat.RedBeatScheduler").run()
