"""The transparency log: integrating events, signing checkpoints, serving proofs, taking cosignatures.

One sequencer at a time integrates the queue (a PostgreSQL advisory lock held on a dedicated
connection; when its process dies the lock is released and another process's sequencer takes
over). A sequencer that races anyway is harmless: it locks the head row first and the head only
advances by compare-and-set. Every integration appends leaves, grows the right-edge tiles and
signs a checkpoint in one transaction, so any process serves the same roots and proofs.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from traceability import errors
from traceability.config import Settings
from traceability.ledger import checkpoint as notes
from traceability.ledger import merkle, tile_levels
from traceability.logging import get_logger
from traceability.services.exclusive import run_exclusive
from traceability.storage import log_repo
from traceability.storage.database import Connection, Database

log = get_logger(__name__)

SEQUENCER_LOCK = 0x74726163656C6F67  # "tracelog"
MAX_BATCH = 20_000


class LatestCheckpoint:
    """The newest checkpoint with its cosignatures, kept about a second: every proof served in that
    time is against it (a leaf newer than it makes the next proof fetch again)."""

    def __init__(self, ttl: float = 1.0) -> None:
        self.ttl = ttl
        self._value: tuple[int, str, float] | None = None
        self._reading: asyncio.Future[None] | None = None

    def cached(self, index: int) -> tuple[int, str] | None:
        """(size, signed note) of the newest checkpoint kept, if it is fresh and includes leaf ``index``."""
        value = self._value
        if value is None or value[0] <= index or time.monotonic() - value[2] > self.ttl:
            return None
        return value[0], value[1]

    async def covering(self, conn: Connection, log_id: int, index: int) -> tuple[int, str] | None:
        """(size, signed note) of the newest checkpoint, if it includes leaf ``index``."""
        value = self._value
        if value is None or value[0] <= index or time.monotonic() - value[2] > self.ttl:
            rows = await log_repo.list_checkpoints(conn, log_id, limit=1)
            if not rows:
                return None
            value = (
                rows[0]["size"],
                _with_cosignatures(rows[0]["note"], list(rows[0]["cosignatures"])),
                time.monotonic(),
            )
            self._value = value
        return (value[0], value[1]) if value[0] > index else None

    async def refresh(self, db: Database, log_id: int, index: int) -> tuple[int, str] | None:
        """As :meth:`covering` on a pooled connection, one read at a time: the proofs that find the kept
        checkpoint stale together wait for the same read instead of each making its own."""
        while (reading := self._reading) is not None:
            await asyncio.shield(reading)
            if (found := self.cached(index)) is not None:
                return found
        self._reading = asyncio.get_running_loop().create_future()
        try:
            async with db.connection() as conn:
                return await self.covering(conn, log_id, index)
        finally:
            self._reading.set_result(None)
            self._reading = None


ABOVE_COST = 80
"""Bytes a kept 32-byte hash costs, with its object and list slot."""
UPPER_COST = tile_levels.UPPER_BYTES + 200
"""Bytes a tile's kept upper rows cost, with their object, key and place in the cache."""
RANGES_KEPT = 4096


class TileCache:
    """Tiles for proofs, each kept with the node hashes between its levels (a :class:`merkle.Tile`):
    the tiles above level 0 are shared by 65,536 leaves or more and the right edge by every leaf,
    so nearly every proof needs the same few. Stored hashes never change, so a cached tile stays
    right; a partial tile too narrow for the tree asked about is simply read again. With them:

    - the upper rows (:func:`tile_levels.upper_rows`, 960 bytes) of full level-0 tiles completed before
      they were stored with the tile, computed once from the tile until the sequencer has filled them in
      (every other proof reads them with its leaf's row);
    - the part of the proofs above each full level-0 tile that its 256 leaves share, by tree size;
    - the hashes of the leaf ranges that end at the tree's right edge (``ranges``), by range.

    Bounded by ``budget`` bytes for the tiles (a full tile with its levels counts 16 KB), ``upper_budget``
    for the upper rows (about 1.1 KB a tile: 2 MB serve 450,000 leaves) and ``paths_budget`` for the
    shared paths (about 1.1 KB a tile at a million leaves: 6 MB serve 1.4 million leaves of one
    checkpoint), least recently used first out."""

    def __init__(self, budget: int = 8 << 20, upper_budget: int = 2 << 20, paths_budget: int = 6 << 20) -> None:
        self.budget = budget
        self.upper_budget = upper_budget
        self.paths_budget = paths_budget
        self.used_by_tiles = 0
        self.used_by_paths = 0
        self._tiles: OrderedDict[tuple[int, int, int], merkle.Tile] = OrderedDict()
        self._above: OrderedDict[tuple[int, int, int], list[bytes]] = OrderedDict()
        self._uppers: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._ranges: dict[int, dict[tuple[int, int], bytes]] = {}

    def get(self, log_id: int, keys: Iterable[merkle.TileKey], size: int) -> dict[merkle.TileKey, bytes]:
        """The cached tiles among ``keys`` holding every hash a tree of ``size`` leaves has there."""
        found: dict[merkle.TileKey, bytes] = {}
        tiles = self._tiles
        for key in keys:
            tile = tiles.get((log_id, *key))
            if tile is not None and len(tile) >= merkle.tile_width(key, size) * merkle.HASH_SIZE:
                tiles.move_to_end((log_id, *key))
                found[key] = tile
        return found

    def above(self, log_id: int, size: int, tile: int) -> list[bytes] | None:
        """The inclusion proof above full level-0 tile ``tile`` in the tree of ``size``, if kept."""
        path = self._above.get((log_id, size, tile))
        if path is not None:
            self._above.move_to_end((log_id, size, tile))
        return path

    def keep_above(self, log_id: int, size: int, tile: int, path: list[bytes]) -> None:
        """Keep the part of the inclusion proofs above a full level-0 tile that its 256 leaves share."""
        key = (log_id, size, tile)
        if key not in self._above:
            self._above[key] = path
            self.used_by_paths += ABOVE_COST * (len(path) + 1)
            self._shrink()

    def ranges(self, log_id: int) -> dict[tuple[int, int], bytes]:
        """The log's kept hashes of right-edge leaf ranges ``(start, end)``: a leaf range's hash never
        changes, and a growing tree leaves the old ones unused, so the dict is emptied now and then."""
        kept = self._ranges.setdefault(log_id, {})
        if len(kept) > RANGES_KEPT:
            kept.clear()
        return kept

    def upper(self, log_id: int, tile: int) -> bytes | None:
        """The upper rows of full level-0 tile ``tile``, if kept."""
        rows = self._uppers.get((log_id, tile))
        if rows is not None:
            self._uppers.move_to_end((log_id, tile))
        return rows

    def keep_upper(self, log_id: int, tile: int, hashes: bytes) -> bytes:
        """Keep the upper rows of the full level-0 tile ``tile`` holding ``hashes``; returns them."""
        levels = hashes.levels() if isinstance(hashes, merkle.Tile) else merkle.Tile(hashes).levels()
        rows = tile_levels.upper_rows(levels)
        if self._uppers.setdefault((log_id, tile), rows) is rows:
            while len(self._uppers) * UPPER_COST > self.upper_budget:
                self._uppers.popitem(last=False)
        return rows

    def put(self, log_id: int, tiles: Mapping[merkle.TileKey, bytes]) -> dict[merkle.TileKey, bytes]:
        """Keep these tiles (replacing narrower ones); returns them as kept, to compute with."""
        kept: dict[merkle.TileKey, bytes] = {}
        for key, tile in tiles.items():
            k = (log_id, *key)
            old = self._tiles.pop(k, None)
            if old is not None:
                self.used_by_tiles -= 2 * len(old)
                if len(old) >= len(tile):
                    tile = old
            kept[key] = self._tiles[k] = tile if isinstance(tile, merkle.Tile) else merkle.Tile(tile)
            self.used_by_tiles += 2 * len(tile)
        self._shrink()
        return kept

    def _shrink(self) -> None:
        # Shared paths: a newer checkpoint leaves those of older sizes unused, and they go first out.
        while self.used_by_paths > self.paths_budget and self._above:
            self.used_by_paths -= ABOVE_COST * (len(self._above.popitem(last=False)[1]) + 1)
        while self.used_by_tiles > self.budget and self._tiles:
            self.used_by_tiles -= 2 * len(self._tiles.popitem(last=False)[1])


class Gathered:
    """Lookups by key that arrive while reads are under way wait, and are all made together in the next:
    under load, one round trip to the database serves many requests instead of one each. Up to
    ``in_flight`` reads run at once, so a slow answer (a busy database) does not hold up the rest."""

    def __init__(self, in_flight: int = 4) -> None:
        self.in_flight = in_flight
        self._waiting: dict[str, list[asyncio.Future[Any]]] = {}
        self._running = 0  # reads under way, counted down as each ends (not when its task is reaped)
        self._reads: set[asyncio.Future[None]] = set()

    async def get(self, key: str, fetch: Callable[[list[str]], Awaitable[Mapping[str, Any]]]) -> Any:
        """What ``fetch([..., key, ...])`` maps ``key`` to (None when absent)."""
        found: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(found)
        if self._running < self.in_flight:
            self._running += 1
            read = asyncio.ensure_future(self._drain(fetch))
            self._reads.add(read)
            read.add_done_callback(self._reads.discard)
        return await found

    async def _drain(self, fetch: Callable[[list[str]], Awaitable[Mapping[str, Any]]]) -> None:
        try:
            while self._waiting:
                asked, self._waiting = self._waiting, {}
                try:
                    values = await fetch(list(asked))
                except Exception as exc:
                    for futures in asked.values():
                        for f in futures:
                            if not f.done():
                                f.set_exception(exc)
                    continue
                for key, futures in asked.items():
                    for f in futures:
                        if not f.done():
                            f.set_result(values.get(key))
        finally:
            self._running -= 1


@dataclass(frozen=True, slots=True)
class Log:
    """The log this process serves: its database id, origin, public id and keys."""

    id: int
    origin: str
    log_id: str
    signer: notes.Signer
    verifier_key: str
    latest: LatestCheckpoint = field(default_factory=LatestCheckpoint, compare=False, repr=False)
    tiles: TileCache = field(default_factory=TileCache, compare=False, repr=False)
    leaves: Gathered = field(default_factory=Gathered, compare=False, repr=False)

    @property
    def verifier(self) -> notes.Verifier:
        return notes.parse_verifier_key(self.verifier_key)


def load_or_create_signer(path: Path, name: str) -> notes.Signer:
    """Read the Ed25519 signing key, creating it (mode 0600) on first start."""
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise errors.ConfigError(f"{path} is readable by others (mode {mode:o}); chmod 600 it")
        signer = notes.load_signer_key(path.read_bytes())
        if signer.name != name:
            raise errors.ConfigError(f"{path} is the key of log {signer.name!r}, not {name!r}")
        return signer
    signer = notes.generate_signer(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(notes.dump_signer_key(signer) + "\n")
    log.info("log.key_created", path=str(path))
    return signer


def default_origin(settings: Settings) -> str:
    host = urlsplit(settings.public_url).netloc or "traceability.localhost"
    return f"{host}/log"


async def open_log(db: Database, settings: Settings) -> Log:
    """The log this server signs for; registers it on first start and refuses a mismatched key."""
    async with db.connection() as conn:
        existing = None if settings.log_origin else await log_repo.first_log(conn)
        origin = settings.log_origin or (existing["origin"] if existing else default_origin(settings))
        signer = load_or_create_signer(settings.signing_key_path, origin)
        key = notes.verifier_key(signer)
        row = await log_repo.ensure_log(conn, origin, notes.log_id(origin), key, merkle.EMPTY_ROOT)
    if row["public_key"] != key:
        raise errors.ConfigError(
            f"the signing key at {settings.signing_key_path} is not the key log {origin!r} "
            "was created with; restore the original key file"
        )
    return Log(row["id"], origin, row["log_id"], signer, key)


# -- sequencing -----------------------------------------------------------------------------------


async def integrate(db: Database, lg: Log, limit: int = MAX_BATCH, conn: Connection | None = None) -> int:
    """Integrate up to ``limit`` queued events and sign a checkpoint; returns how many were added.

    ``conn``: the sequencer's own connection (the one holding its lock), else a pooled one.
    """

    async def work(conn: Connection) -> tuple[int, int]:
        head = await log_repo.lock_head(conn, lg.id)
        queued = await log_repo.read_queue(conn, limit)
        if not queued:
            return 0, head["size"]
        size = head["size"]
        tiles = await log_repo.fetch_tiles(conn, lg.id, merkle.tiles_for_append(size))
        leaves = [merkle.leaf_hash(r["hash"]) for r in queued]
        new_size, root, changed = merkle.append(size, tiles, leaves)
        # Each completed level-0 tile goes with its upper rows, which proofs read with their leaf.
        uppers = merkle.completed_uppers(changed)
        pks = [r["event_pk"] for r in queued]
        if await log_repo.insert_leaves(conn, lg.id, size, pks, leaves) != len(pks):
            raise errors.Conflict("a queued event key names no recorded event; nothing was integrated")
        await log_repo.store_tiles(conn, lg.id, changed, uppers)
        if not await log_repo.advance_head(conn, lg.id, size, new_size, root):
            raise errors.Conflict("the log head moved under this sequencer")
        await log_repo.delete_queued(conn, pks)
        note = notes.sign_checkpoint(lg.origin, new_size, root, lg.signer)
        await log_repo.insert_checkpoint(conn, lg.id, new_size, root, note)
        return len(queued), new_size

    added, new_size = await db.transaction(work, conn=conn)
    if added:
        log.info("checkpoint.signed", log=lg.origin, size=new_size, added=added)
    return added


FILL_BATCH = 256
"""Tiles whose upper rows one step of the sequencer fills in (about 25 ms of hashing)."""


async def fill_uppers(conn: Connection, lg: Log, after: int, limit: int = FILL_BATCH) -> int | None:
    """Store the upper rows of up to ``limit`` full level-0 tiles after index ``after`` that have none (tiles
    completed before the rows were stored with them); returns the last index filled, or None when no such
    tile is left."""
    rows = await log_repo.full_tiles_without_uppers(conn, lg.id, after, limit)
    if not rows:
        return None
    await log_repo.set_uppers(conn, lg.id, {r["idx"]: tile_levels.upper_of(r["hashes"]) for r in rows})
    log.info("log.uppers_filled", log=lg.origin, tiles=len(rows), last=rows[-1]["idx"])
    return int(rows[-1]["idx"]) if len(rows) == limit else None


async def run_sequencer(db: Database, lg: Log, interval: float, stop: asyncio.Event) -> None:
    """Integrate forever while holding the sequencer lock; wait for it while another process holds it.

    Between integrations, until none is left, it also fills in the upper rows of full tiles that lack them.
    """
    filled: int | None = -1

    async def step(conn: Connection) -> bool:
        nonlocal filled
        more = await integrate(db, lg, conn=conn) >= MAX_BATCH
        if filled is not None:
            filled = await fill_uppers(conn, lg, filled)
        return more or filled is not None

    await run_exclusive(db, "sequencer", SEQUENCER_LOCK, step, interval, stop)


# -- reading --------------------------------------------------------------------------------------


def _with_cosignatures(note: str, lines: list[str]) -> str:
    return notes.add_signatures(note, lines) if lines else note


async def prove_consistency(db: Database, lg: Log, first: int, second: int) -> dict[str, Any]:
    """An RFC 9162 consistency proof that the tree of ``second`` leaves extends the one of ``first``."""
    if first < 0 or second < first:
        raise errors.InvalidField("need 0 <= first <= second", field="first")
    async with db.connection() as conn:
        head = await log_repo.get_head(conn, lg.id)
        if second > head["size"]:
            raise errors.InvalidField(f"second: the log has {head['size']} leaves", field="second")
        tiles = await log_repo.fetch_tiles(conn, lg.id, merkle.tiles_for_consistency(first, second))
    proof = merkle.consistency_proof(first, second, tiles)
    return {"log_id": lg.log_id, "first": first, "second": second, "proof": [h.hex() for h in proof]}


async def read_tile(
    db: Database, lg: Log, key: merkle.TileKey, width: int | None, primary: Database | None = None
) -> bytes:
    """The first ``width`` hashes of tile ``key`` (c2sp.org/tlog-tiles), or all 256 when ``width`` is None.

    Stored hashes never change, so the answer never does either. NotFound when the log has fewer hashes
    there; ``primary``: asked too when ``db`` (a read replica) does not have them yet.
    """
    need = (merkle.TILE_WIDTH if width is None else width) * merkle.HASH_SIZE
    for source in (db,) if primary is None or primary is db else (db, primary):
        async with source.connection() as conn:
            tile = (await log_repo.fetch_tiles(conn, lg.id, [key])).get(key)
        if tile is not None and len(tile) >= need:
            return bytes(tile[:need])
    level, index = key
    raise errors.NotFound(f"the log has no tile {level}/{index} of width {need // merkle.HASH_SIZE} yet")


async def latest_checkpoint(db: Database, lg: Log, primary: Database | None = None) -> str:
    """The newest signed checkpoint with its witnesses' cosignatures (an empty log signs size 0).

    ``primary``: where to sign that first checkpoint when ``db`` is a read replica.
    """
    async with db.connection() as conn:
        rows = await log_repo.list_checkpoints(conn, lg.id, limit=1)
    if not rows:
        async with (primary or db).connection() as conn:
            head = await log_repo.get_head(conn, lg.id)
            note = notes.sign_checkpoint(lg.origin, head["size"], head["root"], lg.signer)
            await log_repo.ensure_checkpoint(conn, lg.id, head["size"], head["root"], note)
            return note
    return _with_cosignatures(rows[0]["note"], list(rows[0]["cosignatures"]))


async def list_checkpoints(db: Database, lg: Log, before: int | None, limit: int) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        rows = await log_repo.list_checkpoints(conn, lg.id, before=before, limit=limit)
    return [
        {
            "size": r["size"],
            "root": r["root"].hex(),
            "created_at": r["created_at"].isoformat(),
            "witnesses": len(r["cosignatures"]),
            "checkpoint": _with_cosignatures(r["note"], list(r["cosignatures"])),
        }
        for r in rows
    ]


# -- witnesses ------------------------------------------------------------------------------------


async def register_witness(db: Database, name: str, verifier_key: str) -> dict[str, Any]:
    """An administrator registers a witness by its cosignature verifier key."""
    try:
        verifier = notes.parse_verifier_key(verifier_key)
    except notes.NoteError as exc:
        raise errors.InvalidField(f"verifier_key: {exc}", field="verifier_key") from None
    if verifier.sig_type != notes.COSIGNATURE_V1:
        raise errors.InvalidField("verifier_key: a witness key has type 0x04 (cosignature/v1)", field="verifier_key")
    async with db.connection() as conn:
        row = await log_repo.insert_witness(conn, name, verifier_key)
    return {
        "id": row["id"],
        "name": row["name"],
        "verifier_key": row["verifier_key"],
        "created_at": row["created_at"].isoformat(),
    }


async def add_cosignatures(db: Database, lg: Log, note_text: str) -> dict[str, Any]:
    """Accept a checkpoint note carrying witness cosignatures for a checkpoint this log published."""
    try:
        note = notes.parse_note(note_text)
        cp = notes.parse_checkpoint_body(note.text)
    except notes.NoteError as exc:
        raise errors.InvalidField(f"body: {exc}", field="body") from None
    if cp.origin != lg.origin:
        raise errors.InvalidField(f"body: this log is {lg.origin!r}, not {cp.origin!r}", field="body")
    async with db.connection() as conn:
        published = await log_repo.list_checkpoints(conn, lg.id, size=cp.size)
        if not published or notes.parse_note(published[0]["note"]).text != note.text:
            raise errors.Conflict(f"this log never published that checkpoint of size {cp.size}")
        witnesses = {}
        for w in await log_repo.list_witnesses(conn):
            verifier = notes.parse_verifier_key(w["verifier_key"])
            witnesses[(verifier.name, verifier.key_id)] = (w, verifier)
        accepted, matched = [], False
        for sig in note.signatures:
            known = witnesses.get((sig.name, sig.key_id))
            if known is None:
                continue  # the log's own signature, or a witness not registered here
            matched = True
            w, verifier = known
            line = sig.line()
            try:
                notes.verify_cosignature(note.text, line, verifier)
            except notes.NoteError as exc:
                raise errors.Unauthorized(f"the cosignature of witness {w['name']} does not verify: {exc}") from None
            if await log_repo.insert_cosignature(conn, lg.id, cp.size, w["id"], line.rstrip("\n")):
                accepted.append(w["name"])
        if not matched:
            raise errors.Unauthorized("no registered witness cosigned this checkpoint")
    log.info("checkpoint.cosigned", size=cp.size, witnesses=len(accepted))
    return {"size": cp.size, "accepted": accepted}
