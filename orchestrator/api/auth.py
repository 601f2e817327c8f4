"""API tokens: random, shown once, stored as a salted sha256 of the secret, each with scopes.

A token reads ``bf_<id>_<secret>``. The id is the database key, so verifying costs one
primary-key lookup and one constant-time digest comparison. The secret has 256 bits of
entropy, so a fast salted hash is enough (a slow KDF protects low-entropy passwords, not
random keys). Tokens are never logged: only their id and name are.

Scopes: ``read`` (download programs), ``submit`` (queue runs), ``cancel-own`` (cancel runs this
token's principal owns), ``admin`` (everything: cancel any run, manage tokens, read the audit).
A route declares its scope with ``Depends(require("submit"))``; :mod:`orchestrator.api.guard`
finds that declaration and answers 401 (no token) / 403 (unknown, revoked, or lacking the
scope) before the request's body is read. Open reads (runs, devices, health) need no token.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from orchestrator.store import audit
from orchestrator.store.audit import Actor
from orchestrator.store.db import session
from orchestrator.store.models import ApiToken, utcnow

SCOPES = ("read", "submit", "cancel-own", "admin")
DEFAULT_SCOPES = ("read", "submit", "cancel-own")
_TOKEN = re.compile(r"^bf_(?P<id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})$")
ACTOR_KEY = "benchfarm_actor"  # the guard's verdict, in scope["state"]
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
    principal: str = ""
    scopes: tuple[str, ...] = ()
    max_cells: int | None = None


def has_scope(actor: Actor, scope: str) -> bool:
    return scope in actor.scopes or "admin" in actor.scopes


def check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Known scopes, each once, in :data:`SCOPES` order; ``TokenError`` names an unknown one."""
    wanted = {p.strip() for s in scopes for p in s.replace(",", " ").split() if p.strip()}
    unknown = sorted(wanted - set(SCOPES))
    if unknown:
        raise TokenError(f"unknown scope {unknown[0]!r} (known: {', '.join(SCOPES)})")
    if not wanted:
        raise TokenError(f"a token needs at least one scope ({', '.join(SCOPES)})")
    return tuple(s for s in SCOPES if s in wanted)


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def _info(t: ApiToken) -> TokenInfo:
    return TokenInfo(t.id, t.name, t.created_at, t.last_used_at, t.revoked_at, t.principal or t.name,
                     tuple(t.scopes.split()), t.max_cells)


def create_token(name: str, scopes: Iterable[str] = DEFAULT_SCOPES, principal: str = "",
                 by: Actor | None = None, max_cells: int | None = None) -> str:
    """Create a token named ``name``; return the full token (the only time it exists in clear).

    ``principal`` (default: the name) is who the token acts for; ``by`` is who made it (audit);
    ``max_cells``: the cells the principal's runs may have unfinished when it submits."""
    name, principal = name.strip(), principal.strip() or name.strip()
    for label, value in (("token name", name), ("principal", principal)):
        if not value or len(value) > 200:
            raise TokenError(f"{label} must be 1..200 characters")
    granted = check_scopes(scopes)
    if max_cells is not None and not 1 <= max_cells <= 10_000_000:
        raise TokenError(f"max_cells must be 1..10,000,000 (got {max_cells})")
    token_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(32), secrets.token_hex(16)
    with session() as s:
        if s.scalar(select(ApiToken).where(ApiToken.name == name)) is not None:
            raise TokenError(f"a token named {name!r} already exists")
        s.add(ApiToken(id=token_id, name=name, principal=principal, scopes=" ".join(granted), salt=salt,
                       secret_sha256=_digest(salt, secret), max_cells=max_cells))
        audit.record(s, by or Actor.cli(), "token.create", target_token_id=token_id, name=name,
                     principal=principal, scopes=list(granted), max_cells=max_cells)
    return f"bf_{token_id}_{secret}"


def list_tokens() -> list[TokenInfo]:
    with session() as s:
        return [_info(t) for t in s.scalars(select(ApiToken).order_by(ApiToken.created_at)).all()]


def revoke_token(name_or_id: str, by: Actor | None = None) -> bool:
    """Revoke by name or id; False when there is no such active token."""
    with session() as s:
        tok = s.get(ApiToken, name_or_id) or s.scalar(select(ApiToken).where(ApiToken.name == name_or_id))
        if tok is None or tok.revoked_at is not None:
            return False
        tok.revoked_at = utcnow()
        audit.record(s, by or Actor.cli(), "token.revoke", target_token_id=tok.id, name=tok.name)
        return True


def authenticate(token: str) -> Actor | None:
    """The token's actor (principal, id, scopes) when it is valid and not revoked, else None."""
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
        return Actor(principal=tok.principal or tok.name, token_id=tok.id, scopes=frozenset(tok.scopes.split()),
                     max_cells=tok.max_cells)


def verify_token(token: str) -> str | None:
    """The token's name when it is valid and not revoked, else None."""
    actor = authenticate(token)
    if actor is None:
        return None
    with session() as s:
        tok = s.get(ApiToken, actor.token_id)
        return tok.name if tok else None


def bearer_value(authorization: str | None) -> str | None:
    """The credentials of an ``Authorization: Bearer ...`` header, else None."""
    scheme, _, value = (authorization or "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def decide(token: str | None, scope: str) -> tuple[int, str] | Actor:
    """The caller's actor when ``token`` grants ``scope``; else (401 or 403, why)."""
    if not token:
        return 401, ("this endpoint needs 'Authorization: Bearer <token>' "
                     "(create one with `benchfarm tokens create NAME`)")
    actor = authenticate(token)
    if actor is None:
        return 403, "the bearer token is unknown, malformed or revoked"
    if not has_scope(actor, scope):
        return 403, f"this token lacks the {scope!r} scope (it has: {', '.join(sorted(actor.scopes))})"
    return actor


def require(scope: str) -> Callable[..., Actor]:
    """A FastAPI dependency granting ``scope``; returns the caller's :class:`Actor`."""
    if scope not in SCOPES:
        raise ValueError(scope)

    def dependency(request: Request, creds: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Actor:
        checked = request.scope.get("state", {}).get(ACTOR_KEY)
        if isinstance(checked, Actor) and has_scope(checked, scope):
            return checked  # the guard has authenticated this request already
        got = decide(creds.credentials if creds else None, scope)
        if not isinstance(got, Actor):
            raise HTTPException(got[0], got[1], headers={"WWW-Authenticate": "Bearer"} if got[0] == 401 else None)
        return got

    dependency.required_scope = scope  # type: ignore[attr-defined]  # read by the guard
    return dependency

