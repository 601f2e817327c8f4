"""The matrix spec never crashes on bad input: every rejection is a SpecError whose every
line names ``file:line:``; random YAML text and mutated valid specs alike."""

from __future__ import annotations

import re
import resource
import subprocess
import sys

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.spec.matrix import MatrixSpec, loads_spec
from orchestrator.spec.yamlpos import SpecError
from tests.fuzz.strategies import FUZZ, json_values

SOURCE = "fuzz.yaml"
LINE = re.compile(rf"^{re.escape(SOURCE)}:\d+: \S")
VALID = {
    "name": "fuzz", "models": ["tiny_cnn"], "backends": ["xnnpack"], "devices": ["host-cpu", "A15"],
    "parameters": {"input_resolution": [64], "batch_size": [1], "iterations": 5, "warmup": 1, "repeats": 1,
                   "timeout_s": 60, "compute_units": "all"},
}
FIELDS = [("name",), ("models",), ("backends",), ("devices",), ("description",), ("disabled",),
          *[("parameters", k) for k in VALID["parameters"]]]


def check(text: str) -> MatrixSpec | None:
    """Load ``text``; the only acceptable failure is a SpecError naming file:line on every line."""
    try:
        return loads_spec(text, SOURCE)
    except SpecError as exc:
        assert exc.problems, "a SpecError without problems"
        for problem in exc.problems:
            assert LINE.match(problem), f"problem without file:line: {problem!r}"
        return None


@FUZZ
@given(st.text(max_size=400))
def test_random_text_is_a_spec_or_a_located_error(text: str) -> None:
    check(text)


yaml_punctuation = st.text(alphabet=list(":-[]{},&*!|>'\"#%@`?\n \t") + ["a", "1", "é", "\u2028", "\x00"],
                           max_size=200)


@FUZZ
@given(yaml_punctuation)
def test_yaml_punctuation_soup_is_a_located_error(text: str) -> None:
    check(text)


@FUZZ
@given(st.sampled_from(FIELDS), json_values, st.booleans())
def test_a_mutated_valid_spec_is_valid_or_a_located_error(path: tuple[str, ...], value: object,
                                                          delete: bool) -> None:
    doc = yaml.safe_load(yaml.safe_dump(VALID))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        parent.pop(path[-1], None)
    else:
        parent[path[-1]] = value
    # safe_dump writes NaN/inf as .nan/.inf and unicode as is: YAML can carry them all
    spec = check(yaml.safe_dump(doc, allow_unicode=True))
    if spec is not None:  # whatever was accepted is within the documented bounds
        assert 1 <= spec.parameters.iterations <= 100_000 and 1 <= spec.parameters.timeout_s <= 86400
        assert all(16 <= r <= 2048 for r in spec.parameters.input_resolution)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 1e308, -1, 2**64, "9" * 5000,
                                   [64] * 20_000, "ünïcødé ☃", None, {"nested": [1]}])
def test_numbers_and_sizes_out_of_range_are_located(value: object) -> None:
    doc = yaml.safe_load(yaml.safe_dump(VALID))
    doc["parameters"]["iterations"] = value
    assert check(yaml.safe_dump(doc, allow_unicode=True)) is None


def test_a_huge_resolution_list_is_accepted_only_within_bounds() -> None:
    doc = yaml.safe_load(yaml.safe_dump(VALID))
    doc["parameters"]["input_resolution"] = [64] * 19_999 + [4096]
    with pytest.raises(SpecError, match=r"^fuzz\.yaml:\d+: parameters\.input_resolution: 20,000 entries"):
        loads_spec(yaml.safe_dump(doc), SOURCE)
    doc["parameters"]["input_resolution"] = [*range(16, 79), 4096]
    with pytest.raises(SpecError, match=r"^fuzz\.yaml:\d+: parameters\.input_resolution.*4096"):
        loads_spec(yaml.safe_dump(doc), SOURCE)


LAUGHS_DEPTH = 8  # 9**8 = 43 million list items from a 400-byte document


def _alias_bomb(depth: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, depth)]
    return "\n".join([*lines, f"name: n\nmodels: *a{depth - 1}\nbackends: [xnnpack]\ndevices: [host-cpu]"])


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def test_a_yaml_alias_bomb_is_refused_quickly_and_within_memory() -> None:
    code = ("import sys\nfrom orchestrator.spec.matrix import loads_spec\nfrom orchestrator.spec.yamlpos import "
            "SpecError\ntry:\n    loads_spec(sys.stdin.read(), 'bomb.yaml')\nexcept SpecError as e:\n"
            "    print(str(e).splitlines()[0])\n")
    try:
        out = subprocess.run([sys.executable, "-c", code], input=_alias_bomb(LAUGHS_DEPTH), capture_output=True,
                             text=True, timeout=20, preexec_fn=_limit_memory)
    except subprocess.TimeoutExpired:
        pytest.fail("a 400-byte spec kept the validator busy for 20 s")
    assert out.returncode == 0 and out.stdout.startswith("bomb.yaml:"), out.stderr[-500:]
