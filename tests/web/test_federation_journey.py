"""A carcass crosses from Xuzhou's ledger to Nanjing's with its handover voucher, across real processes.

Two city ledgers, each ``traceability serve`` with its own embedded PostgreSQL, share one federation file.
A Xuzhou slaughterhouse ships a carcass to a Nanjing wholesale market; the shipper fetches the voucher
(JSON and the PDF that travels with the goods); until the market receives it, Nanjing sends the code's
page and API view to Xuzhou. Forged vouchers (changed bytes, another key, a wrong proof) are refused; the
market's scanner records the receipt with the voucher read from its QR code, its chain continuing from the
shipment's hash, and sells on to a Nanjing wet market, whose stall sells a cut with a receipt code. The
shopper's phone at Nanjing verifies the records made there, chained to the shipment's hash, and
``traceability verify`` agrees. A voucher under a checkpoint Xuzhou's key signed but which is not one
history with the checkpoint Nanjing saw is refused too.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
import qrcode
import zxingcpp
from playwright.async_api import Browser, expect

from tests.conftest import CHINA, make_uscc, new_id, until
from tests.servers import Server, run_station, seed_cluster
from tests.web.conftest import new_page
from traceability.config import ROOT
from traceability.http.pages.voucher_sheet import qr_payload
from traceability.ledger import checkpoint as notes
from traceability.ledger import merkle
from traceability.ledger import voucher as vouchers

pytestmark = pytest.mark.browser
XUZHOU, NANJING, SUZHOU = "xuzhou.trace.test/log", "nanjing.trace.test/log", "suzhou.trace.test/log"
EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"


class Ledger:
    def __init__(self, server: Server, origin: str) -> None:
        self.server, self.origin = server, origin
        self.admin = ""

    @property
    def url(self) -> str:
        return self.server.url

    async def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token or self.admin}"}
        async with (
            aiohttp.ClientSession() as s,
            s.request(method, self.url + path, json=body, headers=headers, allow_redirects=False) as r,
        ):
            data = await r.json() if r.content_type == "application/json" else await r.read()
            return r.status, data

    async def note(self, path: str, text: str) -> tuple[int, Any]:
        """POST a signed note as it travels between ledgers (plain text; the signature is the credential)."""
        async with aiohttp.ClientSession() as s, s.post(self.url + path, data=text.encode()) as r:
            return r.status, await r.json()

    async def post(self, path: str, body: Any, token: str | None = None) -> Any:
        status, data = await self.call("POST", path, body, token)
        assert status in (200, 201), (self.origin, path, status, data)
        return data

    async def epcis(self, event: dict[str, Any], token: str) -> dict[str, Any]:
        """Capture one event in an EPCIS document; the finished capture job."""
        doc = {
            "@context": [EPCIS_CONTEXT, {"trace": "https://trace.example/ns/"}],
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": minutes_ago(0),
            "epcisBody": {"eventList": [event]},
        }
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/ld+json"}
        async with aiohttp.ClientSession() as s, s.post(self.url + "/epcis/capture", json=doc, headers=headers) as r:
            assert r.status == 202, (r.status, await r.text())
            job_url = self.url + r.headers["Location"]
            async with s.get(job_url, headers={"Authorization": f"Bearer {token}"}) as j:
                return dict(await j.json(content_type=None))

    async def place(self, n: int, node_type: str, area: str, name: str) -> tuple[str, str]:
        """An enterprise, its node and a scanner there: (node code, device credential)."""
        uscc = make_uscc(n)
        await self.post("/api/v1/admin/enterprises", {"name": name, "uscc": uscc})
        node = await self.post(
            "/api/v1/admin/nodes", {"enterprise": uscc, "type": node_type, "area_code": area, "name": name}
        )
        device = await self.post("/api/v1/admin/devices", {"node": node["code"], "name": f"{name} scanner"})
        return str(node["code"]), str(device["credential"])


AREAS = {XUZHOU: "320300", NANJING: "320100", SUZHOU: "320500"}
NAMES = {XUZHOU: "徐州", NANJING: "南京", SUZHOU: "苏州"}


@asynccontextmanager
async def started(origins: tuple[str, ...]) -> AsyncIterator[tuple[Ledger, ...]]:
    """City ledgers, each ``traceability serve`` with its own embedded PostgreSQL, sharing one federation file."""
    # Under the project's var/ like the server_home fixture: the embedded PostgreSQL must reach it.
    root = ROOT / "var" / "test-servers" / uuid.uuid4().hex[:12]
    homes = {origin: root / origin.split(".")[0] for origin in origins}
    keys = {}
    for origin, home in homes.items():
        home.mkdir(parents=True)
        signer = notes.generate_signer(origin)
        (home / "log-signing-key").write_text(notes.dump_signer_key(signer) + "\n")
        os.chmod(home / "log-signing-key", 0o600)
        keys[origin] = notes.verifier_key(signer)
    servers = {origin: Server(home, {"TRACE_LOG_ORIGIN": origin}) for origin, home in homes.items()}
    members = [
        f'[[members]]\norigin = "{o}"\nname = "{NAMES[o]}"\nurl = "{s.url}"\nareas = ["{AREAS[o]}"]\n'
        f'key = "{keys[o]}"\n'
        for o, s in servers.items()
    ]
    (root / "federation.toml").write_text("\n".join(members))
    await asyncio.gather(*(asyncio.to_thread(seed_cluster, home) for home in homes.values()))
    for server in servers.values():
        server.env.update(TRACE_FEDERATION=str(root / "federation.toml"), TRACE_PUBLIC_URL=server.url)
        server.start("--migrate")
    try:
        await asyncio.gather(*(s.wait_healthy() for s in servers.values()))
        found = tuple(Ledger(servers[o], o) for o in origins)
        for ledger in found:
            ledger.admin = (ledger.server.data_dir / "admin-token").read_text().strip()
            await ledger.post(
                "/api/v1/admin/products",
                {"category": "meat", "goods_code": "21113011", "name": "白条猪肉", "name_en": "Pork carcass"},
            )
        yield found
    finally:
        await asyncio.gather(*(asyncio.to_thread(s.stop) for s in servers.values()))
        # Clusters take seconds to remove on a busy disk: not the test's time.
        subprocess.run(["sh", "-c", 'rm -rf "$0" &', str(root)], check=True)  # noqa: ASYNC221 - returns at once


@pytest.fixture
async def ledgers() -> AsyncIterator[tuple[Ledger, ...]]:
    async with started((XUZHOU, NANJING)) as pair:
        yield pair


async def console(ledger: Ledger) -> aiohttp.ClientSession:
    """A regulator signed in to the ledger's console (added with ``traceability user add``, as an operator would)."""
    password = "correct horse battery staple 9"
    added = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "traceability", "user", "add", "--role", "regulator", "--name", "desk",
         "--authority", "南京市市场监督管理局"],
        input=password + "\n", env={**ledger.server.env, "TRACE_LOG_LEVEL": "warning"}, cwd=ROOT,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert added.returncode == 0, added.stdout + added.stderr
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # the servers are on 127.0.0.1
    try:
        async with session.get(f"{ledger.url}/console/login") as r:
            csrf = re.search(r'name="csrf" value="([^"]+)"', await r.text())
        assert csrf is not None
        form = {"csrf": csrf.group(1), "name": "desk", "password": password}
        async with session.post(f"{ledger.url}/console/login", data=form, headers={"Origin": ledger.url}) as r:
            assert r.status == 200, r.status
    except BaseException:
        await session.close()
        raise
    return session


def minutes_ago(n: int) -> str:
    return (datetime.now(CHINA) - timedelta(minutes=n)).isoformat(timespec="seconds")


async def fetch_voucher(xz: Ledger, code: str, event_id: str, token: str) -> dict[str, Any]:
    """The shipper asks until the shipment is in the log (the sequencer runs every 50 ms here, in a server
    process a loaded machine may leave waiting for seconds)."""

    async def voucher() -> dict[str, Any] | None:
        status, body = await xz.call("GET", f"/api/v1/batches/{code}/vouchers/{event_id}", token=token)
        if status == 200:
            return dict(body)
        assert status == 409 and body["error"]["code"] == "not_yet_logged", (status, body)
        return None

    return await until(voucher, "the shipment entering Xuzhou's log")


def forged_tree(v: dict[str, Any], signer: notes.Signer, size: int) -> dict[str, Any]:
    """The voucher re-proved in another tree of ``size`` leaves that holds the same shipment leaf, signed with
    the home ledger's own key: what a ledger showing two histories would hand out."""
    leaves = [bytes([n % 256]) * 32 for n in range(size)]
    leaves[v["leaf_index"]] = merkle.leaf_hash(bytes.fromhex(v["event_hash"]))
    new_size, root, tiles = merkle.append(0, {}, leaves)
    path = merkle.inclusion_proof(v["leaf_index"], new_size, tiles)
    return dict(
        v,
        tree_size=new_size,
        audit_path=[h.hex() for h in path],
        checkpoint=notes.sign_checkpoint(v["origin"], new_size, root, signer),
    )


async def test_a_carcass_crosses_to_another_city_with_its_voucher(
    ledgers: tuple[Ledger, ...], browser: Browser
) -> None:
    xz, nj = ledgers
    slaughter_node, slaughter = await xz.place(11, "slaughterhouse", "320311", "彭城肉联厂")
    market_node, market = await nj.place(21, "wholesale_market", "320102", "南京众彩农副产品批发市场")
    stall_node, stall = await nj.place(22, "wet_market", "320104", "南京秦淮菜场")
    opened = await xz.post(
        "/api/v1/batches",
        {"eventID": new_id(), "product": "21113011", "quantity": {"value": 88.5, "uom": "KGM"},
         "eventTime": minutes_ago(30), "documents": [{"type": "quarantine_certificate", "number": "3203001234"}]},
        slaughter,
    )  # fmt: skip
    code = opened["traceCode"]
    shipment = new_id()
    shipped = await xz.post(
        "/api/v1/events",
        {"eventID": shipment, "traceCode": code, "bizStep": "shipping", "disposition": "in_transit",
         "eventTime": minutes_ago(20), "quantity": {"value": 88.5, "uom": "KGM"},
         "destination": {"node": market_node, "name": "南京众彩"}, "commercial": {"unit_price": "23.50"}},
        slaughter,
    )  # fmt: skip

    # Not yet received: Nanjing answers for the Xuzhou code with Xuzhou.
    status, body = await nj.call("GET", f"/api/v1/batches/{code}")
    assert status == 307 and body["home"]["url"] == f"{xz.url}/api/v1/batches/{code}"
    async with aiohttp.ClientSession() as s, s.get(f"{nj.url}/t/{code}?lang=en", allow_redirects=False) as r:
        assert r.status == 302 and r.headers["Location"] == f"{xz.url}/t/{code}?lang=en"

    # The voucher: for the shipper (and regulators), not for anyone else; JSON and a PDF with its QR code.
    voucher = await fetch_voucher(xz, code, shipment, slaughter)
    assert voucher["event_hash"] == shipped["hash"] and voucher["origin"] == XUZHOU and len(voucher["chain"]) == 2
    assert json.loads(voucher["chain"][-1])["node"] == slaughter_node
    status, _ = await nj.call("GET", f"/api/v1/batches/{code}/vouchers/{shipment}", token=market)
    assert status in (401, 404)  # Nanjing's credentials mean nothing at Xuzhou, nor does Nanjing hold the event
    status, pdf = await xz.call("GET", f"/api/v1/batches/{code}/vouchers/{shipment}/pdf", token=slaughter)
    assert status == 200 and pdf.startswith(b"%PDF")
    line, whole = qr_payload(voucher, "unused")
    assert whole, f"a two-event voucher fits one QR code ({len(line)} characters)"
    image = qrcode.make(line, error_correction=qrcode.constants.ERROR_CORRECT_L).get_image()
    scanned = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert [b.text for b in scanned] == [line]

    receipt = {"eventID": new_id(), "bizStep": "receiving", "eventTime": minutes_ago(5),
               "quantity": {"value": 88.5, "uom": "KGM"}}  # fmt: skip
    handover = "/api/v1/handovers"
    # Forged vouchers are refused, each naming why.
    altered = copy.deepcopy(voucher)
    altered["chain"][0] = altered["chain"][0].replace("88.5", "98.5")
    other_key = notes.generate_signer(XUZHOU)
    resigned = dict(voucher, checkpoint=notes.sign_checkpoint(XUZHOU, voucher["tree_size"], b"\x01" * 32, other_key))
    misproved = dict(voucher, leaf_index=(voucher["leaf_index"] + 1) % voucher["tree_size"])
    for forged, reason in ((altered, "altered"), (resigned, "bad_signature"), (misproved, "bad_proof")):
        status, body = await nj.call("POST", handover, {"voucher": forged, "event": receipt}, market)
        assert status == 422 and body["error"]["code"] == f"voucher_{reason}", (reason, status, body)
        assert " · " in body["error"]["message"]  # Chinese · English
    # Only the destination receives: Nanjing's wet market may not.
    status, body = await nj.call("POST", handover, {"voucher": line, "event": receipt}, stall)
    assert status == 403 and body["error"]["code"] == "not_destination", body

    # The market's scanner records the receipt with the voucher read from the QR code.
    answer = await nj.post(handover, {"voucher": line, "event": receipt}, market)
    assert answer["seq"] == 1 and answer["prevHash"] == voucher["event_hash"] and answer["origin"] == XUZHOU
    again = await nj.call("POST", handover, {"voucher": line, "event": receipt}, market)
    assert again[0] == 200 and again[1]["replayed"] is True
    # Received here, the code is answered here now.
    status, view = await nj.call("GET", f"/api/v1/batches/{code}")
    assert status == 200 and view["trace_code"] == code and len(view["events"]) == 1, view

    # And it sells on within Nanjing: the market ships to a wet market, which receives it.
    await nj.post(
        "/api/v1/events",
        {"eventID": new_id(), "traceCode": code, "bizStep": "shipping", "disposition": "in_transit",
         "eventTime": minutes_ago(3), "quantity": {"value": 40, "uom": "KGM"}, "destination": {"node": stall_node}},
        market,
    )  # fmt: skip
    onward = await nj.post(
        "/api/v1/events",
        {"eventID": new_id(), "traceCode": code, "bizStep": "receiving", "eventTime": minutes_ago(2),
         "quantity": {"value": 40, "uom": "KGM"}},
        stall,
    )  # fmt: skip
    assert onward["seq"] == 3
    sale = await nj.post(
        "/api/v1/sales",
        {"eventID": new_id(), "source": code, "quantity": {"value": 0.75, "uom": "KGM"}, "eventTime": minutes_ago(1)},
        stall,
    )
    receipt_code = sale["traceCode"]
    assert receipt_code.startswith("320104")  # a Nanjing receipt, answered at Nanjing
    status, body = await nj.call("GET", f"/api/v1/batches/{receipt_code}")
    assert status == 200 and body["trace_code"] == receipt_code

    # The shopper's phone at Nanjing checks the records made there, chained to the shipment's hash.
    context, phone = await new_page(browser)
    try:
        await phone.goto(f"{nj.url}/t/{code}")
        await expect(phone.locator("#badge")).to_have_attribute("data-state", "ok", timeout=30_000)
    finally:
        await context.close()

    # The audit recomputes the received batch's chain from the shipment's hash.
    audit = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "traceability", "verify", "--workers", "1"],
        env={**nj.server.env, "TRACE_LOG_LEVEL": "warning"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr

    # A second carcass is received through EPCIS capture, its voucher in an extension field.
    second = await xz.post(
        "/api/v1/batches",
        {"eventID": new_id(), "product": "21113011", "quantity": {"value": 90, "uom": "KGM"},
         "eventTime": minutes_ago(30)},
        slaughter,
    )  # fmt: skip
    code2, shipment2 = second["traceCode"], new_id()
    await xz.post(
        "/api/v1/events",
        {"eventID": shipment2, "traceCode": code2, "bizStep": "shipping", "eventTime": minutes_ago(20),
         "quantity": {"value": 90, "uom": "KGM"}, "destination": {"node": market_node}},
        slaughter,
    )  # fmt: skip
    voucher2 = await fetch_voucher(xz, code2, shipment2, slaughter)
    arrival = {
        "type": "ObjectEvent",
        "action": "OBSERVE",
        "bizStep": "receiving",
        "disposition": "in_progress",
        "epcList": [f"{xz.url}/t/{code2}"],
        "eventTime": minutes_ago(1),
        "eventTimeZoneOffset": "+08:00",
    }
    forged2 = dict(voucher2, leaf_index=(voucher2["leaf_index"] + 1) % voucher2["tree_size"])
    job = await nj.epcis({**arrival, "trace:handoverVoucher": forged2}, market)
    assert job["success"] is False and "voucher_bad_proof" in str(job["errors"]), job
    job = await nj.epcis({**arrival, "trace:handoverVoucher": vouchers.compact(voucher2)}, market)
    assert job["success"] is True, job
    status, view = await nj.call("GET", f"/api/v1/batches/{code2}")
    assert status == 200 and [e["bizStep"] for e in view["events"]] == ["receiving"], view

    # A third carcass comes to the market's scanner station, which reads the voucher's QR code and queues the
    # receipt with it (as it would offline); the ledger verifies the voucher when the station uploads.
    third = await xz.post(
        "/api/v1/batches",
        {"eventID": new_id(), "product": "21113011", "quantity": {"value": 85, "uom": "KGM"},
         "eventTime": minutes_ago(30)},
        slaughter,
    )  # fmt: skip
    code3, shipment3 = third["traceCode"], new_id()
    await xz.post(
        "/api/v1/events",
        {"eventID": shipment3, "traceCode": code3, "bizStep": "shipping", "eventTime": minutes_ago(20),
         "quantity": {"value": 85, "uom": "KGM"}, "destination": {"node": market_node}},
        slaughter,
    )  # fmt: skip
    line3, _ = qr_payload(await fetch_voucher(xz, code3, shipment3, slaughter), "unused")
    home = nj.server.data_dir.parent / "station"
    device = await nj.post("/api/v1/admin/devices", {"node": market_node, "name": "market station"})
    enrolment = await nj.post(f"/api/v1/admin/devices/{device['id']}/enrolment", {})
    out = await run_station(home, "enrol", "--server", nj.url, "--code", enrolment["code"])
    assert out[0] == 0 and "✓" in out[1], out
    out = await run_station(home, "run", "--mode", "receive", "--flush-timeout", "30", stdin=f"{line3}\n")
    assert out[0] == 0 and code3 in out[1] and "✗" not in out[1], out
    status, view = await nj.call("GET", f"/api/v1/batches/{code3}")
    assert status == 200 and [e["bizStep"] for e in view["events"]] == ["receiving"], view

    # Xuzhou's own key, two histories: a tree of the same size with another root (Nanjing asks Xuzhou for the
    # consistency proof with the checkpoint it holds, which it cannot give). Proven once, a split view: every
    # voucher of Xuzhou is refused from then on, the next forgery too (docs/federation.md, "Witnessing").
    xz_key = notes.load_signer_key((xz.server.data_dir / "log-signing-key").read_bytes())
    for size, refusal in ((voucher["tree_size"], "inconsistent"), (voucher["tree_size"] + 5, "split_view")):
        split = forged_tree(voucher, xz_key, size)
        status, body = await nj.call(
            "POST", handover, {"voucher": split, "event": dict(receipt, eventID=new_id())}, market
        )
        assert status == 409 and body["error"]["code"] == f"voucher_{refusal}", (size, status, body)


async def test_a_carcass_passed_on_to_a_third_city(browser: Browser) -> None:
    """Xuzhou → Nanjing → Suzhou: Nanjing passes the carcass on with a voucher that carries Xuzhou's; Suzhou's page
    verifies all three parts, each with its own ledger's key; a Xuzhou recall reaches Suzhou through Nanjing."""
    async with started((XUZHOU, NANJING, SUZHOU)) as (xz, nj, sz):
        _, slaughter = await xz.place(51, "slaughterhouse", "320311", "彭城肉联厂")
        market_node, market = await nj.place(61, "wholesale_market", "320102", "南京众彩农副产品批发市场")
        sz_market_node, sz_market = await sz.place(71, "wholesale_market", "320508", "苏州南环桥市场")
        carcass = (
            await xz.post(
                "/api/v1/batches",
                {"eventID": new_id(), "product": "21113011", "quantity": {"value": 90, "uom": "KGM"},
                 "eventTime": minutes_ago(60), "documents": [{"type": "quarantine_certificate", "number": "Q32031"}]},
                slaughter,
            )
        )["traceCode"]  # fmt: skip
        first = new_id()
        await xz.post(
            "/api/v1/events",
            {"eventID": first, "traceCode": carcass, "bizStep": "shipping", "eventTime": minutes_ago(50),
             "quantity": {"value": 90, "uom": "KGM"}, "destination": {"node": market_node}},
            slaughter,
        )  # fmt: skip
        receipt = {"bizStep": "receiving", "eventTime": minutes_ago(40), "quantity": {"value": 90, "uom": "KGM"}}
        await nj.post(
            "/api/v1/handovers",
            {"voucher": await fetch_voucher(xz, carcass, first, slaughter), "event": {"eventID": new_id(), **receipt}},
            market,
        )
        onward = new_id()
        await nj.post(
            "/api/v1/events",
            {"eventID": onward, "traceCode": carcass, "bizStep": "shipping", "eventTime": minutes_ago(30),
             "quantity": {"value": 90, "uom": "KGM"}, "destination": {"node": sz_market_node}},
            market,
        )  # fmt: skip
        passed = await fetch_voucher(nj, carcass, onward, market)
        assert passed["origin"] == NANJING and passed["previous"]["origin"] == XUZHOU
        # The voucher inside must be the one Nanjing received: another one signed by another key is refused.
        forged = copy.deepcopy(passed)
        forged["previous"]["checkpoint"] = notes.sign_checkpoint(
            XUZHOU, passed["previous"]["tree_size"], b"\x03" * 32, notes.generate_signer(XUZHOU)
        )
        there = {"eventID": new_id(), **receipt, "eventTime": minutes_ago(20)}
        status, body = await sz.call("POST", "/api/v1/handovers", {"voucher": forged, "event": there}, sz_market)
        assert status == 422 and body["error"]["code"] == "voucher_bad_signature", body
        answer = await sz.post("/api/v1/handovers", {"voucher": passed, "event": there}, sz_market)
        assert answer["origin"] == NANJING and answer["prevHash"] == passed["event_hash"], answer

        context, phone = await new_page(browser)
        try:
            await phone.goto(f"{sz.url}/t/{carcass}")
            main = phone.locator("main")
            await expect(main.locator(f'.ledger-part[data-ledger="{XUZHOU}"]')).to_contain_text("彭城肉联厂")
            await expect(main.locator(f'.ledger-part[data-ledger="{NANJING}"]')).to_contain_text("南京众彩")
            await expect(main.locator('[data-ledger="own"]')).to_contain_text("苏州南环桥市场")
            for origin in (XUZHOU, NANJING):
                badge = main.locator(f'.ledger-part[data-ledger="{origin}"] .part-badge')
                await expect(badge).to_have_attribute("data-state", "ok", timeout=30_000)
            await expect(phone.locator("#badge")).to_have_attribute("data-state", "ok", timeout=30_000)

            # Xuzhou recalls the carcass: Nanjing applies the notice and passes it on to Suzhou, signed by Nanjing.
            token = {"role": "regulator", "name": "徐", "authority": "徐州市市场监督管理局"}
            regulator = (await xz.post("/api/v1/admin/tokens", token))["credential"]
            recall = await xz.post(
                "/api/v1/recalls", {"traceCode": carcass, "level": "I", "reason": "标签错误"}, regulator
            )
            assert [n["member"] for n in recall["notices"]] == [NANJING], recall
            await phone.goto(f"{sz.url}/t/{carcass}")
            await expect(phone.locator("#verdict")).to_contain_text("已召回")
            await expect(phone.locator("#verdict")).to_contain_text("标签错误")
        finally:
            await context.close()
