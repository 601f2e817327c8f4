"""The Swift harness source against the result contract, without a Swift compiler.

Swift cannot be built here, so the source is read as text: every key the result schema
requires (top level, conditional, nested) must appear as a string literal, no key outside the
schema may be written, and the golden-input constant must be the contract's.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from agents.harness.contract import GOLDEN_MULTIPLIER, golden_input, schema

SWIFT_DIR = Path(__file__).resolve().parents[2] / "agents" / "harness" / "ios" / "BenchfarmHarness"
# Keys written into the result: `"key":` (no space, unlike a ternary) in a [String: Any] literal,
# `doc["key"] = ...`, or the `for key in [...] where doc[key] == nil` fallback list.
WRITTEN_KEY = re.compile(r'"([a-z_0-9]+)":|doc\["([a-z_0-9]+)"\]\s*=')
FALLBACK_LIST = re.compile(r"for key in \[([^\]]*)\] where doc\[key\] == nil")


def _swift() -> str:
    files = sorted(SWIFT_DIR.glob("*.swift"))
    assert files, f"no Swift sources in {SWIFT_DIR}"
    return "\n".join(f.read_text() for f in files)


def _written_keys(src: str) -> set[str]:
    keys = {k for m in WRITTEN_KEY.finditer(src) for k in m.groups() if k}
    for m in FALLBACK_LIST.finditer(src):
        keys |= set(re.findall(r'"([a-z_0-9]+)"', m.group(1)))
    return keys


def _required(sch: dict) -> set[str]:
    keys = set(sch.get("required", []))
    for cond in sch.get("allOf", []):
        keys |= set(cond.get("then", {}).get("required", []))
    return keys


def test_swift_writes_every_required_result_key():
    sch = schema("result")
    written = _written_keys(_swift())
    missing = _required(sch) - written
    assert not missing, f"harness never writes required result keys: {sorted(missing)}"
    for block in ("producer", "device", "output", "error"):
        sub = sch["properties"][block]
        assert not set(sub["required"]) - written, f"{block} block misses {set(sub['required']) - written}"
    assert set(sch["$defs"]["battery"]["required"]) <= written


def test_swift_writes_no_key_outside_the_schema():
    sch = schema("result")
    allowed = set(sch["properties"])
    for name in ("producer", "device", "output", "error"):
        allowed |= set(sch["properties"][name]["properties"])
    allowed |= set(sch["$defs"]["battery"]["properties"])
    # keys the harness decodes from job.json (CodingKeys) are read, not written
    job = schema("job")["properties"]
    allowed |= set(job) | set(job["golden_input"]["properties"])
    extra = _written_keys(_swift()) - allowed
    assert not extra, f"harness writes keys the result schema forbids: {sorted(extra)}"


def test_swift_producer_and_enums_match_the_schema():
    src = _swift()
    sch = schema("result")
    producers = sch["properties"]["producer"]["properties"]["name"]["enum"]
    assert '"ios-harness"' in src and "ios-harness" in producers
    for state in sch["properties"]["thermal_before"]["enum"]:
        assert f'"{state}"' in src, f"thermal state {state} never produced"
    categories = set(re.findall(r'return "([a-z_]+)"', src)) & set(
        sch["properties"]["error"]["properties"]["category"]["enum"])
    assert {"bad_job", "model_load_failed", "runtime_error"} <= categories


def test_swift_uses_the_contract_golden_constant_and_formula():
    src = _swift()
    consts = {int(c) for c in re.findall(r"multiplier: UInt64 = (\d+)", src)}
    assert consts == {GOLDEN_MULTIPLIER}
    assert "0xFFFF_FFFF" in src and "4294967296.0" in src
    # the formula as written in Swift, replayed in Python, equals the contract's golden input
    seed, n = 12345, 1000
    swift_like = np.array([np.float32(((i * GOLDEN_MULTIPLIER + seed) & 0xFFFFFFFF) / 4294967296.0)
                           for i in range(n)], dtype=np.float32)
    assert np.array_equal(swift_like, golden_input([n], seed))


def test_job_keys_decoded_by_swift_are_the_schema_keys():
    src = _swift()
    decoded = set(re.findall(r'case \w+ = "([a-z_0-9]+)"', src))
    decoded |= set(re.findall(r"case (backend|warmup|iterations)\b", src))
    required = set(schema("job")["required"])
    assert required <= decoded, f"Swift Job does not decode {sorted(required - decoded)}"


def test_result_is_written_atomically_and_screen_kept_awake():
    src = _swift()
    assert "options: .atomic" in src
    assert "isIdleTimerDisabled = true" in src
    assert "phys_footprint" in src and "mach_absolute_time" in src and "thermalState" in src
