"""Run rules: how much measuring makes a cell's number worth quoting, per trigger.

A rule sets, for every cell of a run of that trigger:

- ``min_iterations`` and ``min_duration_s``: the harness keeps iterating until *both* are met
  (MLPerf Mobile's single-stream rule: at least 1024 queries and at least 60 s), so a fast
  model is measured over a minute of device time instead of a few hundred milliseconds, which
  is what lets clock ramps, thermal drift and background wake-ups show in the distribution;
- ``cool_down_to``: before a cell starts, the agent waits (up to ``cool_down_max_s``) until the
  device's thermal state is at or below this one, so a cell does not inherit the previous
  cell's heat (the health gate alone only waits out *serious*/*critical*);
- ``replication_tolerance``: the medians of a cell's repeats may spread by this share of
  their median; beyond it the cell is flagged "repeats disagree" in the matrix and report;
- ``noisy_cv``: a cell (or device) whose coefficient of variation is above this is "noisy".

Defaults: nightly runs follow MLPerf (1024 iterations, 60 s, cool to nominal); PR runs a
lighter rule (200 iterations, 10 s, cool to fair) because adaptive A/B rounds
(``agents.ab``) add the replication a verdict needs; manual runs measure what the spec asks
(no minimum), cooling to fair. A spec overrides any field per trigger, or for every trigger
with ``all`` (a trigger's own entry wins over ``all``)::

    parameters:
      run_rules:
        all: {min_duration_s: 0}          # tests and the demo: light, and they say so
        nightly: {min_iterations: 2048}

The rule that applied is resolved at submit and stored on the run (``runs.run_rules``), so a
report says what its numbers were measured under even after the defaults change.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from orchestrator.spec.types import StrictModel

Thermal = Literal["nominal", "fair", "serious", "critical"]
TRIGGERS = ("nightly", "pr", "manual")
# the harness never runs more timed iterations than the job schema allows, whatever a duration asks
MAX_ITERATIONS = 100_000


class RunRule(StrictModel):
    min_iterations: int = Field(default=0, ge=0, le=MAX_ITERATIONS)
    min_duration_s: float = Field(default=0.0, ge=0, le=3600)
    cool_down_to: Thermal = "fair"
    cool_down_max_s: float = Field(default=120.0, ge=0, le=3600)
    replication_tolerance: float = Field(default=0.05, gt=0, lt=1)
    noisy_cv: float = Field(default=0.10, gt=0, lt=10)


DEFAULTS: dict[str, RunRule] = {
    "nightly": RunRule(min_iterations=1024, min_duration_s=60.0, cool_down_to="nominal", cool_down_max_s=300.0),
    "pr": RunRule(min_iterations=200, min_duration_s=10.0, cool_down_to="fair"),
    "manual": RunRule(),
}


class RuleOverride(StrictModel):
    """The fields a spec sets for one trigger; the others keep the default."""

    min_iterations: int | None = Field(default=None, ge=0, le=MAX_ITERATIONS)
    min_duration_s: float | None = Field(default=None, ge=0, le=3600)
    cool_down_to: Thermal | None = None
    cool_down_max_s: float | None = Field(default=None, ge=0, le=3600)
    replication_tolerance: float | None = Field(default=None, gt=0, lt=1)
    noisy_cv: float | None = Field(default=None, gt=0, lt=10)

    def given(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class RunRules(StrictModel):
    all: RuleOverride | None = None
    nightly: RuleOverride | None = None
    pr: RuleOverride | None = None
    manual: RuleOverride | None = None

    def for_trigger(self, trigger: str) -> RunRule:
        """The rule a run of ``trigger`` is measured under: defaults, then ``all``, then the trigger's."""
        fields = dict(DEFAULTS.get(trigger, DEFAULTS["manual"]).model_dump())
        for override in (self.all, getattr(self, trigger, None)):
            if override is not None:
                fields.update(override.given())
        return RunRule(**fields)

    def source(self, trigger: str) -> str:
        """``spec`` when the spec said anything for this trigger, else ``default``."""
        return "spec" if self.all is not None or getattr(self, trigger, None) is not None else "default"


def resolved(rules: RunRules, trigger: str) -> dict[str, Any]:
    """What is stored on the run: the rule's fields, the trigger and where they came from."""
    return {**rules.for_trigger(trigger).model_dump(), "trigger": trigger, "source": rules.source(trigger)}


def of_run(stored: dict[str, Any] | None) -> RunRule:
    """The rule a stored run was measured under (a run from before run rules: the manual default,
    which asks nothing of the harness)."""
    fields = {k: v for k, v in (stored or {}).items() if k in RunRule.model_fields}
    return RunRule(**fields) if fields else DEFAULTS["manual"]


def iterations(spec_iterations: int, rule: RunRule) -> int:
    return min(MAX_ITERATIONS, max(spec_iterations, rule.min_iterations))
