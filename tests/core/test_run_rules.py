"""Run rules: per-trigger defaults and spec overrides, what submit stores and dispatch sends,
and the virtual perf model iterating until both minima are met; the real host harness is in
tests/core/test_host_driver.py, the thermal cool-down between cells in tests/core/test_agent_ios.py."""

import random

import pytest
from sqlalchemy import select

from agents.virtual.perf_model import Workload, model, simulate
from orchestrator.coordinator.exports import export_done
from orchestrator.spec.matrix import loads_spec
from orchestrator.spec.run_rules import DEFAULTS
from orchestrator.spec.yamlpos import SpecError
from orchestrator.store.db import session
from orchestrator.store.models import Job, Run
from tests.core.test_runs import fleet, make_ready, submit  # noqa: F401  (fixture)

BASE = "name: rules\nmodels: [tiny_cnn]\nbackends: [xnnpack]\ndevices: [A15]\n"


def test_defaults_follow_mlperf_for_nightly_and_are_lighter_for_pr():
    rules = loads_spec(BASE).parameters.run_rules
    nightly, pr, manual = (rules.for_trigger(t) for t in ("nightly", "pr", "manual"))
    assert (nightly.min_iterations, nightly.min_duration_s, nightly.cool_down_to) == (1024, 60.0, "nominal")
    assert 0 < pr.min_iterations < nightly.min_iterations and 0 < pr.min_duration_s < nightly.min_duration_s
    assert (manual.min_iterations, manual.min_duration_s) == (0, 0.0)  # a person asked for these iterations
    assert rules.source("nightly") == "default"


def test_a_spec_overrides_per_trigger_and_all_and_the_trigger_wins():
    text = BASE + ("parameters:\n  run_rules:\n    all: {min_duration_s: 0, noisy_cv: 0.2}\n"
                   "    nightly: {min_duration_s: 30}\n")
    rules = loads_spec(text).parameters.run_rules
    nightly, pr = rules.for_trigger("nightly"), rules.for_trigger("pr")
    assert (nightly.min_duration_s, nightly.min_iterations, nightly.noisy_cv) == (30.0, 1024, 0.2)
    assert (pr.min_duration_s, pr.min_iterations) == (0.0, DEFAULTS["pr"].min_iterations)
    assert rules.source("pr") == "spec"


@pytest.mark.parametrize(("rules", "field"), [
    ("nightly: {min_iterations: -1}", "parameters.run_rules.nightly.min_iterations"),
    ("pr: {cool_down_to: lukewarm}", "parameters.run_rules.pr.cool_down_to"),
    ("weekly: {min_iterations: 5}", "parameters.run_rules.weekly"),
    ("all: {min_duraton_s: 5}", "parameters.run_rules.all.min_duraton_s"),
])
def test_bad_rules_name_file_line_and_field(rules, field):
    with pytest.raises(SpecError) as exc:
        loads_spec(BASE + f"parameters:\n  run_rules:\n    {rules}\n", "s.yaml")
    assert any(p.startswith(f"s.yaml:7: {field}") for p in exc.value.problems), exc.value.problems


def test_submit_applies_and_stores_the_rule_and_dispatch_sends_it(fleet):  # noqa: F811
    text = BASE + "parameters: {input_resolution: [64], iterations: 3, warmup: 0, timeout_s: 120}\n"
    run_id, _ = submit(fleet, text, trigger="nightly")
    with session() as s:
        run = s.get(Run, run_id)
        assert run.run_rules["min_iterations"] == 1024 and run.run_rules["source"] == "default"
        assert s.scalars(select(Job).where(Job.run_id == run_id)).one().iterations == 1024
    [request] = make_ready(run_id)
    outbox = export_done(request, "ok", {"artifact_key": "c" * 64, "file_sha256": "a" * 64, "size_bytes": 123,
                                         "export_time_s": 1.0}, fleet)
    [payload] = [m.args[0] for m in outbox.messages if m.task == "benchfarm.run_job"]
    assert payload["min_duration_s"] == 60.0 and payload["iterations"] == 1024
    assert payload["cool_down"] == {"to": "nominal", "max_s": 300.0}


def test_a_minimum_duration_longer_than_the_timeout_is_refused_at_submit(fleet):  # noqa: F811
    text = BASE + "parameters: {timeout_s: 30}\n"
    with pytest.raises(ValueError, match=r"at least 60 s \(default rule\).*parameters.timeout_s \(30 s\)"):
        submit(fleet, text, trigger="nightly")


def test_the_virtual_harness_simulates_until_the_minimum_duration():
    m = model()
    work = Workload("xnnpack", 6_000_000, 224, 1, warmup=2, iterations=10, timeout_s=600, min_duration_s=5.0)
    run = simulate(m, "A15", work, 0.0, random.Random(1))
    assert run is not None and len(run.latencies_ms) > 10 and sum(run.latencies_ms) >= 5000
    short = simulate(m, "A15", Workload("xnnpack", 6_000_000, 224, 1, 2, 10, 600), 0.0, random.Random(1))
    assert short is not None and len(short.latencies_ms) == 10
