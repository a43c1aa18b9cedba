"""The consumer page behind every QR code: how fast it is served, and how much a phone downloads.

Both run against the demo city (``traceability demo``), loaded once per run into a database of its own on
the bench's PostgreSQL and served by a second service process, so the pages are the real ones: a receipt, a
recalled lot, a vegetable on hold, the drug lot with its dispensings.

- ``consumer_page``: ``GET /t/{code}`` of the demo's codes, 64 connections, against a bare aiohttp handler
  serving each code the very bytes the service sent it (compressed when the service compressed them).
- ``page_weight``: the first visit to each demo code's page in headless Chromium at phone size, every request
  counted with its bytes as transferred (headers and encoded body, as DevTools reports them), until the badge
  has checked every record; then a repeat visit, which should only revalidate.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import asyncpg

from bench import stack
from bench.load import HttpLoad
from bench.report import Result
from bench.workloads import Get
from traceability.config import ROOT, Settings
from traceability.storage import migrator
from traceability.storage.database import connect, open_database

if TYPE_CHECKING:
    from bench.benchmarks import Context

CHROMIUM = os.environ.get("TRACE_CHROMIUM", "/usr/bin/chromium")
PHONE = {"width": 360, "height": 640}
WEIGHT_KB, REQUESTS = 40.0, 6
VISITORS = 5
"""Phones visiting at once: each visit ends with half a second of network quiet (Playwright's ``networkidle``),
waited out side by side instead of one after another; what each visit loads is counted per page."""
SHOWN = {"receipt": "a pork receipt", "farm": "a vegetable", "drug": "the drug lot"}
ACCEPT = {"Accept-Encoding": "gzip, deflate", "Accept-Language": "zh-CN,zh;q=0.9"}


@dataclass(slots=True)
class DemoCity:
    url: str
    codes: dict[str, str]
    service: stack.Process
    pages: dict[str, bytes] = field(default_factory=dict)


def start_demo_city(ctx: Context) -> None:
    """Begin setting up the demo city, if not begun yet (:func:`demo_city` waits for it)."""
    if ctx.demo is None:
        ctx.demo = asyncio.ensure_future(_set_up(ctx))


async def demo_city(ctx: Context) -> DemoCity:
    """The demo city in its own database, served by its own process, every event in the log; once per run."""
    start_demo_city(ctx)
    return await ctx.demo  # type: ignore[no-any-return]


async def _set_up(ctx: Context) -> DemoCity:
    name = f"trace_bench_demo_{os.getpid()}"
    admin = await asyncpg.connect(stack.with_database(ctx.db_url, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()

    async def drop() -> None:
        conn = await asyncpg.connect(stack.with_database(ctx.db_url, "postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    ctx.resources.push_async_callback(drop)
    url = stack.with_database(ctx.db_url, name)
    conn = await connect(url)
    try:
        await migrator.migrate(conn, ROOT / "schema")
    finally:
        await conn.close()
    home = ctx.workdir / "demo"
    home.mkdir(exist_ok=True)
    from traceability.demo.loader import load_demo

    settings = Settings.from_env({}, database_url=url, data_dir=home, public_url="http://trace.test")
    async with open_database(settings) as db:
        result = await load_demo(db, public_url="http://trace.test")
    argv, env, port = stack.service(url, home)
    service = await ctx.resources.enter_async_context(
        stack.running("demo service", argv, env, port, home / "server.log")
    )
    conn = await asyncpg.connect(url)
    try:
        for _ in range(1200):
            if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM log_queue)"):
                break
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    ctx.log(f"demo city: {result.total_events:,} events loaded and logged, served at {service.url}")
    return DemoCity(service.url, {key: code for key, _label, code in result.highlights}, service)


async def consumer_page(ctx: Context) -> Result:
    """``GET /t/{code}`` of every demo code vs a bare handler serving each code's bytes, 64 connections."""
    city = await demo_city(ctx)
    paths = tuple(f"/t/{code}" for code in city.codes.values())
    pages_dir = ctx.workdir / "pages"
    pages_dir.mkdir(exist_ok=True)
    sizes, wire = [], []
    async with aiohttp.ClientSession(city.url, auto_decompress=False) as session:
        for path in paths:
            async with session.get(path, headers=ACCEPT) as resp:
                body = await resp.read()
                assert resp.status == 200, (path, resp.status, body[:200])
                encoding = resp.headers.get("Content-Encoding", "")
            sizes.append(len(gzip.decompress(body)) if encoding == "gzip" else len(body))
            wire.append(len(body))
            (pages_dir / f"{path.rsplit('/', 1)[1]}.{encoding or 'identity'}").write_bytes(body)
    argv, env, port = stack.pages(pages_dir)
    bare = await ctx.resources.enter_async_context(
        stack.running("bare page handler", argv, env, port, ctx.workdir / "bare-pages.log")
    )
    ctx.bare_servers[-1] = bare
    clients = 64
    work = Get(paths, headers=ACCEPT)
    svc, base, cores = await ctx.compare(
        "consumer_page",
        lambda t: HttpLoad(city.url, work, clients, t.warmup, t.duration),
        lambda t: HttpLoad(bare.url, work, clients, t.warmup, t.duration),
        city.service,
        bare=bare,
    )
    note = (
        f"GET /t/{{code}} of {len(paths)} demo codes ({statistics.mean(sizes) / 1024:.1f} KB of HTML each on "
        f"average, {statistics.mean(wire) / 1024:.1f} KB on the wire) vs a bare aiohttp handler serving the same "
        f"bytes, {clients} connections; service p50/p99 {svc.quantile(0.5) * 1000:.1f}/"
        f"{svc.quantile(0.99) * 1000:.1f} ms, baseline {base.quantile(0.5) * 1000:.1f}/"
        f"{base.quantile(0.99) * 1000:.1f} ms; {cores}; {cores.per(svc.rate, 'pages/s')}"
    )
    errors = [f"{k} x{v}" for s in (svc, base) for k, v in s.errors.most_common(3)]
    return Result("consumer_page", svc.rate, "pages/s", base.rate, 0.30, note=note, broken="; ".join(errors))


@dataclass(slots=True)
class Visit:
    requests: list[tuple[str, int, int]]  # (path, status, bytes transferred)
    state: str

    @property
    def kb(self) -> float:
        return sum(n for _p, _s, n in self.requests) / 1024


async def visit(page: Any, url: str) -> Visit:
    """Open ``url`` and wait for the badge's verdict; every request the page made, with its transferred bytes."""
    seen: list[Any] = []

    def note(request: Any) -> None:
        seen.append(request)

    page.on("requestfinished", note)
    page.on("requestfailed", note)
    await page.goto(url)
    await page.wait_for_function(
        "() => { const b = document.getElementById('badge');"
        " return b && ['ok', 'records', 'fail', 'pending', 'unsupported'].includes(b.dataset.state); }",
        timeout=60_000,
    )
    await page.wait_for_load_state("networkidle")
    page.remove_listener("requestfinished", note)
    page.remove_listener("requestfailed", note)
    out = []
    for request in seen:
        response = await request.response()
        sizes = await request.sizes()
        # Chromium gives a negative body size for an answer it took from its own cache: nothing moved.
        cached = sizes["responseBodySize"] < 0
        moved = 0 if cached else max(sizes["responseHeadersSize"], 0) + sizes["responseBodySize"]
        status = response.status if response is not None else 0
        if status == 200 and sizes["responseBodySize"] == 0:
            status = 304  # revalidated: Chromium reports the status of the copy it kept
        out.append((url_path(request.url), status, moved))
    state = await page.locator("#badge").get_attribute("data-state")
    return Visit(out, state or "")


def url_path(url: str) -> str:
    tail = url.split("://", 1)[-1]
    return "/" + tail.split("/", 1)[1] if "/" in tail else "/"


async def page_weight(ctx: Context) -> Result:
    """The first visit to each demo code's page: requests and KB transferred, the heaviest against the goal."""
    from playwright.async_api import async_playwright

    city = await demo_city(ctx)
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 - once, before the browser starts
        raise RuntimeError(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    first: dict[str, Visit] = {}
    again: dict[str, Visit] = {}
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=args)
        together = asyncio.Semaphore(VISITORS)

        async def phone(key: str, code: str) -> None:
            async with together:
                context = await browser.new_context(viewport=PHONE, locale="zh-CN")
                try:
                    page = await context.new_page()
                    first[key] = await visit(page, f"{city.url}/t/{code}")
                    again[key] = await visit(page, f"{city.url}/t/{code}")
                finally:
                    await context.close()

        try:
            await asyncio.gather(*(phone(key, code) for key, code in city.codes.items()))
        finally:
            await browser.close()
        first = {key: first[key] for key in city.codes}  # reported in the demo's order, whichever finished first
    for key, v in first.items():
        ctx.log(f"page_weight {key}: {len(v.requests)} requests, {v.kb:.1f} KB, badge {v.state}; again "
                f"{len(again[key].requests)} requests {again[key].kb:.1f} KB "
                f"{[s for _p, s, _n in again[key].requests]}")  # fmt: skip
        for path, status, moved in v.requests:
            ctx.log(f"    {status} {moved:>7,} B {path[:90]}")
    heaviest = max(first, key=lambda k: first[k].kb)
    busiest = max(first, key=lambda k: len(first[k].requests))
    unverified = [k for k, v in first.items() if v.state not in ("ok", "records")]
    revalidated = all(s == 304 for v in again.values() for p, s, _n in v.requests if p.startswith("/t/"))
    shown = "; ".join(
        f"{what} {first[k].kb:.1f} KB in {len(first[k].requests)} requests" for k, what in SHOWN.items() if k in first
    )
    again_kb = max(v.kb for v in again.values())
    common = (
        f"{shown}; repeat visits {'revalidate the page with 304' if revalidated else 'do NOT revalidate with 304'}, "
        f"{again_kb:.1f} KB at most"
    )
    broken = f"the badge did not verify on {unverified}" if unverified else ""
    ctx.page_requests = Result(
        "page_requests",
        len(first[busiest].requests),
        "requests",
        min(len(v.requests) for v in first.values()),
        REQUESTS,
        better="lower",
        goal_on="value",
        note=f"first visit, the most requests of {len(first)} demo pages ({busiest}), proofs included; "
        f"baseline: the fewest; {common}",
        broken=broken,
    )
    return Result(
        "page_weight",
        first[heaviest].kb,
        "KB",
        min(v.kb for v in first.values()),
        WEIGHT_KB,
        better="lower",
        goal_on="value",
        note=f"first visit, everything it loads as transferred, the heaviest of {len(first)} demo pages "
        f"({heaviest}); baseline: the lightest; {common}",
        broken=broken,
    )


async def page_requests(ctx: Context) -> Result:
    """The request count page_weight measured (run after it)."""
    if ctx.page_requests is None:
        await page_weight(ctx)
    assert ctx.page_requests is not None
    return ctx.page_requests  # type: ignore[no-any-return]
