"""The matrix spec: models x backends x device classes x parameters.

One YAML document = one run. Validation resolves every name against the data
registries (device catalog, backend registry, model zoo) so that a typo is reported
with its file and line before anything is queued.
"""

from __future__ import annotations

import fnmatch
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from device_inventory.catalog import UnknownDeviceClass, catalog
from orchestrator.export.registry import UnknownBackend, registry
from orchestrator.spec.bounds import MAX_SPEC_BYTES, check_plan, check_sizes, read_spec
from orchestrator.spec.run_rules import RunRules
from orchestrator.spec.types import StrictModel
from orchestrator.spec.yamlpos import parse_yaml, validate

_SELECTOR = re.compile(
    r"^\s*(?P<cls>[^\s,]+(?:\s+Pro)?)\s*(?:,?\s*ios\s*(?P<op>>=|<=|==|>|<)\s*(?P<ver>[\d.]+))?"
    r"(?P<labels>(?:\s*,?\s*label\s*=\s*[A-Za-z0-9_.-]+(?::[A-Za-z0-9_.-]+)?)*)\s*$",
    re.I,
)
# a label is a name (``lab-b``) or a host inventory's key:value (``rack:a``)
_LABEL = re.compile(r"label\s*=\s*([A-Za-z0-9_.-]+(?::[A-Za-z0-9_.-]+)?)", re.I)


def _resolve_backend(name: str) -> str:
    try:
        return registry().resolve(name).name
    except UnknownBackend as exc:
        raise ValueError(str(exc)) from None


BackendName = Annotated[str, AfterValidator(_resolve_backend)]




class ModelRef(StrictModel):
    """A model to benchmark: a zoo name, a registered package's ``pkg.mod:factory`` or an uploaded
    ``.pte`` program by digest (a CLI may name a local file: it uploads it)."""

    name: str = Field(min_length=1, max_length=200)  # jobs.model / artifacts.model are String(200)
    source: str = Field(default="", max_length=1000,
                        description="zoo:<name> | import:<pkg.mod:factory> | pte:sha256:<hex>")

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value}
        return value

    @field_validator("source")
    @classmethod
    def _check_source(cls, source: str, info: ValidationInfo) -> str:
        # the export pipeline's own parser, by string only: a spec accepts exactly the sources
        # the farm may build, naming a module never imports it (orchestrator.export.trust) and
        # only a CLI reading its user's files may name a program by path (export.programs)
        if source:
            _parse_source(source, local_files=bool((info.context or {}).get("local_files")))
        return source

    @model_validator(mode="after")
    def _default_source(self) -> ModelRef:
        if not self.source:
            _parse_source(f"zoo:{self.name}")
            object.__setattr__(self, "source", f"zoo:{self.name}")
        return self


def _parse_source(source: str, local_files: bool = False) -> None:
    from orchestrator.export.sources import BadSource, Source

    try:
        Source.parse(source, local_files=local_files)
    except BadSource as exc:
        raise ValueError(str(exc)) from None


class DeviceSelector(StrictModel):
    """A device class, optionally narrowed by iOS version and device labels
    (``A17-Pro ios>=18 label=lab-b``; every label named must be on the device)."""

    device_class: str
    os_op: str | None = None
    os_version: str | None = None
    labels: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        m = _SELECTOR.match(value)
        if not m:
            raise ValueError(f"device selector {value!r} is not 'CLASS [ios>=VERSION] [label=NAME ...]'")
        try:
            cid = catalog().resolve_class(m["cls"]).id
        except UnknownDeviceClass as exc:
            raise ValueError(str(exc)) from None
        return {"device_class": cid, "os_op": m["op"], "os_version": m["ver"],
                "labels": sorted(set(_LABEL.findall(m["labels"] or "")))}

    @model_validator(mode="after")
    def _fits_column(self) -> DeviceSelector:
        if len(self.label()) > 200:  # jobs.device_selector is String(200)
            raise ValueError(f"device selector {self.label()[:60]!r}... is over 200 characters")
        return self

    def label(self) -> str:
        return (self.device_class + (f" ios{self.os_op}{self.os_version}" if self.os_op else "")
                + "".join(f" label={x}" for x in self.labels))


def _version(text: str) -> tuple[int, ...]:
    parts = [int(p) for p in re.findall(r"\d+", text)[:3]]
    return tuple(parts + [0] * (3 - len(parts)))  # 16.5 == 16.5.0


def labels_match(selector_label: str, device_labels: list[str] | set[str]) -> bool:
    """Does a device carry every ``label=NAME`` a selector label asks for?"""
    return set(_LABEL.findall(selector_label)) <= set(device_labels)


def os_matches(selector_label: str, os_version: str) -> bool:
    """Does a device's OS version satisfy a selector label such as ``A17-Pro ios>=18``?"""
    m = re.search(r"ios(>=|<=|==|>|<)([\d.]+)", selector_label)
    if not m:
        return True
    have, want = _version(os_version), _version(m[2])
    return {">=": have >= want, "<=": have <= want, "==": have == want, ">": have > want, "<": have < want}[m[1]]


class Parameters(StrictModel):
    input_resolution: list[int] = Field(default=[224], min_length=1)
    batch_size: list[int] = Field(default=[1], min_length=1)
    iterations: int = Field(default=50, ge=1, le=100_000)
    warmup: int = Field(default=10, ge=0, le=10_000)
    repeats: int = Field(default=1, ge=1, le=100)
    timeout_s: int = Field(default=600, ge=1, le=24 * 3600)
    compute_units: str = "all"
    # PR cells with a baseline artifact: A/B rounds in one lease (ABBA for 2); iterations are
    # split across the minimum rounds so those cost about twice a plain job
    ab_rounds: int = Field(default=4, ge=1, le=32)
    # adaptive A/B: an undecided cell gets one more round at a time, up to ab_max_rounds or
    # until the next round would spend more than ab_budget_s of device time on the cell
    # (launch-level verdicts need rounds: 2 rounds can never tell launch noise from change)
    ab_max_rounds: int = Field(default=16, ge=1, le=32)
    ab_budget_s: float = Field(default=300.0, gt=0, le=24 * 3600)
    ab_min_effect: float = Field(default=0.05, gt=0, lt=1)
    # the untimed per-operator profiling pass after each cell's timed iterations (ETDump)
    profile: bool = True
    profile_iterations: int = Field(default=20, ge=1, le=1000)
    # > 0 also records intermediate outputs for numerical debugging; too small a buffer
    # aborts the runtime, which costs that cell its profile only
    profile_debug_buffer_bytes: int = Field(default=0, ge=0, le=1 << 30)
    # minimum iterations/duration, cool-down, replication and noise thresholds per trigger
    # (orchestrator.spec.run_rules; defaults apply where the spec is silent)
    run_rules: RunRules = RunRules()

    def profile_job(self) -> dict[str, int] | None:
        """The job document's ``profile`` block, or None when the spec turns profiling off."""
        if not self.profile:
            return None
        block = {"iterations": self.profile_iterations}
        if self.profile_debug_buffer_bytes:
            block["debug_buffer_bytes"] = self.profile_debug_buffer_bytes
        return block

    @field_validator("input_resolution")
    @classmethod
    def _resolutions(cls, v: list[int]) -> list[int]:
        for r in v:
            if not 16 <= r <= 2048:
                raise ValueError(f"input resolution {r} outside 16..2048")
        return v

    @field_validator("batch_size")
    @classmethod
    def _batches(cls, v: list[int]) -> list[int]:
        for b in v:
            if not 1 <= b <= 256:
                raise ValueError(f"batch size {b} outside 1..256")
        return v

    @field_validator("compute_units")
    @classmethod
    def _units(cls, v: str) -> str:
        allowed = ("all", "cpu_and_ne", "cpu_and_gpu", "cpu_only")
        if v not in allowed:
            raise ValueError(f"unknown compute_units {v!r} (known: {', '.join(allowed)})")
        return v


class MatrixSpec(StrictModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    models: list[ModelRef] = Field(min_length=1)
    backends: list[BackendName] = Field(min_length=1)
    devices: list[DeviceSelector] = Field(min_length=1)
    parameters: Parameters = Parameters()
    disabled: list[dict[str, str]] = Field(
        default_factory=list, description="cells to skip: {model, backend, device, reason}"
    )

    def disabled_reason(self, model: str, backend: str, device_class: str) -> str:
        """Why the spec's ``disabled`` rules skip this cell ('' when none does)."""
        for rule in self.disabled:
            if all(fnmatch.fnmatch(value, rule.get(field, "*")) for field, value in
                   (("model", model), ("backend", backend), ("device", device_class))):
                return f"disabled: {rule.get('reason', 'listed in the spec')}"
        return ""



@lru_cache(maxsize=64)
def profile_block(spec_text: str) -> dict[str, int] | None:
    """The profile block for jobs of a run, from its stored spec (validated at submit;
    cached: every dispatch of the run's jobs asks)."""
    try:
        return loads_spec(spec_text).parameters.profile_job()
    except ValueError:
        return None


def load_spec(path: str | Path, *, local_files: bool = False) -> MatrixSpec:
    """``local_files``: the caller is a CLI that reads (or only plans) ``pte:<path>`` sources as its user."""
    return loads_spec(read_spec(path), str(path), local_files=local_files)


def loads_spec(text: str, source: str = "<spec>", max_cells: int | None = None, *,
               local_files: bool = False, limit_name: str = "BENCHFARM_MAX_CELLS") -> MatrixSpec:
    """Validate a matrix spec. Its size, list lengths and planned cell count (arithmetic, before
    any cell exists) are checked before the fields are; duplicates and a matrix with no
    runnable cell after. ``max_cells``: default ``BENCHFARM_MAX_CELLS`` (10,000); ``limit_name``
    says in the error whose limit it is."""
    data, lines = parse_yaml(text, source, max_bytes=MAX_SPEC_BYTES)
    check_sizes(data, lines, source, max_cells, limit_name)
    spec = validate(MatrixSpec, data, lines, source, {"local_files": local_files})
    check_plan(spec, lines, source)
    return spec

