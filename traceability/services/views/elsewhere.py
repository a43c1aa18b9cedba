"""The part of a batch's journey recorded at another member ledger, for the consumer page of the city it went to.

A batch received from another city with a handover voucher (:mod:`traceability.services.handover`) has its
first part (the farm, the slaughterhouse, its certificates) at its home ledger. The consumer page here shows that
part beside the one recorded here, each marked with its ledger, and the phone verifies it against the home
ledger's own checkpoints with the home ledger's pinned key (from the federation file, never from the network).

That part is read from the home ledger's public API: the code's consumer record there (``/t/{code}`` as JSON:
its journey with the farm it came from, certificates, inspections, state) and the compact proof bundle of its
chain (``/api/v1/batches/{code}/proofs?form=compact``). Only a code's first view waits for it (at most
:data:`TIMEOUT`); it is kept :data:`FRESH_SECONDS` and then read again in the background while the kept copy is
shown (a failed read is tried again after :data:`RETRY_SECONDS`). When the home ledger cannot be reached the last
copy is shown, and without one the records the voucher carried (the chain up to the shipment and its inclusion
proof: proved, but without the home registry's names).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from traceability.domain.federation import Federation, Member
from traceability.ledger import canonical, chain, checkpoint, proofs
from traceability.logging import get_logger

log = get_logger(__name__)
FRESH_SECONDS = 60.0
RETRY_SECONDS = 10.0
KEPT = 1024
MAX_ANSWER = 4 * 1024 * 1024
MAX_PROOF_PAGES = 8
TIMEOUT = aiohttp.ClientTimeout(total=3)
PART_KEYS = ("origin", "source", "chain_start", "journey", "certificates", "inspections", "state", "product",
             "events", "proofs", "joins")  # fmt: skip


class Unreachable(Exception):
    """The home ledger did not answer as it should."""


async def _get(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url, headers={"Accept": "application/json"}) as resp:
        if resp.status != 200:
            raise Unreachable(f"{url}: HTTP {resp.status}")
        body = await resp.content.read(MAX_ANSWER + 1)
        if len(body) > MAX_ANSWER:
            raise Unreachable(f"{url}: larger than {MAX_ANSWER} bytes")
        return orjson.loads(body)


def _page_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events as the page carries them for ``verify.js``: seq, the stored hash's first 4 bytes, the bytes."""
    out = []
    for e in events:
        raw = base64.b64decode(e["canonical"])
        try:
            body = {"text": raw.decode("utf-8")}
        except UnicodeDecodeError:
            body = {"canonical": e["canonical"]}
        out.append({"seq": e["seq"], "check": e["hash"][:8], **body})
    return out


async def fetch_part(member: Member, code: str) -> list[dict[str, Any]]:
    """The home ledger's account of batch ``code`` and the proofs of its records, read from its public API; when
    that ledger received the batch from yet another, the parts it shows from there come first."""
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
            record = await _get(http, f"{member.url}/t/{code}?format=json")
            pages, url = [], f"{member.url}/api/v1/batches/{code}/proofs?form=compact"
            for _ in range(MAX_PROOF_PAGES):
                page = await _get(http, url)
                pages.append(page)
                nxt = page.get("next")
                if not isinstance(nxt, str) or not nxt.startswith("/"):
                    break
                url = member.url + nxt
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise Unreachable(f"{member.origin}: {type(exc).__name__}") from None
    try:
        events = record["ledger"]["events"]
        proved = {p["seq"] for page in pages for p in page["proofs"]}
        # Records still waiting for the home log's sequencer are left for the next read: what is shown is proved.
        last = max(proved, default=0)
        status = record["status"]
        before = [
            {k: p[k] for k in PART_KEYS if k in p}
            for p in record.get("elsewhere") or ()
            if isinstance(p, dict) and isinstance(p.get("origin"), str)
        ]
        start = record["ledger"].get("chain_start")
        return [*before, {
            "origin": member.origin,
            "source": "home",
            "chain_start": start if isinstance(start, str) else None,
            "journey": list(record["journey"]),
            "certificates": list(record["certificates"]),
            "inspections": list(record["inspections"]),
            "state": status["state"] if isinstance(status, dict) else "ok",
            "product": record["batch"]["product"],
            "events": _page_events([e for e in events if e["seq"] <= last]),
            "proofs": pages,
        }]  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise Unreachable(f"{member.origin}: an answer not of the expected shape ({type(exc).__name__})") from None


def voucher_parts(voucher: dict[str, Any]) -> list[dict[str, Any]]:
    """The home part from the records the voucher carried: the chain up to the shipment, proved by the shipment's
    inclusion proof (every record's hash feeds the next), named by node codes only; a voucher passed on by a
    ledger that received the batch itself, the parts of the vouchers inside it first."""
    inner = voucher.get("previous")
    before = voucher_parts(inner) if isinstance(inner, dict) else []
    if before:
        before[-1]["joins"] = {"seq": len(inner["chain"]), "hash": inner["event_hash"]}  # type: ignore[index]
    start = inner["event_hash"] if isinstance(inner, dict) else None
    prev = bytes.fromhex(start) if start else chain.genesis(voucher["trace_code"])
    events: list[dict[str, Any]] = []
    stops: list[dict[str, Any]] = []
    cp = checkpoint.parse_checkpoint(voucher["checkpoint"])
    for n, text in enumerate(voucher["chain"], start=1):
        data = text.encode("utf-8")
        prev = chain.link(prev, data)
        events.append({"seq": n, "check": prev.hex()[:8], "text": text})
        content = canonical.decode(data)
        step = {
            "bizStep": content.get("bizStep"),
            "disposition": content.get("disposition"),
            "eventTime": content.get("eventTime"),
            "offset": content.get("eventTimeZoneOffset"),
            "declared_wrong": False,
        }
        node = str(content.get("node") or "")
        if stops and stops[-1]["code"] == node:
            stops[-1]["steps"].append(step)
            continue
        stops.append({"kind": "node", "code": node, "type": "", "type_name": "", "type_name_en": "",
                      "name": None, "name_en": None, "place": node, "steps": [step]})  # fmt: skip
    bundle = {
        "log_id": cp.log_id,
        "tree_size": voucher["tree_size"],
        "checkpoint": voucher["checkpoint"],
        # A multiproof of the one leaf: its audit path, left to right (docs/ledger.md, "Proof bundles").
        "nodes": proofs.multiproof({voucher["leaf_index"]: voucher["audit_path"]}, voucher["tree_size"]),
        "proofs": [{"seq": len(events), "leaf_index": voucher["leaf_index"]}],
        "pending": [],
    }
    return [*before, {"origin": voucher["origin"], "source": "voucher", "chain_start": start, "journey": stops,
                      "certificates": [], "inspections": [], "state": "ok", "product": None, "events": events,
                      "proofs": [bundle]}]  # fmt: skip


@dataclass(slots=True)
class _Kept:
    parts: list[dict[str, Any]] | None
    digest: str  # names what the parts show: part of the page's version
    fetched: float
    tried: float


@dataclass(slots=True)
class Elsewhere:
    """Home parts by trace code, kept :data:`FRESH_SECONDS`; the least recently used dropped past :data:`KEPT`.

    Only a code's first view waits for its home ledger; after that a stale copy is shown while it is read again
    in the background, so a slow or absent home ledger never slows a page that was shown before."""

    fresh_seconds: float = FRESH_SECONDS
    retry_seconds: float = RETRY_SECONDS
    _kept: OrderedDict[str, _Kept] = field(default_factory=OrderedDict)
    _reading: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    async def _read(self, member: Member, code: str) -> None:
        now = time.monotonic()
        old = self._kept.get(code)
        try:
            parts = await fetch_part(member, code)
            kept = _Kept(parts, hashlib.sha256(orjson.dumps(parts)).hexdigest()[:16], now, now)
        except Unreachable as exc:
            log.warning("federation.home_unreachable", origin=member.origin, trace_code=code, error=str(exc))
            kept = _Kept(old.parts, old.digest, old.fetched, now) if old else _Kept(None, "voucher", now, now)
        self._kept[code] = kept
        while len(self._kept) > KEPT:
            self._kept.popitem(last=False)

    async def parts(self, fed: Federation, received: dict[str, Any]) -> list[dict[str, Any]]:
        """The parts of ``received`` (a row naming a batch received here: trace_code, origin, last_seq, last_hash,
        voucher) recorded at other ledgers, the home ledger's first, each marked with its ledger and the key this
        ledger's federation file pins for it (a part of a ledger that is no member here is left out)."""
        member = fed.member(received["origin"])
        if member is None:
            return []
        code = received["trace_code"]
        now = time.monotonic()
        kept = self._kept.get(code)
        if kept is None:
            await self._read(member, code)
        elif now - kept.fetched > self.fresh_seconds and now - kept.tried > self.retry_seconds:
            if code not in self._reading:
                task = asyncio.create_task(self._read(member, code))
                self._reading[code] = task
                task.add_done_callback(lambda _: self._reading.pop(code, None))
        kept = self._kept[code]
        self._kept.move_to_end(code)
        parts = kept.parts if kept.parts is not None else voucher_parts(orjson.loads(received["voucher"]))
        joins = {"seq": received["last_seq"], "hash": bytes(received["last_hash"]).hex()}
        parts = [*parts[:-1], {**parts[-1], "joins": joins}]
        out = []
        for part in parts:
            there = fed.member(part["origin"])
            if there is None:
                continue
            out.append({**part, "trace_code": code, "name": there.name or there.origin,
                        "url": f"{there.url}/t/{code}", "key": there.key, "version": kept.digest})  # fmt: skip
        return out
