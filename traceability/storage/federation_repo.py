"""Federation: the member ledgers as this server was started with them, the checkpoints of other members
seen in vouchers, and the batches received from them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from traceability.storage.database import Connection, Record

MEMBERS_LOCK = 0x7472616365666564  # "tracefed"


async def replace_members(conn: Connection, rows: Sequence[tuple[str, str, list[str], bool]]) -> None:
    """Make (origin, url, areas, own) rows the members (call in a transaction; starting servers take turns)."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", MEMBERS_LOCK)
    await conn.execute("DELETE FROM federation_members")
    if rows:
        await conn.executemany(
            "INSERT INTO federation_members (origin, url, areas, own) VALUES ($1, $2, $3, $4)", list(rows)
        )


HOMED_ELSEWHERE = """
SELECT m.origin FROM federation_members m, unnest(m.areas) AS p(prefix)
WHERE NOT m.own AND left($1, 6) ~ '^[1-8][0-9]{5}$' AND starts_with(left($1, 6), p.prefix)
LIMIT 1
"""


async def home_elsewhere(conn: Connection, code: str) -> str | None:
    """The origin of the other member ledger home for a node or trace code, if there is one."""
    origin: str | None = await conn.fetchval(HOMED_ELSEWHERE, code)
    return origin


async def lock_member(conn: Connection, origin: str) -> None:
    """Serialise the vouchers of one member in this transaction (its latest seen checkpoint moves)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))", origin)


async def latest_checkpoint(conn: Connection, origin: str) -> Record | None:
    """The largest checkpoint of ``origin`` seen so far (size, root, note)."""
    return await conn.fetchrow(
        "SELECT size, root, note FROM federation_checkpoints WHERE origin = $1 ORDER BY size DESC LIMIT 1", origin
    )


async def insert_checkpoint(conn: Connection, origin: str, size: int, root: bytes, note: str) -> None:
    """Keep a verified checkpoint of ``origin`` (one already kept at that size stays as it is)."""
    await conn.execute(
        "INSERT INTO federation_checkpoints (origin, size, root, note) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (origin, size) DO NOTHING",
        origin,
        size,
        root,
        note,
    )


async def find_foreign(conn: Connection, trace_code: str) -> Record | None:
    """The batch received from another member under ``trace_code``, if any."""
    return await conn.fetchrow(
        "SELECT f.batch_id, f.origin, f.shipment_event_id::text AS shipment_event_id, f.last_seq, f.last_hash "
        "FROM foreign_batches f WHERE f.trace_code = $1",
        trace_code,
    )


INSERT_FOREIGN = """
INSERT INTO foreign_batches (batch_id, origin, trace_code, shipment_event_id, last_seq, last_hash, leaf_index,
                             checkpoint_size, voucher, received_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
"""


async def insert_foreign(
    conn: Connection,
    batch_id: int,
    origin: str,
    trace_code: str,
    shipment_event_id: str,
    last_seq: int,
    last_hash: bytes,
    leaf_index: int,
    checkpoint_size: int,
    voucher: bytes,
    received_at: datetime,
) -> None:
    await conn.execute(
        INSERT_FOREIGN,
        batch_id,
        origin,
        trace_code,
        shipment_event_id,
        last_seq,
        last_hash,
        leaf_index,
        checkpoint_size,
        voucher,
        received_at,
    )


async def chain_starts(conn: Connection, batch_ids: Sequence[int]) -> dict[int, bytes]:
    """The hash each received batch's chain here starts from (other batches start at the genesis value)."""
    rows = await conn.fetch(
        "SELECT batch_id, last_hash FROM foreign_batches WHERE batch_id = ANY($1::bigint[])", list(batch_ids)
    )
    return {r["batch_id"]: r["last_hash"] for r in rows}


async def find_product(conn: Connection, goods_code: str) -> Record | None:
    """The product registered here under a goods code."""
    return await conn.fetchrow("SELECT id, goods_code FROM products WHERE goods_code = $1", goods_code)


async def find_node(conn: Connection, code: str) -> Record | None:
    """A node registered here, by code."""
    return await conn.fetchrow("SELECT id, code, enterprise_id FROM nodes WHERE code = $1", code)


async def node_enterprise(conn: Connection, node_id: int) -> int:
    """The enterprise a node belongs to."""
    enterprise: int = await conn.fetchval("SELECT enterprise_id FROM nodes WHERE id = $1", node_id)
    return enterprise


# -- recall notices -------------------------------------------------------------------------------

SELECT_SHIPMENTS = """
SELECT b.trace_code, e.private FROM events e JOIN batches b ON b.id = e.batch_id
WHERE b.trace_code = ANY($1::text[]) AND e.biz_step = 'shipping' AND e.private IS NOT NULL
"""


async def shipments_of(conn: Connection, codes: Sequence[str]) -> list[Record]:
    """The shipments of these batches with their seal openings (trace_code, private): where each went."""
    return list(await conn.fetch(SELECT_SHIPMENTS, list(codes)))


async def insert_outbox(conn: Connection, recall_id: int, member: str, note: str) -> None:
    """Keep a recall notice for ``member`` until it is delivered (one per recall and member)."""
    await conn.execute(
        "INSERT INTO federation_outbox (recall_id, member, note) VALUES ($1, $2, $3) "
        "ON CONFLICT (recall_id, member) DO NOTHING",
        recall_id,
        member,
        note,
    )


async def pending_outbox(conn: Connection, limit: int) -> list[Record]:
    """Notices not yet delivered, oldest first (id, member, note, attempts)."""
    return list(
        await conn.fetch(
            "SELECT id, member, note, attempts FROM federation_outbox WHERE delivered_at IS NULL ORDER BY id LIMIT $1",
            limit,
        )
    )


async def mark_outbox(conn: Connection, outbox_id: int, delivered: bool, error: str | None) -> None:
    """Record one delivery attempt of a notice."""
    await conn.execute(
        "UPDATE federation_outbox SET attempts = attempts + 1, last_error = $3, "
        "delivered_at = CASE WHEN $2 THEN now() ELSE NULL END WHERE id = $1",
        outbox_id,
        delivered,
        error,
    )


async def outbox_of(conn: Connection, recall_id: int) -> list[Record]:
    """The notices of one recall: to which member, delivered when, attempts, the last error."""
    return list(
        await conn.fetch(
            "SELECT member, delivered_at, attempts, last_error FROM federation_outbox WHERE recall_id = $1 "
            "ORDER BY member",
            recall_id,
        )
    )


async def find_notice(conn: Connection, origin: str, notice_id: str) -> Record | None:
    """A recall notice accepted before (digest, recall_ids)."""
    return await conn.fetchrow(
        "SELECT digest, recall_ids FROM federation_notices WHERE origin = $1 AND notice_id = $2", origin, notice_id
    )


async def insert_notice(
    conn: Connection, origin: str, notice_id: str, digest: bytes, note: str, recall_ids: Sequence[int]
) -> None:
    await conn.execute(
        "INSERT INTO federation_notices (origin, notice_id, digest, note, recall_ids) VALUES ($1, $2, $3, $4, $5)",
        origin,
        notice_id,
        digest,
        note,
        list(recall_ids),
    )


async def received_from(conn: Connection, origin: str, codes: Sequence[str]) -> list[Record]:
    """The batches received here from ``origin`` among these trace codes (batch_id, trace_code)."""
    return list(
        await conn.fetch(
            "SELECT batch_id, trace_code FROM foreign_batches WHERE origin = $1 AND trace_code = ANY($2::text[]) "
            "ORDER BY trace_code",
            origin,
            list(codes),
        )
    )


async def recall_scope(conn: Connection, recall_id: int) -> str | None:
    """The scope a recall named, if any."""
    scope: str | None = await conn.fetchval("SELECT scope FROM recalls WHERE id = $1", recall_id)
    return scope


async def received_among(conn: Connection, codes: Sequence[str]) -> list[Record]:
    """The batches among ``codes`` received from other members: trace_code, origin, last_seq, last_hash, voucher
    (the voucher opens the shipment's seal: never shown as it is)."""
    return list(
        await conn.fetch(
            "SELECT trace_code, origin, last_seq, last_hash, voucher FROM foreign_batches "
            "WHERE trace_code = ANY($1::text[]) ORDER BY received_at, trace_code",
            list(codes),
        )
    )


async def foreign_voucher(conn: Connection, trace_code: str) -> Record | None:
    """The voucher a batch was received here with (voucher, last_hash), if it was."""
    return await conn.fetchrow("SELECT voucher, last_hash FROM foreign_batches WHERE trace_code = $1", trace_code)
