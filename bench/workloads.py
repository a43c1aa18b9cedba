"""What each concurrent client sends. Picklable, so the load workers build the requests themselves.

A workload answers ``request(task, n)``: the ``n``-th request of concurrent client ``task``. Being a
pure function of those two numbers (plus fresh uuids and clocks) keeps the workers stateless.
"""

from __future__ import annotations

import os
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from traceability.domain.fields import BEIJING  # the scanners' local time

JSON = {"Content-Type": "application/json"}


def uuids(n: int) -> list[str]:
    """``n`` random (version 4) UUIDs as text, from one read of the system's random source: the load
    workers make tens of thousands a second, and ``str(uuid.uuid4())`` cost them about 3 us each."""
    h = os.urandom(16 * n).hex()
    out = []
    for i in range(0, 32 * n, 32):
        v = "89ab"[int(h[i + 16], 16) & 3]  # the variant
        out.append(
            f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-4{h[i + 13 : i + 16]}-{v}{h[i + 17 : i + 20]}-{h[i + 20 : i + 32]}"
        )
    return out


def local_now() -> str:
    """Now in the scanners' local time, to the millisecond."""
    return datetime.now(BEIJING).isoformat(timespec="milliseconds")


def event(code: str, biz_step: str = "receiving", event_id: str | None = None, at: str | None = None) -> dict[str, Any]:
    """One capture as a wet-market or wholesaler scanner sends it (a request's events share one clock reading)."""
    return {
        "eventID": event_id or str(uuid.uuid4()),
        "type": "ObjectEvent",
        "traceCode": code,
        "bizStep": biz_step,
        "eventTime": at or local_now(),
        "quantity": {"value": 45.25, "uom": "KGM"},
        "documents": [
            {"type": "quarantine_certificate", "number": "A320302-2026-0012345", "issuer": "徐州市动物卫生监督所"}
        ],
    }


def _step(task: int, n: int) -> str:
    return "receiving" if (task + n) % 2 == 0 else "storing"


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    headers: dict[str, str] | None
    body: bytes | None
    units: int  # the work one successful answer stands for (events, lookups)


class HttpWorkload(Protocol):
    @property
    def expect(self) -> frozenset[int]: ...  # the statuses that mean success

    def request(self, task: int, n: int) -> Request: ...


@dataclass(frozen=True, slots=True)
class CaptureBatched:
    """``POST /api/v1/events`` with ``per_request`` events; client ``task`` is device ``task`` on its own batches."""

    tokens: tuple[str, ...]
    codes: tuple[tuple[str, ...], ...]  # per device: the batches it opened
    per_request: int = 100
    expect: frozenset[int] = frozenset({201})

    def request(self, task: int, n: int) -> Request:
        mine = self.codes[task % len(self.codes)]
        first = n * self.per_request
        step, at = _step(task, n), local_now()
        ids = uuids(self.per_request)
        events = [event(mine[(first + j) % len(mine)], step, ids[j], at) for j in range(self.per_request)]
        headers = {**JSON, "Authorization": f"Bearer {self.tokens[task % len(self.tokens)]}"}
        return Request("POST", "/api/v1/events", headers, orjson.dumps({"events": events}), self.per_request)


EPCIS_CONTEXT = [
    "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
    {"acme": "https://acme.example/epcis/"},
]


def epcis_event(base: str, code: str, biz_step: str, event_id: str, now: datetime) -> dict[str, Any]:
    """One EPCIS 2.0 ObjectEvent as an enterprise's WMS sends it: a lot by its trace URL, a quantity, a
    business transaction, a cold-chain reading and an extension field."""
    return {
        "type": "ObjectEvent",
        "eventID": f"urn:uuid:{event_id}",
        "eventTime": now.isoformat(timespec="milliseconds"),
        "eventTimeZoneOffset": "+08:00",
        "action": "OBSERVE",
        "bizStep": biz_step,
        "disposition": "in_progress",
        "quantityList": [{"epcClass": f"{base}/t/{code}", "quantity": 45.25, "uom": "KGM"}],
        "bizTransactionList": [{"type": "desadv", "bizTransaction": "urn:epcglobal:cbv:bt:6901234000014:DA-2611-7"}],
        "sensorElementList": [
            {"sensorReport": [{"type": "Temperature", "value": 3.5, "uom": "CEL", "time": now.isoformat()}]}
        ],
        "acme:dock": "3",
    }


@dataclass(frozen=True, slots=True)
class CaptureEpcis:
    """``POST /epcis/capture`` with an EPCISDocument of ``per_request`` events; client ``task`` is device ``task``."""

    base: str
    tokens: tuple[str, ...]
    codes: tuple[tuple[str, ...], ...]
    per_request: int = 100
    expect: frozenset[int] = frozenset({202})

    def request(self, task: int, n: int) -> Request:
        mine = self.codes[task % len(self.codes)]
        first = n * self.per_request
        step, now, ids = _step(task, n), datetime.now(BEIJING), uuids(self.per_request)
        events = [
            epcis_event(self.base, mine[(first + j) % len(mine)], step, ids[j], now) for j in range(self.per_request)
        ]
        doc = {
            "@context": EPCIS_CONTEXT,
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": datetime.now(UTC).isoformat(),
            "epcisBody": {"eventList": events},
        }
        headers = {
            "Content-Type": "application/ld+json",
            "Authorization": f"Bearer {self.tokens[task % len(self.tokens)]}",
        }
        return Request("POST", "/epcis/capture", headers, orjson.dumps(doc), self.per_request)


@dataclass(frozen=True, slots=True)
class CaptureSingle:
    """``POST /api/v1/events`` with one event; client ``task`` is scanner ``task`` on batch ``task``."""

    tokens: tuple[str, ...]
    codes: tuple[str, ...]
    expect: frozenset[int] = frozenset({201})

    def request(self, task: int, n: int) -> Request:
        headers = {**JSON, "Authorization": f"Bearer {self.tokens[task % len(self.tokens)]}"}
        body = orjson.dumps(event(self.codes[task % len(self.codes)], _step(task, n)))
        return Request("POST", "/api/v1/events", headers, body, 1)


@dataclass(frozen=True, slots=True)
class Lookup:
    """``GET /api/v1/batches/{code}`` of random batches, as a consumer scanning a label does (no credential)."""

    codes: tuple[str, ...]
    expect: frozenset[int] = frozenset({200})
    _rng: random.Random = field(default_factory=random.Random, compare=False)

    def request(self, task: int, n: int) -> Request:
        return Request("GET", f"/api/v1/batches/{self._rng.choice(self.codes)}", None, None, 1)


# -- raw SQL baselines ---------------------------------------------------------------------------


class SqlWorkload(Protocol):
    @property
    def statement(self) -> str: ...

    @property
    def many(self) -> bool: ...  # executemany(statement, rows) in one call, else execute(statement, *rows[0])

    def rows(self, task: int, n: int) -> list[tuple[Any, ...]]: ...


PLAIN_EVENTS = """
CREATE TABLE {table} (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     uuid NOT NULL,
    batch_id     bigint NOT NULL,
    seq          integer NOT NULL,
    prev_hash    bytea NOT NULL,
    hash         bytea NOT NULL,
    canonical    bytea NOT NULL,
    biz_step     text NOT NULL,
    node_id      bigint NOT NULL,
    device_id    bigint,
    event_time   timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL
)
"""
PLAIN_COLUMNS = (
    "event_id",
    "batch_id",
    "seq",
    "prev_hash",
    "hash",
    "canonical",
    "biz_step",
    "node_id",
    "device_id",
    "event_time",
    "recorded_at",
)


@dataclass(frozen=True, slots=True)
class InsertEvents:
    """Rows as wide as the service's ``events`` rows, ``per_call`` per committed call."""

    table: str
    canonical: bytes  # a real event's canonical bytes, so the row width matches
    batch_ids: tuple[int, ...]
    node_id: int
    device_id: int
    per_call: int = 1

    @property
    def many(self) -> bool:
        return self.per_call > 1

    @property
    def statement(self) -> str:
        params = ", ".join(f"${i}" for i in range(1, len(PLAIN_COLUMNS) + 1))
        return f"INSERT INTO {self.table} ({', '.join(PLAIN_COLUMNS)}) VALUES ({params})"

    def rows(self, task: int, n: int) -> list[tuple[Any, ...]]:
        now = datetime.now(UTC)
        ids = uuids(self.per_call)
        hashes = os.urandom(64 * self.per_call)
        out = []
        for j in range(self.per_call):
            k = n * self.per_call + j
            out.append(
                (
                    ids[j],
                    self.batch_ids[(task + k) % len(self.batch_ids)],
                    k + 2,
                    hashes[64 * j : 64 * j + 32],
                    hashes[64 * j + 32 : 64 * j + 64],
                    self.canonical,
                    _step(task, n),
                    self.node_id,
                    self.device_id,
                    now,
                    now,
                )
            )
        return out


@dataclass(frozen=True, slots=True)
class Get:
    """``GET`` of random paths from a list, with an optional bearer credential (proofs, traces) and headers."""

    paths: tuple[str, ...]
    token: str | None = None
    expect: frozenset[int] = frozenset({200})
    _rng: random.Random = field(default_factory=random.Random, compare=False)
    headers: dict[str, str] | None = None

    def request(self, task: int, n: int) -> Request:
        headers = dict(self.headers or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return Request("GET", self._rng.choice(self.paths), headers or None, None, 1)
