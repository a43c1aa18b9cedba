"""Tracing a batch across member ledgers: backward to the farm in another city, forward to the stalls in others.

Each ledger keeps its own city's records; nothing is copied between them. A trace here
(:func:`~traceability.services.genealogy.trace`) stops where the goods crossed a border: backward at a batch
received with a handover voucher (its past is at its home ledger), forward at a shipment to a node of another
member (the home ledger knows where its goods went from its own shipment records, whose sealed destination
names the node). :func:`trace_across` continues there by asking that member ledger for its trace of the same
code, as one member asks another: a ``trace-request/v1`` note signed with this ledger's checkpoint key
(:mod:`traceability.ledger.federated_notes`), which the member verifies with the key the federation file pins.
The member answers with what it recorded itself (it does not ask further: one hop, no loops), and its
answer is merged in, every batch and place marked with the ledger it comes from. A member that cannot be
reached is named in ``elsewhere`` as ``unreachable``: the trace says what it could not see.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from traceability import errors
from traceability.domain.access import Principal
from traceability.domain.federation import Federation, Member
from traceability.ledger import canonical, sealed
from traceability.ledger import federated_notes as fn
from traceability.logging import get_logger
from traceability.services import federation, genealogy
from traceability.services.transparency import Log
from traceability.storage import federation_repo
from traceability.storage.database import Database

log = get_logger(__name__)
TIMEOUT = aiohttp.ClientTimeout(total=10)
HEADER = "Trace-Member"


def member_request(fed: Federation, header: str, method: str, path: str) -> Principal:
    """The member ledger a signed ``Trace-Member`` request comes from, as the access log names it (kind
    ``member``, with the regulator's reach); Unauthorized when the request does not verify."""
    try:
        note, origin = fn.request_sender(header)
        member = fed.member(origin)
        if member is None or member.origin == fed.own:
            raise fn.NoticeError("unknown_ledger", f"{origin[:200]} is not another member ledger")
        fn.verify_request(note, federation.verifier(member), fed.own, method, path, int(time.time()))
    except fn.NoticeError as exc:
        log.info("federation.member_refused", reason=exc.reason)
        raise errors.Unauthorized(f"{HEADER}: {exc.detail}") from None
    return Principal("regulator", 0, member.origin, kind="member", authority=member.name or member.origin)


async def _ask(lg: Log, member: Member, code: str, direction: str) -> dict[str, Any]:
    path = f"/api/v1/batches/{code}/trace?direction={direction}"
    header = fn.sign_request(lg.signer, member.origin, "GET", path, int(time.time()))
    try:
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as http,
            http.get(member.url + path, headers={HEADER: header}) as resp,
        ):
            if resp.status != 200:
                return {"status": "unreachable", "error": f"HTTP {resp.status}"}
            body = await resp.json()
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return {"status": "unreachable", "error": type(exc).__name__}
    if not isinstance(body, dict) or not isinstance(body.get("batches"), list):
        return {"status": "unreachable", "error": "an answer not of the expected shape"}
    return {"status": "ok", "trace": body}


def _marked(items: list[Any], origin: str, name: str) -> list[dict[str, Any]]:
    return [{**i, "ledger": origin, "ledger_name": name} for i in items if isinstance(i, dict)]


async def _shipped_elsewhere(db: Database, fed: Federation, codes: list[str]) -> dict[str, set[str]]:
    """Which of these batches this ledger shipped to nodes of other members: member origin → trace codes."""
    async with db.connection() as conn:
        rows = await federation_repo.shipments_of(conn, codes)
    out: dict[str, set[str]] = {}
    for r in rows:
        try:
            party = canonical.decode(sealed.private_bytes(r["private"])).get("destination")
        except ValueError:
            continue
        node = party.get("node") if isinstance(party, dict) else None
        member = fed.elsewhere(node) if isinstance(node, str) else None
        if member is not None:
            out.setdefault(member.origin, set()).add(r["trace_code"])
    return out


async def trace_across(
    db: Database, lg: Log, fed: Federation, code: str, direction: str, *, public: bool = False
) -> dict[str, Any]:
    """:func:`~traceability.services.genealogy.trace`, continued at the member ledgers the goods came from
    (backward) or went to (forward); every batch (and, forward, every place) names its ``ledger``."""
    result = await genealogy.trace(db, code, direction, public=public)
    if not fed.members:  # a ledger on its own: nothing to mark, no one to ask
        return result
    own = fed.own or lg.origin
    me = fed.member(own)
    own_name = (me.name if me is not None else "") or own
    for b in result["batches"]:
        b.update(ledger=own, ledger_name=own_name)
    for n in result.get("reached", ()):
        n.update(ledger=own, ledger_name=own_name)
    codes = [b["trace_code"] for b in result["batches"]]
    asks: list[tuple[Member, str]] = []
    if direction == "backward":
        async with db.connection() as conn:
            received = await federation_repo.received_among(conn, codes)
        asks = [(m, r["trace_code"]) for r in received if (m := fed.member(r["origin"])) is not None]
    else:
        shipped = await _shipped_elsewhere(db, fed, codes)
        asks = [(m, c) for origin, cs in sorted(shipped.items()) if (m := fed.member(origin)) for c in sorted(cs)]
    answers = await asyncio.gather(*(_ask(lg, m, c, direction) for m, c in asks))
    depth = {b["trace_code"]: b["depth"] for b in result["batches"]}
    result["elsewhere"] = []
    for (member, joined), answer in zip(asks, answers, strict=True):
        name = member.name or member.origin
        result["elsewhere"].append({"origin": member.origin, "name": name, "trace_code": joined,
                                    "status": answer["status"], "error": answer.get("error")})  # fmt: skip
        if answer["status"] != "ok":
            continue
        there = answer["trace"]
        mine = {b["trace_code"]: b for b in result["batches"]}
        for b in _marked(there["batches"], member.origin, name):
            if b.get("trace_code") in depth:  # the batch that crossed: known on both sides, listed once (here)
                if direction == "backward" and b["trace_code"] == joined:
                    mine[joined]["parents"] = b.get("parents", [])
                    mine[joined]["certificates"] = [*b.get("certificates", []), *mine[joined].get("certificates", [])]
                    mine[joined]["nodes"] = [*b.get("nodes", []), *mine[joined]["nodes"]]
                continue
            b["depth"] = depth[joined] + int(b.get("depth") or 0)
            result["batches"].append(b)
        result["edges"].extend(e for e in there.get("edges", ()) if isinstance(e, dict))
        if direction == "backward":
            result["origins"] = [o for o in result["origins"] if o != joined]
            result["origins"].extend(o for o in there.get("origins", ()) if isinstance(o, str) and o not in depth)
        else:
            result["reached"].extend(_marked(there.get("reached", []), member.origin, name))
            enterprises = set(result["enterprises"]) | {e for e in there.get("enterprises", ()) if isinstance(e, str)}
            result["enterprises"] = sorted(enterprises)
    result["batches"].sort(key=lambda b: (b["depth"], b["trace_code"]))
    return result
