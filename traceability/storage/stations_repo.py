"""Scanner stations: their keys, one-time enrolment codes, leased code blocks and signed uploads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from traceability.storage.database import Connection, Record, conflicts_as, fetch_one

# -- enrolment -------------------------------------------------------------------------------------

SELECT_DEVICE = """
SELECT d.id, d.name, d.revoked_at, n.code AS node_code FROM devices d JOIN nodes n ON n.id = d.node_id
WHERE d.id = $1
"""


async def find_device(conn: Connection, device_id: int) -> Record | None:
    """A registered device with its node code."""
    return await conn.fetchrow(SELECT_DEVICE, device_id)


INSERT_ENROLMENT = """
INSERT INTO station_enrolments (device_id, code_hash, expires_at) VALUES ($1, $2, $3)
RETURNING id, expires_at
"""


async def insert_enrolment(conn: Connection, device_id: int, code_hash: bytes, expires_at: datetime) -> Record:
    """Store a one-time enrolment code (its hash only)."""
    return await fetch_one(conn, INSERT_ENROLMENT, device_id, code_hash, expires_at)


# Locked so two stations racing with the same code cannot both use it.
LOCK_ENROLMENT = """
SELECT s.id, s.device_id, s.expires_at, s.used_at, d.revoked_at AS device_revoked_at
FROM station_enrolments s JOIN devices d ON d.id = s.device_id
WHERE s.code_hash = $1
FOR UPDATE OF s
"""


async def lock_enrolment(conn: Connection, code_hash: bytes) -> Record | None:
    """The enrolment a code names, row-locked until the transaction ends."""
    return await conn.fetchrow(LOCK_ENROLMENT, code_hash)


async def use_enrolment(conn: Connection, enrolment_id: int, key_pk: int) -> None:
    """Mark an enrolment code used by the key it enrolled."""
    await conn.execute("UPDATE station_enrolments SET used_at = now(), key_id = $2 WHERE id = $1", enrolment_id, key_pk)


SELECT_STATION = """
SELECT d.name AS device_name, n.code, n.name_zh, n.name_en, n.node_type, n.area_code,
       e.uscc, e.name AS enterprise_name, o.code AS operator_code, o.name AS operator_name, o.stall_no
FROM devices d
JOIN nodes n ON n.id = d.node_id
JOIN enterprises e ON e.id = d.enterprise_id
LEFT JOIN operators o ON o.id = d.operator_id
WHERE d.id = $1
"""


async def find_station(conn: Connection, device_id: int) -> Record | None:
    """A device with its node, enterprise and operator (stall), as a station describes itself."""
    return await conn.fetchrow(SELECT_STATION, device_id)


# -- keys ------------------------------------------------------------------------------------------

INSERT_KEY = """
INSERT INTO station_keys (key_id, device_id, public_key, replaces) VALUES ($1, $2, $3, $4)
RETURNING id, key_id, created_at
"""


async def insert_key(conn: Connection, key_id: str, device_id: int, public_key: bytes, replaces: int | None) -> Record:
    """Register a public key; raises AlreadyExists if the key is already registered."""
    with conflicts_as("publicKey: this key is already registered; generate a new one", "publicKey"):
        return await fetch_one(conn, INSERT_KEY, key_id, device_id, public_key, replaces)


RETIRE_LIVE_KEYS = """
UPDATE station_keys SET retired_at = now()
WHERE device_id = $1 AND retired_at IS NULL AND revoked_at IS NULL
"""


async def retire_live_keys(conn: Connection, device_id: int) -> None:
    """Retire whatever key a device holds now (it is being replaced)."""
    await conn.execute(RETIRE_LIVE_KEYS, device_id)


# Everything a signed request needs, in one round trip: the key, its state and the device as a principal.
FIND_KEY = """
SELECT k.id AS key_pk, k.key_id, k.public_key, k.retired_at, k.revoked_at,
       d.id, d.name, d.enterprise_id, e.uscc, d.node_id, n.code AS node_code, n.area_code,
       d.operator_id, o.code AS operator_code, d.revoked_at AS device_revoked_at
FROM station_keys k
JOIN devices d ON d.id = k.device_id
JOIN nodes n ON n.id = d.node_id
JOIN enterprises e ON e.id = d.enterprise_id
LEFT JOIN operators o ON o.id = d.operator_id
WHERE k.key_id = $1
"""


async def find_key(conn: Connection, key_id: str) -> Record | None:
    """A station key with its device, node and operator, whatever the key's state."""
    return await conn.fetchrow(FIND_KEY, key_id)


REVOKE_KEY = """
UPDATE station_keys SET revoked_at = now() WHERE key_id = $1 AND revoked_at IS NULL
RETURNING key_id, device_id
"""


async def revoke_key(conn: Connection, key_id: str) -> Record | None:
    """Revoke one key; None when it is unknown or already revoked."""
    return await conn.fetchrow(REVOKE_KEY, key_id)


REVOKE_DEVICE_KEYS = """
UPDATE station_keys SET revoked_at = now() WHERE device_id = $1 AND revoked_at IS NULL
RETURNING key_id
"""


async def revoke_device_keys(conn: Connection, device_id: int) -> list[str]:
    """Revoke every key of a device; returns the key ids revoked."""
    return [r["key_id"] for r in await conn.fetch(REVOKE_DEVICE_KEYS, device_id)]


SELECT_KEYS = """
SELECT key_id, created_at, retired_at, revoked_at FROM station_keys WHERE device_id = $1 ORDER BY id
"""


async def list_keys(conn: Connection, device_id: int) -> list[Record]:
    return list(await conn.fetch(SELECT_KEYS, device_id))


# -- code blocks -----------------------------------------------------------------------------------

# nextval() is never rolled back: a block number handed out once is never handed out again,
# even when the transaction that took it fails.
LEASE_BLOCKS = """
INSERT INTO code_leases (block_no, device_id, node_id, area_code, first_serial, size)
SELECT b.n, $1, $2, $3, $5::bigint + $6::bigint * b.n, $6
FROM (SELECT nextval('station_block_seq') AS n FROM generate_series(1, $4)) AS b
RETURNING block_no, first_serial, size, area_code, leased_at
"""


async def lease_blocks(
    conn: Connection, device_id: int, node_id: int, area_code: str, count: int, base: int, size: int
) -> list[Record]:
    """Reserve ``count`` fresh blocks of serials for a device."""
    return sorted(
        await conn.fetch(LEASE_BLOCKS, device_id, node_id, area_code, count, base, size), key=lambda r: r["block_no"]
    )


async def find_block(conn: Connection, block_no: int) -> Record | None:
    """The lease of one block, if it was ever leased."""
    return await conn.fetchrow(
        "SELECT block_no, device_id, node_id, area_code, first_serial, size, leased_at FROM code_leases "
        "WHERE block_no = $1",
        block_no,
    )


FIND_LEASE = """
SELECT l.block_no, l.leased_at, n.code AS node_code, n.name_zh AS node_name, n.name_en AS node_name_en,
       n.node_type, o.code AS operator_code, o.name AS operator_name, o.stall_no,
       s.last_sync_at, b.created_at AS opened_at
FROM code_leases l
JOIN devices d ON d.id = l.device_id
JOIN nodes n ON n.id = l.node_id
LEFT JOIN operators o ON o.id = d.operator_id
LEFT JOIN station_sync s ON s.device_id = l.device_id
LEFT JOIN batches b ON b.trace_code = $3
WHERE l.block_no = $1 AND l.area_code = $2
"""


async def find_lease(conn: Connection, block_no: int, area_code: str, trace_code: str) -> Record | None:
    """Who holds the block a trace code falls in, and whether the code has become a batch yet."""
    return await conn.fetchrow(FIND_LEASE, block_no, area_code, trace_code)


# -- signed uploads --------------------------------------------------------------------------------

INSERT_UPLOAD = """
INSERT INTO signed_uploads (station_key, device_id, method, path, created, body, body_digest, signature)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING id
"""


async def insert_upload(
    conn: Connection,
    key_pk: int,
    device_id: int,
    method: str,
    path: str,
    created: int,
    body: bytes,
    body_digest: bytes,
    signature: bytes,
) -> int:
    """Store one signed request exactly as signed."""
    upload_id: int = await conn.fetchval(
        INSERT_UPLOAD, key_pk, device_id, method, path, created, body, body_digest, signature
    )
    return upload_id


LINK_EVENTS = """
INSERT INTO signed_upload_events (upload_id, event_id)
SELECT $1, e FROM unnest($2::uuid[]) AS u(e)
ON CONFLICT DO NOTHING
"""


async def link_events(conn: Connection, upload_id: int, event_ids: Sequence[str]) -> None:
    """Record which events a signed upload carried."""
    await conn.execute(LINK_EVENTS, upload_id, list(event_ids))


TOUCH_SYNC = """
INSERT INTO station_sync AS s (device_id, last_sync_at, uploads, events) VALUES ($1, now(), 1, $2)
ON CONFLICT (device_id) DO UPDATE
SET last_sync_at = now(), uploads = s.uploads + 1, events = s.events + EXCLUDED.events
"""


async def touch_sync(conn: Connection, device_id: int, new_events: int) -> None:
    """Note that a station has just synchronised."""
    await conn.execute(TOUCH_SYNC, device_id, new_events)


SELECT_EVENT_UPLOADS = """
SELECT u.id, u.method, u.path, u.created, u.body, u.body_digest, u.signature, u.received_at,
       k.key_id, k.public_key
FROM signed_upload_events ue
JOIN signed_uploads u ON u.id = ue.upload_id
JOIN station_keys k ON k.id = u.station_key
WHERE ue.event_id = $1
ORDER BY u.id
"""


async def find_event_uploads(conn: Connection, event_id: str) -> list[Record]:
    """The signed uploads that carried an event, with the public key that signed each."""
    return list(await conn.fetch(SELECT_EVENT_UPLOADS, event_id))


SELECT_SYNC = "SELECT last_sync_at, uploads, events FROM station_sync WHERE device_id = $1"


async def find_sync(conn: Connection, device_id: int) -> Record | None:
    return await conn.fetchrow(SELECT_SYNC, device_id)
