"""The results database unavailable for ~10 s mid-run (PostgreSQL behind a TCP proxy that
drops every connection and refuses new ones): the coordinator must come back and the
invariants hold."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from device_inventory.fleet import Fleet
from tests.conftest import Procs, wait_until
from tests.reliability import chaos
from tests.reliability.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(150)]
PG_BASE = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
OUTAGE_S = 10


@pytest.fixture
def proxied_db(rel_env: dict[str, str], rel_procs: Procs, monkeypatch: pytest.MonkeyPatch) -> Iterator[TcpProxy]:
    """A private PostgreSQL schema: this process talks to it directly, the stack through the proxy."""
    try:
        with sa.create_engine(PG_BASE).connect():
            pass
    except sa.exc.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at 127.0.0.1:5432: {exc}")
    from tests.api.fixtures import _postgres_schema

    schema = _postgres_schema(PG_BASE)
    direct = next(schema)
    proxy = TcpProxy(("127.0.0.1", 5432))
    monkeypatch.setenv("DATABASE_URL", direct)
    rel_procs.env = dict(rel_procs.env, DATABASE_URL=direct.replace(":5432/", f":{proxy.port}/"))
    yield proxy
    rel_procs.stop_all()
    proxy.close()
    schema.close()


def test_database_unavailable_for_ten_seconds(proxied_db: TcpProxy, rel_env: dict[str, str], rel_procs: Procs,
                                              tmp_path: Path) -> None:
    fleet = Fleet.from_url(rel_env["REDIS_URL"])
    with chaos.virtual_fleet(tmp_path, count=2) as vfleet:
        chaos.start_stack(rel_procs, vfleet)
        chaos.wait_devices(fleet, 2)
        run_id = chaos.submit(fleet, chaos.spec("db-outage", repeats=4))
        wait_until(lambda: chaos.running_attempt(run_id), 60, "a benchmark to start")
        proxied_db.cut()
        t_fault = time.monotonic()
        time.sleep(OUTAGE_S)
        proxied_db.restore()
        # a report may be retried while the DB is down, never dropped
        dropped = [ln for ln in rel_procs.log("worker0").splitlines() if "raised unexpected: OperationalError" in ln]
        assert not dropped, "\n".join(ln[:300] for ln in dropped)
        done = chaos.wait_finalized(run_id, rel_procs, 60)
        out = chaos.check_invariants(run_id, fleet)
    assert out.lost == 0 and out.results == 4
    print("\n" + out.line("database unavailable 10 s", done - t_fault))
