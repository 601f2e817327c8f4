"""The schedules file: named cron entries that submit a matrix spec as a nightly run.

```yaml
schedules:
  - name: nightly-matrix
    cron: "0 2 * * *"          # minute hour day-of-month month day-of-week, UTC
    spec: seed-matrix.yaml     # relative to this file
```

Validated with :func:`orchestrator.spec.yamlpos.load_validated`, so a bad cron field, an
unknown key or a broken spec is reported as ``schedules.yaml:LINE: field: problem`` —
a broken spec's own file:line is quoted, the scheduler refuses to start.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Literal

from celery.schedules import crontab
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from orchestrator.spec.yamlpos import SpecError, load_validated

# a yearly schedule (e.g. "0 0 29 2 *") is still found within this many days back
_MAX_LOOKBACK_DAYS = 366 * 8


def parse_cron(expr: str) -> crontab:
    """Standard 5-field cron (minute hour day-of-month month day-of-week) as a Celery crontab."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"cron {expr!r} needs 5 fields (minute hour day-of-month month day-of-week), "
                         f"got {len(fields)}")
    minute, hour, dom, month, dow = fields
    try:
        # celery's positional order differs from cron's: name every field
        return crontab(minute=minute, hour=hour, day_of_month=dom, month_of_year=month, day_of_week=dow)
    except ValueError as exc:
        raise ValueError(f"cron {expr!r}: {exc}") from None


def previous_fire(cron: crontab, now: datetime) -> datetime:
    """The latest time at or before ``now`` (minute resolution) that ``cron`` fires.

    This is the *scheduled time* a trigger belongs to: every copy of one beat send (two
    leaders, a redelivery) maps to the same value, so it keys the trigger's idempotency.
    Day-of-month and day-of-week must both match, as in Celery's crontab.
    """
    now = now.replace(second=0, microsecond=0)
    for back in range(_MAX_LOOKBACK_DAYS):
        day = (now - timedelta(days=back)).date()
        if (day.month not in cron.month_of_year or day.day not in cron.day_of_month
                or day.isoweekday() % 7 not in cron.day_of_week):
            continue
        slots = [(h, m) for h in cron.hour for m in cron.minute if back or (h, m) <= (now.hour, now.minute)]
        if slots:
            return datetime.combine(day, time(*max(slots)), tzinfo=now.tzinfo)
    raise ValueError(f"cron {cron} has not fired in the last {_MAX_LOOKBACK_DAYS} days")


class Schedule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")
    cron: str = Field(description="5-field cron expression, UTC")
    spec: Path = Field(description="matrix spec file, relative to the schedules file")
    trigger: Literal["nightly"] = "nightly"
    enabled: bool = True

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        parse_cron(v)
        return v

    @field_validator("spec")
    @classmethod
    def _spec(cls, v: Path, info: ValidationInfo) -> Path:
        from orchestrator.spec.matrix import load_spec

        base = Path((info.context or {}).get("base_dir", "."))
        path = (base / v).resolve()
        try:
            load_spec(path)
        except SpecError as exc:
            raise ValueError("the matrix spec does not validate: " + "; ".join(exc.problems)) from None
        return path

    def crontab(self) -> crontab:
        return parse_cron(self.cron)


class ScheduleFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    schedules: list[Schedule] = Field(min_length=1)

    @field_validator("schedules")
    @classmethod
    def _unique(cls, v: list[Schedule]) -> list[Schedule]:
        names = [s.name for s in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"schedule names must be unique, repeated: {', '.join(dupes)}")
        return v


def load_schedules(path: str | Path) -> ScheduleFile:
    """Read and validate a schedules file (raises ``SpecError`` naming file:line)."""
    path = Path(path)
    return load_validated(ScheduleFile, path, context={"base_dir": str(path.resolve().parent)})
