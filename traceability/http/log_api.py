"""The transparency log's routes: checkpoints, verifier key, inclusion and consistency proofs, witnesses."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson
from aiohttp import web

from traceability import errors
from traceability.domain import bounds
from traceability.http import compression, params, reads, schemas
from traceability.http.api import json_response, read_json
from traceability.http.auth import require
from traceability.http.keys import DATABASE, LOG
from traceability.http.openapi import TRACE_CODE_PATH, Param, Response, ok, operation
from traceability.ledger import merkle
from traceability.ledger import proofs as ledger_proofs
from traceability.services import history, proofs, transparency

routes = web.RouteTableDef()
NOTE = "text/plain"
SIGNED_NOTE = Response("a C2SP signed note", {"type": "string"}, media_type=NOTE)
SIZE = {"type": "integer", "minimum": 0, "maximum": bounds.INT64_MAX}
SEQ_MAX = 2**31 - 1  # events.seq is a PostgreSQL integer
COMPACT_PROOFS = schemas.obj(
    {
        "trace_code": schemas.STRING,
        "log_id": schemas.STRING,
        "tree_size": schemas.INT,
        "checkpoint": schemas.nullable(schemas.STRING),
        "pending": schemas.array(schemas.STRING),
        "next": schemas.nullable(schemas.STRING),
        "nodes": schemas.array(schemas.STRING),
        "proofs": schemas.array(
            {
                "anyOf": [
                    schemas.obj({"seq": schemas.INT, "leaf_index": schemas.INT}),
                    schemas.obj({"event_id": schemas.STRING, "leaf_index": schemas.INT}),
                ]
            }
        ),
    },
    {"missing": schemas.array(schemas.STRING)},
)


@routes.get("/api/v1/log/checkpoint")
@operation("The latest signed checkpoint with witness cosignatures", tags=("log",), responses={200: SIGNED_NOTE})
async def checkpoint(request: web.Request) -> web.Response:
    lg, primary = request.app[LOG], request.app[DATABASE]
    note = await reads.answer(request, lambda db: transparency.latest_checkpoint(db, lg, primary))
    return web.Response(text=note, content_type=NOTE, charset="utf-8", headers={"Cache-Control": "no-cache"})


@routes.get("/api/v1/log/checkpoints")
@operation(
    "Earlier checkpoints, newest first",
    tags=("log",),
    query=(
        Param("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
        Param("before", SIZE, "only checkpoints of smaller trees"),
    ),
    responses={200: ok("Checkpoints")},
)
async def checkpoints(request: web.Request) -> web.Response:
    limit = params.whole(request, "limit", 20, lo=1, hi=100)
    before = params.whole(request, "before") if "before" in request.query else None
    items = await reads.answer(request, lambda db: transparency.list_checkpoints(db, request.app[LOG], before, limit))
    nxt = f"/api/v1/log/checkpoints?before={items[-1]['size']}&limit={limit}" if len(items) == limit else None
    return json_response(
        {"log_id": request.app[LOG].log_id, "origin": request.app[LOG].origin, "checkpoints": items, "next": nxt}
    )


@routes.get("/api/v1/log/public-key")
@operation(
    "The log's verifier key (name+keyhash+base64)",
    tags=("log",),
    responses={200: Response("the verifier key", {"type": "string"}, media_type=NOTE)},
)
async def public_key(request: web.Request) -> web.Response:
    return web.Response(
        text=request.app[LOG].verifier_key + "\n",
        content_type=NOTE,
        charset="utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@routes.get("/api/v1/log")
@operation("The log: id, origin, verifier key, latest checkpoint", tags=("log",), responses={200: ok("Log")})
async def about(request: web.Request) -> web.Response:
    lg = request.app[LOG]
    return json_response(
        {
            "log_id": lg.log_id,
            "origin": lg.origin,
            "public_key": lg.verifier_key,
            "checkpoint": await transparency.latest_checkpoint(request.app[DATABASE], lg),
        }
    )


@routes.get("/api/v1/events/{event_id}/proof")
@operation(
    "An event's inclusion proof, with its hashed bytes and the checkpoint",
    tags=("log",),
    path=(Param("event_id", schemas.UUID, where="path"),),
    responses={200: ok("Proof")},
)
async def inclusion(request: web.Request) -> web.Response:
    event_id = params.path_uuid(request, "event_id")
    try:
        proof = await proofs.prove_inclusion(request.app[DATABASE], request.app[LOG], event_id)
    except errors.NotFound as exc:
        if "waiting" in exc.message:
            return json_response(
                {
                    "error": {
                        "code": "not_yet_logged",
                        "message": exc.message,
                        "request_id": request.get("request_id", ""),
                        "field": None,
                    }
                },
                status=404,
                headers={"Retry-After": "1"},
            )
        raise
    # Stations and auditors ask for these one at a time, right after capture: sent plain (see PLAIN).
    response = json_response(proof)
    response[compression.PLAIN] = True
    return response


def _bundle_response(request: web.Request, bundle: dict[str, Any]) -> web.Response:
    # Events still waiting to enter the log: ask again in a second for their proofs.
    retry = {"Retry-After": "1"} if bundle["pending"] else {}
    body = orjson.dumps(bundle)
    # A phone that checked this page before asks again with the tag: unchanged proofs cost a 304.
    tag = f'"{hashlib.sha256(body).hexdigest()[:24]}"'
    headers = {"Cache-Control": "no-cache", "ETag": tag, **retry}
    if tag in {x.strip() for x in request.headers.get("If-None-Match", "").split(",")}:
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type="application/json", headers=headers)


def compact(bundle: dict[str, Any]) -> dict[str, Any]:
    """A proof bundle for a page that already shows the records: one multiproof of all of them (``nodes``: the
    hashes of the tree's largest subtrees holding none of their leaves, left to right, so no hash is sent twice
    or sent when the reader can compute it from the other leaves) and each record's seq and leaf index; the
    records' bytes and hashes left out (the reader recomputes them from the page). docs/ledger.md, "Proof
    bundles"."""
    paths = {p["leaf_index"]: p["audit_path"] for p in bundle["proofs"]}
    out = {k: v for k, v in bundle.items() if k != "proofs"}
    if isinstance(out.get("next"), str):
        out["next"] = f"{out['next']}&form=compact"
    return {
        **out,
        "nodes": ledger_proofs.multiproof(paths, bundle["tree_size"]),
        # Another batch's record (asked for with ?event=) is named by its event id, the batch's own by seq.
        "proofs": [
            {"event_id": p["event_id"], "leaf_index": p["leaf_index"]}
            if p.get("also")
            else {"seq": p["seq"], "leaf_index": p["leaf_index"]}
            for p in bundle["proofs"]
        ],
    }


@routes.get("/api/v1/batches/{trace_code}/proofs")
@operation(
    "The inclusion proofs of a batch's events against one checkpoint, each with its hashed bytes",
    tags=("log",),
    path=(TRACE_CODE_PATH,),
    query=(
        Param("after", {"type": "integer", "minimum": 0, "maximum": SEQ_MAX, "default": 0}, "after this seq"),
        Param("limit", {"type": "integer", "minimum": 1, "maximum": proofs.MAX_BUNDLE, "default": proofs.MAX_BUNDLE}),
        Param(
            "form",
            {"type": "string", "enum": ["full", "compact"], "default": "full"},
            "compact: one multiproof of all the records, without their bytes (for a page that shows them)",
        ),
        Param(
            "event",
            {"type": "array", "items": schemas.UUID, "maxItems": proofs.MAX_ALSO},
            "also this event's proof, in the first page (a consumer page: the last record it shows of each batch "
            "this one came from)",
        ),
    ),
    responses={
        200: Response(
            "the proofs; with ?form=compact one multiproof (nodes) of the records' leaves",
            {"anyOf": [schemas.ref("BatchProofs"), COMPACT_PROOFS]},
            headers={"Retry-After": "when some events are still waiting"},
        ),
        304: Response("not modified"),
    },
)
async def batch_proofs(request: web.Request) -> web.Response:
    """A consumer page checks every record it shows with this one request."""
    code = history.valid_code(request.match_info["trace_code"])
    after = params.whole(request, "after", 0, hi=SEQ_MAX)
    limit = params.whole(request, "limit", proofs.MAX_BUNDLE, lo=1, hi=proofs.MAX_BUNDLE)
    form = request.query.get("form", "full")
    if form not in ("full", "compact"):
        raise errors.InvalidField("form: full or compact", field="form")
    if len(request.query.getall("event", [])) > proofs.MAX_ALSO:
        raise errors.InvalidField(f"event: at most {proofs.MAX_ALSO} events besides the batch's", field="event")
    also = params.uuid_list(request, "event")
    bundle = await reads.answer(request, lambda db: proofs.prove_batch(db, request.app[LOG], code, after, limit, also))
    return _bundle_response(request, compact(bundle) if form == "compact" else bundle)


@routes.get("/api/v1/log/proofs")
@operation(
    "The inclusion proofs of the named events and leaves against one checkpoint, each with its hashed bytes",
    tags=("log",),
    query=(
        Param("event", {"type": "array", "items": schemas.UUID, "maxItems": proofs.MAX_LISTED}, "an event id"),
        Param("leaf", {"type": "array", "items": SIZE, "maxItems": proofs.MAX_LISTED}, "a leaf index"),
    ),
    responses={200: ok("Proofs", headers={"Retry-After": "when some events are still waiting"})},
)
async def listed_proofs(request: web.Request) -> web.Response:
    named = len(request.query.getall("event", [])) + len(request.query.getall("leaf", []))
    if not 0 < named <= proofs.MAX_LISTED:
        raise errors.InvalidField(f"event: name 1 to {proofs.MAX_LISTED} events and leaves in all", field="event")
    event_ids, leaves = params.uuid_list(request, "event"), params.whole_list(request, "leaf")
    return _bundle_response(
        request, await proofs.prove_events(request.app[DATABASE], request.app[LOG], event_ids, leaves)
    )


@routes.get("/api/v1/log/consistency")
@operation(
    "An RFC 9162 consistency proof between two tree sizes",
    tags=("log",),
    query=(Param("first", SIZE, required=True), Param("second", SIZE, required=True)),
    responses={200: ok("Consistency")},
)
async def consistency(request: web.Request) -> web.Response:
    proof = await transparency.prove_consistency(
        request.app[DATABASE], request.app[LOG], params.whole(request, "first"), params.whole(request, "second")
    )
    return json_response(proof, headers={"Cache-Control": "public, max-age=31536000, immutable"})


# A tile's index in c2sp.org/tlog-tiles form (x001/x234/067), then .p/<width> for a partial tile.
TILE_INDEX = re.compile(r"((?:x[0-9]{3}/)*)([0-9]{3})(?:\.p/([0-9]{1,3}))?")
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}


@routes.get("/api/v1/log/tile/{level}/{index:.+}")
@operation(
    "A tile of the log's Merkle tree (c2sp.org/tlog-tiles): 256 hashes, or the first W of a partial tile (.p/W)",
    tags=("log",),
    path=(
        Param("level", {"type": "integer", "minimum": 0, "maximum": 7}, "tile level (tree level 8 × L)", where="path"),
        Param(
            "index",
            {"type": "string", "maxLength": 40, "pattern": r"^(x[0-9]{3}/)*[0-9]{3}(\.p/[0-9]{1,3})?$"},
            "the tile's index in three-digit groups (x001/x234/067), with .p/W for its first W hashes",
            where="path",
        ),
    ),
    responses={
        200: Response(
            "the hashes, 32 bytes each; never changes (cached a year)",
            {"type": "string", "format": "binary"},
            media_type="application/octet-stream",
        ),
        404: Response("the log does not have that many hashes there yet"),
    },
)
async def tile(request: web.Request) -> web.Response:
    level, raw = request.match_info["level"], request.match_info["index"]
    if level not in {str(n) for n in range(8)}:
        raise errors.InvalidField("level: a tile level from 0 to 7", field="level")
    found = TILE_INDEX.fullmatch(raw) if len(raw) <= 40 else None
    width = int(found.group(3)) if found and found.group(3) else None
    if found is None or (width is not None and not 0 < width < merkle.TILE_WIDTH):
        raise errors.InvalidField("index: three-digit groups like x001/234, then .p/W with W 1 to 255", field="index")
    index = int(found.group(1).replace("x", "").replace("/", "") + found.group(2))
    lg, primary = request.app[LOG], request.app[DATABASE]
    hashes = await reads.answer(request, lambda db: transparency.read_tile(db, lg, (int(level), index), width, primary))
    return web.Response(body=hashes, content_type="application/octet-stream", headers=IMMUTABLE)


@routes.post("/api/v1/log/cosignatures")
@operation(
    "A witness posts the checkpoint with its cosignature line",
    tags=("log",),
    auth=("signature",),
    body={"type": "string"},
    body_type=NOTE,
    responses={201: ok("Cosigned"), 200: ok("Cosigned", "nothing new")},
)
async def cosignatures(request: web.Request) -> web.Response:
    """A witness posts the checkpoint note with its cosignature line; the signature is the credential."""
    text = (await request.read()).decode("utf-8", errors="replace")
    result = await transparency.add_cosignatures(request.app[DATABASE], request.app[LOG], text)
    return json_response(result, status=201 if result["accepted"] else 200)


@routes.post("/api/v1/admin/witnesses")
@operation(
    "Register a witness's verifier key",
    tags=("log",),
    auth=("bearer",),
    body=schemas.ref("Witness"),
    responses={201: ok("Registered")},
)
async def register_witness(request: web.Request) -> web.Response:
    await require(request, "admin")
    body = await read_json(request)
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("name"), str)
        or not isinstance(body.get("verifier_key"), str)
    ):
        raise errors.InvalidField("name and verifier_key are required strings", field="verifier_key")
    for key, max_len in (("name", bounds.NAME), ("verifier_key", 400)):
        if (problem := bounds.text_problem(body[key], max_len)) is not None:
            raise errors.InvalidField(f"{key}: {problem}", field=key)
    return json_response(
        await transparency.register_witness(request.app[DATABASE], body["name"], body["verifier_key"]), status=201
    )
