"""Bounds and honesty checks of a matrix spec, around its field validation.

Before: the document's size, each list's length and the number of cells it plans — computed
by multiplying the list lengths, never by expanding them — so a 10 KB spec that multiplies to
52 million cells is refused in milliseconds instead of exhausting memory. After: a model,
backend or device listed twice (two jobs per cell, a matrix claiming repeats it never asked
for) and a matrix none of whose cells can run are errors naming file:line.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.export.registry import registry
from orchestrator.spec.yamlpos import Loc, SpecError, format_loc, line_for

if TYPE_CHECKING:
    from orchestrator.spec.matrix import MatrixSpec

DEFAULT_MAX_CELLS = 10_000
# a spec is a few KB (the seed matrix: 820 bytes); what is far bigger is a mistake or an attack
MAX_SPEC_BYTES = 256 * 1024
# the longest list each key may hold: far above any real matrix, far below what hangs a submitter
MAX_ITEMS = {("models",): 500, ("backends",): 32, ("devices",): 64, ("disabled",): 1000,
             ("parameters", "input_resolution"): 64, ("parameters", "batch_size"): 64}
# the factors of the cell count, in the order the planner nests them
FACTORS = (("devices",), ("backends",), ("models",), ("parameters", "input_resolution"),
           ("parameters", "batch_size"))


def max_cells() -> int:
    """The per-spec cell limit: ``BENCHFARM_MAX_CELLS`` (a deployment's choice), else 10,000."""
    raw = os.environ.get("BENCHFARM_MAX_CELLS", "")
    return int(raw) if raw.strip().isdigit() and int(raw) > 0 else DEFAULT_MAX_CELLS


def read_spec(path: str | Path, max_bytes: int | None = None) -> str:
    """A spec file's text; its size is checked before it is read (a 9 MB file is refused unread)."""
    limit = max_bytes or MAX_SPEC_BYTES
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > limit:
            raise SpecError([f"{path}:1: spec is {size:,} bytes, over the limit of {limit:,}"])
        return path.read_text()
    except FileNotFoundError:
        raise SpecError([f"{path}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([f"{path}: cannot read: {exc}"]) from None


def _get(data: Any, loc: Loc) -> Any:
    for part in loc:
        data = data.get(part) if isinstance(data, dict) else None
    return data


def check_sizes(data: Any, lines: dict[Loc, int], source: str, limit: int | None = None,
                limit_name: str = "BENCHFARM_MAX_CELLS") -> None:
    """List lengths and the planned cell count, on the parsed document, before validation.

    ``limit_name`` says whose limit ``limit`` is (the deployment's, a token's)."""
    if data is None:
        raise SpecError([f"{source}:1: empty document"])
    problems = []
    for loc, most in MAX_ITEMS.items():
        value = _get(data, loc)
        if isinstance(value, list) and len(value) > most:
            problems.append(f"{source}:{line_for(loc, lines)}: {format_loc(loc)}: {len(value):,} entries, "
                            f"over the limit of {most:,}")
    if problems:
        raise SpecError(problems)
    sizes = [len(v) if isinstance(v := _get(data, loc), list) else 1 for loc in FACTORS]
    repeats = _get(data, ("parameters", "repeats"))
    sizes.append(repeats if isinstance(repeats, int) and not isinstance(repeats, bool) and repeats > 0 else 1)
    cells, limit = math.prod(sizes), limit or max_cells()
    if cells > limit:
        shape = " x ".join(f"{n} {name}" for n, name in zip(sizes, ("devices", "backends", "models", "resolutions",
                                                                   "batch sizes", "repeats"), strict=True))
        raise SpecError([f"{source}:1: <document>: the matrix plans {cells:,} cells ({shape}), over the limit "
                         f"of {limit:,} per spec ({limit_name}): split it into several runs"])


def planned_cells(spec: MatrixSpec) -> int:
    """The cells a validated spec plans (the product :func:`check_sizes` bounds)."""
    p = spec.parameters
    return (len(spec.devices) * len(spec.backends) * len(spec.models) * len(p.input_resolution)
            * len(p.batch_size) * p.repeats)


def _duplicates(values: list[str], loc: Loc, what: str, lines: dict[Loc, int], source: str) -> list[str]:
    first: dict[str, int] = {}
    problems = []
    for i, value in enumerate(values):
        if value in first:
            problems.append(f"{source}:{line_for((*loc, i), lines)}: {format_loc((*loc, i))}: {what} {value!r} "
                            f"is listed twice (first at line {line_for((*loc, first[value]), lines)})")
        first.setdefault(value, i)
    return problems


def check_plan(spec: MatrixSpec, lines: dict[Loc, int], source: str) -> None:
    """Duplicates, and a matrix with no cell that could run: errors, not a run that 'succeeds'."""
    problems = (_duplicates([m.name for m in spec.models], ("models",), "model", lines, source)
                + _duplicates(list(spec.backends), ("backends",), "backend", lines, source)
                + _duplicates([d.label() for d in spec.devices], ("devices",), "device", lines, source))
    if problems:
        raise SpecError(problems)
    why = []
    for i, sel in enumerate(spec.devices):
        for j, name in enumerate(spec.backends):
            if not registry().resolve(name).runs_on_class(sel.device_class):
                why.append(f"{source}:{line_for(('backends', j), lines)}: backends[{j}]: {name} cannot run on "
                           f"{sel.device_class} (devices[{i}], line {line_for(('devices', i), lines)})")
                continue
            if any(not spec.disabled_reason(m.name, name, sel.device_class) for m in spec.models):
                return  # at least one cell runs
            why.append(f"{source}:{line_for(('disabled',), lines)}: disabled: every {name} cell on "
                       f"{sel.device_class} is disabled")
    raise SpecError([f"{source}:1: <document>: the matrix plans no runnable job", *why])
