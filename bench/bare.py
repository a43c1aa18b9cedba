"""The baselines: an aiohttp handler that returns a fixed JSON body of a given size, or saved pages.

Same stack as the service (aiohttp on uvloop, no access log), none of the work: no database, no
middleware, no serialisation. ``python -m bench.bare --port P --size N``; or ``--pages DIR`` to answer
``GET /t/{code}`` with the bytes saved in ``DIR/{code}.{gzip|identity}`` (what the service sent).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson
import uvloop
from aiohttp import web


def body_of_size(size: int) -> bytes:
    """A valid JSON document of exactly ``size`` bytes (at least 16)."""
    pad = max(size - len(orjson.dumps({"pad": ""})), 0)
    body = orjson.dumps({"pad": "x" * pad})
    assert len(body) == max(size, len(body))
    return body


def make_app(size: int) -> web.Application:
    body = body_of_size(size)

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/v1/batches/{trace_code}", handler)
    app.router.add_get("/healthz", handler)
    return app


def pages_app(folder: Path) -> web.Application:
    saved = {p.stem: (p.read_bytes(), p.suffix[1:]) for p in folder.iterdir() if p.is_file()}

    async def handler(request: web.Request) -> web.Response:
        body, encoding = saved[request.match_info["code"]]
        headers = {"Content-Encoding": encoding} if encoding != "identity" else None
        return web.Response(body=body, content_type="text/html", charset="utf-8", headers=headers)

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/t/{code}", handler)
    app.router.add_get("/healthz", health)
    return app


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--size", type=int)
    p.add_argument("--pages", type=Path)
    args = p.parse_args()
    uvloop.install()
    app = pages_app(args.pages) if args.pages else make_app(args.size)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
