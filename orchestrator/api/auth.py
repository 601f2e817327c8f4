"""API tokens: random, shown once, stored as a salted sha256 of the secret.

A token reads ``bf_<id>_<secret>``. The id is the database key, so verifying costs one
primary-key lookup and one constant-time digest comparison. The secret has 256 bits of
entropy, so a fast salted hash is enough (a slow KDF protects low-entropy passwords, not
random keys). Tokens are never logged: only their id and name are.

Auth model: every write endpoint requires ``Authorization: Bearer <token>`` — 401 when
it is missing, 403 when it is unknown, malformed or revoked. Read endpoints are open.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from orchestrator.store.db import session
from orchestrator.store.models import ApiToken, utcnow

_TOKEN = re.compile(r"^bf_(?P<id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})$")
_bearer = HTTPBearer(auto_error=False, description="an API token from `benchfarm tokens create NAME`")


class TokenError(ValueError):
    pass


@dataclass(frozen=True)
class TokenInfo:
    id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def create_token(name: str) -> str:
    """Create a token named ``name``; return the full token (the only time it exists in clear)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise TokenError("token name must be 1..200 characters")
    token_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(32), secrets.token_hex(16)
    with session() as s:
        if s.scalar(select(ApiToken).where(ApiToken.name == name)) is not None:
            raise TokenError(f"a token named {name!r} already exists")
        s.add(ApiToken(id=token_id, name=name, salt=salt, secret_sha256=_digest(salt, secret)))
    return f"bf_{token_id}_{secret}"


def list_tokens() -> list[TokenInfo]:
    with session() as s:
        rows = s.scalars(select(ApiToken).order_by(ApiToken.created_at)).all()
        return [TokenInfo(t.id, t.name, t.created_at, t.last_used_at, t.revoked_at) for t in rows]


def revoke_token(name_or_id: str) -> bool:
    """Revoke by name or id; False when there is no such active token."""
    with session() as s:
        tok = s.get(ApiToken, name_or_id) or s.scalar(select(ApiToken).where(ApiToken.name == name_or_id))
        if tok is None or tok.revoked_at is not None:
            return False
        tok.revoked_at = utcnow()
        return True


def verify_token(token: str) -> str | None:
    """The token's name when it is valid and not revoked, else None."""
    m = _TOKEN.match(token or "")
    if m is None:
        return None
    with session() as s:
        tok = s.get(ApiToken, m["id"])
        if tok is None or tok.revoked_at is not None:
            return None
        if not hmac.compare_digest(tok.secret_sha256, _digest(tok.salt, m["secret"])):
            return None
        tok.last_used_at = utcnow()
        return tok.name


def require_token(creds: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> str:
    """FastAPI dependency for write endpoints; returns the caller's token name."""
    if creds is None or not creds.credentials:
        raise HTTPException(401, "this endpoint needs 'Authorization: Bearer <token>' "
                                 "(create one with `benchfarm tokens create NAME`)",
                            headers={"WWW-Authenticate": "Bearer"})
    name = verify_token(creds.credentials)
    if name is None:
        raise HTTPException(403, "the bearer token is unknown, malformed or revoked")
    return name
