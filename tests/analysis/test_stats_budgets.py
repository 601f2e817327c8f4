"""Statistics, budget checks with margins, power labels and the budgets file validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from orchestrator.analysis.budgets import BudgetFile, check_budget, load_budgets, power_label
from orchestrator.analysis.stats import fmt_mb, fmt_range, summarize
from orchestrator.spec.yamlpos import SpecError, load_validated


def test_summarize_excludes_far_outliers_from_mean_and_cv_only() -> None:
    samples = list(np.linspace(9.5, 10.5, 49)) + [500.0]
    s = summarize(samples)
    assert s is not None
    assert s.n == 50 and s.outliers == 1
    assert s.mean == pytest.approx(np.mean(samples[:-1]))
    assert s.cv < 0.05
    assert s.maximum == 500.0  # all samples still count for the range
    assert summarize([]) is None


def test_range_format_matches_seed() -> None:
    s = summarize(list(np.linspace(8, 12, 101)))
    assert fmt_range(s) == "8-12 ms"
    tight = summarize(list(np.linspace(8.0, 8.3, 101)))
    assert fmt_range(tight) == "8.0-8.3 ms"
    assert fmt_range(summarize([0.12, 0.15, 0.2])) == "0.13-0.19 ms"
    assert fmt_range(None) == "—"
    assert fmt_mb(45 * 1024 * 1024) == "45 MB" and fmt_mb(3 * 1024 * 1024) == "3.0 MB" and fmt_mb(None) == "—"


def _budget(name: str):  # noqa: ANN202
    return next(b for b in load_budgets().budgets if b.name == name)


def test_seed_budgets_are_loaded() -> None:
    rt, std, mem = _budget("realtime-30fps"), _budget("standard-10fps"), _budget("memory")
    assert rt.limits == {"total_ms": 33, "preprocess_ms": 10, "inference_ms": 15, "postprocess_ms": 8}
    assert std.limits == {"total_ms": 100, "inference_ms": 50}
    assert mem.limits == {"peak_memory_mb": 200}


def test_realtime_pass_and_fail_with_margins() -> None:
    rt = _budget("realtime-30fps")
    ok = check_budget(rt, {"total_ms": 23, "preprocess_ms": 8, "inference_ms": 12, "postprocess_ms": 3})
    assert ok.status == "pass"
    margins = {c.metric: c.margin for c in ok.checks}
    assert margins == {"total_ms": 10, "preprocess_ms": 2, "inference_ms": 3, "postprocess_ms": 5}
    assert ok.summary() == "pass (preprocess 2.0 ms under)"  # tightest relative margin (20 %)
    bad = check_budget(rt, {"total_ms": 30, "preprocess_ms": 8, "inference_ms": 17.5, "postprocess_ms": 3})
    assert bad.status == "fail"
    inf = next(c for c in bad.checks if c.metric == "inference_ms")
    assert inf.status == "fail" and inf.margin == pytest.approx(-2.5)
    assert bad.summary() == "fail (inference 2.5 ms over)"


def test_limit_is_strict_and_unmeasured_is_not_a_pass() -> None:
    std = _budget("standard-10fps")
    assert check_budget(std, {"total_ms": 100, "inference_ms": 40}).status == "fail"  # "< 100 ms"
    partial = check_budget(_budget("realtime-30fps"), {"inference_ms": 10, "total_ms": 10})
    assert partial.status == "pass" and partial.unmeasured == ["preprocess_ms", "postprocess_ms"]
    assert partial.summary() == "pass (inference 5.0 ms under; preprocess, postprocess not measured)"
    assert check_budget(std, {}).status == "n/a"


def test_memory_budget() -> None:
    mem = _budget("memory")
    assert check_budget(mem, {"peak_memory_mb": 150}).checks[0].margin == 50
    assert check_budget(mem, {"peak_memory_mb": 250}).status == "fail"


@pytest.mark.parametrize(("energy", "label"), [
    (None, "n/a"), (0.5, "Very Low"), (9.99, "Very Low"), (10.0, "Low"), (29.9, "Low"), (30.0, "Medium"),
    (99.0, "Medium"), (100.0, "High"), (5000.0, "High"),
])
def test_power_labels(energy: float | None, label: str) -> None:
    assert power_label(energy) == label


def test_bad_budget_file_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "budgets.yaml"
    bad.write_text("budgets:\n  - name: x\n    limits:\n      total_ms: -3\n      latency: 4\n"
                   "power_labels:\n  - label: High\n")
    with pytest.raises(SpecError) as exc:
        load_validated(BudgetFile, bad)
    text = str(exc.value)
    assert f"{bad}:5: budgets[0].limits.latency" in text
    unordered = tmp_path / "b2.yaml"
    unordered.write_text("budgets:\n  - {name: x, limits: {total_ms: 3}}\npower_labels:\n"
                         "  - {label: A, below_mj: 30}\n  - {label: B, below_mj: 10}\n  - {label: C}\n")
    with pytest.raises(SpecError, match="below_mj must increase"):
        load_validated(BudgetFile, unordered)
