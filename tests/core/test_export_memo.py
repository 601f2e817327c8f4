"""A zoo model's export is asked for once: the exporter remembers the key it gave the request with
its code identity, and a later submit dispatches at once while every live exporter of the platform
advertises that identity and the artifact is whole and ready. Anything unsure (another identity
alive, a memo of other code, a missing or corrupted artifact, an ``import:`` source) goes through
the exporter as before. Real Redis, SQLite, store and (first test) the real export task."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from sqlalchemy import select

from device_inventory.fleet import Fleet
from orchestrator.coordinator.exports import export_done
from orchestrator.coordinator.submit import submit
from orchestrator.export.artifacts import ArtifactStore
from orchestrator.export.recipe import zoo_code_identity
from orchestrator.spec.matrix import loads_spec
from orchestrator.store.db import session
from orchestrator.store.models import Job
from orchestrator.worker import beat_exporters
from tests.conftest import register_model_packages

SPEC = """\
name: memo
models: [tiny_cnn]
backends: [xnnpack]
devices: [A15]
parameters: {input_resolution: [32], iterations: 3, warmup: 0}
"""
IMPORT_SPEC = SPEC.replace("models: [tiny_cnn]",
                           "models: [{name: tiny, source: 'import:tests.pr.ab_models:slower_tiny_cnn'}]")


@pytest.fixture
def fleet(bf_env):
    return Fleet.from_url(bf_env["REDIS_URL"])


def _submit(fleet: Fleet, text: str = SPEC) -> tuple[Job, list[str]]:
    run_id, outbox = submit(loads_spec(text), text, fleet)
    with session() as s:
        [job] = s.scalars(select(Job).where(Job.run_id == run_id)).all()
        s.expunge(job)
    return job, [m.task for m in outbox.messages]


def _answer(fleet: Fleet) -> None:
    """Deliver the exporter's ``export_done`` from the coordinator queue, as the coordinator would."""
    raw = fleet.r.rpop("coordinator")
    assert raw is not None, "the exporter sent no answer"
    msg = json.loads(raw)
    assert msg["headers"]["task"] == "benchfarm.export_done"
    args = json.loads(base64.b64decode(msg["body"]))[0]
    export_done(*args, fleet)


def test_a_second_submit_of_a_zoo_model_dispatches_without_asking_the_exporter(fleet):
    from orchestrator import tasks

    beat_exporters(fleet, ["linux"])  # this process is the exporter: its own code identity
    first, messages = _submit(fleet)
    assert messages == ["benchfarm.export"] and first.state == "exporting"
    request = {"model": "tiny_cnn", "source": "zoo:tiny_cnn", "backend": "xnnpack", "input_resolution": 32,
               "batch_size": 1, "compute_units": first.compute_units}
    tasks.export(first.request_key, request)  # the real exporter task: exports (or finds) and remembers
    key, identity = fleet.export_memo.recall(first.request_key)
    assert identity == zoo_code_identity()
    _answer(fleet)

    # the exporter's periodic heartbeat (every 5 s in a worker; its TTL is 30 s, which a first export
    # under a loaded machine can outlast): it is still alive with the same code
    beat_exporters(fleet, ["linux"])
    second, messages = _submit(fleet)
    assert messages == ["benchfarm.run_job"]  # no export message: the memo vouched for the key
    assert second.state == "waiting-for-device" and second.artifact_key == key
    assert second.request_key == first.request_key


def _stored_fake(fleet: Fleet, tmp_path, monkeypatch, identity: str = "code-a") -> tuple[ArtifactStore, str, str]:
    """A private store holding a (fake) artifact the exporter keyed a request to, its row ready."""
    monkeypatch.setenv("BENCHFARM_ARTIFACTS", str(tmp_path / "artifacts"))
    store = ArtifactStore()
    job, _ = _submit(fleet)
    key = hashlib.sha256(b"memo test").hexdigest()
    art = store.put(key, b"\x00ET12program", {"backend": "xnnpack"})
    fleet.export_memo.remember(job.request_key, key, identity)
    export_done(job.request_key, "ok", dict(art.meta, artifact_key=key), fleet)  # the row is ready
    return store, key, job.request_key


def test_another_identity_alive_or_in_the_memo_goes_through_the_exporter(fleet, tmp_path, monkeypatch):
    _, key, request = _stored_fake(fleet, tmp_path, monkeypatch)
    assert _submit(fleet)[1] == ["benchfarm.export"]  # no exporter advertises any identity yet
    fleet.exporters.heartbeat("linux", identity="code-a")
    job, messages = _submit(fleet)
    assert messages == ["benchfarm.run_job"] and job.artifact_key == key
    fleet.exporters.heartbeat("linux", identity="code-b")  # a second exporter, redeployed, is alive too
    assert _submit(fleet)[1] == ["benchfarm.export"]
    fleet.r.delete("bf:exporter-identities")
    fleet.exporters.heartbeat("linux", identity="code-b")  # only the new code is alive now
    assert _submit(fleet)[1] == ["benchfarm.export"]
    fleet.exporters.heartbeat("macos", identity="code-a")  # another platform's exporter vouches for nothing
    assert _submit(fleet)[1] == ["benchfarm.export"]
    fleet.export_memo.remember(request, key, "code-b")  # the new exporter keyed it again: the same key
    assert _submit(fleet)[1] == ["benchfarm.run_job"]


def test_a_corrupted_or_missing_artifact_goes_through_the_exporter(fleet, tmp_path, monkeypatch):
    store, key, _ = _stored_fake(fleet, tmp_path, monkeypatch)
    fleet.exporters.heartbeat("linux", identity="code-a")
    assert _submit(fleet)[1] == ["benchfarm.run_job"]
    store.pte_path(key).write_bytes(b"\x00ET12progrXm")
    job, messages = _submit(fleet)
    assert messages == ["benchfarm.export"] and job.state == "exporting"  # the exporter re-exports it
    store.remove(key)
    assert _submit(fleet)[1] == ["benchfarm.export"]


def test_an_import_source_always_goes_through_the_exporter(fleet, bf_env, tmp_path, monkeypatch):
    """Its package's files may change on disk between two runs with no exporter restarting."""
    register_model_packages(bf_env, monkeypatch, "tests.pr")
    monkeypatch.setenv("BENCHFARM_ARTIFACTS", str(tmp_path / "artifacts"))
    job, messages = _submit(fleet, IMPORT_SPEC)
    assert messages == ["benchfarm.export"]
    key = hashlib.sha256(b"import memo").hexdigest()
    art = ArtifactStore().put(key, b"\x00ET12program", {"backend": "xnnpack"})
    fleet.export_memo.remember(job.request_key, key, "code-a")  # even a memo (no exporter writes one)...
    fleet.exporters.heartbeat("linux", identity="code-a")  # ...vouched for by the live exporter
    export_done(job.request_key, "ok", dict(art.meta, artifact_key=key), fleet)
    again, messages = _submit(fleet, IMPORT_SPEC)
    assert messages == ["benchfarm.export"] and again.state == "exporting"


def test_the_exporter_remembers_only_zoo_models(fleet, bf_env, monkeypatch):
    """An import: source's export leaves no memo behind (the coordinator would not use it anyway)."""
    from orchestrator import tasks

    register_model_packages(bf_env, monkeypatch, "tests.pr")
    job, _ = _submit(fleet, IMPORT_SPEC)
    request = {"model": "tiny", "source": "import:tests.pr.ab_models:slower_tiny_cnn", "backend": "xnnpack",
               "input_resolution": 32, "batch_size": 1, "compute_units": job.compute_units}
    tasks.export(job.request_key, request)
    assert fleet.export_memo.recall(job.request_key) is None
    _answer(fleet)
    with session() as s:
        assert s.get(Job, job.id).state == "waiting-for-device"  # the export itself worked


def test_the_identity_covers_the_code_every_zoo_model_is_built_of():
    """Every class of every zoo model is defined in orchestrator.export.zoo (or is torch's, which the
    torch version covers): the files zoo_code_identity hashes are all the code a fingerprint reads."""
    from orchestrator.export import recipe, zoo

    for name in zoo.ZOO:
        modules = {type(m).__module__ for m in zoo.build(name).modules()}
        assert {m for m in modules if not m.startswith("torch.")} <= set(recipe._ZOO_KEY_MODULES), name


def test_an_exporter_heartbeat_advertises_its_identity_until_it_expires(fleet):
    fleet.exporters.heartbeat("linux", ttl=30, identity="code-a")
    fleet.exporters.heartbeat("linux", ttl=-1, identity="code-old")  # an exporter gone since
    assert fleet.exporters.live() == {"linux": {"code-a"}}
    fleet.exporters.heartbeat("macos")  # an exporter that advertises no identity (vouches for nothing)
    assert fleet.exporters.live() == {"linux": {"code-a"}, "macos": set()}
