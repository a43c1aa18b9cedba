"""The load generator's HTTP/1.1 client reads what aiohttp servers send: lengths, chunks, keep-alive, closes."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from bench import http1


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _sized(request: web.Request) -> web.Response:
    body = await request.read()
    return web.Response(body=b"got " + body, status=201, headers={"X-Seen": request.headers.get("X-Token", "")})


async def _chunked(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    for part in (b"alpha,", b"", b"beta," * 1000, b"gamma"):
        if part:
            await resp.write(part)
    await resp.write_eof()
    return resp


async def _closing(request: web.Request) -> web.Response:
    return web.Response(text="bye", headers={"Connection": "close"})


async def _not_modified(request: web.Request) -> web.Response:
    return web.Response(status=304)


@pytest.fixture
async def base() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/sized", _sized)
    app.router.add_get("/chunked", _chunked)
    app.router.add_get("/closing", _closing)
    app.router.add_get("/same", _not_modified)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = _port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_requests_on_one_connection_read_whole_bodies(base: str) -> None:
    conn = http1.Connection(base)
    try:
        for n in range(3):
            resp = await conn.request("POST", "/sized", {"X-Token": f"t{n}"}, b"x" * (70_000 + n))
            assert (resp.status, resp.headers["x-seen"], resp.body) == (201, f"t{n}", b"got " + b"x" * (70_000 + n))
        resp = await conn.request("GET", "/chunked")
        assert resp.body == b"alpha," + b"beta," * 1000 + b"gamma"
        resp = await conn.request("GET", "/same")
        assert (resp.status, resp.body) == (304, b"")
        resp = await conn.request("POST", "/sized", None, b"")
        assert resp.body == b"got "
    finally:
        conn.close()


async def test_a_connection_the_server_closes_is_opened_again(base: str) -> None:
    conn = http1.Connection(base)
    try:
        assert (await conn.request("GET", "/closing")).body == b"bye"
        assert (await conn.request("GET", "/closing")).body == b"bye"
        assert (await conn.request("POST", "/sized", None, b"again")).body == b"got again"
    finally:
        conn.close()


async def test_an_unknown_route_is_an_answer_not_an_error(base: str) -> None:
    conn = http1.Connection(base)
    try:
        resp = await conn.request("GET", "/nowhere")
        assert resp.status == 404
        assert (await conn.request("POST", "/sized", None, b"ok")).status == 201
    finally:
        conn.close()
