"""Budgets (``orchestrator/reports/budgets.yaml``) and their per-cell checks.

A check is pass / fail with the margin (limit - value; positive = headroom), or
``n/a`` when the cell did not measure the metric: an unmeasured stage is never a pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from orchestrator.spec.types import StrictModel as _Strict
from orchestrator.spec.yamlpos import load_validated

BUDGETS_PATH = Path(__file__).resolve().parents[1] / "reports" / "budgets.yaml"

Metric = Literal["total_ms", "preprocess_ms", "inference_ms", "postprocess_ms", "peak_memory_mb"]
Statistic = Literal["median", "p10", "p90", "mean"]




class Budget(_Strict):
    name: str = Field(min_length=1)
    title: str = ""
    statistic: Statistic = "p90"
    limits: dict[Metric, float] = Field(min_length=1)

    @model_validator(mode="after")
    def _positive(self) -> Budget:
        for metric, limit in self.limits.items():
            if limit <= 0:
                raise ValueError(f"limit for {metric} must be > 0, got {limit}")
        return self


class PowerLabel(_Strict):
    label: str = Field(min_length=1)
    below_mj: float | None = Field(default=None, gt=0)


class BudgetFile(_Strict):
    budgets: list[Budget] = Field(min_length=1)
    power_labels: list[PowerLabel] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> BudgetFile:
        bounds = [p.below_mj for p in self.power_labels]
        finite = [b for b in bounds[:-1] if b is not None]
        if bounds[-1] is not None or len(finite) != len(bounds) - 1:
            raise ValueError("power_labels: only the last label may (and must) have no below_mj")
        if finite != sorted(finite):
            raise ValueError("power_labels: below_mj must increase")
        names = [b.name for b in self.budgets]
        if len(set(names)) != len(names):
            raise ValueError("budgets: names must be unique")
        return self


@lru_cache(maxsize=4)
def load_budgets(path: Path = BUDGETS_PATH) -> BudgetFile:
    return load_validated(BudgetFile, path)


@dataclass(frozen=True)
class Check:
    budget: str
    metric: str
    limit: float
    value: float | None
    status: Literal["pass", "fail", "n/a"]

    @property
    def margin(self) -> float | None:
        return None if self.value is None else self.limit - self.value

    @property
    def margin_pct(self) -> float | None:
        return None if self.value is None else 100.0 * (self.limit - self.value) / self.limit


@dataclass(frozen=True)
class BudgetResult:
    budget: Budget
    checks: tuple[Check, ...]

    @property
    def status(self) -> Literal["pass", "fail", "n/a"]:
        """fail if any limit fails; n/a when nothing was measured; else pass."""
        states = {c.status for c in self.checks}
        if "fail" in states:
            return "fail"
        return "pass" if "pass" in states else "n/a"

    @property
    def unmeasured(self) -> list[str]:
        return [c.metric for c in self.checks if c.status == "n/a"]

    def summary(self) -> str:
        """``pass (+3.1 ms)`` / ``fail (inference_ms +2.0 ms over)`` / ``n/a``."""
        if self.status == "n/a":
            return "n/a"
        if self.status == "fail":
            worst = min((c for c in self.checks if c.status == "fail"), key=lambda c: c.margin_pct or 0)
            return f"fail ({_fmt_margin(worst)})"
        tightest = min((c for c in self.checks if c.status == "pass"), key=lambda c: c.margin_pct or 0)
        note = f"; {', '.join(map(_short, self.unmeasured))} not measured" if self.unmeasured else ""
        return f"pass ({_fmt_margin(tightest)}{note})"


def _short(metric: str) -> str:
    return metric.removesuffix("_ms").removesuffix("_mb").replace("_", " ")


def _fmt_margin(c: Check) -> str:
    """``inference 2.5 ms over`` — the metric and how far it is from its limit."""
    unit = "MB" if c.metric.endswith("_mb") else "ms"
    m = c.margin or 0.0
    return f"{_short(c.metric)} {abs(m):.1f} {unit} {'under' if m >= 0 else 'over'}"


def check_budget(budget: Budget, values: dict[str, float | None]) -> BudgetResult:
    """Check one budget against a cell's metric values (already at ``budget.statistic``)."""
    checks = []
    for metric, limit in budget.limits.items():
        value = values.get(metric)
        if value is None:
            checks.append(Check(budget.name, metric, limit, None, "n/a"))
        else:
            checks.append(Check(budget.name, metric, limit, value, "pass" if value < limit else "fail"))
    return BudgetResult(budget, tuple(checks))


def power_label(energy_mj: float | None, labels: list[PowerLabel] | None = None) -> str:
    """The seed's Power label from measured energy per inference; ``n/a`` if not measured."""
    if energy_mj is None:
        return "n/a"
    labels = labels if labels is not None else load_budgets().power_labels
    for p in labels[:-1]:
        if energy_mj < (p.below_mj or 0.0):
            return p.label
    return labels[-1].label  # the unbounded label (BudgetFile validates it is last)
