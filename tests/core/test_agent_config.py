"""The agent's config file (``benchfarm agent --config``): validated like every YAML input,
errors name file:line:field, flags override the file. Pure unit tests: no Redis."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.config_file import AgentFile, load_agent_file, resolve
from orchestrator.cli.main import app
from orchestrator.spec.yamlpos import SpecError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    return path


def test_the_example_loads() -> None:
    conf = load_agent_file(EXAMPLES / "agent.yaml")
    assert conf.name == "mac-mini-1" and conf.lease_ttl_s == 30 and conf.host_slots == 1
    assert conf.drivers is not None and conf.drivers.names() == ["host", "ios"]
    ios = conf.drivers.ios.options()
    assert ios["startup_allowance_s"] == 60 and ios["ios17_tunnel"] == "userspace"
    assert ios["harness_ipa"] == str(Path("~/.benchfarm/harness/BenchfarmHarness.ipa").expanduser())


def test_a_valid_file_keeps_only_what_it_sets(tmp_path: Path) -> None:
    path = write(tmp_path, "drivers:\n  ios:\n    startup_allowance_s: 5\n    harness_ipa: build/h.ipa\n  host:\n")
    conf = load_agent_file(path)
    assert conf.name is None and conf.lease_ttl_s is None
    assert conf.drivers is not None and conf.drivers.host is not None  # a bare "host:" selects the driver
    # unset options stay out, so the driver's own defaults apply; relative paths are the file's
    assert conf.drivers.ios.options() == {"startup_allowance_s": 5.0, "harness_ipa": str(tmp_path / "build/h.ipa")}


def test_an_unknown_key_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: a\ndrivers:\n  ios:\n    usbmux_address: 127.0.0.1:27015\n"
                           "    startup_alowance_s: 5\n")
    with pytest.raises(SpecError) as exc:
        load_agent_file(path)
    assert str(exc.value).startswith(f"{path}:5: drivers.ios.startup_alowance_s: Extra inputs are not permitted")


@pytest.mark.parametrize("text,line,field", [
    ("lease_ttl_s: soon\n", 1, "lease_ttl_s"),
    ("name: a\nhost_slots: 0\n", 2, "host_slots"),
    ("drivers:\n  ios:\n    ios17_tunnel: kernel\n", 3, "drivers.ios.ios17_tunnel"),
    ("drivers:\n  ios:\n    call_timeout_s: [1]\n", 3, "drivers.ios.call_timeout_s"),
    ("drivers: [ios]\n", 1, "drivers"),
], ids=["not-a-number", "too-small", "not-a-choice", "list-for-float", "list-for-mapping"])
def test_a_bad_type_names_file_line_and_field(tmp_path: Path, text: str, line: int, field: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as exc:
        load_agent_file(path)
    assert str(exc.value).startswith(f"{path}:{line}: {field}: "), str(exc.value)


def test_flags_override_the_file_and_defaults_fill_the_rest() -> None:
    conf = AgentFile.model_validate({"name": "file", "lease_ttl_s": 10, "drivers": {
        "ios": {"usbmux_address": "file:1", "call_timeout_s": 7, "startup_allowance_s": 60}}})
    merged = resolve(conf, name="flag", ios={"startup_allowance_s": 5.0})
    assert merged.name == "flag" and merged.lease_ttl_s == 10 and merged.host_slots == 1
    assert merged.drivers is not None and merged.drivers.names() == ["ios"]  # the file chose the drivers
    assert merged.drivers.ios.options() == {"usbmux_address": "file:1", "call_timeout_s": 7, "startup_allowance_s": 5}
    # --driver given: it decides the drivers; the file's ios options still apply to ios
    both = resolve(conf, drivers=["host", "ios"], lease_ttl_s=3)
    assert both.drivers is not None and both.drivers.names() == ["host", "ios"] and both.lease_ttl_s == 3
    assert both.drivers.ios.options()["call_timeout_s"] == 7
    # no file, no flags: the built-in defaults (host driver, 30 s leases)
    bare = resolve(AgentFile())
    assert bare.drivers is not None and bare.drivers.names() == ["host"] and bare.lease_ttl_s == 30
    with pytest.raises(SpecError, match="command line: lease_ttl_s: "):
        resolve(AgentFile(), lease_ttl_s=0)


def test_the_cli_exits_2_naming_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: a\nlease_ttl: 3\n")
    result = CliRunner().invoke(app, ["agent", "--config", str(path)])
    assert result.exit_code == 2
    assert f"{path}:2: lease_ttl: Extra inputs are not permitted" in result.output.replace("\n", "")
    result = CliRunner().invoke(app, ["agent", "--ios-startup-allowance", "-1", "--driver", "ios"])
    assert result.exit_code == 2 and "startup_allowance_s" in result.output


def test_labels_from_file_and_flags(tmp_path: Path) -> None:
    path = write(tmp_path, "labels: [lab-b]\ndevice_labels:\n  udid-1: [charger]\n")
    merged = resolve(load_agent_file(path), labels=["rack-3", "lab-b"])
    assert merged.labels == ["lab-b", "rack-3"] and merged.device_labels == {"udid-1": ["charger"]}
    with pytest.raises(SpecError, match=r":1: labels\[0\]: "):
        load_agent_file(write(tmp_path, "labels: ['no spaces']\n"))


def test_agent_labels_per_device() -> None:
    from agents.agent import AgentConfig

    cfg = AgentConfig(labels=["lab-b"], device_labels={"udid-1": ["charger"]})
    assert cfg.labels_of("udid-1") == ["charger", "lab-b"] and cfg.labels_of("other") == ["lab-b"]


def test_host_inventory_labels_become_key_value_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    from agents.config_file import inventory_labels
    from orchestrator.spec.matrix import labels_match, loads_spec

    monkeypatch.setenv("BENCHFARM_HOST_LABELS", '{"usb_hub": "anker-10", "rack": "a"}')
    labels = inventory_labels()
    assert labels == ["rack:a", "usb_hub:anker-10"]
    assert resolve(AgentFile(), labels=labels).labels == labels  # valid agent labels
    spec = loads_spec("name: s\nmodels: [tiny_cnn]\nbackends: [xnnpack]\ndevices: ['A15 label=rack:a']\n")
    assert labels_match(spec.devices[0].label(), labels) and not labels_match("A15 label=rack:b", labels)
    monkeypatch.setenv("BENCHFARM_HOST_LABELS", "[1, 2]")
    with pytest.raises(SpecError, match="JSON object"):
        inventory_labels()
