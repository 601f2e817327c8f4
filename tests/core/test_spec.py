from pathlib import Path

import pytest

from orchestrator.coordinator.planning import plan
from orchestrator.spec.matrix import load_spec, loads_spec
from orchestrator.spec.yamlpos import SpecError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

GOOD = """\
name: t
models: [mobilenet_v3_small, tiny_cnn]
backends: [xnnpack, coreml]
devices: [A17-Pro, "a15", host-cpu]
parameters:
  input_resolution: [224, 160]
  repeats: 2
"""


def test_examples_validate_and_plan():
    seed = load_spec(EXAMPLES / "seed-matrix.yaml")
    cells = plan(seed).cells
    # 3 device classes x 5 backends x 1 model, all runnable on iOS classes
    assert len(cells) == 15
    assert {c.device_class for c in cells} == {"A17-Pro", "A15", "M2"}
    assert {c.backend for c in cells} == {"coreml", "mps", "xnnpack", "coreml-int8", "xnnpack-int8"}
    quick = load_spec(EXAMPLES / "host-quick.yaml")
    assert {c.device_class for c in plan(quick).cells} == {"host-cpu"}


def test_plan_skips_backends_a_class_cannot_run():
    p = plan(loads_spec(GOOD))
    # coreml does not run on host-cpu: 2 models x 2 res x 2 repeats x (3 classes x 2 backends - 1)
    assert len(p.cells) == 2 * 2 * 2 * 5
    assert any("coreml does not run on host-cpu" in s for s in p.not_applicable)


def test_unknown_backend_names_file_line_and_index(tmp_path):
    f = tmp_path / "spec.yaml"
    f.write_text("name: x\nmodels: [tiny_cnn]\nbackends:\n  - xnnpack\n  - coreml\n  - MSP\ndevices: [A15]\n")
    with pytest.raises(SpecError) as exc:
        load_spec(f)
    msg = str(exc.value)
    assert msg.startswith(f"{f}:6: backends[2]: unknown backend 'MSP' (known: xnnpack")
    assert "\n" not in msg


def test_unknown_device_class_and_field_typos_are_reported_with_lines():
    text = "name: x\nmodels: [tiny_cnn]\nbackends: [xnnpack]\ndevices: [A99]\nparameters:\n  iteratons: 5\n"
    with pytest.raises(SpecError) as exc:
        loads_spec(text, "s.yaml")
    problems = exc.value.problems
    assert any(p.startswith("s.yaml:4: devices[0]:") and "unknown device class 'A99'" in p for p in problems)
    assert any(p.startswith("s.yaml:6: parameters.iteratons:") for p in problems)


def test_invalid_yaml_and_bad_values():
    with pytest.raises(SpecError, match=r"^s.yaml:2: invalid YAML"):
        loads_spec("name: x\nmodels: [a\n", "s.yaml")
    with pytest.raises(SpecError, match="input resolution 9 outside"):
        loads_spec(GOOD.replace("[224, 160]", "[9]"))
    with pytest.raises(SpecError, match="unknown zoo model 'resnet9000'"):
        loads_spec(GOOD.replace("tiny_cnn", "resnet9000"))
    with pytest.raises(SpecError, match="empty document"):
        loads_spec("")


def test_aliases_resolve():
    spec = loads_spec(GOOD.replace("[xnnpack, coreml]", "[XNNPACK, int8+coreml, xnnpack_q8]"))
    assert spec.backends == ["xnnpack", "coreml-int8", "xnnpack-int8"]
    assert [d.device_class for d in spec.devices] == ["A17-Pro", "A15", "host-cpu"]


def test_disabled_cells_are_blocked_with_reason():
    spec = loads_spec(GOOD + "disabled:\n  - {backend: coreml, device: A15, reason: 'see issue 42'}\n")
    blocked = [c for c in plan(spec).cells if c.blocked_reason]
    assert blocked and all(c.backend == "coreml" and c.device_class == "A15" for c in blocked)
    assert "see issue 42" in blocked[0].blocked_reason


def test_os_selectors():
    from orchestrator.spec.matrix import os_matches

    spec = loads_spec(GOOD.replace('"a15"', '"A15 ios>=16.2"'))
    label = spec.devices[1].label()
    assert label == "A15 ios>=16.2"
    assert os_matches(label, "16.2") and os_matches(label, "17.0.1") and not os_matches(label, "16.1")
    assert os_matches("A15", "12.0")
    assert not os_matches("M2 ios<16", "16.5") and os_matches("M2 ios==16.5", "16.5.0")


def test_label_selectors():
    from orchestrator.spec.matrix import labels_match, os_matches

    spec = loads_spec(GOOD.replace('"a15"', '"A15 ios>=16.2 label=lab-b, label=charger"'))
    label = spec.devices[1].label()
    assert label == "A15 ios>=16.2 label=charger label=lab-b" and spec.devices[1].labels == ["charger", "lab-b"]
    assert labels_match(label, ["lab-b", "charger", "x"]) and not labels_match(label, ["lab-b"])
    assert os_matches(label, "16.3") and labels_match("A15", [])
    with pytest.raises(SpecError, match=r"label=NAME"):
        loads_spec(GOOD.replace('"a15"', '"A15 label=bad/label"'))
