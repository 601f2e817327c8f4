"""Hypothesis strategies shared by the fuzz tests: hostile JSON/YAML-ish values.

Bounded sizes keep each example cheap; the "huge" cases are built explicitly where a
test needs them instead of letting hypothesis grow megabyte values.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st

# Moderate and deterministic: the suite runs in the default `pytest -q` on 2 shared cores.
FUZZ = settings(max_examples=150, deadline=None, derandomize=True)

# every float hypothesis can make, NaN and +-inf included
any_float = st.floats(allow_nan=True, allow_infinity=True)
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), any_float,
                    st.text(max_size=40))
# JSON-shaped values of bounded depth and width
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)), max_leaves=25)
