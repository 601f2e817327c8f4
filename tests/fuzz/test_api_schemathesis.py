"""The HTTP API never answers 5xx to schema-generated requests (schemathesis over the
ASGI app: real routes, real Redis DB 9, a private database), with and without a token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (pip install schemathesis)")
try:
    from orchestrator.api.app import create_app
except ImportError as exc:  # the API is written in parallel: fuzz it once it exists
    pytest.skip(f"orchestrator.api.create_app is not available: {exc}", allow_module_level=True)


KNOWN_500 = "GET /capacity"


@pytest.fixture
def api(rel_env: dict[str, str]) -> Iterator[tuple[Any, dict[str, str]]]:
    from orchestrator.api import auth

    app = create_app()
    yield app, {"Authorization": f"Bearer {auth.create_token('fuzz')}"}


@pytest.mark.parametrize("authorized", [True, False], ids=["token", "anonymous"])
def test_no_operation_answers_5xx(api: tuple[Any, dict[str, str]], authorized: bool) -> None:
    app, auth_header = api
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    # GET /capacity has a known 500 (test below); fuzzing it here would only find that again
    operations = [op for op in (result.ok() for result in schema.get_all_operations()) if op.label != KNOWN_500]

    for op in operations:
        @settings(max_examples=25, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def fuzz(case: Any) -> None:
            try:
                response = case.call(headers=auth_header if authorized else {})
            except Exception as exc:  # the ASGI transport re-raises what the app let escape (a 500)
                failures.append(f"{case.operation.label} {case.query}: {type(exc).__name__}: {exc}")
                return
            if response.status_code >= 500:
                failures.append(f"{case.operation.label} -> {response.status_code}: {response.text[:300]}")

        fuzz()
    assert len(operations) >= 5, [op.label for op in operations]
    assert not failures, "\n".join(failures[:10])


def test_a_huge_capacity_window_is_a_4xx(api: tuple[Any, dict[str, str]]) -> None:
    from fastapi.testclient import TestClient

    with TestClient(api[0], raise_server_exceptions=False) as client:
        assert client.get("/capacity", params={"window_s": "1e300"}).status_code < 500
