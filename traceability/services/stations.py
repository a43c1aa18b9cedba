"""Scanner stations: enrolment, signed requests, key rotation and revocation, code leases, signed uploads.

A station is a registered device that holds an Ed25519 key. An administrator issues a one-time
enrolment code for the device; the station generates its key pair, posts the public key with the
code (signing that request with the new key, which proves it holds it) and from then on signs every
request. A signed request resolves to the same :class:`Principal` a device's bearer credential
gives, so capture works unchanged; what the station signed is stored with the events it carried,
in the capture transaction, so the signature can be checked again at any later time.

Leases: a station reserves blocks of trace codes while online and issues them offline. The
server knows each block's holder from the moment it is leased, so a code printed offline is never
"not found": :func:`find_lease` says which stall holds it even before its events arrive.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from traceability import errors
from traceability.domain import stations, tracecode
from traceability.domain.access import Principal
from traceability.domain.federation import Federation
from traceability.domain.fields import utc_ms
from traceability.domain.stations import SignedRequest
from traceability.logging import get_logger
from traceability.services import capture, handover, sales
from traceability.services.recording import AfterAppend, Receipt
from traceability.storage import analysis_repo, genealogy_repo, stations_repo
from traceability.storage.database import Connection, Database, Record

log = get_logger(__name__)

ENROLMENT_TTL = timedelta(hours=24)
MAX_BLOCKS_PER_LEASE = 20
# Crockford base32 without I, L, O, U: easy to read aloud and to type on a phone.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CODE_CHARS = 16  # 80 bits


# -- enrolment -------------------------------------------------------------------------------------


def _new_enrolment_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(_CODE_CHARS))
    return "-".join(raw[i : i + 4] for i in range(0, _CODE_CHARS, 4))


def _enrolment_hash(code: str) -> bytes:
    cleaned = "".join(code.split()).replace("-", "").upper().translate(str.maketrans("OIL", "011"))
    return hashlib.sha256(b"trace/enrolment/v1\x00" + cleaned.encode()).digest()


async def create_enrolment(db: Database, device_id: int, ttl: timedelta = ENROLMENT_TTL) -> dict[str, Any]:
    """Issue a one-time code that lets a station bind its key to ``device_id``. Shown once; a hash is kept."""
    code = _new_enrolment_code()
    async with db.connection() as conn:
        device = await stations_repo.find_device(conn, device_id)
        if device is None:
            raise errors.NotFound(f"no device {device_id}")
        if device["revoked_at"] is not None:
            raise errors.Conflict(f"device {device_id} is revoked; register a new device")
        row = await stations_repo.insert_enrolment(conn, device_id, _enrolment_hash(code), datetime.now(UTC) + ttl)
    log.info("station.enrolment_issued", device=device_id)
    return {"device": device_id, "node": device["node_code"], "code": code, "expiresAt": utc_ms(row["expires_at"])}


def _public_key(body: Any, key: str = "publicKey") -> bytes:
    if not isinstance(body, dict) or not isinstance(body.get(key), str):
        raise errors.InvalidField(f"{key}: is required, the raw 32-byte Ed25519 public key in base64", field=key)
    try:
        return stations.unb64(body[key], key, 32)
    except stations.SignatureFormatError as exc:
        raise errors.InvalidField(f"{key}: {exc}", field=key) from None


def _check_fresh(signed: SignedRequest, now: float) -> None:
    skew = signed.created - int(now)
    if abs(skew) > stations.MAX_SKEW_SECONDS:
        raise errors.Unauthorized(
            f"signature: created is {abs(skew)} s {'ahead of' if skew > 0 else 'behind'} the server's clock; "
            f"at most {stations.MAX_SKEW_SECONDS} s is accepted (check the station's clock)"
        )


async def enrol(db: Database, body: Any, signed: SignedRequest | None) -> dict[str, Any]:
    """Bind a station's public key to the device an enrolment code was issued for.

    The request must be signed by the new key itself: the server then knows the station holds it.
    """
    public_key = _public_key(body)
    code = body.get("code")
    if not isinstance(code, str) or not code.strip():
        raise errors.InvalidField("code: is required, the one-time enrolment code", field="code")
    new_id = stations.key_id(public_key)
    if signed is None:
        raise errors.Unauthorized("sign the enrolment request with the new key (Authorization: Signature …)")
    if signed.key_id != new_id:
        raise errors.Unauthorized(f"signature: keyId must be {new_id}, the id of publicKey")
    _check_fresh(signed, time.time())
    if not stations.verify(public_key, signed.signature, signed.message):
        raise errors.Unauthorized("signature: does not verify with publicKey")

    async def bind(conn: Connection) -> tuple[int, Record | None]:
        enrolment = await stations_repo.lock_enrolment(conn, _enrolment_hash(code))
        if enrolment is None:
            raise errors.Unauthorized("code: no such enrolment code")
        if enrolment["used_at"] is not None:
            raise errors.Unauthorized("code: this enrolment code was already used; ask for a new one")
        if enrolment["expires_at"] < datetime.now(UTC):
            raise errors.Unauthorized("code: this enrolment code has expired; ask for a new one")
        if enrolment["device_revoked_at"] is not None:
            raise errors.Unauthorized("code: the device this code is for was revoked")
        device_id: int = enrolment["device_id"]
        # A station that is re-enrolled (new phone, wiped disk) replaces the key it had.
        await stations_repo.retire_live_keys(conn, device_id)
        key = await stations_repo.insert_key(conn, new_id, device_id, public_key, None)
        await stations_repo.use_enrolment(conn, enrolment["id"], key["id"])
        return device_id, await stations_repo.find_key(conn, new_id)

    device_id, row = await db.transaction(bind)
    assert row is not None
    log.info("station.enrolled", device=device_id, key_id=new_id)
    return await _describe(db, row)


async def _describe(db: Database, row: Record) -> dict[str, Any]:
    async with db.connection() as conn:
        info = await stations_repo.find_station(conn, row["id"])
        if info is None:
            raise errors.NotFound(f"no device {row['id']}")
        sync = await stations_repo.find_sync(conn, row["id"])
    operator = None
    if info["operator_code"] is not None:
        operator = {"code": info["operator_code"], "name": info["operator_name"], "stallNo": info["stall_no"]}
    return {
        "keyId": row["key_id"],
        "device": {"id": row["id"], "name": info["device_name"]},
        "node": {
            "code": info["code"],
            "name": info["name_zh"],
            "nameEn": info["name_en"],
            "type": info["node_type"],
            "areaCode": info["area_code"],
        },
        "enterprise": {"uscc": info["uscc"], "name": info["enterprise_name"]},
        "operator": operator,
        "lastSync": utc_ms(sync["last_sync_at"]) if sync else None,
    }


# -- signed requests -------------------------------------------------------------------------------


async def authenticate_signature(
    db: Database, signed: SignedRequest, now: float | None = None
) -> tuple[Principal, int]:
    """Resolve a signed request to its device principal and the key's row id, or raise Unauthorized naming why."""
    _check_fresh(signed, time.time() if now is None else now)
    async with db.connection() as conn:
        row = await stations_repo.find_key(conn, signed.key_id)
    if row is None:
        raise errors.Unauthorized(f"signature: unknown station key {signed.key_id}")
    if row["revoked_at"] is not None:
        raise errors.Unauthorized(f"signature: station key {signed.key_id} was revoked")
    if row["device_revoked_at"] is not None:
        raise errors.Unauthorized(f"signature: the device of station key {signed.key_id} was revoked")
    if row["retired_at"] is not None:
        raise errors.Unauthorized(f"signature: station key {signed.key_id} was replaced by a newer key")
    if not stations.verify(row["public_key"], signed.signature, signed.message):
        log.info("station.signature_refused", key_id=signed.key_id)
        raise errors.Unauthorized(
            f"signature: does not verify with station key {signed.key_id} "
            "(body, path, method or created changed, or the wrong key)"
        )
    principal = Principal(
        role="device",
        id=row["id"],
        name=row["name"],
        enterprise_id=row["enterprise_id"],
        uscc=row["uscc"],
        node_id=row["node_id"],
        node_code=row["node_code"],
        area_code=row["area_code"],
        operator_id=row["operator_id"],
        operator_code=row["operator_code"],
    )
    return principal, int(row["key_pk"])


async def describe_station(db: Database, signed: SignedRequest) -> dict[str, Any]:
    """What the server knows about the calling station."""
    async with db.connection() as conn:
        row = await stations_repo.find_key(conn, signed.key_id)
    assert row is not None  # the request was authenticated with this key
    return await _describe(db, row)


async def rotate_key(
    db: Database, principal: Principal, key_pk: int, signed: SignedRequest, body: Any
) -> dict[str, Any]:
    """Replace the calling station's key (the request is signed by the old key; ``proof`` by the new one)."""
    public_key = _public_key(body)
    new_id = stations.key_id(public_key)
    proof = body.get("proof")
    if not isinstance(proof, str):
        raise errors.InvalidField("proof: is required, the new key's signature of the rotation message", field="proof")
    try:
        proof_bytes = stations.unb64(proof, "proof", 64)
    except stations.SignatureFormatError as exc:
        raise errors.InvalidField(f"proof: {exc}", field="proof") from None
    if not stations.verify(public_key, proof_bytes, stations.rotation_message(signed.key_id, new_id)):
        raise errors.InvalidField("proof: does not verify with publicKey", field="proof")

    async def replace(conn: Connection) -> None:
        await stations_repo.retire_live_keys(conn, principal.id)
        await stations_repo.insert_key(conn, new_id, principal.id, public_key, key_pk)

    await db.transaction(replace)
    log.info("station.key_rotated", device=principal.id, old_key_id=signed.key_id, key_id=new_id)
    return {"keyId": new_id, "replaces": signed.key_id}


async def revoke_key(db: Database, key_id: str) -> dict[str, Any]:
    """Revoke one station key: requests signed by it are refused from now on."""
    async with db.connection() as conn:
        row = await stations_repo.revoke_key(conn, key_id)
    if row is None:
        raise errors.NotFound(f"no live station key {key_id}")
    log.info("station.key_revoked", key_id=key_id, device=row["device_id"])
    return {"revoked": [key_id], "device": row["device_id"]}


async def revoke_station(db: Database, device_id: int) -> dict[str, Any]:
    """Revoke every key a device holds (its bearer credential is revoked separately)."""
    async with db.connection() as conn:
        if await stations_repo.find_device(conn, device_id) is None:
            raise errors.NotFound(f"no device {device_id}")
        revoked = await stations_repo.revoke_device_keys(conn, device_id)
    log.info("station.keys_revoked", device=device_id, count=len(revoked))
    return {"revoked": revoked, "device": device_id}


async def list_keys(db: Database, device_id: int) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        rows = await stations_repo.list_keys(conn, device_id)
    return [
        {
            "keyId": r["key_id"],
            "createdAt": utc_ms(r["created_at"]),
            "retiredAt": utc_ms(r["retired_at"]) if r["retired_at"] else None,
            "revokedAt": utc_ms(r["revoked_at"]) if r["revoked_at"] else None,
        }
        for r in rows
    ]


# -- leases ----------------------------------------------------------------------------------------


def _block_json(row: Record) -> dict[str, Any]:
    first, size = row["first_serial"], row["size"]
    return {
        "blockNo": row["block_no"],
        "areaCode": row["area_code"],
        "firstSerial": first,
        "size": size,
        "firstCode": tracecode.make(row["area_code"], first),
        "lastCode": tracecode.make(row["area_code"], first + size - 1),
        "leasedAt": utc_ms(row["leased_at"]),
    }


async def lease_codes(db: Database, principal: Principal, body: Any) -> dict[str, Any]:
    """Reserve blocks of trace codes for the calling station to issue offline."""
    if principal.role != "device" or principal.node_id is None or principal.area_code is None:
        raise errors.Forbidden("only a scanner station leases trace codes")
    count = body.get("blocks", 1) if isinstance(body, dict) else None
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_BLOCKS_PER_LEASE:
        raise errors.InvalidField(f"blocks: must be a whole number from 1 to {MAX_BLOCKS_PER_LEASE}", field="blocks")
    base, size = stations.block_range(0)
    node_id, area_code = principal.node_id, principal.area_code

    async def lease(conn: Connection) -> list[Record]:
        rows = await stations_repo.lease_blocks(conn, principal.id, node_id, area_code, count, base, size)
        await stations_repo.touch_sync(conn, principal.id, 0)
        return rows

    rows = await db.transaction(lease)
    log.info("codes.leased", device=principal.id, blocks=len(rows), first_block=rows[0]["block_no"])
    return {"blocks": [_block_json(r) for r in rows]}


async def find_lease(db: Database, trace_code: str) -> dict[str, Any] | None:
    """Who holds a station-issued trace code: node, stall, when leased, when the station last synced.

    None for a server-issued code or a block never leased. Public: no commercial details.
    """
    try:
        code = tracecode.validate(trace_code)
    except tracecode.TraceCodeError as exc:
        raise errors.InvalidTraceCode(str(exc)) from None
    block_no = stations.block_of(code)
    if block_no is None:
        return None
    async with db.connection() as conn:
        row = await stations_repo.find_lease(conn, block_no, tracecode.area_of(code), code)
    if row is None:
        return None
    operator = None
    if row["operator_code"] is not None:
        operator = {"code": row["operator_code"], "name": row["operator_name"], "stallNo": row["stall_no"]}
    return {
        "traceCode": code,
        "status": "recorded" if row["opened_at"] is not None else "syncing",
        "node": {
            "code": row["node_code"],
            "name": row["node_name"],
            "nameEn": row["node_name_en"],
            "type": row["node_type"],
        },
        "operator": operator,
        "leasedAt": utc_ms(row["leased_at"]),
        "lastSync": utc_ms(row["last_sync_at"]) if row["last_sync_at"] is not None else None,
    }


# -- signed uploads --------------------------------------------------------------------------------


def _store_upload(principal: Principal, key_pk: int, signed: SignedRequest) -> AfterAppend:
    async def store(conn: Connection, receipts: list[Receipt]) -> None:
        upload_id = await stations_repo.insert_upload(
            conn,
            key_pk,
            principal.id,
            signed.method,
            signed.path,
            signed.created,
            signed.body,
            signed.body_digest,
            signed.signature,
        )
        await stations_repo.link_events(conn, upload_id, [r.event_id for r in receipts])
        await stations_repo.touch_sync(conn, principal.id, sum(1 for r in receipts if not r.replayed))

    return store


async def capture_signed(
    db: Database, principal: Principal, key_pk: int, signed: SignedRequest, body: Any, max_events: int
) -> tuple[list[Receipt], bool]:
    """Capture events from a signed upload and store the upload with them, in one transaction."""
    return await capture.capture_events(db, principal, body, max_events, after=_store_upload(principal, key_pk, signed))


async def receive_signed(
    db: Database, fed: Federation, principal: Principal, key_pk: int, signed: SignedRequest, body: Any, max_events: int
) -> dict[str, Any]:
    """Receive goods from another member ledger with their voucher, from a signed upload kept with the receipt."""
    return await handover.receive(db, fed, principal, body, max_events, after=_store_upload(principal, key_pk, signed))


async def open_signed(
    db: Database, principal: Principal, key_pk: int, signed: SignedRequest, body: Any, public_url: str
) -> capture.Opened:
    """Open a batch (usually with a leased code) from a signed upload, storing the upload with it."""
    return await capture.open_batch(db, principal, body, public_url, after=_store_upload(principal, key_pk, signed))


async def sell_signed(
    db: Database, principal: Principal, key_pk: int, signed: SignedRequest, body: Any, public_url: str
) -> sales.Sold:
    """Record a sale (the receipt opened as a child of its source) from a signed upload, storing the upload with it.

    A sale the station made after its source was recalled or held (it had not heard yet) is refused, and the
    refusal is an anomaly of its own (``sold_while_recalled`` / ``sold_while_on_hold``) against the stall's
    enterprise: the goods may have left with a shopper even though the ledger never records the sale.
    """
    try:
        return await sales.sell(db, principal, body, public_url, after=_store_upload(principal, key_pk, signed))
    except errors.Conflict as exc:
        if exc.field == "source" and isinstance(body, dict) and isinstance(body.get("source"), str):
            await _flag_refused_sale(db, principal, body, exc.message)
        raise


async def _flag_refused_sale(db: Database, principal: Principal, body: dict[str, Any], message: str) -> None:
    kind = "sold_while_recalled" if "recalled" in message else "sold_while_on_hold" if "on hold" in message else None
    if kind is None:
        return
    facts = {"step": "retail_selling", "refused": True, "eventID": str(body.get("eventID")), "station": principal.id}
    detail = f"a station's sale after the batch was {kind.removeprefix('sold_while_').replace('_', ' ')}, refused"

    async def flag(conn: Connection) -> None:
        batch = await genealogy_repo.batch_id(conn, body["source"])
        if batch is not None:
            row = (kind, batch, None, principal.node_id, principal.enterprise_id, detail, when, facts)
            await analysis_repo.insert_anomalies(conn, [row])

    when = _event_time(body.get("eventTime"))
    await db.transaction(flag)
    log.info("sale.refused_flagged", source=body["source"], kind=kind, station=principal.id)


def _event_time(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


async def event_signatures(db: Database, event_id: str) -> list[dict[str, Any]]:
    """Every signed upload that carried an event, each re-verified from what is stored."""
    async with db.connection() as conn:
        rows = await stations_repo.find_event_uploads(conn, event_id)
    out = []
    for r in rows:
        body_ok = hashlib.sha256(r["body"]).digest() == r["body_digest"]
        message = stations.signing_string(r["method"], r["path"], r["created"], r["body_digest"])
        out.append(
            {
                "upload": r["id"],
                "keyId": r["key_id"],
                "created": r["created"],
                "receivedAt": utc_ms(r["received_at"]),
                "signature": stations.b64(r["signature"]),
                "verified": body_ok and stations.verify(r["public_key"], r["signature"], message),
            }
        )
    return out
