"""Recall notices: every enterprise a recall reaches sees it through its API credential and acknowledges it.

An enterprise is reached when one of its nodes recorded a batch the recall covers (the recalled batch or
anything made or sold from it). An acknowledgement is kept once: acknowledging again answers the first.
The regulator's recall page lists each reached enterprise with when it acknowledged (or that it has not).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from traceability import errors
from traceability.domain.access import Principal
from traceability.storage import recall_repo
from traceability.storage.database import Connection, Database


def _enterprise(principal: Principal) -> int:
    if principal.role != "enterprise" or principal.enterprise_id is None:
        raise errors.Forbidden("recall notices are for an enterprise's credential")
    return principal.enterprise_id


def _notice(r: Any) -> dict[str, Any]:
    return {
        "recall_id": r["id"],
        "trace_code": r["trace_code"],
        "level": r["level"],
        "reason": r["reason"],
        "scope": r["scope"],
        "authority": r["authority"],
        "issued_at": r["issued_at"].isoformat(),
        "affected": r["affected"],
        "acknowledged_at": r["acknowledged_at"].isoformat() if r["acknowledged_at"] else None,
    }


async def notices(db: Database, principal: Principal, limit: int, offset: int) -> list[dict[str, Any]]:
    """The recalls that reach the caller's enterprise, newest first, with its acknowledgement if any."""
    enterprise = _enterprise(principal)
    async with db.connection() as conn:
        return [_notice(r) for r in await recall_repo.notices(conn, enterprise, limit, offset)]


async def acknowledge(db: Database, principal: Principal, recall_id: int) -> tuple[dict[str, Any], bool]:
    """The caller's enterprise acknowledges the recall; the answer and whether this call recorded it."""
    enterprise = _enterprise(principal)
    now = datetime.now(UTC)

    async def work(conn: Connection) -> tuple[dict[str, Any], bool]:
        if await recall_repo.recall(conn, recall_id) is None:
            raise errors.NotFound(f"no recall {recall_id}")
        if enterprise not in {r["id"] for r in await recall_repo.reached_enterprises(conn, recall_id)}:
            raise errors.Forbidden(f"recall {recall_id} does not reach your enterprise")
        name = principal.name[:100] or principal.label
        created = await recall_repo.acknowledge(conn, recall_id, enterprise, now, principal.kind, principal.id, name)
        row = (await recall_repo.acknowledgements(conn, recall_id, enterprise))[0]
        answer = {"recall_id": recall_id, "enterprise": row["uscc"], "acknowledged_at": row["at"].isoformat()}
        return answer, created

    return await db.transaction(work)


async def reached(conn: Connection, recall_id: int) -> list[dict[str, Any]]:
    """Each enterprise the recall reaches, with its contact and when it acknowledged (None: not yet)."""
    acks = {r["enterprise_id"]: r for r in await recall_repo.acknowledgements(conn, recall_id)}
    out = []
    for e in await recall_repo.reached_enterprises(conn, recall_id):
        ack = acks.get(e["id"])
        out.append(
            {
                "uscc": e["uscc"],
                "name": e["name"],
                "name_en": e["name_en"],
                "contact": e["contact"],
                "acknowledged_at": ack["at"].isoformat() if ack else None,
            }
        )
    return out
