"""The SQLite write gate: one holder at a time across threads and processes (a real flock on a
real file, a real second interpreter), handed over as soon as the holder lets go; nothing to
hold on PostgreSQL or an in-memory database."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from contextlib import nullcontext
from pathlib import Path

from orchestrator.store.db import SqliteWriteGate, write_gate

HOLD_S = 0.6
HOLDER = """
import sys, time
from orchestrator.store.db import write_gate
with write_gate(sys.argv[1]):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
print("released", flush=True)
"""


def test_a_second_process_waits_for_the_holder_and_then_gets_the_gate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bf.db'}"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, url, str(HOLD_S)], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[2])
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        t = time.monotonic()
        with write_gate(url):
            waited = time.monotonic() - t
        assert holder.wait(10) == 0
    finally:
        holder.kill()
    assert waited > HOLD_S / 2, f"got the gate after {waited:.3f} s while another process held it"
    assert (tmp_path / "bf.db.write-lock").exists()


def test_threads_of_one_process_hold_it_one_at_a_time(tmp_path: Path) -> None:
    gate = SqliteWriteGate(str(tmp_path / "x.write-lock"))
    inside, most, errors = [0], [0], []
    lock = threading.Lock()

    def writer() -> None:
        try:
            for _ in range(20):
                with gate.held():
                    with lock:
                        inside[0] += 1
                        most[0] = max(most[0], inside[0])
                    time.sleep(0.001)
                    with lock:
                        inside[0] -= 1
        except Exception as exc:  # reported below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and most[0] == 1 and inside[0] == 0


def test_no_gate_where_the_database_has_its_own_row_locks() -> None:
    assert isinstance(write_gate("postgresql+psycopg2://u@localhost/db"), nullcontext)
    assert isinstance(write_gate("sqlite://"), nullcontext)


def test_a_forked_child_gets_the_gate_its_parent_held_when_it_forked(tmp_path: Path) -> None:
    gate = SqliteWriteGate(str(tmp_path / "f.write-lock"))
    with gate.held():
        pid = os.fork()
        if pid == 0:  # the child: the parent still holds the gate, so wait for it, then hold it
            code = 1
            try:
                with gate.held():
                    code = 0
            finally:
                os._exit(code)
        time.sleep(0.2)
        assert os.waitpid(pid, os.WNOHANG) == (0, 0), "the child took the gate its parent holds"
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
