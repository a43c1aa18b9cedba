"""Enterprises, nodes, operators, products, devices and API tokens."""

from __future__ import annotations

from collections.abc import Sequence

from traceability.domain.registry import DeviceIn, EnterpriseIn, NodeIn, OperatorIn, ProductIn
from traceability.storage.database import Connection, Record, conflicts_as, fetch_one

INSERT_ENTERPRISE = """
INSERT INTO enterprises (uscc, name, name_en, contact, licences)
VALUES ($1, $2, $3, $4, $5::jsonb)
RETURNING id, uscc, name, name_en, contact, licences, created_at
"""


async def insert_enterprise(conn: Connection, e: EnterpriseIn) -> Record:
    """Insert an enterprise; raises AlreadyExists when the USCC is taken."""
    with conflicts_as(f"an enterprise with USCC {e.uscc} is already registered", "uscc"):
        return await fetch_one(conn, INSERT_ENTERPRISE, e.uscc, e.name, e.name_en, e.contact, e.licences)


SELECT_ENTERPRISES = """
SELECT id, uscc, name, name_en, contact, licences, created_at FROM enterprises
WHERE ($1::text IS NULL OR uscc = $1) ORDER BY id LIMIT $2 OFFSET $3
"""


async def list_enterprises(
    conn: Connection, *, uscc: str | None = None, limit: int = 100, offset: int = 0
) -> list[Record]:
    return list(await conn.fetch(SELECT_ENTERPRISES, uscc, limit, offset))


async def find_enterprise_id(conn: Connection, uscc: str) -> int | None:
    value: int | None = await conn.fetchval("SELECT id FROM enterprises WHERE uscc = $1", uscc)
    return value


INSERT_NODE = """
INSERT INTO nodes (code, enterprise_id, node_type, area_code, name_zh, name_en, address,
                   latitude, longitude, gln)
VALUES (coalesce($1, $4 || lpad(nextval('node_code_seq')::text, 6, '0')),
        $2, $3, $4, $5, $6, $7, $8, $9, $10)
RETURNING id, code, node_type, area_code, name_zh, name_en, address, latitude, longitude, gln, created_at
"""


async def insert_node(conn: Connection, enterprise_id: int, n: NodeIn) -> Record:
    """Insert a node; its code defaults to the area code plus a 6-digit serial. AlreadyExists when the
    code or GLN is taken."""
    with conflicts_as("a node with that code or GLN is already registered", "code"):
        return await fetch_one(
            conn,
            INSERT_NODE,
            n.code,
            enterprise_id,
            n.node_type,
            n.area_code,
            n.name_zh,
            n.name_en,
            n.address,
            n.latitude,
            n.longitude,
            n.gln,
        )


SELECT_NODES = """
SELECT n.id, n.code, n.node_type, n.area_code, n.name_zh, n.name_en, n.address, n.latitude,
       n.longitude, n.gln, n.created_at, e.uscc AS enterprise_uscc, e.name AS enterprise_name
FROM nodes n JOIN enterprises e ON e.id = n.enterprise_id
WHERE ($1::text IS NULL OR n.code = $1) ORDER BY n.id LIMIT $2 OFFSET $3
"""


async def list_nodes(conn: Connection, *, code: str | None = None, limit: int = 100, offset: int = 0) -> list[Record]:
    return list(await conn.fetch(SELECT_NODES, code, limit, offset))


async def find_node(conn: Connection, code: str) -> Record | None:
    return await conn.fetchrow("SELECT id, code, enterprise_id, area_code FROM nodes WHERE code = $1", code)


INSERT_OPERATOR = """
INSERT INTO operators (node_id, code, name, stall_no, contact) VALUES ($1, $2, $3, $4, $5)
RETURNING id, code, name, stall_no, contact, created_at
"""


async def insert_operator(conn: Connection, node_id: int, o: OperatorIn) -> Record:
    """Insert an operator (a stall) of a node; AlreadyExists when the node already has that code."""
    with conflicts_as(f"node {o.node_code} already has an operator {o.code}", "code"):
        return await fetch_one(conn, INSERT_OPERATOR, node_id, o.code, o.name, o.stall_no, o.contact)


async def find_operator_id(conn: Connection, node_id: int, code: str) -> int | None:
    value: int | None = await conn.fetchval("SELECT id FROM operators WHERE node_id = $1 AND code = $2", node_id, code)
    return value


SELECT_OPERATORS = """
SELECT o.id, o.code, o.name, o.stall_no, o.contact, o.created_at, n.code AS node_code
FROM operators o JOIN nodes n ON n.id = o.node_id
WHERE ($1::text IS NULL OR n.code = $1) ORDER BY o.id LIMIT $2 OFFSET $3
"""


async def list_operators(
    conn: Connection, *, node_code: str | None = None, limit: int = 100, offset: int = 0
) -> list[Record]:
    return list(await conn.fetch(SELECT_OPERATORS, node_code, limit, offset))


INSERT_PRODUCT = """
INSERT INTO products (category, goods_code, gtin, name_zh, name_en, default_uom, shelf_life_days)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING id, category, goods_code, gtin, name_zh, name_en, default_uom, shelf_life_days, created_at
"""


async def insert_product(conn: Connection, p: ProductIn) -> Record:
    """Insert a product; AlreadyExists when the goods code or GTIN is taken."""
    with conflicts_as("a product with that goods code or GTIN is already registered", "goods_code"):
        return await fetch_one(
            conn,
            INSERT_PRODUCT,
            p.category,
            p.goods_code,
            p.gtin,
            p.name_zh,
            p.name_en,
            p.default_uom,
            p.shelf_life_days,
        )


SELECT_PRODUCTS = """
SELECT id, category, goods_code, gtin, name_zh, name_en, default_uom, shelf_life_days, created_at
FROM products WHERE ($1::text IS NULL OR goods_code = $1) ORDER BY id LIMIT $2 OFFSET $3
"""


async def list_products(
    conn: Connection, *, goods_code: str | None = None, limit: int = 100, offset: int = 0
) -> list[Record]:
    return list(await conn.fetch(SELECT_PRODUCTS, goods_code, limit, offset))


FIND_PRODUCT = """
SELECT id, goods_code, gtin, category FROM products
WHERE ($1::text IS NOT NULL AND goods_code = $1) OR ($2::text IS NOT NULL AND gtin = $2)
"""


async def find_products(conn: Connection, goods_code: str | None, gtin: str | None) -> list[Record]:
    return list(await conn.fetch(FIND_PRODUCT, goods_code, gtin))


INSERT_DEVICE = """
INSERT INTO devices (node_id, enterprise_id, operator_id, name, token_hash)
VALUES ($1, $2, $3, $4, $5)
RETURNING id, name, created_at
"""


async def insert_device(
    conn: Connection, node_id: int, enterprise_id: int, operator_id: int | None, d: DeviceIn, token_hash: bytes
) -> Record:
    return await fetch_one(conn, INSERT_DEVICE, node_id, enterprise_id, operator_id, d.name, token_hash)


SELECT_DEVICES = """
SELECT d.id, d.name, d.created_at, d.revoked_at, n.code AS node_code, o.code AS operator_code
FROM devices d JOIN nodes n ON n.id = d.node_id LEFT JOIN operators o ON o.id = d.operator_id
WHERE ($1::text IS NULL OR n.code = $1) ORDER BY d.id LIMIT $2 OFFSET $3
"""


async def list_devices(
    conn: Connection, *, node_code: str | None = None, limit: int = 100, offset: int = 0
) -> list[Record]:
    return list(await conn.fetch(SELECT_DEVICES, node_code, limit, offset))


async def revoke_device(conn: Connection, device_id: int) -> bool:
    status: str = await conn.execute(
        "UPDATE devices SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", device_id
    )
    return status.endswith(" 1")


# One query resolves any bearer credential: devices and API tokens share the lookup.
FIND_PRINCIPALS = """
SELECT d.token_hash, 'device' AS role, d.id, d.name, d.enterprise_id, e.uscc, d.node_id, n.code AS node_code,
       n.area_code, d.operator_id, o.code AS operator_code, NULL AS authority, NULL::timestamptz AS expires_at
FROM devices d
JOIN nodes n ON n.id = d.node_id
JOIN enterprises e ON e.id = d.enterprise_id
LEFT JOIN operators o ON o.id = d.operator_id
WHERE d.token_hash = ANY($1::bytea[]) AND d.revoked_at IS NULL
UNION ALL
SELECT t.token_hash, t.role, t.id, t.name, t.enterprise_id, e.uscc, NULL, NULL, NULL, NULL, NULL, t.authority,
       t.expires_at
FROM api_tokens t LEFT JOIN enterprises e ON e.id = t.enterprise_id
WHERE t.token_hash = ANY($1::bytea[]) AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())
"""


async def find_principal(conn: Connection, token_hash: bytes) -> Record | None:
    """The device or API token a live credential names (None when unknown, revoked or expired)."""
    return await conn.fetchrow(FIND_PRINCIPALS, [token_hash])


async def find_principals(conn: Connection, token_hashes: Sequence[bytes]) -> dict[bytes, Record]:
    """:func:`find_principal` for several credentials at once, by token hash (the unknown ones left out)."""
    return {bytes(r["token_hash"]): r for r in await conn.fetch(FIND_PRINCIPALS, token_hashes)}


async def count_admin_tokens(conn: Connection) -> int:
    value: int = await conn.fetchval(
        "SELECT count(*) FROM api_tokens WHERE role = 'admin' AND revoked_at IS NULL "
        "AND (expires_at IS NULL OR expires_at > now())"
    )
    return value


async def enterprises_of_nodes(conn: Connection, codes: Sequence[str]) -> dict[str, str]:
    """The unified social credit code of the enterprise of each registered node among ``codes``."""
    if not codes:
        return {}
    rows = await conn.fetch(
        "SELECT n.code, e.uscc FROM nodes n JOIN enterprises e ON e.id = n.enterprise_id "
        "WHERE n.code = ANY($1::text[])",
        list(codes),
    )
    return {r["code"]: r["uscc"] for r in rows}
