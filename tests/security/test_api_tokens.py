"""Cross-check of the API's token handling (the API suite owns the details): writes
without a valid token are refused, a revoked token stops working, and no column of the
token table holds the secret."""

from __future__ import annotations

import pytest
from sqlalchemy import select

try:
    from fastapi.testclient import TestClient

    from orchestrator.api import auth
    from orchestrator.api.app import create_app
except ImportError as exc:
    pytest.skip(f"the API is not available: {exc}", allow_module_level=True)

from orchestrator.store.db import session
from orchestrator.store.models import ApiToken

SPEC = "name: t\nmodels: [tiny_cnn]\nbackends: [xnnpack]\ndevices: [host-cpu]\n"


def test_writes_need_a_live_token_and_the_secret_is_not_stored(rel_env: dict[str, str]) -> None:
    token = auth.create_token("security")
    secret = token.split("_", 2)[2]
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        def post(headers: dict[str, str]) -> int:
            return client.post("/runs", json={"spec": SPEC}, headers=headers).status_code

        assert post({}) == 401
        assert post({"Authorization": "Bearer bf_000000000000_" + "x" * 43}) in (401, 403)
        assert post({"Authorization": f"Bearer {token[:-1]}{'A' if token[-1] != 'A' else 'B'}"}) in (401, 403)
        assert post({"Authorization": f"Bearer {token}"}) == 201  # the same request with the live token
        assert auth.revoke_token("security")
        assert post({"Authorization": f"Bearer {token}"}) in (401, 403)
    with session() as s:
        row = s.scalars(select(ApiToken)).one()
        assert all(secret not in str(getattr(row, c.key)) for c in ApiToken.__table__.columns)
