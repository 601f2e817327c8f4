"""Process configuration from the environment (one place, read lazily)."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_url() -> str:
    return os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)


def data_dir() -> Path:
    base = os.environ.get("BENCHFARM_HOME") or os.path.join(
        os.environ.get("XDG_DATA_HOME", os.path.expanduser("~/.local/share")), "benchfarm"
    )
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url() -> str:
    """PostgreSQL when DATABASE_URL is set, else a SQLite file (BENCHFARM_DB or the data dir)."""
    if url := os.environ.get("DATABASE_URL"):
        return url
    db = os.environ.get("BENCHFARM_DB") or str(data_dir() / "benchfarm.db")
    return f"sqlite:///{db}"


def sqlite_synchronous() -> str:
    """SQLite's commit durability (``orchestrator.store.db``): NORMAL, or FULL (an fsync per commit)."""
    value = os.environ.get("BENCHFARM_SQLITE_SYNCHRONOUS", "NORMAL").upper()
    if value not in ("NORMAL", "FULL"):
        raise ValueError(f"BENCHFARM_SQLITE_SYNCHRONOUS must be NORMAL or FULL, not {value!r}")
    return value


def artifacts_dir() -> Path:
    path = Path(os.environ.get("BENCHFARM_ARTIFACTS") or data_dir() / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def exporter_platform() -> str:
    """The platform this process exports for: 'macos' on Darwin, else 'linux'."""
    import platform

    return "macos" if platform.system() == "Darwin" else "linux"
