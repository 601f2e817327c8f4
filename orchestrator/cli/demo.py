"""``benchfarm demo``: the whole path on one machine, with real parts.

Starts (as child processes) a virtual iOS fleet (A17 Pro, A15, M2 behind a virtual
usbmuxd), a coordinator worker, a Linux exporter worker and one agent with the ``ios``
driver (pymobiledevice3 against the virtual usbmuxd) and the ``host`` driver, using the
Redis at REDIS_URL or — when none answers — a private redis-server it starts and stops
itself. Then it runs the seed's matrix on the virtual devices (simulated, and labelled
so) and the host-CPU matrix (measured), prints both, and shuts everything down.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import redis

from orchestrator import config
from orchestrator.cli.common import console, err_console

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DASHBOARD_URL = "http://127.0.0.1:8000/ui"
NEXT_COMMANDS = ("benchfarm runs", "benchfarm report latest -o report.html", "benchfarm matrix latest:seed-matrix",
                 "benchfarm doctor")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def redis_server_binary() -> str | None:
    try:  # the `redis-server` PyPI package ships a binary
        import redis_server  # type: ignore[import-not-found]

        return str(redis_server.REDIS_SERVER_PATH)
    except (ImportError, AttributeError):
        return shutil.which("redis-server")


@contextmanager
def private_redis(workdir: Path) -> Iterator[str]:
    binary = redis_server_binary()
    if binary is None:
        raise RuntimeError("no Redis answers at REDIS_URL and no redis-server binary was found "
                           "(pip install redis-server, or apt-get install redis-server)")
    port = _free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while not redis_answers(url):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the private redis-server did not start")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def child(args: list[str], log_path: Path, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli.main", *args], env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@contextmanager
def virtual_fleet(fleet_yaml: Path, log_path: Path, env: dict[str, str]) -> Iterator[str]:
    """Serve the virtual fleet; yields its usbmuxd address once it listens."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "agents.virtual", "serve", "--fleet", str(fleet_yaml),
                                 "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0"], env=env,
                                stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
    assert proc.stdout is not None  # stdout=PIPE
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        line = proc.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(f"the virtual fleet did not start (see {log_path})")
        yield json.loads(line)["usbmux"]
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_for_devices(classes: set[str], timeout: float = 120) -> None:
    from device_inventory.fleet import Fleet

    fleet = Fleet.from_url(config.redis_url())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        up = {d.get("device_class") for d in fleet.devices() if d.get("state") == "available"}
        if classes <= up:
            return
        time.sleep(0.5)
    raise RuntimeError(f"devices of {sorted(classes)} did not come up within {timeout:.0f} s")


def write_html_report(run_id: str, name: str) -> Path:
    """The run's HTML report (self-contained: opens offline) under the data directory."""
    from orchestrator.cli.report import write_output
    from orchestrator.reports.build import build_report
    from orchestrator.reports.html import report_html
    from orchestrator.store.db import session

    reports = config.data_dir() / "reports"
    reports.mkdir(exist_ok=True)
    path = reports / f"{name}-{run_id}.html"
    with session() as s:
        write_output(report_html(build_report(s, run_id)), path, quiet=True)
    return path


def dashboard_url(url: str = DASHBOARD_URL) -> str | None:
    """The dashboard's URL if a ``benchfarm api`` answers there."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return url if resp.status == 200 else None
    except OSError:
        return None


def print_next_steps(reports: list[Path], open_first: bool) -> None:
    """What the demo leaves behind and what to type next."""
    for path in reports:
        console.print(f"report: [bold]{path}[/]", soft_wrap=True)
    live = dashboard_url()
    console.print("next:", highlight=False)
    for command in NEXT_COMMANDS:
        console.print(f"  {command}", soft_wrap=True, highlight=False)
    console.print(f"dashboard: {live}" if live else
                  f"dashboard: benchfarm api --port 8000, then open {DASHBOARD_URL}", soft_wrap=True, highlight=False)
    if open_first and reports:
        import webbrowser

        if not webbrowser.open(reports[0].as_uri()):
            console.print("no browser to open it with: open the report path above", highlight=False)


def run_demo(spec_paths: list[Path], fleet_yaml: Path | None, timeout: float, open_report: bool = False) -> int:
    from orchestrator.cli.common import fleet_or_exit, wait_for_run
    from orchestrator.cli.matrix_view import print_matrix, print_resolution_tables
    from orchestrator.coordinator.submit import submit
    from orchestrator.spec.matrix import load_spec
    from orchestrator.spec.yamlpos import SpecError
    from orchestrator.store.db import session

    spec_paths = spec_paths or [EXAMPLES / "seed-matrix.yaml", EXAMPLES / "host-quick.yaml"]
    try:
        specs = [(p, load_spec(p)) for p in spec_paths]
    except SpecError as exc:
        err_console.print(str(exc))
        return 2
    classes = {sel.device_class for _, spec in specs for sel in spec.devices}
    need_virtual = any(c != "host-cpu" for c in classes)
    logs = config.data_dir() / "demo-logs"
    logs.mkdir(exist_ok=True)
    from orchestrator.store import migrations

    before, after = migrations.upgrade_url()  # `benchfarm db upgrade`, before any process opens the store
    console.print(f"results database schema: {before or 'none'} -> {after}")
    statuses, reports = [], []
    with ExitStack() as stack:
        if not redis_answers(config.redis_url()):
            url = stack.enter_context(private_redis(logs))
            os.environ["REDIS_URL"] = url
            console.print(f"no Redis at the configured URL: started a private one at {url}")
        from orchestrator.celery_app import app

        app.conf.broker_url = config.redis_url()
        env = dict(os.environ)
        tag = f"{os.getpid()}"
        with console.status("starting virtual fleet, coordinator, exporter and agent"):
            agent_args = ["agent", "--driver", "host", "--name", f"demo{tag}"]
            if need_virtual:
                usbmux = stack.enter_context(virtual_fleet(fleet_yaml or EXAMPLES / "virtual-fleet.yaml",
                                                           logs / "virtual-fleet.log", env))
                agent_args += ["--driver", "ios", "--usbmux", usbmux]
            stack.enter_context(child(["worker", "--queues", "coordinator", "--concurrency", "4",
                                       "--hostname", f"coordinator-{tag}@demo"], logs / "coordinator.log", env))
            stack.enter_context(child(["worker", "--queues", "export.linux", "--pool", "solo",
                                       "--concurrency", "1", "--hostname", f"exporter-{tag}@demo"],
                                      logs / "exporter.log", env))
            stack.enter_context(child(agent_args, logs / "agent.log", env))
            wait_for_devices(classes)
        fleet = fleet_or_exit()
        # one run after the other: exports and simulated runs must not share the CPU
        # with the host benchmark, whose numbers are real measurements
        for path, spec in specs:
            run_id, outbox = submit(spec, path.read_text(), fleet, source=str(path),
                                    requested_by="benchfarm demo")
            outbox.send(app)
            console.print(f"run [bold]{run_id}[/] submitted: {spec.name} (logs in {logs})", soft_wrap=True)
            statuses.append(wait_for_run(run_id, timeout))
            with session() as s:
                print_matrix(console, s, run_id, compact=True)
                print_resolution_tables(console, s, run_id)
            console.print(f"run {run_id} ({spec.name}): [bold]{statuses[-1]}[/]")
            reports.append(write_html_report(run_id, spec.name))
        with console.status("shutting down"):
            stack.close()
    print_next_steps(reports, open_report)
    return 0 if all(st in ("succeeded", "partial") for st in statuses) else 1
