"""The Swift harness source against the contract and the exporter, read as text.

The core's behaviour is compiled and tested with Swift by ``agents/harness/ios/scripts/swift-env.sh``
(a ``.ci/run`` step, root only); these checks run everywhere and pin what that cannot: the
project builds against the exporter's ExecuTorch release, and the Swift sources name every key
and category of the schemas.
"""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import numpy as np
import yaml

from agents.harness.contract import GOLDEN_MULTIPLIER, MAX_INPUT_ELEMENTS, golden_input, schema

IOS_DIR = Path(__file__).resolve().parents[2] / "agents" / "harness" / "ios"
CORE_DIR = IOS_DIR / "HarnessCore" / "Sources" / "HarnessCore"
APP_DIR = IOS_DIR / "BenchfarmHarness"


def _src(*files: str) -> str:
    return "\n".join((CORE_DIR / f).read_text() if (CORE_DIR / f).exists() else (APP_DIR / f).read_text()
                     for f in files)


def _all_swift() -> str:
    files = sorted([*CORE_DIR.glob("*.swift"), *APP_DIR.glob("*.swift")])
    assert files, f"no Swift sources under {IOS_DIR}"
    return "\n".join(f.read_text() for f in files)


def _project() -> dict:
    return yaml.safe_load((IOS_DIR / "project.yml").read_text())


def test_result_encoder_names_every_schema_property():
    sch = schema("result")
    literals = set(re.findall(r'"([a-z_0-9]+)"', _src("Result.swift")))
    # properties the agent adds after validating the harness's document are not the harness's to write
    agent_written = {k for k, v in sch["properties"].items() if v.get("x-written-by") == "agent"}
    assert "device_metrics" in agent_written and not agent_written & literals
    keys = (set(sch["properties"]) - agent_written) | set(sch["$defs"]["battery"]["properties"])
    for block in ("producer", "device", "output", "error"):
        keys |= set(sch["properties"][block]["properties"])
    assert not keys - literals, f"the Swift result encoder never writes {sorted(keys - literals)}"
    assert "runtime_version" in literals


def test_frame_pipeline_block_names_every_schema_property():
    block = schema("result")["$defs"]["frame_pipeline"]
    times = schema("result")["$defs"]["times"]["properties"]
    keys = set(block["properties"]) | set(block["properties"]["frame"]["properties"]) | set(times)
    literals = set(re.findall(r'"([a-z_0-9]+)"', _src("FramePipeline.swift")))
    assert not keys - literals, f"FramePipeline.swift never writes {sorted(keys - literals)}"
    assert set(block["required"]) <= literals
    # the phone's pipeline: its Session fills the block from the stages it times
    assert "FramePipeline.block(" in _src("Session.swift") and "frameSize" in _src("PixelPipeline.swift")


def test_job_decoder_knows_exactly_the_schema_keys():
    block = re.search(r"static let keys: Set<String> = \[(.*?)\]", _src("Job.swift"), re.S)
    assert block
    assert set(re.findall(r'"([a-z_0-9]+)"', block.group(1))) == set(schema("job")["properties"])
    assert f"{64} * 1024 * 1024" in _src("Job.swift") and MAX_INPUT_ELEMENTS == 64 * 1024 * 1024


def test_error_categories_are_the_schema_enum():
    cats = set(re.findall(r'case \w+ = "([a-z_]+)"', _src("Errors.swift")))
    assert cats == set(schema("result")["properties"]["error"]["properties"]["category"]["enum"])
    thermal = set(schema("result")["properties"]["thermal_before"]["enum"])
    assert {s for s in thermal if f'"{s}"' in _src("DeviceProbe.swift")} == thermal


def test_swift_uses_the_contract_golden_constant_and_formula():
    src = _src("Golden.swift")
    assert {int(c) for c in re.findall(r"multiplier: UInt64 = (\d+)", src)} == {GOLDEN_MULTIPLIER}
    assert "0xFFFF_FFFF" in src and "4294967296.0" in src
    seed, n = 12345, 1000
    swift_like = np.array([np.float32(((i * GOLDEN_MULTIPLIER + seed) & 0xFFFFFFFF) / 4294967296.0)
                           for i in range(n)], dtype=np.float32)
    assert np.array_equal(swift_like, golden_input([n], seed))


def test_project_links_the_exporters_executorch_release():
    exporter = version("executorch")
    proj = _project()
    assert proj["packages"]["ExecuTorch"]["branch"] == f"swiftpm-{exporter}"
    assert proj["settings"]["base"]["EXECUTORCH_VERSION"] == exporter
    target = proj["targets"]["BenchfarmHarness"]
    assert target["info"]["properties"]["BenchfarmExecuTorchVersion"] == "$(EXECUTORCH_VERSION)"
    products = {d.get("product") for d in target["dependencies"]}
    assert {"executorch", "kernels_quantized", "kernels_optimized", "backend_coreml", "backend_xnnpack",
            "HarnessCore"} <= products
    assert target["entitlements"]["properties"]["com.apple.developer.kernel.increased-memory-limit"] is True
    assert (IOS_DIR / proj["packages"]["HarnessCore"]["path"] / "Package.swift").is_file()


def test_app_applies_what_the_job_asks_for():
    src = _all_swift()
    assert "loadMode: .mmap" in src  # the program is mapped, not read into the heap
    assert 'BackendOption(coreMLComputeUnitKey, job.computeUnits)' in src
    assert 'coreMLComputeUnitKey = "compute_unit"' in src
    assert "SHA256Digest.hex(fileAt: model)" in src and "deadline.expired" in src
    # QoS assigned before start(): set from inside the running thread it has no effect
    start = src.index("public func start(qos:")
    assert src.index("thread.qualityOfService = qos", start) < src.index("thread.start()", start)
    assert "options: .atomic" in src and "isIdleTimerDisabled = true" in src
    assert "phys_footprint" in src and "mach_absolute_time" in src and "vImageScale_ARGB8888" in src
