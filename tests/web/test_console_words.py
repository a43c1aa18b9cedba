"""Every console page reads completely in Chinese, and completely in English when switched.

Each page of the console is rendered on the demo city in both languages; its visible text, less the
proper names the ledger holds (enterprises, nodes, stalls, products, people, what a regulator typed)
and the codes (shown in ``.mono``, ``<pre>``), must hold no word of the other language.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import aiohttp
import asyncpg

from tests.web.conftest import ADMIN, REGULATOR, Demo
from traceability.domain import registry

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
LATIN_WORD = re.compile(r"(?<![A-Za-z0-9_.\-/@])[A-Za-z][A-Za-z'’]+(?![A-Za-z0-9_\-/@])")
# Words that are the same in both languages: file formats, programs and standards, and the switch to the other
# language.
SHARED = {"CSV", "JSON", "XLSX", "Excel", "EPCIS", "GTIN", "English", "中文", "SVG", "Atom"}


class VisibleText(HTMLParser):
    """The text a reader sees, without scripts, styles and codes (``.mono``, ``<pre>``, ``<code>``)."""

    VOID = frozenset(
        {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
    )

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[bool] = []
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            for name, value in attrs:  # what a reader sees of a control: its placeholder, its button text
                if tag == "input" and name in ("placeholder",) and value:
                    self.parts.append(value)
            return
        classes = (dict(attrs).get("class") or "").split()
        hidden = tag in ("script", "style", "pre", "code") or "mono" in classes
        self.stack.append(hidden or (bool(self.stack) and self.stack[-1]))
        for name, value in attrs:
            if name in ("aria-label", "title", "alt") and value:
                self.parts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if not (self.stack and self.stack[-1]) and data.strip():
            self.parts.append(data.strip())


def visible(html: str) -> list[str]:
    parser = VisibleText()
    parser.feed(html)
    return parser.parts


async def proper_names(db_url: str) -> list[str]:
    """Names the ledger holds as recorded (a Chinese enterprise stays Chinese on the English page)."""
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(
            """
            SELECT name FROM enterprises UNION SELECT name_zh FROM nodes UNION SELECT coalesce(address, '') FROM nodes
            UNION SELECT name FROM operators UNION SELECT name_zh FROM products UNION SELECT name FROM console_users
            UNION SELECT coalesce(authority, '') FROM console_users UNION SELECT reason FROM recalls
            UNION SELECT coalesce(authority, '') FROM recalls UNION SELECT coalesce(scope, '') FROM recalls
            UNION SELECT coalesce(contact, '') FROM enterprises
            UNION SELECT coalesce(contact, '') FROM operators
            UNION SELECT coalesce(assignee, '') FROM anomaly_triage UNION SELECT coalesce(note, '') FROM anomaly_triage
            UNION SELECT reason FROM interval_violations UNION SELECT product_name FROM farm_inputs
            """
        )
        texts = [r[0] for r in rows if r[0]]
        # What the batches carry as typed: origins, producers, issuers of certificates, buyers.
        for (content,) in await conn.fetch("SELECT convert_from(canonical, 'UTF8') FROM events WHERE seq = 1"):
            texts += re.findall(r'"(?:place|producer|issuer|name)":"([^"]+)"', content)
        for (content,) in await conn.fetch("SELECT convert_from(canonical, 'UTF8') FROM events WHERE seq > 1"):
            texts += re.findall(r'"(?:issuer|name|buyer)":"([^"]+)"', content)
        areas = {r[0] for r in await conn.fetch("SELECT DISTINCT area_code FROM nodes")}
        for (content,) in await conn.fetch("SELECT convert_from(canonical, 'UTF8') FROM events WHERE seq = 1"):
            areas.update(re.findall(r'"areaCode":"([0-9]{6})"', content))
        texts += [name for code in areas if (name := registry.area_name(code))]
    finally:
        await conn.close()
    return sorted(set(texts), key=len, reverse=True)


def leaks(parts: list[str], lang: str, names: list[str]) -> list[str]:
    """The words of the other language left once proper names and shared words are taken out."""
    found = []
    for part in parts:
        text = part
        for name in names:
            if name in text:
                text = text.replace(name, " ")
        for word in SHARED:
            text = text.replace(word, " ")
        if lang == "en":
            found += HAN.findall(text)
        else:
            found += [w for w in LATIN_WORD.findall(text) if not w.isupper() or len(w) > 5]
    return found


async def signed_in(session: aiohttp.ClientSession, base: str, who: tuple[str, str]) -> None:
    async with session.get(f"{base}/console/login") as resp:
        token = CSRF.search(await resp.text())
    assert token is not None
    async with session.post(
        f"{base}/console/login",
        data={"csrf": token.group(1), "name": who[0], "password": who[1]},
        headers={"Origin": base},
    ) as resp:
        assert resp.status == 200, resp.status


def console_pages(demo: Demo, uscc: str, anomaly: int, stall: str) -> list[str]:
    codes = demo.codes
    today = datetime.now(UTC).date()
    month_ago = today - timedelta(days=30)
    return [
        "/console",
        "/console?product=%E7%8C%AA&from=2020-01-01",
        f"/console/batches/{codes['pork']}",
        f"/console/batches/{codes['recall']}",
        f"/console/batches/{codes['failed']}",
        f"/console/batches/{codes['drug']}",
        f"/console/batches/{codes['recall']}/forward",
        f"/console/batches/{codes['pork']}/backward",
        "/console/kde",
        "/console/kde?category=meat&from=2020-01-01&to=2020-12-31",
        f"/console/kde?product=21113021&from={month_ago}&to={today}",
        "/console/recalls",
        "/console/recalls/1",
        f"/console/batches/{codes['pork']}/recall?level=II&reason=%E6%8A%BD%E6%A3%80",
        "/console/anomalies",
        "/console/anomalies?status=open&severity=high",
        f"/console/anomalies/{anomaly}",
        "/console/enterprises",
        f"/console/enterprises/{uscc}",
        f"/console/stalls/{stall}",
        "/console/log",
        "/console/password",
    ]


async def test_every_console_page_reads_in_one_language(demo: Demo) -> None:
    conn = await asyncpg.connect(demo.db_url)
    try:
        uscc = await conn.fetchval(
            "SELECT en.uscc FROM anomalies a JOIN enterprises en ON en.id = a.enterprise_id ORDER BY a.id LIMIT 1"
        )
        anomaly = await conn.fetchval("SELECT min(id) FROM anomalies")
        stall = await conn.fetchval(
            "SELECT n.code || '/' || o.code FROM operators o JOIN nodes n ON n.id = o.node_id ORDER BY o.id LIMIT 1"
        )
        await conn.execute(
            "INSERT INTO anomaly_triage (anomaly_id, at, actor_kind, actor_id, actor_name, severity, status, assignee, "
            "note) VALUES ($1, now(), 'user', 1, $2, 'low', 'investigating', '张科长', '已约谈')",
            anomaly,
            REGULATOR[0],
        )
    finally:
        await conn.close()
    names = await proper_names(demo.db_url)
    problems: dict[str, list[str]] = {}
    for lang in ("zh", "en"):
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as anonymous:
            async with anonymous.get(f"{demo.url}/console/login?lang={lang}") as resp:
                assert resp.status == 200
                if bad := leaks(visible(await resp.text()), lang, names):
                    problems[f"{lang} /console/login"] = bad
        for who, pages in ((REGULATOR, console_pages(demo, uscc, anomaly, stall)), (ADMIN, ["/console/audit"])):
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
                await signed_in(session, demo.url, who)
                for path in pages:
                    sep = "&" if "?" in path else "?"
                    async with session.get(f"{demo.url}{path}{sep}lang={lang}") as resp:
                        assert resp.status == 200, (path, resp.status)
                        assert resp.headers["Content-Language"] == ("zh-CN" if lang == "zh" else "en")
                        if bad := leaks(visible(await resp.text()), lang, names):
                            problems[f"{lang} {path}"] = sorted(set(bad))
    assert not problems, problems


def test_the_check_finds_a_word_of_the_other_language() -> None:
    names = ["徐州彭城肉类联合加工厂"]
    assert leaks(["Serious anomalies", "5 each, at most 30"], "zh", names) == [
        "Serious",
        "anomalies",
        "each",
        "at",
        "most",
    ]
    assert leaks(["amount: 543.23"], "zh", names) == ["amount"]
    assert leaks(["徐州彭城肉类联合加工厂 · Slaughterhouse"], "en", names) == []
    assert leaks(["受影响批次"], "en", names) == ["受影响批次"]
    assert leaks(["批次 32031100000000002661 · KGM"], "zh", names) == []


async def test_recalls_count_their_batches_records_list_a_certificate_once_search_shows_production(
    demo: Demo,
) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        await signed_in(session, demo.url, REGULATOR)
        async with session.get(f"{demo.url}/console/recalls") as resp:
            page = await resp.text()
        async with session.get(f"{demo.url}/console/recalls?format=json") as resp:
            recalls = (await resp.json())["recalls"]
        affected = recalls[0]["affected"]
        assert recalls[0]["trace_code"] == demo.codes["recall"] and affected >= 7
        assert f'<td class="num">{affected}</td>' in page
        async with session.get(f"{demo.url}/console/batches/{demo.codes['pork']}?format=json") as resp:
            record = await resp.json()
        listed = [(c["type"], c["number"]) for c in record["certificates"]]
        assert len(listed) == len(set(listed)) and len(record["batch"]["certificates"]) > len(listed)
        for b in record["genealogy"]["backward"]["batches"]:
            seen = [(c["type"], c["number"]) for c in b["certificates"]]
            assert len(seen) == len(set(seen)), b["trace_code"]
        async with session.get(f"{demo.url}/console/batches/{demo.codes['pork']}") as resp:
            html = await resp.text()
        quarantine = next(n for t, n in listed if t == "quarantine_certificate")
        certificates_section = html[html.index('id="cert-h"') :]
        assert certificates_section.count(quarantine) == 1
        produced = record["batch"]["produced_on"]
        async with session.get(
            f"{demo.url}/console?product={record['batch']['product']['goods_code']}&format=json"
        ) as resp:
            found = next(r for r in (await resp.json())["results"] if r["trace_code"] == demo.codes["pork"])
        assert found["produced_on"] == produced
        async with session.get(f"{demo.url}/console?product={record['batch']['product']['goods_code']}") as resp:
            row = (await resp.text()).split(demo.codes["pork"] + "</a>", 1)[1].split("</tr>", 1)[0]
        assert produced in row
