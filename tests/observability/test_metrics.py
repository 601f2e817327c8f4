"""Metric helpers and the state collector against a real Redis (DB 7) and database."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from device_inventory.fleet import Fleet
from orchestrator.celery_app import device_queue, make_app
from orchestrator.observability import metrics
from tests.conftest import redis_or_skip
from tests.observability.conftest import OBS_REDIS_DB


def test_observe_attempt_counts_outcome_duration_and_steps():
    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = (sample("benchfarm_attempts_total", device_class="A15", outcome="infra"),
              sample("benchfarm_attempt_duration_seconds_sum", device_class="A15", outcome="infra"),
              sample("benchfarm_attempt_step_duration_seconds_count", step="prepare"))
    metrics.observe_attempt("A15", {"outcome": "infra", "timeline": [
        {"step": "prepare", "duration_s": 2.5}, {"step": "run", "duration_s": 7.5}]})
    after = (sample("benchfarm_attempts_total", device_class="A15", outcome="infra"),
             sample("benchfarm_attempt_duration_seconds_sum", device_class="A15", outcome="infra"),
             sample("benchfarm_attempt_step_duration_seconds_count", step="prepare"))
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 10.0, 1]


def test_state_collector_reads_devices_queues_and_jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    url = redis_or_skip(OBS_REDIS_DB)
    client = redis.Redis.from_url(url, decode_responses=True)
    client.flushdb()
    monkeypatch.setenv("BENCHFARM_DB", str(tmp_path / "m.db"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    try:
        fleet = Fleet(client)
        fleet.register("p1", {"device_class": "A17-Pro", "host": "mini", "agent": "mini"})
        fleet.register("p2", {"device_class": "A17-Pro", "host": "mini", "agent": "mini"})
        fleet.register("p3", {"device_class": "A15", "host": "other", "agent": "other"})
        fleet.set_state("p2", "quarantined", "3 failures")
        app = make_app(url)  # real messages: kombu names the priority lists
        try:
            for _ in range(2):
                app.send_task("benchfarm.run_job", args=[{}], queue=device_queue("A17-Pro"), priority=6)
        finally:
            app.close()
        registry = CollectorRegistry()
        registry.register(metrics.StateCollector(redis_url=url))
        agent_registry = CollectorRegistry()
        agent_registry.register(metrics.StateCollector(redis_url=url, with_jobs=False, agent="mini"))
        got = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(generate_latest(registry).decode()) for s in f.samples}
        assert got[("benchfarm_devices", (("device_class", "A17-Pro"), ("state", "quarantined")))] == 1
        assert got[("benchfarm_devices", (("device_class", "A15"), ("state", "available")))] == 1
        assert got[("benchfarm_queue_depth", (("device_class", "A17-Pro"), ("priority", "6")))] == 2
        assert not [k for k in got if k[0] == "benchfarm_jobs_in_state"]  # empty database: no jobs yet
        agent_text = generate_latest(agent_registry).decode()
        assert 'device_class="A15"' not in agent_text and "benchfarm_jobs_in_state" not in agent_text
    finally:
        client.flushdb()


def test_a_bad_metrics_port_is_named(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(metrics.PORT_ENV, "http")
    with pytest.raises(ValueError, match="BENCHFARM_METRICS_PORT='http' is not a TCP port"):
        metrics.serve_coordinator()
    monkeypatch.setenv(metrics.PORT_ENV, "0")
    assert metrics.serve_coordinator() == 0
