"""A real worker and a real agent with metrics ports: their /metrics parse as Prometheus
text, their counters move when a job runs, their logs are JSON lines carrying the ids,
and the capacity report sees the host device's busy time."""

from __future__ import annotations

import json
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from device_inventory.fleet import Fleet
from orchestrator.store.db import session
from orchestrator.store.models import Attempt, Run
from tests.conftest import free_port, wait_until

SPEC = """\
name: obs
models: [tiny_cnn]
backends: [xnnpack]
devices: [host-cpu]
parameters:
  input_resolution: [64]
  warmup: 1
  iterations: 3
  repeats: 1
  timeout_s: 60
  # light run rules, stated: a test, not a measurement (pr's default is 200 iterations / 10 s)
  run_rules: {all: {min_iterations: 0, min_duration_s: 0}}
"""


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _scrape_or_none(port: int) -> dict | None:
    try:
        return scrape(port)
    except OSError:
        return None


def test_metrics_and_logs_of_a_running_farm(obs_env, obs_procs):
    from orchestrator.coordinator.submit import submit
    from orchestrator.spec.matrix import loads_spec

    worker_port, agent_port = free_port(), free_port()
    # INFO: the export count below is read from the task lines
    obs_procs.env = dict(obs_env, BENCHFARM_METRICS_PORT=str(worker_port), BENCHFARM_TASK_LOG_LEVEL="INFO")
    obs_procs.start("worker", "worker", "--queues", "coordinator,export.linux", "--concurrency", "2")
    obs_procs.env = dict(obs_env, BENCHFARM_METRICS_PORT=str(agent_port))
    obs_procs.start("agent", "agent", "--driver", "host", "--name", "obs")
    fleet = Fleet.from_url(obs_env["REDIS_URL"])
    wait_until(lambda: any(d.get("state") == "available" for d in fleet.devices()), 60, "the host device")
    before = wait_until(lambda: _scrape_or_none(agent_port), 30, "the agent's /metrics")
    assert value(before, "benchfarm_devices", device_class="host-cpu", state="available") == 1
    assert value(before, "benchfarm_attempts_total", device_class="host-cpu", outcome="ok") == 0
    wait_until(lambda: _scrape_or_none(worker_port), 30, "the worker's /metrics")

    run_id, outbox = submit(loads_spec(SPEC), SPEC, fleet, trigger="pr")
    outbox.send()

    def finished() -> bool:
        with session() as s:
            return s.get(Run, run_id).finalized

    wait_until(finished, 240, "the run to finish", every=0.5)
    with session() as s:
        run = s.get(Run, run_id)
        assert run.status == "succeeded", obs_procs.log("worker")[-3000:] + obs_procs.log("agent")[-3000:]
        attempt = s.query(Attempt).one()

    agent = scrape(agent_port)  # counted in the device worker process, served by the supervisor
    assert value(agent, "benchfarm_attempts_total", device_class="host-cpu", outcome="ok") == 1
    assert value(agent, "benchfarm_attempt_duration_seconds_count", device_class="host-cpu", outcome="ok") == 1
    assert value(agent, "benchfarm_attempt_step_duration_seconds_count", step="run") == 1
    coord = wait_until(lambda: (m := scrape(worker_port)) and value(
        m, "benchfarm_jobs_total", state="succeeded", device_class="host-cpu") == 1 and m, 20, "job counter")
    assert value(coord, "benchfarm_job_queue_wait_seconds_count", device_class="host-cpu", trigger="pr") == 1
    assert value(coord, "benchfarm_jobs_in_state", state="succeeded", device_class="host-cpu") == 1
    exports = sum(1 for ln in obs_procs.log("worker").splitlines() if "benchfarm.export[" in ln and "received" in ln)
    assert sum(value(coord, "benchfarm_export_cache_requests_total", result=r) for r in ("hit", "miss")) == exports

    # the API's exposition (same collectors, this process)
    from orchestrator.observability.metrics import exposition

    body, ctype = exposition()
    assert ctype.startswith("text/plain")
    api = {(s.name, tuple(sorted(s.labels.items()))): s.value
           for fam in text_string_to_metric_families(body.decode()) for s in fam.samples}
    assert value(api, "benchfarm_jobs_in_state", state="succeeded", device_class="host-cpu") == 1
    assert value(api, "benchfarm_devices", device_class="host-cpu", state="available") == 1

    # logs: JSON lines, the attempt's lines carry every id
    lines = [json.loads(ln) for ln in obs_procs.log("agent").splitlines() if ln.startswith("{")]
    mine = [ln for ln in lines if ln.get("attempt_id") == attempt.id]
    assert mine, obs_procs.log("agent")[-3000:]
    assert all(ln["run_id"] == run_id and ln["job_id"] == attempt.job_id and ln["device_id"] == attempt.device_id
               for ln in mine)
    coordinator_lines = [json.loads(ln) for ln in obs_procs.log("worker").splitlines() if ln.startswith("{")]
    assert any(ln.get("attempt_id") == attempt.id for ln in coordinator_lines)

    # capacity history: the coordinator drains device events every 5 s
    from orchestrator.capacity.report import capacity_report

    def busy() -> float:
        c = capacity_report(600, "host-cpu")["classes"].get("host-cpu", {})
        return c.get("utilisation") or 0.0

    assert wait_until(busy, 30, "busy time in the capacity history") > 0
