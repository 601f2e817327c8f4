"""The harness contract: the job document the agent writes and the result document
every producer (iOS harness, host driver, virtual device) writes back.

A result that fails validation is an infrastructure failure carrying the validation
message; it is never stored as a measurement.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from functools import cache, lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs

SCHEMA_DIR = Path(__file__).parent
# The harness app's bundle identifier: the iOS driver installs/launches it, the virtual
# device simulates it, the Swift project declares it.
HARNESS_BUNDLE_ID = "dev.benchfarm.harness"
JOB_FILE = "job.json"
RESULT_FILE = "result.json"
# A result document with 100k float latencies is ~2 MB; anything far bigger is not a
# result but a bug or an attack, and is refused before parsing.
MAX_RESULT_BYTES = 8 * 1024 * 1024
# Within the schema's per-dimension bounds an input shape can still ask for 2^128 elements;
# the harness refuses more than this many (256 MB of float32), and so does the contract, so a
# job the agent accepts is one every harness can allocate. Same bound in the Swift core (Job.swift).
MAX_INPUT_ELEMENTS = 64 * 1024 * 1024
FIXTURES_DIR = SCHEMA_DIR / "fixtures"
# a refused document's message names its first error; past this many nobody reads them
MAX_ERRORS = 10


class ContractError(ValueError):
    """A job or result document that does not satisfy the harness contract."""


@lru_cache(maxsize=2)
def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


@lru_cache(maxsize=2)
def _fast_validator(name: str) -> jsonschema_rs.Validator:
    # The same schema compiled once by a Rust validator: ~100x cheaper per document than
    # jsonschema, so the coordinator can keep checking every result an agent reports (agents
    # are not trusted) at ~10 us each. jsonschema still names what is wrong (_validate).
    return jsonschema_rs.Draft202012Validator(_validator(name).schema, validate_formats=True)


def schema(name: str) -> dict[str, Any]:
    return _validator(name).schema


def _check_finite(value: Any, path: str = "$") -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ContractError(f"{path}: non-finite number {value!r}")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_finite(v, f"{path}[{i}]")


def _check_lengths(sch: dict[str, Any], doc: Any, root: dict[str, Any], path: str = "$") -> None:
    """Every array's ``maxItems``, before the schema walks its items: jsonschema checks each item
    first (a million samples cost seconds even when every one is fine, and one error object each
    when none is). Follows ``properties`` and ``$ref`` only: arrays inside arrays are bounded by
    their parent's length."""
    if "$ref" in sch:
        sch = root["$defs"][sch["$ref"].rsplit("/", 1)[-1]]
    if isinstance(doc, list) and "maxItems" in sch and len(doc) > sch["maxItems"]:
        raise ContractError(f"document invalid at {path}: {len(doc):,} items, over the limit of {sch['maxItems']:,}")
    if isinstance(doc, dict):
        for key, sub in (sch.get("properties") or {}).items():
            if key in doc:
                _check_lengths(sub, doc[key], root, f"{path}.{key}")


def _validate(name: str, doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise ContractError(f"{name} document must be a JSON object, got {type(doc).__name__}")
    validator = _validator(name)
    try:
        _check_lengths(validator.schema, doc, validator.schema)
    except ContractError as exc:
        raise ContractError(f"{name} {exc}") from None
    if not _fast_validator(name).is_valid(doc):
        # not accepted by the fast path: jsonschema, the reference, decides and names the first few
        # errors (sorted, so the message is stable; a document can hold a million wrong values, and
        # collecting and sorting an error object for each took 25 s and 3.5 GB, or crashed)
        errors = sorted(itertools.islice(validator.iter_errors(doc), MAX_ERRORS + 1),
                        key=lambda e: list(e.absolute_path))
        if errors:
            more = "" if len(errors) == 1 else f" (+{len(errors) - 1} more)" if len(errors) <= MAX_ERRORS \
                else f" (+{MAX_ERRORS} or more others)"
            raise ContractError(f"{name} document invalid at {_where(errors[0].absolute_path)}: "
                                f"{errors[0].message[:300]}{more}")
    _check_finite(doc)
    return doc


def _where(path: Any) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def validate_job(doc: Any) -> dict[str, Any]:
    _validate("job", doc)
    if math.prod(doc["input_shape"]) > MAX_INPUT_ELEMENTS:
        raise ContractError(f"job document invalid at $.input_shape: {doc['input_shape']} has more than "
                            f"{MAX_INPUT_ELEMENTS} elements")
    return doc


def validate_result(doc: Any) -> dict[str, Any]:
    return _validate("result", doc)


# the job schema's bound on timed iterations: a minimum duration never asks for more
MAX_ITERATIONS = 100_000


def more_iterations(job: dict[str, Any], done: int, elapsed_s: float) -> bool:
    """Run another timed iteration? Until both ``iterations`` and the run rule's
    ``min_duration_s`` (seconds of timed iterations) are met, MLPerf-style; never past
    ``MAX_ITERATIONS``. Every harness (host, virtual, the Swift one) applies the same rule."""
    if done < int(job["iterations"]):
        return True
    return done < MAX_ITERATIONS and elapsed_s < float(job.get("min_duration_s") or 0.0)


@cache
def executorch_version() -> str | None:
    """The ExecuTorch runtime installed here: what the host driver runs programs on, and the
    release the iOS harness pins (agents/harness/ios/project.yml, checked by tests/ios)."""
    try:
        return version("executorch")
    except PackageNotFoundError:
        return None


# Producers whose runtime is an app build on the phone (the virtual harness simulates one):
# their runtime_version is whatever ExecuTorch release the app linked, not this machine's.
IOS_PRODUCERS = frozenset({"ios-harness", "virtual-harness"})


def _release(text: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) of '1.5.1', '1.5.0.20260822' (a nightly), '1.6.0.dev0+cpu'."""
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)) if m else None


def runtime_refusal(doc: dict[str, Any], exporter_version: str | None) -> str | None:
    """Why an iOS result must not count for a program exported with ``exporter_version``, or
    None. ExecuTorch runs old programs on new runtimes, not the reverse: a result from an older
    runtime (or one that does not say which) is an infrastructure failure, not a number."""
    producer = (doc.get("producer") or {}).get("name")
    expected = _release(exporter_version or "")
    if producer not in IOS_PRODUCERS or expected is None:
        return None  # host results run on the exporter's own package; no exporter version known
    runtime = doc.get("runtime_version")
    if not isinstance(runtime, str):
        return (f"{producer} result reports no runtime_version; the program was exported with "
                f"executorch {exporter_version} (rebuild the harness: agents/harness/ios/README.md)")
    got = _release(runtime)
    if got is None or got < expected:
        return (f"{producer} runs ExecuTorch {runtime[:64]}, older than the program's exporter "
                f"(executorch {exporter_version}): old runtimes cannot be trusted with newer programs")
    return None


def _reject_constant(token: str) -> float:
    raise ContractError(f"result document contains {token}, which is not JSON")


def parse_result(raw: bytes) -> dict[str, Any]:
    """Decode and validate result bytes as pulled from a device."""
    if len(raw) > MAX_RESULT_BYTES:
        raise ContractError(f"result document is {len(raw)} bytes, over the {MAX_RESULT_BYTES} limit")
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except ContractError:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ContractError(f"result document is not valid JSON: {exc}") from None
    except RecursionError:
        raise ContractError("result document is nested too deeply to be a result") from None
    return validate_result(doc)


# -- the golden input --------------------------------------------------------------
# Every producer must build the same input from (shape, seed) without sharing an RNG
# implementation (Swift on the phone, numpy here), so it is a plain multiplicative
# hash: x[i] = ((i * 2654435761 + seed) mod 2^32) / 2^32, in [0, 1).
GOLDEN_MULTIPLIER = 2654435761


def golden_input(shape: list[int], seed: int) -> Any:
    import numpy as np

    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.uint64)
    vals = (i * np.uint64(GOLDEN_MULTIPLIER) + np.uint64(seed)) % np.uint64(2**32)
    return (vals.astype(np.float64) / 2**32).astype(np.float32).reshape(shape)


def summarize_output(values: Any, head: int = 16) -> dict[str, Any]:
    """The output block of a result document: digest, shape, top-1 and the first values."""
    import hashlib

    import numpy as np

    arr = np.ascontiguousarray(np.asarray(values, dtype=np.float32))
    flat = arr.reshape(-1)
    return {
        "digest": hashlib.sha256(arr.tobytes()).hexdigest(),
        "shape": list(arr.shape),
        "top1": int(flat.argmax()) if flat.size else 0,
        "head": [float(v) for v in flat[:head]],
    }
