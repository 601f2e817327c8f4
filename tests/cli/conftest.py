"""A real SQLite results store per test, pointed to by DATABASE_URL, for the CLI views."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from orchestrator.store.db import engine


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    with Session(engine(url), expire_on_commit=False) as s:
        yield s
        s.commit()
