"""The host harness on a CPU of its own (agents/drivers/host_isolation.py), with the real runtime."""

from __future__ import annotations

import os

import pytest

from agents.drivers import host_isolation
from agents.drivers.host import HostDriver
from agents.harness.contract import parse_result
from orchestrator.export.artifacts import ArtifactStore
from orchestrator.export.pipeline import ExportRequest, export_artifact

RES = 64  # the artifact test_host_driver exports too (one export per session)


def test_cpu_lists_and_plans() -> None:
    assert host_isolation.parse_cpu_list("0-3,6\n") == [0, 1, 2, 3, 6]
    two = host_isolation.plan(1, [0, 1])
    assert (two.harness, two.farm, two.reason) == ((1,), (0,), None)
    one = host_isolation.plan(1, [0])
    assert one.harness == (0,) and "1 usable CPU" in (one.reason or "")
    off = host_isolation.plan(0, [0, 1])
    assert off.harness == off.farm == (0, 1) and "=0" in (off.reason or "")
    assert host_isolation.plan(2, [0, 1, 2, 3]).harness == (2, 3)


def test_default_reserves_only_where_the_farm_keeps_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(host_isolation.RESERVE_ENV, raising=False)
    assert host_isolation.plan(cpus=[0, 1, 2, 3]).harness == (3,)
    small = host_isolation.plan(cpus=[0, 1])
    assert small.harness == (0, 1) and "none reserved by default" in (small.reason or "")
    monkeypatch.setenv(host_isolation.RESERVE_ENV, "1")
    assert host_isolation.plan(cpus=[0, 1]).harness == (1,)


def test_a_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(host_isolation.RESERVE_ENV, "one")
    with pytest.raises(ValueError, match=host_isolation.RESERVE_ENV):
        host_isolation.plan()


def _job() -> dict:
    return {"schema_version": 1, "job_id": "j1", "attempt_id": "iso", "attempt_token": 1, "model_file": "m.pte",
            "model_sha256": "0" * 64, "backend": "xnnpack", "compute_units": "all", "input_shape": [1, 3, RES, RES],
            "warmup": 2, "iterations": 20, "timeout_s": 60, "golden_input": {"kind": "seeded-uniform", "seed": 1}}


def _run(tmp_path, pte) -> dict:
    driver = HostDriver(slot="iso", workdir=tmp_path)
    try:
        [dev] = driver.discover()
        driver.prepare(dev, _job(), pte)
        return parse_result(driver.run(dev, _job()))
    finally:
        driver.close()


@pytest.mark.skipif(len(host_isolation.usable_cpus()) < 2, reason="needs 2 CPUs: one for the farm, one reserved")
def test_the_harness_runs_on_the_reserved_cpu_and_says_whether_the_farm_kept_off(tmp_path, shared_artifacts,
                                                                                 monkeypatch) -> None:
    monkeypatch.setenv(host_isolation.RESERVE_ENV, "1")  # the harness inherits it from this process
    art, _ = export_artifact(ExportRequest("tiny_cnn", "zoo:tiny_cnn", "xnnpack", RES), ArtifactStore(shared_artifacts))
    reserved = host_isolation.usable_cpus()[-1]
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, host_isolation.usable_cpus())  # the driver's process shares the reserved CPU
        shared = _run(tmp_path / "a", art.path)["host_environment"]
        assert shared["pinned_cpus"] == [reserved] and shared["isolated"] is False
        assert "the process that started the harness" in shared["not_isolated_because"]
        assert host_isolation.pin_farm()  # as the agent does: itself and its children off the CPU
        env = _run(tmp_path / "b", art.path)["host_environment"]
    finally:
        os.sched_setaffinity(0, before)
    assert env["isolated"] is True and env["not_isolated_because"] is None
    assert env["pinned_cpus"] == [reserved] and reserved not in env["farm_cpus"]
    assert env["threads"] == 1 and env["gc_disabled"] is True and len(env["load_avg"]) == 3
    assert 0.0 <= env["foreign_cpu_share"] <= 1.0 and env["cpu_model"]
