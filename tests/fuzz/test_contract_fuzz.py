"""The harness result parser never raises anything but ContractError: random bytes,
non-UTF-8, mutated valid documents (wrong types, NaN/inf, unicode, huge arrays, missing
fields), deep nesting and oversized documents."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.harness.contract import MAX_RESULT_BYTES, ContractError, parse_result
from tests.core.test_contract import good_result
from tests.fuzz.strategies import FUZZ, json_values

KEYS = sorted(good_result()) + ["error", "output", "energy_mj_per_inference", "battery_before", "unknown"]


def parses_or_contract_error(raw: bytes) -> dict[str, Any] | None:
    try:
        doc = parse_result(raw)
    except ContractError:
        return None
    # anything accepted is finite and fully typed: what record_attempt stores is sane
    assert all(isinstance(x, int | float) and math.isfinite(x) and x >= 0 for x in doc.get("latencies_ms", []))
    return doc


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes(raw: bytes) -> None:
    parses_or_contract_error(raw)


@FUZZ
@given(json_values)
def test_random_json_values(value: object) -> None:
    parses_or_contract_error(json.dumps(value, allow_nan=True).encode())


@FUZZ
@given(st.sampled_from(KEYS), json_values, st.booleans())
def test_mutated_valid_documents(key: str, value: object, delete: bool) -> None:
    doc = good_result()
    if delete:
        doc.pop(key, None)
    else:
        doc[key] = value
    parses_or_contract_error(json.dumps(doc, allow_nan=True, ensure_ascii=False).encode())


@FUZZ
@given(st.binary(min_size=1, max_size=8), st.integers(min_value=0, max_value=300))
def test_valid_documents_with_foreign_bytes_spliced_in(junk: bytes, at: int) -> None:
    raw = json.dumps(good_result()).encode()
    parses_or_contract_error(raw[:at] + junk + raw[at:])


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_latencies_are_contract_errors(value: float) -> None:
    assert parses_or_contract_error(json.dumps(good_result(latencies_ms=[1.0, value])).encode()) is None


def test_huge_arrays_over_the_schema_limit_are_rejected() -> None:
    raw = json.dumps(good_result(latencies_ms=[1.0] * 100_001)).encode()
    assert len(raw) < MAX_RESULT_BYTES
    with pytest.raises(ContractError, match="latencies_ms"):
        parse_result(raw)


def test_oversized_documents_are_refused_before_parsing() -> None:
    raw = b'{"pad": "' + b"x" * MAX_RESULT_BYTES + b'"}'
    with pytest.raises(ContractError, match="over the"):
        parse_result(raw)


def test_moderately_nested_documents_are_contract_errors() -> None:
    assert parses_or_contract_error(json.dumps(good_result(output={"a": [[[[[[[[1]]]]]]]]})).encode()) is None


@pytest.mark.parametrize("raw", [b"[" * 100_000, b'{"a":' * 100_000], ids=["arrays", "objects"])
def test_deep_nesting_is_a_contract_error(raw: bytes) -> None:
    with pytest.raises(ContractError):
        parse_result(raw)
