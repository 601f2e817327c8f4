"""`benchfarm capacity` and `capacity plan` over a real database history (typer CliRunner)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from device_inventory.fleet import Fleet
from orchestrator.capacity.html import capacity_html
from orchestrator.capacity.report import Targets, capacity_report
from orchestrator.celery_app import PRIORITY, device_queue, make_app
from orchestrator.cli.capacity import capacity_app
from orchestrator.store.db import session
from orchestrator.store.models import Attempt, DeviceEvent, Job, Result, Run

runner = CliRunner()
NOW = datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def _job(run: Run, n: int, queued: datetime, started: datetime | None, finished: datetime | None,
         state: str, cls: str = "A15") -> Job:
    return Job(id=f"{run.id}-{n}", run_id=run.id, model="tiny_cnn", backend="xnnpack", device_class=cls,
               input_resolution=64, batch_size=1, iterations=20, warmup=5, state=state, priority=run.priority,
               created_at=queued, queued_at=queued, started_at=started, finished_at=finished)


def seed_history() -> None:
    """Two A15 phones on mini1 over the last hour: phone a busy 30 min, phone b offline
    half the hour; three PR jobs waited 60, 120 and 180 s; one nightly job still queued."""
    t0 = NOW - timedelta(hours=1)
    with session() as s:
        for i, (dev, state, minutes) in enumerate([
                ("a", "available", -30), ("a", "leased", 10), ("a", "busy", 15), ("a", "available", 45),
                ("b", "available", -5), ("b", "offline", 30)]):
            s.add(DeviceEvent(stream_id=f"0-{i}", device_id=dev, device_class="A15", host="mini1", state=state,
                              at=t0 + timedelta(minutes=minutes)))
        pr = Run(id="pr1", name="pr", trigger="pr", priority=0, spec_yaml="")
        nightly = Run(id="n1", name="nightly", trigger="nightly", priority=6, spec_yaml="")
        s.add_all([pr, nightly])
        s.flush()
        for n, wait in enumerate((60, 120, 180)):
            queued = t0 + timedelta(minutes=10 * n)
            start = queued + timedelta(seconds=wait)
            job = _job(pr, n, queued, start, start + timedelta(seconds=100), "succeeded")
            s.add(job)
            s.add(Attempt(id=f"att{n}", job_id=job.id, device_id="a", host="mini1", state="succeeded",
                          started_at=start, finished_at=start + timedelta(seconds=100)))
        s.flush()
        for n in range(3):
            s.add(Result(job_id=f"pr1-{n}", attempt_id=f"att{n}", simulated=False, device_id="a",
                         device_model="iPhone14,5", os_version="17.0", load_time_ms=50, median_ms=400.0,
                         p10_ms=390, p90_ms=410, mean_ms=400, peak_memory_bytes=1, document={}))
        s.add(_job(nightly, 0, NOW - timedelta(minutes=5), None, None, "waiting-for-device"))


def test_report_from_the_database_without_redis(db_env):
    seed_history()
    rep = capacity_report(3600, now=NOW.replace(tzinfo=UTC).timestamp(), targets=Targets(pr_wait_p95_s=300))
    assert rep["live_source"].startswith("unavailable")
    a15 = rep["classes"]["A15"]
    # in service: a 60 min + b 30 min = 5400 s; busy 30 min, leased 5 min
    assert a15["utilisation"] == pytest.approx(1800 / 5400)
    assert a15["occupancy"] == pytest.approx(2100 / 5400)
    assert a15["state_seconds"]["offline"] == pytest.approx(1800)
    assert a15["waits"]["pr"]["n"] == 3 and a15["waits"]["pr"]["p50_s"] == pytest.approx(120)
    assert a15["service"]["mean_s"] == pytest.approx(100)
    # states from the last events: a available, b offline; one job waits, drained by one device
    assert a15["devices"]["by_state"] == {"available": 1, "offline": 1}
    assert a15["backlog_jobs"] == 1 and a15["drain_eta_s"] == pytest.approx(100)
    assert rep["hosts"]["mini1"]["devices"] == 2
    html = capacity_html(rep)
    assert html.startswith('<section class="capacity">') and html.count("<svg") == 2
    assert "A15 pr" in html and "33.3%" in html


def test_cli_json_and_table(db_env):
    seed_history()
    out = runner.invoke(capacity_app, ["--window", "1h", "--class", "a15", "--json"])
    assert out.exit_code == 0, out.output
    rep = json.loads(out.output)
    assert list(rep["classes"]) == ["A15"] and rep["targets"]["pr_wait_p95_s"] == 300
    table = runner.invoke(capacity_app, ["--window", "2h", "--target-pr-wait", "90s"], env={"COLUMNS": "250"})
    assert table.exit_code == 0, table.output
    assert "A15" in table.output and "mini1" in table.output and "PR wait p95 ≤ 90s" in table.output


@pytest.mark.parametrize(("args", "message"), [
    (["--window", "7x"], "--window '7x' is not a duration"),
    (["--target-pr-wait", "0m"], "must be longer than zero"),
    (["--class", "Z80"], "unknown device class 'Z80'"),
])
def test_bad_options_name_the_problem(db_env, args, message):
    out = runner.invoke(capacity_app, args)
    assert out.exit_code == 2
    assert message in " ".join(out.output.split())


def test_queue_depth_per_priority_from_redis(redis7):
    seed_history()
    fleet = Fleet(redis7)
    fleet.register("a", {"device_class": "A15", "host": "mini1"})
    fleet.register("b", {"device_class": "A15", "host": "mini1"})
    fleet.set_state("b", "maintenance", "battery swap")
    # real Celery messages, so kombu's own list naming for priorities is what is counted
    app = make_app(os.environ["REDIS_URL"])
    try:
        for priority in (PRIORITY["pr"], PRIORITY["pr"], PRIORITY["nightly"]):
            app.send_task("benchfarm.run_job", args=[{}], queue=device_queue("A15"), priority=priority)
    finally:
        app.close()
    rep = capacity_report(3600)
    a15 = rep["classes"]["A15"]
    assert rep["live_source"] == "redis"
    assert a15["queue_depth"] == {"total": 3, "by_priority": {"0": 2, "6": 1}}
    assert a15["devices"]["by_state"] == {"available": 1, "maintenance": 1}


SPEC = """\
name: whatif
models: [tiny_cnn]
backends: [xnnpack, coreml]
devices: [A15, A17-Pro]
parameters:
  input_resolution: [64]
  warmup: 5
  iterations: 20
  repeats: 2
"""


def test_plan_uses_history_and_labels_seed_estimates(db_env, tmp_path: Path):
    seed_history()
    spec = tmp_path / "whatif.yaml"
    spec.write_text(SPEC)
    out = runner.invoke(capacity_app, ["plan", str(spec), "--devices", "A15=2,a17pro=1", "--json"])
    assert out.exit_code == 0, out.output
    res = json.loads(out.output)
    measured = [c for c in res["cells"] if c["source"].startswith("measured")]
    # A15 xnnpack tiny_cnn@64 ran 3 times: 100 s attempts, 25 runs x 0.4 s -> same 25 runs -> 100 s
    assert len(measured) == 2 and all(c["service_s"] == pytest.approx(100) for c in measured)
    seeded = [c for c in res["cells"] if c["source"].startswith("seed")]
    assert len(seeded) == 6 and all("simulated" in c["source"] for c in seeded)
    a15 = res["classes"]["A15"]
    assert a15["jobs"] == 4 and a15["bound_lower_s"] <= a15["makespan_s"] <= a15["bound_upper_s"]
    text = runner.invoke(capacity_app, ["plan", str(spec), "--devices", "A15=2,A17-Pro=1"], env={"COLUMNS": "200"})
    assert text.exit_code == 0 and "seed estimates" in text.output
    assert "as a manual run (20 timed iterations per cell)" in text.output and "--trigger nightly" in text.output


def test_plan_applies_the_run_rule_of_its_trigger(db_env, tmp_path: Path):
    seed_history()  # A15 xnnpack tiny_cnn@64: 100 s attempts of 25 runs at 0.4 s -> 90 s overhead
    spec = tmp_path / "whatif.yaml"
    spec.write_text(SPEC)

    def measured(*args: str) -> list[float]:
        out = runner.invoke(capacity_app, ["plan", str(spec), "--devices", "A15=2,a17pro=1", "--json", *args])
        assert out.exit_code == 0, out.output
        return [c["service_s"] for c in json.loads(out.output)["cells"] if c["source"].startswith("measured")]

    # nightly: 1024 timed iterations (409.6 s, over the 60 s minimum) + 5 warm-up runs + overhead
    assert measured("--trigger", "nightly") == pytest.approx([90 + 2 + 409.6] * 2)
    # PR: 200 iterations (80 s, over 10 s), both arms
    assert measured("--trigger", "pr") == pytest.approx([90 + 2 * (2 + 80)] * 2)
    # a spec's own rule is what its runs get: 20 iterations but at least 30 s -> 30 s timed
    spec.write_text(SPEC + "  run_rules: {nightly: {min_iterations: 0, min_duration_s: 30}}\n")
    assert measured("--trigger", "nightly") == pytest.approx([90 + 2 + 30] * 2)
    bad = runner.invoke(capacity_app, ["plan", str(spec), "--devices", "A15=2,a17pro=1", "--trigger", "weekly"])
    assert bad.exit_code == 2 and "--trigger 'weekly'" in bad.output


@pytest.mark.parametrize(("devices", "message"), [
    ("A17-Pro=x,A15=2", "--devices part 'A17-Pro=x': count 'x' is not a positive integer"),
    ("Z80=2", "--devices part 'Z80=2': unknown device class 'Z80'"),
    ("A15", "--devices part 'A15' is not CLASS=COUNT"),
    ("A15=2", "--devices has no count for A17-Pro"),
])
def test_plan_rejects_bad_devices(db_env, tmp_path: Path, devices, message):
    spec = tmp_path / "whatif.yaml"
    spec.write_text(SPEC)
    out = runner.invoke(capacity_app, ["plan", str(spec), "--devices", devices])
    assert out.exit_code == 2
    assert message in " ".join(out.output.split())
