"""Every Redis key benchfarm keeps, named in one place (prefix ``bf:``; inspect with ``redis-cli``).

Each key belongs to one registry class, the only code that reads or writes it:

  devices                   set of device ids                                  DeviceRegistry
  device:<id>               hash: class, host, state, product_type, ...        DeviceRegistry
  heartbeats                zset device id -> expiry; expired = offline        DeviceRegistry
  device-events             stream of every device state change                DeviceEvents
  device-events:cursor      the last stream id copied into the database        DeviceEvents
  device-events:copier      the one coordinator copying the stream (SET NX EX) DeviceEvents
  leases                    zset device id -> lease expiry                     LeaseRegistry
  lease:<id>                hash: attempt_id, job_id, token                    LeaseRegistry
  fence:<id>                monotonically increasing fencing token (INCR)      LeaseRegistry
  attempt:<attempt_id>      hash: state (dispatched|claimed|fenced|done|cancelled), device, token
                                                                               AttemptClaims
  failures:<id>             consecutive infrastructure failures                HealthRecords
  health-check:<check_id>   hash: the outcome of one golden health check       HealthRecords
  health-recheck:<id>       the one pending recheck of a quarantined device    HealthRecords
  health-periodic:<id>      the periodic check's per-period claim              HealthRecords
  health-seen               devices a coordinator has seen (first check waits) HealthRecords
  exporters                 zset platform -> heartbeat expiry                  ExporterRegistry
  exporter-identities       zset "<platform>:<code identity>" -> heartbeat expiry
                                                                               ExporterRegistry
  export-running:<request>  an export in progress (refreshed while it works)   ExporterRegistry
  export-memo:<request>     JSON {artifact_key, identity}: what an exporter keyed the request to
                                                                               ExportMemo
  verify:<run_id>           a PR run's one verify decision (SET NX)            Claims
  schedules                 hash: schedule name -> {cron, spec}                Claims
  schedule-fired:<s>:<slot> a schedule slot's one trigger (SET NX)             Claims
  export-lock:<key>         one exporter per artifact (redis-py Lock)          orchestrator.export.locking
  redbeat:*                 RedBeat's own schedule state (orchestrator.scheduling.beat)

Celery's queues (``device.<class>`` lists) belong to the broker; QueueDepths only reads them.
"""

from __future__ import annotations

P = "bf:"

DEVICES = f"{P}devices"
HEARTBEATS = f"{P}heartbeats"
EVENTS = f"{P}device-events"
EVENTS_CURSOR = f"{P}device-events:cursor"
EVENTS_COPIER = f"{P}device-events:copier"
LEASES = f"{P}leases"
ATTEMPT_PREFIX = f"{P}attempt:"
HEALTH_SEEN = f"{P}health-seen"
EXPORTERS = f"{P}exporters"
EXPORTER_IDENTITIES = f"{P}exporter-identities"
SCHEDULES = f"{P}schedules"
REDBEAT_PREFIX = f"{P}redbeat:"


def device(device_id: str) -> str:
    return f"{P}device:{device_id}"


def lease(device_id: str) -> str:
    return f"{P}lease:{device_id}"


def fence(device_id: str) -> str:
    return f"{P}fence:{device_id}"


def attempt(attempt_id: str) -> str:
    return f"{ATTEMPT_PREFIX}{attempt_id}"


def failures(device_id: str) -> str:
    return f"{P}failures:{device_id}"


def health_check(check_id: str) -> str:
    return f"{P}health-check:{check_id}"


def health_recheck(device_id: str) -> str:
    return f"{P}health-recheck:{device_id}"


def health_periodic(device_id: str) -> str:
    return f"{P}health-periodic:{device_id}"


def verify_decision(run_id: str) -> str:
    return f"{P}verify:{run_id}"


def schedule_fired(schedule: str, slot: str) -> str:
    return f"{P}schedule-fired:{schedule}:{slot}"


def export_lock(artifact_key: str) -> str:
    return f"{P}export-lock:{artifact_key}"


def export_memo(request_key: str) -> str:
    return f"{P}export-memo:{request_key}"


def export_running(request_key: str) -> str:
    """An export in progress: refreshed by its exporter while it works, gone soon after it died."""
    return f"{P}export-running:{request_key}"
