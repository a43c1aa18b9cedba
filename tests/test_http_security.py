"""Protective headers on every response, HTTPS served directly, and forwarded headers believed only from
a trusted proxy."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import ssl
from pathlib import Path
from typing import Any

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import World
from tests.servers import Server
from tests.web.test_pages import CSRF
from traceability.config import Settings
from traceability.http.app import create_app

PROTECTIVE = ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options")


def assert_protected(resp: Any, page: bool) -> None:
    for name in PROTECTIVE:
        assert name in resp.headers, (resp.url, name)
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "same-origin"
    csp = resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert ("script-src 'self'" in csp) if page else ("default-src 'none'" in csp)
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert resp.headers["Server"] == "traceability"  # no name or version of the software underneath
    assert "Strict-Transport-Security" not in resp.headers  # plain HTTP here


async def test_every_kind_of_response_carries_the_headers(world: World) -> None:
    code = await world.open_batch()
    c = world.client
    cases = [
        (await c.get(f"/api/v1/batches/{code}"), 200, False),  # JSON
        (await c.get(f"/t/{code}"), 200, True),  # a page
        (await c.get("/"), 200, True),
        (await c.get("/static/app.css"), 200, False),  # a static file
        (await c.get("/api/v1/batches/12345"), 400, False),  # a JSON error
        (await c.get("/no/such/page"), 404, True),  # an HTML error
        (await c.post("/api/v1/events", json={}), 401, False),  # refused
        (await c.delete("/api/v1/log"), 405, False),
        (await c.get("/api/v1/log/public-key"), 200, False),  # text
        (await c.get("/metrics"), 401, False),
    ]
    for resp, status, page in cases:
        assert resp.status == status, (resp.url, resp.status)
        assert_protected(resp, page)


async def test_a_trusted_proxy_is_believed_and_anyone_else_is_not(aiohttp_client: Any, world: World, db_url: str,
                                                                  tmp_path: Path) -> None:  # fmt: skip
    code = await world.open_batch()
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    # Not trusted (the default): the headers change nothing.
    resp = await world.client.get(f"/t/{code}", headers=forwarded)
    assert "Strict-Transport-Security" not in resp.headers
    settings = Settings.from_env(
        {"TRACE_TRUSTED_PROXIES": "127.0.0.0/8"}, database_url=db_url, data_dir=tmp_path, public_url="http://trace.test"
    )
    behind = await aiohttp_client(create_app(settings))
    try:
        resp = await behind.get(f"/t/{code}", headers=forwarded)
        assert resp.headers["Strict-Transport-Security"] == "max-age=31536000"
        resp = await behind.get(f"/t/{code}", headers={"Forwarded": 'for="[2001:db8::7]:4711";proto=https'})
        assert "Strict-Transport-Security" in resp.headers
        # The console's cookies are Secure when the proxy says the browser spoke HTTPS.
        login = await behind.get("/console/login", headers=forwarded)
        assert login.cookies and all(m["secure"] for m in login.cookies.values())
        plain = await behind.get("/console/login")
        assert plain.cookies and not any(m["secure"] for m in plain.cookies.values())
    finally:
        await behind.close()


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


async def test_https_served_directly(db_url: str, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server = Server(
        tmp_path,
        {"TRACE_DATABASE_URL": db_url, "TRACE_TLS_CERT": str(cert), "TRACE_TLS_KEY": str(key)},
        scheme="https",
    )
    trust = ssl.create_default_context(cafile=str(cert))
    server.ssl = trust
    server.start()
    try:
        await server.wait_healthy()
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{server.url}/console/login", ssl=trust) as resp:
                assert resp.status == 200
                assert resp.headers["Strict-Transport-Security"] == "max-age=31536000"
                assert resp.cookies and all(m["secure"] for m in resp.cookies.values())
                assert CSRF.search(await resp.text())
            # Plain HTTP on the HTTPS port is not served.
            try:
                async with http.get(f"http://127.0.0.1:{server.port}/healthz") as resp:
                    assert resp.status >= 400
            except aiohttp.ClientError:
                pass
        assert re.search(r'"url": "https://127\.0\.0\.1:\d+"', server.output())
    finally:
        server.stop()
