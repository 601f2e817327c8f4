"""Result documents are bounded: sample counts checked before the items, values finite and
physically plausible, integers within what the database stores, and a document with a million
wrong values refused from its first few errors (it took 25 s and 3.5 GB, or crashed, before)."""

from __future__ import annotations

import copy
import json
import resource
import subprocess
import sys

import pytest

from agents.harness.contract import FIXTURES_DIR, MAX_ERRORS, ContractError, schema, validate_result

OK = json.loads((FIXTURES_DIR / "result" / "valid" / "host_ok.json").read_text())


def _with(**fields: object) -> dict:
    doc = copy.deepcopy(OK)
    doc.update(fields)
    return doc


@pytest.mark.parametrize(("fields", "where"), [
    ({"peak_memory_bytes": 2**63}, r"\$\.peak_memory_bytes: 9223372036854775808 is greater than the maximum"),
    ({"peak_memory_bytes": 2**50 + 1}, r"\$\.peak_memory_bytes: .* greater than the maximum of 1125899906842624"),
    ({"latencies_ms": [1.0, 1e308]}, r"\$\.latencies_ms\[1\]: 1e\+308 is greater than the maximum of 3600000"),
    ({"latencies_ms": [0.0]}, r"\$\.latencies_ms\[0\]: 0\.0 is less than or equal to the minimum of 0"),
    ({"load_time_ms": 3.6e6 + 1}, r"\$\.load_time_ms: .* greater than the maximum"),
    ({"attempt_token": 2**64}, r"\$\.attempt_token: .* greater than the maximum of 9007199254740991"),
    ({"energy_mj_per_inference": 1e12}, r"\$\.energy_mj_per_inference"),
    ({"warmup_latencies_ms": [1.0] * 10_001}, r"\$\.warmup_latencies_ms: 10,001 items, over the limit of 10,000"),
])
def test_implausible_values_are_refused_naming_the_field(fields: dict, where: str) -> None:
    with pytest.raises(ContractError, match=where):
        validate_result(_with(**fields))


def test_plausible_extremes_are_accepted() -> None:
    validate_result(_with(peak_memory_bytes=2**50, latencies_ms=[1e-6, 3.6e6], load_time_ms=3.6e6))


def test_a_hundred_thousand_wrong_values_stop_at_the_first_errors() -> None:
    with pytest.raises(ContractError, match=rf"latencies_ms\[0\]: -1\.0 .*\(\+{MAX_ERRORS} or more others\)$"):
        validate_result(_with(latencies_ms=[-1.0] * 100_000))


def test_nested_lists_are_bounded_before_their_items() -> None:
    limit = schema("result")["$defs"]["profile"]["properties"]["operators"]["maxItems"]
    profile = {"status": "ok", "simulated": False, "source": "etdump", "operators": [{"bad": 1}] * (limit + 1)}
    with pytest.raises(ContractError, match=rf"\$\.profile\.operators: {limit + 1:,} items, over the limit"):
        validate_result(_with(profile=profile))


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


@pytest.mark.parametrize("n", [10**6, 2_700_000])
def test_the_issues_million_negative_latencies_are_refused_within_a_memory_cap(n: int) -> None:
    code = ("import json, sys, resource\nfrom agents.harness.contract import ContractError, validate_result\n"
            f"doc = json.loads(sys.stdin.read())\ndoc['latencies_ms'] = [-1.0] * {n}\n"
            "try:\n    validate_result(doc)\nexcept ContractError as e:\n    print(e)\n"
            "print('maxrss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(OK), capture_output=True, text=True,
                         timeout=60, preexec_fn=_limit_memory)
    assert out.returncode == 0, out.stderr[-800:]
    assert f"$.latencies_ms: {n:,} items, over the limit of 100,000" in out.stdout, out.stdout
