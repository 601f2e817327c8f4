"""hosts.yaml validation: catalog-resolved device classes and file:line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.fleetops.inventory import load_inventory
from orchestrator.spec.yamlpos import SpecError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hosts.yaml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hosts.yaml"
    path.write_text(text)
    return path


def test_example_inventory_is_valid():
    inv = load_inventory(EXAMPLE)
    builders = [h for h in inv.hosts if "harness-builder" in h.roles]
    assert builders and all(h.platform == "macos" for h in builders)
    # aliases resolve to catalog class ids
    assert all(c in {"A17-Pro", "A16", "A15", "M2", "host-cpu"} for h in inv.hosts for c in h.device_classes)


def test_aliases_resolve_and_paths_are_relative_to_the_file(tmp_path):
    inv = load_inventory(_write(tmp_path, """\
known_hosts: ssh/known_hosts
hosts:
  - name: mac-1
    hostname: 10.0.0.2
    user: bench
    key_file: ssh/id_ed25519
    platform: macos
    roles: [agent]
    device_classes: [a17pro, "A15 Bionic"]
"""))
    host = inv.hosts[0]
    assert host.device_classes == ["A17-Pro", "A15"]
    assert host.key_file == str(tmp_path / "ssh" / "id_ed25519")
    assert inv.known_hosts == str(tmp_path / "ssh" / "known_hosts")
    assert host.address == "10.0.0.2"


def test_unknown_device_class_names_file_and_line(tmp_path):
    path = _write(tmp_path, """\
hosts:
  - name: mac-1
    hostname: 10.0.0.2
    user: bench
    platform: macos
    roles: [agent]
    device_classes:
      - A17-Pro
      - A71
""")
    with pytest.raises(SpecError) as info:
        load_inventory(path)
    assert f"{path}:9: hosts[0].device_classes[1]: unknown device class 'A71'" in str(info.value)


def test_harness_builder_must_be_macos_and_names_unique(tmp_path):
    path = _write(tmp_path, """\
hosts:
  - {name: a, hostname: h1, user: u, platform: linux, roles: [harness-builder]}
  - {name: b, hostname: h2, port: 2222, user: u, platform: linux, roles: [agent, exporter]}
  - {name: b, hostname: h3, user: u, platform: linux, roles: [agent], colour: red}
""")
    with pytest.raises(SpecError) as info:
        load_inventory(path)
    text = str(info.value)
    assert f"{path}:2: hosts[0]: role harness-builder needs platform macos" in text
    assert f"{path}:4: hosts[2].colour: Extra inputs are not permitted" in text
