"""What a person may type where a run (or device) id is expected, resolved to one id.

- a full run id (16 hex digits);
- a unique prefix of one, like git (at least ``MIN_PREFIX`` characters);
- ``latest``: the newest run; ``latest:NAME``: the newest run of the spec named NAME.

Device ids take the same unique prefixes. An ambiguous prefix is an error that lists the
candidates, never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.store.models import Run

MIN_PREFIX = 4
# run ids are uuid4 hex; checking the shape first keeps LIKE wildcards out of the query
_HEX = re.compile(r"[0-9a-f]+")
_LISTED = 8


class RefError(LookupError):
    """The reference names nothing, or more than one thing."""


def resolve_run(session: Session, ref: str) -> str:
    """The id of the run ``ref`` names; raises :class:`RefError` with a readable message."""
    ref = ref.strip()
    if ref == "latest" or ref.startswith("latest:"):
        name = ref.partition(":")[2]
        q = select(Run.id).order_by(Run.created_at.desc(), Run.id.desc()).limit(1)
        if name:
            q = q.where(Run.name == name)
        found = session.scalar(q)
        if found is None:
            raise RefError(f"no run named {name!r} in the results store (benchfarm runs lists them)"
                              if name else "no runs in the results store yet (benchfarm submit SPEC)")
        return found
    if session.get(Run, ref) is not None:
        return ref
    if len(ref) < MIN_PREFIX or not _HEX.fullmatch(ref.lower()):
        raise RefError(f"no run {ref!r} (a run id, a unique prefix of at least {MIN_PREFIX} hex digits, "
                          "latest or latest:NAME)")
    rows = session.execute(select(Run.id, Run.name, Run.created_at).where(Run.id.startswith(ref.lower()))
                           .order_by(Run.created_at.desc()).limit(_LISTED + 1)).all()
    if not rows:
        raise RefError(f"no run {ref!r}")
    if len(rows) > 1:
        listed = "; ".join(f"{r.id} {r.name} {r.created_at:%Y-%m-%d %H:%M}" for r in rows[:_LISTED])
        more = " ..." if len(rows) > _LISTED else ""
        raise RefError(f"run prefix {ref!r} is ambiguous: {listed}{more}")
    return str(rows[0].id)


def unique_prefix(known: Iterable[str], ref: str, what: str = "device") -> str:
    """The one id in ``known`` that is ``ref`` or starts with it (at least MIN_PREFIX characters)."""
    ids = sorted(set(known))
    if ref in ids:
        return ref
    matches = [i for i in ids if i.startswith(ref)] if len(ref) >= MIN_PREFIX else []
    if len(matches) > 1:
        more = " ..." if len(matches) > _LISTED else ""
        raise RefError(f"{what} prefix {ref!r} is ambiguous: {', '.join(matches[:_LISTED])}{more}")
    if not matches:
        raise RefError(f"no {what} {ref!r}")
    return matches[0]


def shortest_unique(ids: Iterable[str], minimum: int = 7) -> dict[str, str]:
    """Each id -> its shortest prefix (at least ``minimum`` characters) that no other id shares,
    as ``git log --abbrev-commit`` shortens hashes. Neighbours in sorted order are the only ids
    a prefix can collide with, so one pass over the sorted list is enough."""
    ordered = sorted(set(ids))
    out: dict[str, str] = {}
    for i, ident in enumerate(ordered):
        common = 0
        for other in (ordered[i - 1] if i else "", ordered[i + 1] if i + 1 < len(ordered) else ""):
            n = 0
            while n < min(len(ident), len(other)) and ident[n] == other[n]:
                n += 1
            common = max(common, n)
        out[ident] = ident[:max(minimum, common + 1)]
    return out


def all_run_ids(session: Session) -> list[str]:
    return list(session.scalars(select(Run.id)).all())
