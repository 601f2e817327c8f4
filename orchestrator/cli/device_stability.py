"""Each device's stability for ``benchfarm devices``, from its recent results in the store.

The view must work without a results store (a fresh agent host, a test fleet) and with one
not at the schema head (every other process refuses it; this view only reads): then it shows
no stability column and says why, instead of failing the whole view. So it opens a bare
engine, never ``store.db.engine`` (which would create the schema, or refuse an old one).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from orchestrator import config
from orchestrator.analysis.stability import HISTORY, RECENT, DeviceStability, device_stability
from orchestrator.spec.run_rules import DEFAULTS

# results read at most: enough history for a few hundred devices, bounded for a big store
MAX_ROWS = 20_000


def device_stabilities() -> tuple[dict[str, DeviceStability], str]:
    """Per device id, its stability; or nothing and the sentence saying why not."""
    from sqlalchemy import create_engine, select

    from orchestrator.store import migrations
    from orchestrator.store.models import Result

    url = config.database_url()
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return {}, "stability not shown: no results store yet"
    eng = create_engine(url, connect_args={"timeout": 5} if url.startswith("sqlite") else {})
    try:
        with eng.connect() as conn:
            revision = migrations.current(conn)
            if revision != migrations.head():
                at = f"at {revision}" if revision else "without migrations"
                return {}, (f"stability not shown: the results store is {at}, not {migrations.head()} "
                            "(benchfarm db upgrade)")
            rows = conn.execute(select(Result.device_id, Result.cv).where(Result.cv.is_not(None))
                                .order_by(Result.recorded_at.desc(), Result.id.desc()).limit(MAX_ROWS)).all()
    except Exception as exc:  # any driver's error: the fleet view still works
        return {}, f"stability not shown: results store unreadable ({type(exc).__name__})"
    finally:
        eng.dispose()
    cvs: dict[str, list[float]] = defaultdict(list)
    for device_id, cv in rows:
        if cv is not None and len(cvs[device_id]) < RECENT + HISTORY:
            cvs[device_id].append(float(cv))
    noisy_cv = DEFAULTS["manual"].noisy_cv
    out = {d: s for d, values in cvs.items() if (s := device_stability(values, noisy_cv)) is not None}
    return out, ""
