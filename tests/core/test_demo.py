"""`benchfarm demo` end to end on a small host-CPU spec (the seed matrix takes minutes): it
writes each run's HTML report and says where; afterwards `runs`, `report latest`,
`matrix latest:NAME` and an id prefix find the run; the report opens in headless Chromium
with the network cut off."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.browser import go_offline, headless_chromium

SPEC = """\
name: demo-tiny
models: [tiny_cnn]
backends: [xnnpack]
devices: [host-cpu]
parameters:
  input_resolution: [64]
  warmup: 1
  iterations: 5
  timeout_s: 60
"""


def cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args], env=dict(env, COLUMNS="80"),
                          capture_output=True, text=True, timeout=timeout)


def test_demo_ends_with_its_report_and_the_run_is_found(bf_env: dict[str, str], tmp_path: Path) -> None:
    spec = tmp_path / "demo-tiny.yaml"
    spec.write_text(SPEC)
    demo = cli(bf_env, "demo", "--spec", str(spec), "--timeout", "240", timeout=400)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    reports = re.findall(r"^report: (\S+\.html)$", demo.stdout, re.M)
    assert len(reports) == 1, demo.stdout
    report = Path(reports[0])
    assert report.is_file() and report.read_text().startswith("<!DOCTYPE html>")
    assert "benchfarm runs" in demo.stdout and "report latest" in demo.stdout and "dashboard:" in demo.stdout

    runs = cli(bf_env, "runs")
    assert runs.returncode == 0 and "demo-tiny" in runs.stdout and "measured" in runs.stdout, runs.stdout
    short = runs.stdout.splitlines()[2].split()[0]
    assert short in report.name and len(short) == 7  # git-like: the run's id shortened
    out = tmp_path / "r.html"
    assert cli(bf_env, "report", "latest", "-o", str(out)).returncode == 0 and out.read_text() == report.read_text()
    matrix = cli(bf_env, "matrix", "latest:demo-tiny")
    assert matrix.returncode == 0 and "XNNPACK" in matrix.stdout and "Host CPU" in matrix.stdout, matrix.stdout
    status = cli(bf_env, "status", short[:5])
    assert status.returncode == 0 and "succeeded" in status.stdout, status.stdout + status.stderr

    with headless_chromium() as browser:
        go_offline(browser)
        browser.get(report.as_uri())
        from selenium.webdriver.common.by import By

        assert browser.find_elements(By.CSS_SELECTOR, "svg.plot.box"), "the report's plots did not render"
        assert "tiny_cnn" in browser.find_element(By.TAG_NAME, "body").text
        fetched = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)")
        assert not [u for u in fetched if not u.startswith(("file:", "data:"))], fetched  # nothing from a network
