"""Operator figures without a device: matching two programs' operators, backend shares."""

from __future__ import annotations

from orchestrator.analysis.operators import diff, one_sided, shares_text, shown, top

CONV = "Convolution (NHWC, F32) IGEMM"


def op(name: str, ms: float, *, backend: str | None = "XnnpackBackend", path: str | None = None,
       mean: float | None = None) -> dict:
    return {"name": name, "kind": name.split(" #")[0], "p50_ms": ms, "mean_ms": ms if mean is None else mean,
            "backend": backend, "delegated": backend is not None, "module_path": path}


BASE = [op(f"{CONV} #1", .1), op(f"{CONV} #2", .5), op(f"{CONV} #3", .5), op(f"{CONV} #4", .5),
        op("Static Reshape (NC) #1", 0.0), op("aten.add.out", .01, backend=None, path="head.add")]


def test_an_inserted_operator_is_found_among_identical_kinds() -> None:
    # the PR inserts an expensive convolution (+ its activation) second; XNNPACK renumbers the rest
    pr = [op(f"{CONV} #1", .11), op(f"{CONV} #2", 1.6), op("HardSwish (NC) #1", .05), op(f"{CONV} #3", .52),
          op(f"{CONV} #4", .47), op(f"{CONV} #5", .49), op("Static Reshape (NC) #1", 0.0004),
          op("aten.add.out", .012, backend=None, path="head.add")]
    changes = diff(BASE, pr)
    assert changes[0].label == f"{CONV} #2" and changes[0].side == "pr_only" and changes[0].pr_ms == 1.6
    assert {c.label for c in changes if c.side == "pr_only"} == {f"{CONV} #2", "HardSwish (NC) #1"}
    assert one_sided(changes) == (2, 0)
    # the untouched convolutions pair with their renumbered selves, the kernel op by module path
    pairs = {(c.base_ms, c.pr_ms) for c in changes if c.side == "both"}
    assert {(.1, .11), (.5, .52), (.5, .47), (.5, .49), (.01, .012), (0.0, 0.0004)} == pairs


def test_a_removed_operator_is_on_the_baseline_side_only() -> None:
    pr = [o for o in BASE if o["name"] != f"{CONV} #3"]
    changes = diff(BASE, pr)
    assert one_sided(changes) == (0, 1)
    assert changes[0].side == "base_only" and changes[0].delta_ms == -.5


def test_medians_not_means_decide_the_diff() -> None:
    # one preempted iteration blows up a mean; the median stays put
    noisy = [dict(o, mean_ms=o["mean_ms"] * (30 if i == 1 else 1)) for i, o in enumerate(BASE)]
    changes = diff(BASE, noisy)
    assert one_sided(changes) == (0, 0) and max(abs(c.delta_ms) for c in changes) == 0


def test_shares_and_top() -> None:
    ops = [op(f"{CONV} #1", 9.0), op(f"{CONV} #2", 88.0), op("aten.add.out", 3.0, backend=None),
           op("aten.mul.out", 0.0, backend=None)]
    assert shares_text(ops) == "XNNPACK: 97 % of time, 2 ops; 2 ops on the CPU kernels (3 % of time)"
    assert shares_text(ops[:2]) == "XNNPACK: 100 % of operators"
    assert [o["name"] for o in top(ops, 2)] == [f"{CONV} #2", f"{CONV} #1"]


def test_a_slowed_operator_stays_matched_on_a_busy_host() -> None:
    # a 3-operator insertion; one untouched convolution's median is 10x off under load (its
    # fast iterations are not): still one pair, and exactly the three inserted ones one-sided
    base = [op(f"{CONV} #1", .1), op(f"{CONV} #2", .5), op("HardSwish (NC) #1", .05)]
    pr = [op(f"{CONV} #1", 1.0) | {"p10_ms": .1}, op(f"{CONV} #2", .8), op("HardSwish (NC) #1", .06),
          op("Fully Connected (NC, F32) GEMM #1", .3), op(f"{CONV} #3", .5), op("HardSwish (NC) #2", .05)]
    assert one_sided(diff(base, pr)) == (3, 0)
    # a real 10x change of one operator, on both figures, is a change, not a new operator
    slowed = [op(f"{CONV} #1", 1.0), *base[1:]]
    changes = diff(base, slowed)
    assert one_sided(changes) == (0, 0) and changes[0].delta_ms > 0.8


def test_summaries_keep_every_one_sided_operator() -> None:
    # a tiny inserted operator among matched ones that noise moved more: it keeps its row
    base = [op(f"{CONV} #{i}", .5) for i in range(1, 6)]
    pr = [op(f"{CONV} #{i}", .5 + .05 * i) for i in range(1, 6)] + [op("HardSwish (NC) #1", .01)]
    changes = diff(base, pr)
    assert changes[-1].side == "pr_only"  # smallest |change| of all
    top3 = shown(changes, 3)
    assert [c.side for c in top3].count("pr_only") == 1 and len(top3) == 3
    assert [c.delta_ms for c in top3] == sorted((c.delta_ms for c in top3), key=abs, reverse=True)
    assert shown([c.as_dict() for c in changes], 3)[-1]["side"] == "pr_only"  # the API's dicts too
