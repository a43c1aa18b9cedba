"""Registering the world: enterprises, nodes, operators (stalls), products and scanner devices."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from traceability import errors
from traceability.domain import pinyin, registry
from traceability.services import principals
from traceability.services.validation import fields
from traceability.storage import registry_repo
from traceability.storage.database import Connection, Database, Record


def _row(record: Record) -> dict[str, Any]:
    out = dict(record)
    for key, value in out.items():
        if hasattr(value, "isoformat"):
            out[key] = value.isoformat()
    return out


async def register_enterprise(db: Database, body: Any) -> dict[str, Any]:
    with fields():
        e = registry.parse_enterprise(body)
    async with db.connection() as conn:
        return _row(await registry_repo.insert_enterprise(conn, e))


async def register_node(db: Database, body: Any) -> dict[str, Any]:
    with fields():
        n = registry.parse_node(body)
    async with db.connection() as conn:
        enterprise_id = await registry_repo.find_enterprise_id(conn, n.enterprise_uscc)
        if enterprise_id is None:
            raise errors.UnknownReference(
                f"enterprise: no enterprise {n.enterprise_uscc} is registered", field="enterprise"
            )
        row = _row(await registry_repo.insert_node(conn, enterprise_id, n))
    row["enterprise"] = n.enterprise_uscc
    row["area_name"] = registry.area_name(n.area_code)
    return row


async def _node_id(conn: Connection, code: str) -> Record:
    node = await registry_repo.find_node(conn, code)
    if node is None:
        raise errors.UnknownReference(f"node: no node {code} is registered", field="node")
    return node


async def register_operator(db: Database, body: Any) -> dict[str, Any]:
    with fields():
        o = registry.parse_operator(body)
    async with db.connection() as conn:
        node = await _node_id(conn, o.node_code)
        row = _row(await registry_repo.insert_operator(conn, node["id"], o))
    row["node"] = o.node_code
    return row


async def register_product(db: Database, body: Any) -> dict[str, Any]:
    with fields():
        p = registry.parse_product(body)
    async with db.connection() as conn:
        return _row(await registry_repo.insert_product(conn, p))


async def register_device(db: Database, body: Any) -> dict[str, Any]:
    """Register a scanner; the response carries its credential, which is never shown again."""
    with fields():
        d = registry.parse_device(body)
    async with db.connection() as conn:
        node = await _node_id(conn, d.node_code)
        operator_id = None
        if d.operator_code is not None:
            operator_id = await registry_repo.find_operator_id(conn, node["id"], d.operator_code)
            if operator_id is None:
                raise errors.UnknownReference(
                    f"operator: node {d.node_code} has no operator {d.operator_code}", field="operator"
                )
        token, digest = principals.new_secret(principals.DEVICE_PREFIX)
        row = _row(await registry_repo.insert_device(conn, node["id"], node["enterprise_id"], operator_id, d, digest))
    row.update(node=d.node_code, operator=d.operator_code, credential=token)
    return row


LISTERS: dict[str, tuple[Callable[..., Awaitable[list[Any]]], str]] = {
    "enterprises": (registry_repo.list_enterprises, "uscc"),
    "nodes": (registry_repo.list_nodes, "code"),
    "operators": (registry_repo.list_operators, "node_code"),
    "products": (registry_repo.list_products, "goods_code"),
    "devices": (registry_repo.list_devices, "node_code"),
}


async def list_registered(
    db: Database, kind: str, *, key: str | None = None, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    """List one kind of registered thing, optionally filtered by its key."""
    lister, arg = LISTERS[kind]
    async with db.connection() as conn:
        rows = await lister(conn, **{arg: key}, limit=limit, offset=offset)
    return [_row(r) for r in rows]


async def revoke_device(db: Database, device_id: int) -> None:
    """Revoke a scanner device's credential: refused from now on by every server process."""

    async def revoke(conn: Connection) -> None:
        if not await registry_repo.revoke_device(conn, device_id):
            raise errors.NotFound(f"no active device {device_id}")

    await principals.change_credentials(db, revoke)


MAX_CATALOGUE = 10_000
"""Most products ranked for one lookup: a city's registry of goods holds hundreds to a few thousand."""


async def find_products(db: Database, query: str = "", *, limit: int = 500, offset: int = 0) -> dict[str, Any]:
    """Products for stations: all of them in goods-code pages, or those a name or pinyin initials find, best first.

    Each item carries its pinyin initials, so a station finds goods offline the same way.
    """
    query = query.strip()[:50]
    async with db.connection() as conn:
        if query:
            rows = await registry_repo.list_products(conn, limit=MAX_CATALOGUE)
        else:
            rows = await registry_repo.list_products(conn, limit=limit, offset=offset)
    items = []
    for row in rows:
        keys = pinyin.keys(row["name_zh"])
        score = pinyin.score(query, row["name_zh"], row["goods_code"], keys) if query else 0
        if query and not score:
            continue
        items.append(
            (
                -score,
                row["goods_code"],
                {
                    "goodsCode": row["goods_code"],
                    "name": row["name_zh"],
                    "nameEn": row["name_en"],
                    "category": row["category"],
                    "gtin": row["gtin"],
                    "initials": list(keys.initials),
                },
            )
        )
    if query:
        items.sort(key=lambda item: (item[0], item[1]))
        items = items[offset : offset + limit]
    return {"items": [item[2] for item in items], "query": query or None, "limit": limit, "offset": offset}
