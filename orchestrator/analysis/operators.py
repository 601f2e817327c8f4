"""Per-operator figures of a cell's profile: top operators, each backend's share, and the
operator diff between two programs (a PR's and its baseline's).

Matching operators across two programs: an event the ETRecord places in a module
(``module_path``: the runtime's own kernels, and delegates that map their events) is
matched by (module path, kind). Delegate-internal events without one (XNNPACK names its
own operators, ``Convolution (NHWC, F32) IGEMM #7``, with no debug handle) are matched by
aligning the two execution orders — debug handles and ``#N`` numbers shift as soon as the
graph gains or loses a node, the order of the untouched part does not. The alignment is
an edit distance over (backend, kind) where matching two operators of the same kind costs
|ln(time ratio)| of their fast-iteration times (p10: preemption on a busy host only adds
time, so the low tail is the operator's own cost) and leaving one unmatched costs ``GAP``:
among twelve identical-looking
convolutions, the one a PR inserted is the one whose time fits nowhere. What aligns with
nothing exists on one side only: the graph changed there.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

CPU_KERNELS = "CPU kernels"
# Diffs compare per-operator medians: one preempted iteration on a busy host can move an
# operator's mean by 25x over a short profiling pass (seen here: 0.09 -> 2.6 ms); the means
# stay the figure for shares, where they must add up to the method's time.
DIFF_FIGURE = "p50_ms"
_DISPLAY = {"XnnpackBackend": "XNNPACK", "CoreMLBackend": "CoreML", "MPSBackend": "MPS",
            "VulkanBackend": "Vulkan", "QnnBackend": "QNN"}


def backend_display(backend: str | None) -> str:
    if not backend:
        return CPU_KERNELS
    return _DISPLAY.get(backend, backend.removesuffix("Backend") or backend)


def _get(op: Any, key: str) -> Any:
    return op[key] if isinstance(op, dict) else getattr(op, key)


def top(ops: list[Any], n: int = 10) -> list[Any]:
    """The ``n`` operators that took the most time, most first."""
    return sorted(ops, key=lambda op: -_get(op, "mean_ms"))[:n]


@dataclass(frozen=True)
class BackendShare:
    backend: str  # display name; CPU_KERNELS for ops the runtime ran itself
    time_share: float
    ops: int
    op_share: float


def backend_shares(ops: list[Any]) -> list[BackendShare]:
    """Each backend's share of the operators' time and of their count, biggest first."""
    time_by: dict[str, float] = defaultdict(float)
    count_by: dict[str, int] = defaultdict(int)
    for op in ops:
        name = backend_display(_get(op, "backend") if _get(op, "delegated") else None)
        time_by[name] += _get(op, "mean_ms")
        count_by[name] += 1
    total_t, total_n = sum(time_by.values()) or 1.0, sum(count_by.values()) or 1
    return sorted((BackendShare(b, time_by[b] / total_t, count_by[b], count_by[b] / total_n) for b in time_by),
                  key=lambda x: (-x.time_share, x.backend))


def _pct(x: float) -> str:
    return f"{x * 100:.0f} %"


def shares_text(ops: list[Any]) -> str:
    """"XNNPACK: 97 % of time, 140 ops; 2 ops on the CPU kernels (3 % of time)"."""
    parts = []
    for sh in backend_shares(ops):
        if sh.backend == CPU_KERNELS:
            plural = "s" if sh.ops != 1 else ""
            parts.append(f"{sh.ops} op{plural} on the {CPU_KERNELS} ({_pct(sh.time_share)} of time)")
        elif sh.op_share >= 0.9995:
            parts.append(f"{sh.backend}: 100 % of operators")
        else:
            parts.append(f"{sh.backend}: {_pct(sh.time_share)} of time, {sh.ops} ops")
    return "; ".join(parts)


@dataclass(frozen=True)
class OperatorChange:
    label: str  # module path when known, else the event's name (PR side first)
    kind: str
    backend: str
    base_ms: float | None  # None: the operator exists in the PR's program only
    pr_ms: float | None  # None: in the baseline's only
    module_path: str | None

    @property
    def delta_ms(self) -> float:
        return (self.pr_ms or 0.0) - (self.base_ms or 0.0)

    @property
    def side(self) -> str:
        return "both" if self.base_ms is not None and self.pr_ms is not None else (
            "pr_only" if self.base_ms is None else "base_only")

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "kind": self.kind, "backend": self.backend, "base_ms": self.base_ms,
                "pr_ms": self.pr_ms, "delta_ms": self.delta_ms, "side": self.side, "module_path": self.module_path}


def _change(base: Any | None, pr: Any | None) -> OperatorChange:
    ref = pr if pr is not None else base
    path = _get(ref, "module_path")
    return OperatorChange(label=path or _get(ref, "name"), kind=_get(ref, "kind"),
                          backend=backend_display(_get(ref, "backend") if _get(ref, "delegated") else None),
                          base_ms=_get(base, DIFF_FIGURE) if base is not None else None,
                          pr_ms=_get(pr, DIFF_FIGURE) if pr is not None else None, module_path=path)


def _by_module(ops: list[Any]) -> dict[tuple[str, str], list[Any]]:
    out: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for op in ops:
        if _get(op, "module_path"):
            out[(_get(op, "module_path"), _get(op, "kind"))].append(op)
    return out


def diff(base: list[Any], pr: list[Any]) -> list[OperatorChange]:
    """Operators of two programs matched (see the module docstring), biggest |change| first."""
    changes: list[OperatorChange] = []
    base_mod, pr_mod = _by_module(base), _by_module(pr)
    for key in base_mod.keys() | pr_mod.keys():
        b, p = base_mod.get(key, []), pr_mod.get(key, [])
        changes += [_change(x, y) for x, y in zip(b, p, strict=False)]
        changes += [_change(x, None) for x in b[len(p):]] + [_change(None, y) for y in p[len(b):]]
    b_rest = [op for op in base if not _get(op, "module_path")]
    p_rest = [op for op in pr if not _get(op, "module_path")]
    pairs = align(b_rest, p_rest)
    changes += [_change(b_rest[i] if i is not None else None, p_rest[j] if j is not None else None)
                for i, j in pairs]
    return sorted(changes, key=lambda c: (-abs(c.delta_ms), c.label))


# Splitting a matched pair costs two gaps, so only operators of one kind whose times differ
# by more than e^(2*GAP) (~55x) are split. The number of unmatched operators is fixed by the
# lengths' difference whatever GAP is; GAP only decides when noise may add a split pair.
# At GAP = 1 (7.4x) a profiling pass on the loaded 2-core CI host split one pair (CI, stop
# 23: "4 only in the PR's program, 1 only in the baseline's" for a 3-operator insertion).
GAP = 2.0
TIME_FLOOR = 0.05
# Beyond this many cells the quadratic alignment is replaced by difflib's (kinds only).
MAX_ALIGN_CELLS = 400_000


def _align_time(op: Any) -> float:
    """The time that says which operator this is: p10 where the profile has it."""
    p10 = op.get("p10_ms") if isinstance(op, dict) else getattr(op, "p10_ms", None)
    return float(p10) if p10 is not None else float(_get(op, DIFF_FIGURE))


def _sig(op: Any) -> tuple[Any, Any]:
    return (_get(op, "backend"), _get(op, "kind"))


def align(a: list[Any], b: list[Any]) -> list[tuple[int | None, int | None]]:
    """Pairs (index in a, index in b); None on one side: the operator exists on the other only."""
    n, m = len(a), len(b)
    if n * m > MAX_ALIGN_CELLS:
        return _align_kinds(a, b)
    # times near zero (a reshape, a 1-element mean) have meaningless ratios: every time is
    # floored at a few percent of the typical operator's before its logarithm is taken
    raw_a, raw_b = [_align_time(op) for op in a], [_align_time(op) for op in b]
    every = raw_a + raw_b
    floor = max(1e-6, TIME_FLOOR * sum(every) / len(every))
    ta = [math.log(t + floor) for t in raw_a]
    tb = [math.log(t + floor) for t in raw_b]
    sa, sb = [_sig(op) for op in a], [_sig(op) for op in b]
    inf = float("inf")
    cost = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        cost[i][0] = i * GAP
    for j in range(1, m + 1):
        cost[0][j] = j * GAP
    for i in range(1, n + 1):
        row, prev = cost[i], cost[i - 1]
        for j in range(1, m + 1):
            match = prev[j - 1] + abs(ta[i - 1] - tb[j - 1]) if sa[i - 1] == sb[j - 1] else inf
            row[j] = min(match, prev[j] + GAP, row[j - 1] + GAP)
    pairs: list[tuple[int | None, int | None]] = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and sa[i - 1] == sb[j - 1] and \
                math.isclose(cost[i][j], cost[i - 1][j - 1] + abs(ta[i - 1] - tb[j - 1])):
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif i > 0 and math.isclose(cost[i][j], cost[i - 1][j] + GAP):
            pairs.append((i - 1, None))
            i -= 1
        else:
            pairs.append((None, j - 1))
            j -= 1
    return pairs[::-1]


def _align_kinds(a: list[Any], b: list[Any]) -> list[tuple[int | None, int | None]]:
    matcher = SequenceMatcher(a=[_sig(o) for o in a], b=[_sig(o) for o in b], autojunk=False)
    pairs: list[tuple[int | None, int | None]] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            pairs += list(zip(range(i1, i2), range(j1, j2), strict=True))
        else:
            pairs += [(i, None) for i in range(i1, i2)] + [(None, j) for j in range(j1, j2)]
    return pairs


def shown(changes: list[Any], n: int) -> list[Any]:
    """The ``n`` changes a summary lists (OperatorChange or its ``as_dict``), biggest |change|
    first, keeping every one-sided operator (up to ``n``): a graph change is a fact, while a
    matched operator's change can be profile noise; a 0.01 ms inserted Hardswish must not
    lose its row to a matched operator a busy host slowed by 0.05 ms."""
    one = [c for c in changes if _get(c, "side") != "both"][:n]
    rest = [c for c in changes if _get(c, "side") == "both"][:max(0, n - len(one))]
    return sorted(one + rest, key=lambda c: (-abs(_get(c, "delta_ms")), _get(c, "label")))


def one_sided(changes: list[OperatorChange]) -> tuple[int, int]:
    """(operators only in the PR's program, only in the baseline's)."""
    return (sum(c.side == "pr_only" for c in changes), sum(c.side == "base_only" for c in changes))
