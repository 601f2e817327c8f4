import json

import pytest

from agents.harness.contract import (
    MAX_RESULT_BYTES,
    ContractError,
    golden_input,
    parse_result,
    validate_job,
    validate_result,
)


def good_result(**over):
    doc = {
        "schema_version": 1, "job_id": "j", "attempt_id": "a", "attempt_token": 3, "simulated": False,
        "producer": {"name": "host-driver", "version": "1"},
        "device": {"model": "host", "os": "Linux", "os_version": "6.1"},
        "backend": "xnnpack", "status": "ok", "load_time_ms": 3.5, "latencies_ms": [1.0, 1.2],
        "peak_memory_bytes": 1000, "started_at": "2026-11-25T10:00:00+00:00",
        "finished_at": "2026-11-25T10:00:01+00:00",
    }
    doc.update(over)
    return doc


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
    job = {"schema_version": 1, "job_id": "j", "attempt_id": "a", "attempt_token": 1, "model_file": "m.pte",
           "model_sha256": "0" * 64, "backend": "xnnpack", "compute_units": "all", "input_shape": [1, 3, 8, 8],
           "warmup": 0, "iterations": 1, "timeout_s": 5, "golden_input": {"kind": "seeded-uniform", "seed": 1}}
    assert validate_job(job)
    for bad in ("../m.pte", "/etc/m.pte", "a/b.pte", "m.sh"):
        with pytest.raises(ContractError, match="model_file"):
            validate_job(dict(job, model_file=bad))


def test_golden_input_is_deterministic_and_in_range():
    a = golden_input([1, 3, 4, 4], 1234)
    b = golden_input([1, 3, 4, 4], 1234)
    assert (a == b).all() and a.shape == (1, 3, 4, 4)
    assert 0 <= a.min() and a.max() < 1
    assert not (a == golden_input([1, 3, 4, 4], 1235)).all()
    # the formula the Swift harness implements: x[i] = ((i*2654435761 + seed) mod 2^32) / 2^32
    assert a.reshape(-1)[5] == pytest.approx(((5 * 2654435761 + 1234) % 2**32) / 2**32, rel=1e-6)
