"""A recorded step timeline (labgrid's @step): what happened to a device, and how long it took.

The timeline travels with the attempt into the database; it is how orchestration
overhead is measured and how a slow job is explained.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Timeline:
    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []
        self._t0 = time.time()

    @contextmanager
    def step(self, name: str, **args: Any) -> Iterator[dict[str, Any]]:
        entry: dict[str, Any] = {"step": name, "start": round(time.time() - self._t0, 4), **args}
        started = time.perf_counter()
        try:
            yield entry
            entry["ok"] = True
        except BaseException as exc:
            entry["ok"] = False
            entry["error"] = f"{type(exc).__name__}: {exc}"[:500]
            raise
        finally:
            entry["duration_s"] = round(time.perf_counter() - started, 4)
            self.steps.append(entry)

    def total(self, name: str) -> float:
        return sum(s["duration_s"] for s in self.steps if s["step"] == name)
