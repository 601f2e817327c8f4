import copy
import json
from functools import cache

import pytest

from agents.harness.contract import (
    FIXTURES_DIR,
    MAX_RESULT_BYTES,
    ContractError,
    golden_input,
    parse_result,
    runtime_refusal,
    summarize_output,
    validate_job,
    validate_result,
)

# The shared fixtures (agents/harness/contract/fixtures/manifest.json): the Swift core's tests
# (agents/harness/ios/HarnessCore/Tests) read the same files, so the Python validator and the
# harness on the phone agree on what a valid job/result is and where an invalid one is wrong.


@cache
def manifest() -> dict:
    return json.loads((FIXTURES_DIR / "manifest.json").read_text())


def fixture(path: str) -> bytes:
    return (FIXTURES_DIR / path).read_bytes()


def good_result(**over):
    doc = copy.deepcopy(json.loads(fixture("result/valid/host_ok.json")))
    doc.update(over)
    return doc


def _ids(cases):
    return [c if isinstance(c, str) else c["file"].rsplit("/", 1)[1] for c in cases]


def test_manifest_lists_every_fixture_file():
    listed = set(manifest()["job"]["valid"]) | set(manifest()["result"]["valid"])
    listed |= {c["file"] for kind in ("job", "result") for c in manifest()[kind]["invalid"]}
    listed |= set(manifest()["golden"])
    on_disk = {str(p.relative_to(FIXTURES_DIR)) for p in FIXTURES_DIR.rglob("*.json") if p.name != "manifest.json"}
    assert listed == on_disk


@pytest.mark.parametrize("path", manifest()["job"]["valid"], ids=_ids(manifest()["job"]["valid"]))
def test_valid_job_fixtures_pass(path):
    assert validate_job(json.loads(fixture(path)))["schema_version"] == 1


@pytest.mark.parametrize("case", manifest()["job"]["invalid"], ids=_ids(manifest()["job"]["invalid"]))
def test_invalid_job_fixtures_are_refused_at_the_field(case):
    raw = fixture(case["file"])
    if case.get("raw"):
        # bytes that are not a JSON job at all: json refuses them, or the contract does (NaN)
        with pytest.raises((ValueError, RecursionError)):
            validate_job(json.loads(raw))
        return
    with pytest.raises(ContractError) as exc:
        validate_job(json.loads(raw))
    if case["field"] != "$":
        assert f"at {case['field']}:" in str(exc.value)


@pytest.mark.parametrize("path", manifest()["result"]["valid"], ids=_ids(manifest()["result"]["valid"]))
def test_valid_result_fixtures_pass_and_parse(path):
    assert parse_result(fixture(path))["schema_version"] == 1


@pytest.mark.parametrize("case", manifest()["result"]["invalid"], ids=_ids(manifest()["result"]["invalid"]))
def test_invalid_result_fixtures_are_refused_at_the_field(case):
    with pytest.raises(ContractError) as exc:
        parse_result(fixture(case["file"]))
    if case["field"] != "$":
        assert f"at {case['field']}:" in str(exc.value)


def test_good_result_passes_and_roundtrips_bytes():
    assert validate_result(good_result())["status"] == "ok"
    assert parse_result(json.dumps(good_result()).encode())["attempt_token"] == 3


@pytest.mark.parametrize("mutation,needle", [
    ({"latencies_ms": []}, "latencies_ms"),
    ({"latencies_ms": [1.0, -2.0]}, "latencies_ms[1]"),
    ({"status": "fine"}, "status"),
    ({"simulated": "no"}, "simulated"),
    ({"status": "error"}, "error"),
    ({"extra_field": 1}, "extra_field"),
    ({"producer": {"name": "someone", "version": "1"}}, "producer.name"),
])
def test_invalid_results_are_rejected_with_the_field(mutation, needle):
    with pytest.raises(ContractError) as exc:
        validate_result(good_result(**mutation))
    assert needle.split("[")[0] in str(exc.value)


def test_missing_required_field():
    doc = good_result()
    del doc["device"]
    with pytest.raises(ContractError, match="device"):
        validate_result(doc)


def test_non_json_and_non_finite_and_oversized_are_rejected():
    with pytest.raises(ContractError, match="not valid JSON"):
        parse_result(b"{not json")
    with pytest.raises(ContractError, match="NaN"):
        parse_result(json.dumps(good_result(load_time_ms=float("nan"))).encode())
    with pytest.raises(ContractError, match="over the"):
        parse_result(b" " * (MAX_RESULT_BYTES + 1))
    with pytest.raises(ContractError, match="not valid JSON"):
        parse_result(b"\xff\xfe")
    with pytest.raises(ContractError, match="JSON object"):
        parse_result(b"[1, 2]")


def test_job_document_refuses_paths_in_model_file():
    job = json.loads(fixture("job/valid/minimal.json"))
    assert validate_job(job)
    for bad in ("../m.pte", "/etc/m.pte", "a/b.pte", "m.sh"):
        with pytest.raises(ContractError, match="model_file"):
            validate_job(dict(job, model_file=bad))


@pytest.mark.parametrize("path", manifest()["golden"], ids=_ids(manifest()["golden"]))
def test_golden_fixtures_are_the_contract_golden_input(path):
    doc = json.loads(fixture(path))
    x = golden_input(doc["shape"], doc["seed"])
    assert [float(v) for v in x.reshape(-1)] == doc["input"]
    assert summarize_output(x) == doc["summary"]


def test_golden_input_is_deterministic_and_in_range():
    a = golden_input([1, 3, 4, 4], 1234)
    b = golden_input([1, 3, 4, 4], 1234)
    assert (a == b).all() and a.shape == (1, 3, 4, 4)
    assert 0 <= a.min() and a.max() < 1
    assert not (a == golden_input([1, 3, 4, 4], 1235)).all()
    # the formula the Swift harness implements: x[i] = ((i*2654435761 + seed) mod 2^32) / 2^32
    assert a.reshape(-1)[5] == pytest.approx(((5 * 2654435761 + 1234) % 2**32) / 2**32, rel=1e-6)


@pytest.mark.parametrize("producer,runtime,exporter,refused", [
    ("ios-harness", "1.5.1", "1.5.1", False),
    ("ios-harness", "1.6.0", "1.5.1", False),
    ("ios-harness", "1.0.0", "1.5.1", True),
    ("ios-harness", "1.5.0.20260822", "1.5.1", True),  # a 1.5.0 nightly is older than 1.5.1
    ("ios-harness", "1.5.1", "1.6.0.dev20260901+cpu", True),
    ("ios-harness", "unknown", "1.5.1", True),  # an app without BenchfarmExecuTorchVersion
    ("ios-harness", None, "1.5.1", True),  # an app built before runtime_version existed
    ("virtual-harness", "1.4.1", "1.5.1", True),
    ("ios-harness", "1.0.0", None, False),  # no exporter version recorded: nothing to compare
    ("ios-harness", "1.0.0", "absent", False),
    ("host-driver", "1.0.0", "1.5.1", False),  # the host runs the exporter's own package
])
def test_runtime_refusal_refuses_runtimes_older_than_the_exporter(producer, runtime, exporter, refused):
    doc = good_result(producer={"name": producer, "version": "1"})
    doc.pop("runtime_version", None)
    if runtime is not None:
        doc["runtime_version"] = runtime
    reason = runtime_refusal(doc, exporter)
    assert (reason is not None) == refused
    if refused:
        assert producer in reason and (runtime or "no runtime_version") in reason


def _every_fixture_document():
    for kind in ("job", "result"):
        for path in manifest()[kind]["valid"] + [c["file"] for c in manifest()[kind]["invalid"]]:
            try:
                doc = json.loads(fixture(path))
            except (ValueError, RecursionError):  # raw bytes or nested too deep: not a document
                continue
            yield kind, path, doc


def test_the_fast_validator_and_jsonschema_agree_on_every_fixture():
    """The coordinator trusts the compiled (Rust) validator's acceptance without asking
    jsonschema: on every shared fixture, valid and invalid, what it accepts jsonschema accepts
    (it may refuse more: a NaN, which the finite-number check refuses anyway)."""
    from agents.harness.contract import _fast_validator, _validator

    checked = 0
    for kind, path, doc in _every_fixture_document():
        if not isinstance(doc, dict):
            continue
        if _fast_validator(kind).is_valid(doc):
            assert _validator(kind).is_valid(doc), path
        checked += 1
    for mutation in ({"latencies_ms": []}, {"latencies_ms": [1.0, -2.0]}, {"status": "fine"}, {"simulated": "no"},
                     {"status": "error"}, {"extra_field": 1}, {"started_at": "yesterday"}, {"attempt_token": True},
                     {"producer": {"name": "someone", "version": "1"}}):
        doc = good_result(**mutation)
        assert not _fast_validator("result").is_valid(doc) and not _validator("result").is_valid(doc), mutation
    assert checked >= 20
