"""The transparency log's routes: checkpoints, verifier key, inclusion and consistency proofs, witnesses."""

from __future__ import annotations

from aiohttp import web

from traceability import errors
from traceability.domain import limits
from traceability.http import params
from traceability.http.api import json_response, read_json
from traceability.http.auth import require
from traceability.http.keys import DATABASE, LOG
from traceability.services import transparency

routes = web.RouteTableDef()
NOTE = "text/plain"


@routes.get("/api/v1/log/checkpoint")
async def checkpoint(request: web.Request) -> web.Response:
    note = await transparency.latest_checkpoint(request.app[DATABASE], request.app[LOG])
    return web.Response(text=note, content_type=NOTE, charset="utf-8", headers={"Cache-Control": "no-cache"})


@routes.get("/api/v1/log/checkpoints")
async def checkpoints(request: web.Request) -> web.Response:
    limit = params.whole(request, "limit", 20, lo=1, hi=100)
    before = params.whole(request, "before") if "before" in request.query else None
    items = await transparency.list_checkpoints(request.app[DATABASE], request.app[LOG], before, limit)
    nxt = f"/api/v1/log/checkpoints?before={items[-1]['size']}&limit={limit}" if len(items) == limit else None
    return json_response(
        {"log_id": request.app[LOG].log_id, "origin": request.app[LOG].origin, "checkpoints": items, "next": nxt}
    )


@routes.get("/api/v1/log/public-key")
async def public_key(request: web.Request) -> web.Response:
    return web.Response(
        text=request.app[LOG].verifier_key + "\n",
        content_type=NOTE,
        charset="utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@routes.get("/api/v1/log")
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
async def inclusion(request: web.Request) -> web.Response:
    event_id = params.path_uuid(request, "event_id")
    try:
        proof = await transparency.prove_inclusion(request.app[DATABASE], request.app[LOG], event_id)
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
    return json_response(proof)


@routes.get("/api/v1/log/consistency")
async def consistency(request: web.Request) -> web.Response:
    proof = await transparency.prove_consistency(
        request.app[DATABASE], request.app[LOG], params.whole(request, "first"), params.whole(request, "second")
    )
    return json_response(proof, headers={"Cache-Control": "public, max-age=31536000, immutable"})


@routes.post("/api/v1/log/cosignatures")
async def cosignatures(request: web.Request) -> web.Response:
    """A witness posts the checkpoint note with its cosignature line; the signature is the credential."""
    text = (await request.read()).decode("utf-8", errors="replace")
    result = await transparency.add_cosignatures(request.app[DATABASE], request.app[LOG], text)
    return json_response(result, status=201 if result["accepted"] else 200)


@routes.post("/api/v1/admin/witnesses")
async def register_witness(request: web.Request) -> web.Response:
    await require(request, "admin")
    body = await read_json(request)
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("name"), str)
        or not isinstance(body.get("verifier_key"), str)
    ):
        raise errors.InvalidField("name and verifier_key are required strings", field="verifier_key")
    for key, max_len in (("name", limits.NAME), ("verifier_key", 400)):
        if (problem := limits.text_problem(body[key], max_len)) is not None:
            raise errors.InvalidField(f"{key}: {problem}", field=key)
    return json_response(
        await transparency.register_witness(request.app[DATABASE], body["name"], body["verifier_key"]), status=201
    )
