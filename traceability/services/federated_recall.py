"""A recall crossing ledgers: the home ledger's signed notice, and the member ledger applying it.

At the home ledger, after a recall (:func:`~traceability.services.genealogy.recall`), :func:`send_notices` finds
the shipments of the recalled batches to nodes of other members (their seal openings name the destination),
signs one ``trace-recall/v1`` notice per member (:mod:`traceability.ledger.federated_notes`) with the
ledger's checkpoint key, keeps it in ``federation_outbox`` and sends it; :func:`run_deliveries` sends what
is still undelivered every few seconds (a member that was down gets it when it is back).

At the member ledger, :func:`apply_notice` checks the notice with the sender's pinned key, that it is for this
ledger and recent, and records, in one transaction, a recall of every batch received from the sender under
the notice's codes and of everything made from them here, with the same level, reason and authority: each a
recall event on its own chain, so its consumer pages show 已召回 and its regulators list it. The same
notice again changes nothing; another notice under the same id is refused.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from traceability import errors, i18n
from traceability.domain.federation import Federation
from traceability.ledger import canonical, sealed
from traceability.ledger import federated_notes as fn
from traceability.logging import get_logger
from traceability.services import federation
from traceability.services.recording import append_status_events, status_event
from traceability.services.transparency import Log
from traceability.storage import federation_repo, genealogy_repo
from traceability.storage.database import Connection, Database

log = get_logger(__name__)
SEND_TIMEOUT = aiohttp.ClientTimeout(total=5)
MAX_AGE = timedelta(days=30)
"""A notice older than this is refused (a recall that old was long since sent again or settled)."""
FUTURE = timedelta(minutes=5)
RETRY_SECONDS = 5.0
NOTICE_PATH = "/api/v1/federation/recalls"


def refuse(reason: str, status: int = 422, **values: str) -> errors.NoticeRefused:
    """The refusal of a recall notice, its reason as the code, in both languages."""
    log.info("federation.notice_refused", reason=reason, origin=values.get("origin"))
    return errors.NoticeRefused(reason, i18n.say(f"notice_{reason}", **values), status=status)


# -- the home ledger: signing and sending ---------------------------------------------------------


def _destination(private: bytes) -> str | None:
    try:
        party = canonical.decode(sealed.private_bytes(private)).get("destination")
    except ValueError:
        return None
    node = party.get("node") if isinstance(party, dict) else None
    return node if isinstance(node, str) else None


async def send_notices(db: Database, lg: Log, fed: Federation, recall: dict[str, Any]) -> list[dict[str, Any]]:
    """After recall ``recall`` (the answer of ``genealogy.recall``): a signed notice to every member that received
    batches it reached, kept until delivered and sent now. The notices' state, by member."""
    if not fed.members or not recall["batches"]:
        return []
    async with db.connection() as conn:
        shipped = await federation_repo.shipments_of(conn, recall["batches"])
        scope = await federation_repo.recall_scope(conn, recall["recall_id"])
    reached: dict[str, set[str]] = {}
    for row in shipped:
        member = fed.elsewhere(_destination(row["private"]) or "")
        if member is not None:
            reached.setdefault(member.origin, set()).add(row["trace_code"])
    if not reached:
        return []
    rows = []
    for origin, codes in sorted(reached.items()):
        body = {
            "id": f"recall-{recall['recall_id']}",
            "to": origin,
            "issued_at": recall["issued_at"],
            "level": recall["level"],
            "reason": recall["reason"],
            "authority": recall["authority"],
            "source": recall["trace_code"],
            "codes": sorted(codes),
            **({"scope": scope} if scope else {}),
        }
        rows.append((origin, fn.sign_recall(lg.signer, body)))

    async def keep(conn: Connection) -> None:
        for origin, note in rows:
            await federation_repo.insert_outbox(conn, recall["recall_id"], origin, note)

    await db.transaction(keep)
    log.info("federation.notices_kept", recall_id=recall["recall_id"], members=len(rows))
    await deliver(db, fed)
    return await notices_of(db, recall["recall_id"])


async def notices_of(db: Database, recall_id: int) -> list[dict[str, Any]]:
    """Where a recall's notices went: member, delivered (when), attempts, the last error."""
    async with db.connection() as conn:
        rows = await federation_repo.outbox_of(conn, recall_id)
    return [
        {
            "member": r["member"],
            "delivered_at": r["delivered_at"].isoformat() if r["delivered_at"] else None,
            "attempts": r["attempts"],
            "error": r["last_error"],
        }
        for r in rows
    ]


async def _send(url: str, note: str) -> str | None:
    """POST one notice; None when the member took it, else what went wrong."""
    try:
        async with (
            aiohttp.ClientSession(timeout=SEND_TIMEOUT) as http,
            http.post(url, data=note.encode(), headers={"Content-Type": "text/plain; charset=utf-8"}) as resp,
        ):
            if resp.status in (200, 201):
                return None
            body = await resp.text()
            return f"HTTP {resp.status}: {body[:300]}"
    except (aiohttp.ClientError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"[:300]


async def deliver(db: Database, fed: Federation, limit: int = 100) -> int:
    """Send the notices not yet delivered (each member confirms by answering 200 or 201); how many went."""
    async with db.connection() as conn:
        pending = await federation_repo.pending_outbox(conn, limit)
    sent = 0
    for row in pending:
        member = fed.member(row["member"])
        error = (
            "not a member of the federation now"
            if member is None
            else await _send(member.url + NOTICE_PATH, row["note"])
        )
        async with db.connection() as conn:
            await federation_repo.mark_outbox(conn, row["id"], error is None, error)
        if error is None:
            sent += 1
            log.info("federation.notice_delivered", member=row["member"], outbox=row["id"])
        else:
            log.warning(
                "federation.notice_undelivered", member=row["member"], attempts=row["attempts"] + 1, error=error
            )
    return sent


async def run_deliveries(db: Database, fed: Federation, stop: asyncio.Event, interval: float = RETRY_SECONDS) -> None:
    """Send undelivered notices again every ``interval`` seconds until ``stop``."""
    while not stop.is_set():
        try:
            await deliver(db, fed)
        except (errors.TraceError, OSError) as exc:
            log.warning("federation.delivery_failed", error=type(exc).__name__)
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            pass


# -- the member ledger: verifying and applying ----------------------------------------------------


def check_notice(fed: Federation, note: str, now: datetime) -> fn.RecallNotice:
    """A notice verified with its sender's pinned key, for this ledger, and recent; refused naming why."""
    try:
        origin = fn.sender(note)
    except fn.NoticeError as exc:
        raise refuse(exc.reason, detail=exc.detail) from None
    member = fed.member(origin)
    if member is None or member.origin == fed.own:
        raise refuse("unknown_ledger", origin=origin[:200])
    try:
        notice = fn.verify_recall(note, federation.verifier(member))
    except fn.NoticeError as exc:
        raise refuse(exc.reason, origin=origin, detail=exc.detail) from None
    if notice.to != fed.own:
        raise refuse("wrong_recipient", 422, origin=origin, to=notice.to[:200])
    if not now - MAX_AGE <= notice.issued_at <= now + FUTURE:
        raise refuse("stale", 422, origin=origin, issued_at=notice.issued_at.isoformat())
    return notice


async def apply_notice(db: Database, fed: Federation, note: str) -> dict[str, Any]:
    """Record the recall a verified notice carries on every batch received from its sender under its codes, and
    on everything made from them here. A notice seen before changes nothing (``replayed``)."""
    now = datetime.now(UTC)
    notice = check_notice(fed, note, now)
    account = f"federation:{notice.origin} {notice.notice_id}"
    detail = {
        "level": notice.level,
        "reason": notice.reason,
        "source": notice.source,
        "issuedBy": notice.authority,
        "ledger": notice.origin,
        **({"scope": notice.scope} if notice.scope else {}),
    }

    async def work(conn: Connection) -> tuple[list[int], list[str], bool]:
        await federation_repo.lock_member(conn, f"notice {notice.origin} {notice.notice_id}")
        seen = await federation_repo.find_notice(conn, notice.origin, notice.notice_id)
        if seen is not None:
            if bytes(seen["digest"]) != notice.digest:
                raise refuse("replayed", 409, origin=notice.origin, id=notice.notice_id[:100])
            return list(seen["recall_ids"]), [], True
        received = await federation_repo.received_from(conn, notice.origin, notice.codes)
        recall_ids: list[int] = []
        codes: list[str] = []
        for row in received:
            depth = await genealogy_repo.related(conn, row["batch_id"], "forward")
            await genealogy_repo.lock_heads_by_id(conn, sorted(depth))
            same = await genealogy_repo.same_recall(conn, row["batch_id"], notice.level, notice.reason, notice.scope)
            if same is not None:
                recall_ids.append(same["id"])
                continue
            receipts = await append_status_events(
                conn, sorted(depth), "recalled", lambda head: status_event("recall", head, now, detail, "recalled"), now
            )
            source_event = next(r.event_id for r in receipts if r.trace_code == row["trace_code"])
            recall_ids.append(
                await genealogy_repo.insert_recall(
                    conn,
                    row["batch_id"],
                    source_event,
                    notice.level,
                    notice.reason,
                    notice.scope,
                    account,
                    now,
                    len(receipts),
                    notice.authority,
                )
            )
            codes.extend(r.trace_code for r in receipts)
        await federation_repo.insert_notice(conn, notice.origin, notice.notice_id, notice.digest, note, recall_ids)
        return recall_ids, codes, False

    recall_ids, codes, replayed = await db.transaction(work)
    async with db.connection() as conn:
        here = {r["trace_code"] for r in await federation_repo.received_from(conn, notice.origin, notice.codes)}
    log.info("federation.recall_applied", origin=notice.origin, notice=notice.notice_id, batches=len(codes))
    return {
        "origin": notice.origin,
        "notice": notice.notice_id,
        "replayed": replayed,
        "recalls": recall_ids,
        "batches": codes,
        "not_here": [c for c in notice.codes if c not in here],
        "level": notice.level,
        "reason": notice.reason,
        "authority": notice.authority,
        "source": notice.source,
        "applied_at": now.isoformat(),
    }


async def pass_on(db: Database, lg: Log, fed: Federation, applied: dict[str, Any]) -> list[dict[str, Any]]:
    """A notice applied here (:func:`apply_notice`) reached batches this ledger shipped on to other members:
    this ledger's own notice to each of them, signed with its key, as for a recall issued here."""
    if applied["replayed"] or not applied["recalls"] or not applied["batches"]:
        return []
    recall = {
        "recall_id": applied["recalls"][0],
        "batches": applied["batches"],
        "issued_at": applied["applied_at"],
        "level": applied["level"],
        "reason": applied["reason"],
        "authority": applied["authority"],
        "trace_code": applied["source"],
    }
    return await send_notices(db, lg, fed, recall)
