"""`benchfarm harness build` against a Linux sshd standing in for a Mac.

xcodegen/xcodebuild do not exist off macOS: stand-in scripts on the test host's PATH
(through the inventory's env_path, as Homebrew's bin would be on a Mac) record their
arguments and write an .ipa. What is tested is ours: the upload of the harness source,
the command lines, the export options, and the content-addressed, atomic fetch.
"""

from __future__ import annotations

import hashlib
import json
import os
import plistlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli.hosts import harness_app
from orchestrator.fleetops.errors import FleetOpsError
from orchestrator.fleetops.harness import build_harness, source_revision

from .testhosts import FAST, PYTHON, host_entry, write_inventory

XCODEGEN = """#!/bin/sh
echo "xcodegen $*" >> "$FAKE_LOG"
test -f project.yml || { echo "no project.yml in $(pwd)" >&2; exit 1; }
mkdir -p BenchfarmHarness.xcodeproj && echo generated > BenchfarmHarness.xcodeproj/project.pbxproj
"""
XCODEBUILD = """#!/bin/sh
echo "xcodebuild $*" >> "$FAKE_LOG"
while [ $# -gt 0 ]; do
  case "$1" in
    -archivePath) archive="$2"; shift ;;
    -exportPath) export_path="$2"; shift ;;
    -exportOptionsPlist) options="$2"; shift ;;
    archive) mkdir -p "$archive" ;;
  esac
  shift
done
if [ -n "$export_path" ]; then
  test -f "$options" || { echo "missing $options" >&2; exit 65; }
  mkdir -p "$export_path" && cat project.yml Sources/App.swift > "$export_path/BenchfarmHarness.ipa"
fi
"""


@pytest.fixture
def mac(ssh_env, tmp_path):
    fakebin = tmp_path / "fakebin"
    fakebin.mkdir()
    for name, text in (("xcodegen", XCODEGEN), ("xcodebuild", XCODEBUILD)):
        (fakebin / name).write_text(text.replace("$FAKE_LOG", str(tmp_path / "tools.log")))
        (fakebin / name).chmod(0o755)
    entry = host_entry("mac", ssh_env["hosts"][0], ssh_env["key"], tmp_path / "macbase", platform="macos",
                       roles=["harness-builder"], env_path=[str(fakebin), os.path.dirname(PYTHON)])
    return write_inventory(tmp_path / "hosts.yaml", ssh_env["known_hosts"], [entry])


@pytest.fixture
def source(tmp_path) -> Path:
    src = tmp_path / "ios"
    (src / "Sources").mkdir(parents=True)
    (src / "project.yml").write_text("name: BenchfarmHarness\n")
    (src / "Sources" / "App.swift").write_text("print(\"harness\")\n")
    (src / "build").mkdir()
    (src / "build" / "stale.ipa").write_text("an old local build must not be uploaded")
    return src


def test_build_fetches_ipa_into_content_addressed_store(mac, source, tmp_path):
    store = tmp_path / "artifacts" / "harness"
    result = CliRunner().invoke(harness_app, ["build", "--host", "mac", "--source", str(source), "--store",
                                              str(store), "-i", str(tmp_path / "hosts.yaml"),
                                              "--team-id", "ABCDE12345"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    expected = b"name: BenchfarmHarness\nprint(\"harness\")\n"
    sha = hashlib.sha256(expected).hexdigest()
    assert (store / f"{sha}.ipa").read_bytes() == expected
    assert sha in result.stdout
    meta = json.loads((store / f"{sha}.json").read_text())
    assert meta["sha256"] == sha and meta["host"] == "mac" and meta["scheme"] == "BenchfarmHarness"
    assert [p.name for p in store.iterdir() if p.name.startswith(".incoming")] == []

    calls = (tmp_path / "tools.log").read_text().splitlines()
    revision = source_revision(source)
    assert revision.startswith("tree-")  # tmp source is not in a git checkout
    assert meta["build_hash"] == revision
    assert calls[0] == "xcodegen generate --spec project.yml"
    assert calls[1] == "xcodebuild -resolvePackageDependencies -project BenchfarmHarness.xcodeproj " \
                       "-scheme BenchfarmHarness"
    assert calls[2].startswith("xcodebuild -project BenchfarmHarness.xcodeproj -scheme BenchfarmHarness "
                               "-configuration Release -destination generic/platform=iOS")
    assert f"BENCHFARM_BUILD_HASH={revision} DEVELOPMENT_TEAM=ABCDE12345" in calls[2]
    assert calls[2].endswith(" archive")
    assert "-exportArchive" in calls[3] and "-exportOptionsPlist ExportOptions.plist" in calls[3]
    remote_src = tmp_path / "macbase" / "harness" / "src"
    options = plistlib.loads((remote_src / "ExportOptions.plist").read_bytes())
    assert options["method"] == "development"
    assert not (remote_src / "build" / "stale.ipa").exists()


def test_refuses_non_builder_and_non_xcodegen_source(mac, source, tmp_path):
    host = mac.hosts[0]
    with pytest.raises(FleetOpsError, match="not 'harness-builder'"):
        build_harness(host.model_copy(update={"roles": ["agent"]}), mac.known_hosts, source, tmp_path,
                      timeouts=FAST)
    (source / "project.yml").unlink()
    with pytest.raises(FleetOpsError, match="project.yml not found"):
        build_harness(host, mac.known_hosts, source, tmp_path, timeouts=FAST)


def test_failed_xcodebuild_reports_exit_code_and_stderr(mac, source, tmp_path):
    broken = Path(mac.hosts[0].env_path[0]) / "xcodebuild"
    broken.write_text("#!/bin/sh\necho 'error: No signing certificate \"iOS Development\" found' >&2\n"
                      "exit 65\n")
    with pytest.raises(FleetOpsError) as info:
        build_harness(mac.hosts[0], mac.known_hosts, source, tmp_path / "store", timeouts=FAST)
    assert info.value.exit_code == 65 and "No signing certificate" in info.value.stderr_tail
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").iterdir())
