"""What this ledger saw of the other members, as others may read it: the checkpoints it holds (cosigned here),
how witnessing each member went, the split views proven, and an administrator clearing one."""

from __future__ import annotations

from typing import Any

from traceability import errors
from traceability.domain.access import Principal
from traceability.domain.federation import Federation
from traceability.logging import get_logger
from traceability.services.witnessing import describe_status
from traceability.storage import witness_repo
from traceability.storage.database import Connection, Database, Record

log = get_logger(__name__)
MAX_LISTED = 100
# The status of a member not witnessed yet.
NOT_YET: dict[str, Any] = dict.fromkeys(("checked_at", "ok_at", "size", "problem", "problem_code", "next_at"))
NOT_YET.update(failures=0, split_view=False)


async def witnessed(db: Database, fed: Federation) -> dict[str, Any]:
    """For every other member, the largest checkpoint of it this ledger holds, with this ledger's cosignature
    when it cosigned it: what members gossip, and where a member collects its cosignatures."""
    others = [m.origin for m in fed.members if m.origin != fed.own]
    async with db.connection() as conn:
        rows = await witness_repo.witnessed(conn, others, len(others) or 1) if others else []
    return {
        "own": fed.own,
        "checkpoints": [
            {
                "origin": r["origin"],
                "size": r["size"],
                "root": r["root"].hex(),
                "checkpoint": r["note"],
                "cosigned": r["signed_at"] is not None,
                "cosigned_at": r["signed_at"].isoformat() if r["signed_at"] else None,
            }
            for r in rows
        ],
    }


def _split(r: Record) -> dict[str, Any]:
    cleared = None
    if r["cleared_at"] is not None:
        cleared = {"by": r["cleared_by"], "reason": r["cleared_reason"], "at": r["cleared_at"].isoformat()}
    return {
        "id": r["id"],
        "origin": r["origin"],
        "reason": r["reason"],
        "detail": r["detail"],
        "via": r["via"],
        "detected_at": r["detected_at"].isoformat(),
        "first_note": r["first_note"],
        "second_note": r["second_note"],
        "cleared": cleared,
    }


async def overview(db: Database, fed: Federation) -> dict[str, Any]:
    """How witnessing each other member went last, and the split views proven (newest first)."""
    async with db.connection() as conn:
        statuses = {r["origin"]: describe_status(r) for r in await witness_repo.statuses(conn)}
        splits = await witness_repo.split_views(conn, MAX_LISTED)
    members = []
    for m in fed.members:
        if m.origin == fed.own:
            continue
        status = statuses.get(m.origin) or dict(NOT_YET, origin=m.origin)
        members.append({**status, "name": m.name, "url": m.url})
    return {"own": fed.own, "members": members, "split_views": [_split(r) for r in splits]}


async def clear(db: Database, principal: Principal, split_id: int, reason: str) -> dict[str, Any]:
    """An administrator's decision that a split view is dealt with: the member's vouchers are taken again and
    its history starts again from the next checkpoint fetched from it. The evidence stays."""
    who = f"{principal.role}:{principal.name}"[:200]

    async def work(conn: Connection) -> Record:
        found = await witness_repo.split_views(conn, 1, split_id)
        if not found:
            raise errors.NotFound(f"there is no split view {split_id}")
        if not await witness_repo.clear_split_view(conn, split_id, who, reason):
            raise errors.Conflict(f"split view {split_id} was cleared already")
        return (await witness_repo.split_views(conn, 1, split_id))[0]

    row = await db.transaction(work)
    log.warning("federation.split_view_cleared", origin=row["origin"], split_view=split_id, by=who)
    return {"id": row["id"], "origin": row["origin"], "cleared_at": row["cleared_at"].isoformat()}
