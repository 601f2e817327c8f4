"""Structured logging: one JSON object per line (``BENCHFARM_LOG_FORMAT=json``) or text,
with the run / job / attempt / device ids of whatever is being done on every line.

Ids are bound with ``with log_context(run_id=..., job_id=...)`` (contextvars, so
threads of the coordinator's pool do not mix them up) or, for a whole process, with
:func:`bind_process` (a device worker is one device for its whole life, and the
threads it starts, such as the lease heartbeat, do not inherit contextvars). Celery
tasks get their ids bound automatically from their JSON payloads by
:func:`install_celery_context`. Anything that looks like a password in a URL is masked
before a line is written: secrets are never logged.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

FORMAT_ENV = "BENCHFARM_LOG_FORMAT"
ID_FIELDS = ("run_id", "job_id", "attempt_id", "device_id")
_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("benchfarm_log_context", default=None)
_process: dict[str, str] = {}
# scheme://user:password@host -> scheme://user:***@host (Redis, PostgreSQL, SSH URLs)
_URL_SECRET = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@", re.I)


def redact(text: str) -> str:
    return _URL_SECRET.sub(r"\g<head>***@", text)


@contextmanager
def log_context(**ids: Any) -> Iterator[None]:
    """Bind ids (None/empty values are skipped) to every log line inside the block."""
    token = _context.set({**(_context.get() or {}), **{k: str(v) for k, v in ids.items() if v not in (None, "")}})
    try:
        yield
    finally:
        _context.reset(token)


def bind_process(**ids: Any) -> None:
    """Ids true for the whole process and all its threads (a device worker's device)."""
    _process.update({k: str(v) for k, v in ids.items() if v not in (None, "")})


def current_context() -> dict[str, str]:
    return {**_process, **(_context.get() or {})}


class ContextFilter(logging.Filter):
    """Puts the bound ids on each record (``record.bf``) so any formatter can use them."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.bf = current_context()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ctx = getattr(record, "bf", None) or current_context()
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "msg": redact(record.getMessage()),
            **{f: ctx.get(f) for f in ID_FIELDS},
            **{k: v for k, v in ctx.items() if k not in ID_FIELDS},
            "process": record.process,
        }
        if record.exc_info:
            doc["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(doc, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = redact(super().format(record))
        ctx = getattr(record, "bf", None) or {}
        return f"{line} [{' '.join(f'{k}={v}' for k, v in ctx.items())}]" if ctx else line


def setup_logging(level: int | str = logging.INFO, fmt: str | None = None) -> None:
    """Replace the root handlers with one stderr handler in the chosen format."""
    fmt = (fmt or os.environ.get(FORMAT_ENV, "text")).strip().lower()
    if fmt not in ("json", "text"):
        raise ValueError(f"{FORMAT_ENV}={fmt!r}: use json or text")
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    install_celery_context()


def _ids_from_args(args: Any) -> dict[str, Any]:
    first = args[0] if args else None
    if isinstance(first, dict):  # run_job / attempt_started / record_attempt payloads
        return {k: first.get(k) for k in ID_FIELDS}
    if isinstance(first, str):  # export / export_done: the artifact key
        return {"artifact_key": first}
    return {}


_tokens: dict[str, contextvars.Token] = {}
_installed = False


def install_celery_context() -> None:
    """Bind each Celery task's ids (from its payload) for the lines it logs."""
    global _installed
    if _installed:
        return
    from celery.signals import task_postrun, task_prerun

    @task_prerun.connect(weak=False)
    def _bind(task_id: str = "", args: Any = None, **_kw: Any) -> None:
        ids = {k: v for k, v in _ids_from_args(args).items() if v}
        _tokens[task_id] = _context.set({**(_context.get() or {}), **{k: str(v) for k, v in ids.items()}})

    @task_postrun.connect(weak=False)
    def _unbind(task_id: str = "", **_kw: Any) -> None:
        token = _tokens.pop(task_id, None)
        if token is not None:
            _context.reset(token)

    _installed = True
