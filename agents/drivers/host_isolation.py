"""Host measurements worth quoting: the timed loop on a CPU the farm keeps to itself.

The farm's own processes (the agent, its device workers, and where benchfarm starts them the
coordinator and exporter workers and the virtual fleet: ``benchfarm demo``) are pinned with
``sched_setaffinity`` to the *farm* CPUs; the host harness pins itself to the *reserved* ones
(``BENCHFARM_HOST_RESERVE_CPUS``: that many highest-numbered usable CPUs; 0 turns it off; unset,
one on machines with 4 or more CPUs and none below).
Around the timed loop the harness also fixes ExecuTorch's threadpool to the reserved CPUs,
disables the garbage collector and, where permitted, raises its scheduling priority.

Nothing here can move processes benchfarm did not start, so the result's ``host_environment``
says what the loop ran beside: the CPU model and governor, the load average, and the share of
the reserved CPUs' time other processes took meanwhile (/proc/stat minus the harness's own CPU
time). ``isolated`` is true only when the harness is pinned and the process that started it
(the device worker) is kept off its CPUs; otherwise ``not_isolated_because`` says why.
"""

from __future__ import annotations

import contextlib
import gc
import os
import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESERVE_ENV = "BENCHFARM_HOST_RESERVE_CPUS"
PRIORITY_ENV = "BENCHFARM_HOST_PRIORITY"  # "high" (default: nice -10 where permitted) or "normal"
DEFAULT_RESERVE = 1
# Unset, a CPU is reserved only where the farm keeps at least this many: on 2 cores, pinning
# the agent, workers and Redis client traffic onto one CPU slowed the demo ~2x and did not lower
# the CV while other tenants filled the reserved CPU anyway (bench/results/host_cv.json)
MIN_CPUS_FOR_DEFAULT = 4
# nice -10: about 9x the CPU share of a nice-0 competitor (CFS weights 9548 vs 1024); enough to
# keep a background task from splitting the reserved CPU, not a real-time class that could
# starve the machine
HIGH_NICE = -10
CPUSET_FILES = ("/sys/fs/cgroup/cpuset.cpus.effective", "/sys/devices/system/cpu/online")


def parse_cpu_list(text: str) -> list[int]:
    """``0-3,6`` -> [0, 1, 2, 3, 6] (the kernel's cpulist format)."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cpus += range(int(lo), int(hi or lo) + 1)
    return sorted(set(cpus))


def usable_cpus() -> list[int]:
    """Every CPU this process may be pinned to (its cgroup's cpuset), not just its current mask:
    a harness started by a pinned worker still reaches the reserved CPU."""
    for path in CPUSET_FILES:
        try:
            cpus = parse_cpu_list(Path(path).read_text())
        except (OSError, ValueError):
            continue
        if cpus:
            return cpus
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))


def reserve_setting(cpus: int | None = None) -> int:
    raw = os.environ.get(RESERVE_ENV, "")
    if not raw:
        return DEFAULT_RESERVE if (cpus or len(usable_cpus())) >= MIN_CPUS_FOR_DEFAULT else 0
    try:
        return max(0, int(raw))
    except ValueError:
        raise ValueError(f"{RESERVE_ENV}={raw!r}: expected a number of CPUs (0 turns isolation off)") from None


@dataclass(frozen=True)
class CpuPlan:
    harness: tuple[int, ...]
    farm: tuple[int, ...]
    reason: str | None  # why the harness cannot have CPUs to itself; None: it can


def plan(reserve: int | None = None, cpus: list[int] | None = None) -> CpuPlan:
    cpus = cpus if cpus is not None else usable_cpus()
    explicit = reserve is not None or bool(os.environ.get(RESERVE_ENV))
    reserve = reserve_setting(len(cpus)) if reserve is None else reserve
    if reserve <= 0:
        why = f"{RESERVE_ENV}=0" if explicit else (f"{len(cpus)} usable CPUs: none reserved by default below "
                                                  f"{MIN_CPUS_FOR_DEFAULT} ({RESERVE_ENV}=1 reserves one anyway)")
        return CpuPlan(tuple(cpus), tuple(cpus), f"no CPU reserved ({why})")
    if len(cpus) <= reserve:
        return CpuPlan(tuple(cpus), tuple(cpus), f"{len(cpus)} usable CPU(s): none left for the farm's processes")
    return CpuPlan(tuple(cpus[-reserve:]), tuple(cpus[:-reserve]), None)


def pin_farm(p: CpuPlan | None = None) -> bool:
    """Keep this process (and every child it starts from now on) off the reserved CPUs."""
    p = p or plan()
    if p.reason is not None or not hasattr(os, "sched_setaffinity"):
        return False
    try:
        os.sched_setaffinity(0, p.farm)
    except OSError:
        return False
    return True


def governor(cpus: tuple[int, ...]) -> str:
    found = set()
    for c in cpus:
        with contextlib.suppress(OSError):
            found.add(Path(f"/sys/devices/system/cpu/cpu{c}/cpufreq/scaling_governor").read_text().strip())
    return ",".join(sorted(found)) if found else "unavailable"


def _cpu_jiffies(cpus: tuple[int, ...]) -> int | None:
    """Busy jiffies (everything but idle and iowait) of ``cpus`` from /proc/stat."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    busy = 0
    wanted = {f"cpu{c}" for c in cpus}
    for line in lines:
        name, *values = line.split()
        if name in wanted:
            v = [int(x) for x in values]
            busy += sum(v[:8]) - v[3] - v[4]
    return busy


def _own_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


@dataclass
class Isolation:
    """The harness side: pinned at start-up, then one :meth:`timed` block per job."""

    plan: CpuPlan
    pinned: bool = False
    reason: str | None = None
    env: dict[str, Any] = field(default_factory=dict)

    threads: int = 0  # the runtime's threadpool size, 0: left as the runtime chose

    @classmethod
    def start(cls, set_threads: Callable[[int], None] | None = None) -> Isolation:
        """Pin this process to the reserved CPUs and size the runtime's threadpool to them (before
        any program is loaded: a delegate keeps the pool it was created with)."""
        p = plan()
        iso = cls(p, reason=p.reason)
        if p.reason is None:
            try:
                os.sched_setaffinity(0, p.harness)
                iso.pinned = True
            except (OSError, AttributeError) as exc:
                iso.reason = f"sched_setaffinity to CPU {list(p.harness)} refused: {exc}"
        if iso.pinned:
            with contextlib.suppress(OSError):
                shared = set(os.sched_getaffinity(os.getppid())) & set(p.harness)
                if shared:
                    iso.reason = (f"the process that started the harness runs on CPU {sorted(shared)} too: the "
                                  "farm was not pinned (agent started outside benchfarm, or an old agent)")
        if set_threads is not None:
            try:
                set_threads(len(p.harness))
                iso.threads = len(p.harness)
            except Exception:  # noqa: BLE001  an older runtime without the call keeps its own pool
                iso.threads = 0
        return iso

    @contextlib.contextmanager
    def timed(self) -> Iterator[dict[str, Any]]:
        """Around the timed loop: GC off, priority up; yields the host_environment block,
        completed (the foreign CPU share) when the block exits."""
        from agents.drivers.host_harness import cpu_model  # one definition of the CPU's name

        priority = _raise_priority()
        env: dict[str, Any] = {
            "cpu_model": cpu_model(), "cpus_online": len(usable_cpus()),
            "pinned_cpus": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [],
            "farm_cpus": list(self.plan.farm) if self.pinned else [],
            "isolated": self.pinned and self.reason is None, "not_isolated_because": self.reason,
            "governor": governor(self.plan.harness), "gc_disabled": True,
            "priority": priority, "load_avg": [round(x, 2) for x in os.getloadavg()], "foreign_cpu_share": None,
        }
        if self.threads:
            env["threads"] = self.threads
        gc.collect()
        gc.disable()
        busy0, own0, wall0 = _cpu_jiffies(self.plan.harness), _own_cpu_s(), time.monotonic()
        try:
            yield env
        finally:
            gc.enable()
            busy1, own1, wall = _cpu_jiffies(self.plan.harness), _own_cpu_s(), time.monotonic() - wall0
            _restore_priority(priority)
            if busy0 is not None and busy1 is not None and wall > 0 and self.pinned:
                hz = os.sysconf("SC_CLK_TCK")
                foreign = (busy1 - busy0) / hz - (own1 - own0)
                env["foreign_cpu_share"] = round(min(1.0, max(0.0, foreign / (wall * len(self.plan.harness)))), 4)


def _raise_priority() -> str:
    if os.environ.get(PRIORITY_ENV, "high") != "high":
        return "normal"
    try:
        os.setpriority(os.PRIO_PROCESS, 0, HIGH_NICE)
    except (OSError, AttributeError):
        return "normal (raising it was not permitted)"
    return f"nice {HIGH_NICE}"


def _restore_priority(priority: str) -> None:
    if priority.startswith("nice"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, 0)  # the untimed profiling pass runs at normal priority
