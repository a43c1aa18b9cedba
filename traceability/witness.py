"""A witness: a small independent auditor of the log, as a market-regulation bureau would run it.

Each run fetches the log's latest checkpoint, verifies the log's signature, checks that it extends
the last checkpoint this witness cosigned (an RFC 9162 consistency proof, kept state in a file)
and that it agrees with checkpoints other witnesses cosigned (``--peer`` files: a log that shows
two histories to two witnesses cannot prove both consistent), then cosigns and posts the
cosignature back. Any inconsistency stops it with an alarm naming what disagrees.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp

from traceability.ledger import checkpoint as notes
from traceability.ledger import merkle, proofs


class Alarm(Exception):
    """The log contradicted itself or this witness's record of it."""


@dataclass
class State:
    log_key: str
    size: int
    root: str
    checkpoint: str


def load_state(path: Path) -> State | None:
    if not path.exists():
        return None
    return State(**json.loads(path.read_text()))


def save_state(path: Path, state: State) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2))
    os.replace(tmp, path)  # atomic: a crash leaves the old state or the new, never half of one


def new_key(name: str, path: Path) -> str:
    """Create a witness key file (0600) and return the verifier key an administrator registers."""
    signer = notes.generate_signer(name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(notes.dump_signer_key(signer) + "\n")
    return notes.verifier_key(signer, notes.COSIGNATURE_V1)


async def _consistent(http: aiohttp.ClientSession, base: str, older: notes.Checkpoint, newer: notes.Checkpoint) -> None:
    if older.size == newer.size:
        if older.root != newer.root:
            raise Alarm(f"two different trees of size {older.size}: the log shows more than one history")
        return
    if older.size > newer.size:
        older, newer = newer, older
    if older.size == 0:
        return
    async with http.get(f"{base}/api/v1/log/consistency", params={"first": older.size, "second": newer.size}) as resp:
        if resp.status != 200:
            raise Alarm(f"the log will not prove size {newer.size} extends size {older.size} (HTTP {resp.status})")
        body = await resp.json()
    try:
        proofs.verify_consistency(
            older.size, newer.size, [bytes.fromhex(h) for h in body["proof"]], older.root, newer.root
        )
    except merkle.InvalidProofError as exc:
        raise Alarm(f"size {newer.size} does not extend size {older.size}: {exc}") from None


async def witness_once(
    base: str,
    key_path: Path,
    state_path: Path,
    peers: list[Path] = (),  # type: ignore[assignment]
    now: int | None = None,
) -> notes.Checkpoint:
    """One round: verify, check consistency, cosign, post; returns the checkpoint cosigned."""
    signer = notes.load_signer_key(await asyncio.to_thread(key_path.read_bytes))
    state = load_state(state_path)
    base = base.rstrip("/")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/api/v1/log/public-key") as resp:
            resp.raise_for_status()
            log_key = (await resp.text()).strip()
        if state is not None and state.log_key != log_key:
            raise Alarm("the log's public key changed since this witness last cosigned")
        verifier = notes.parse_verifier_key(log_key)
        async with http.get(f"{base}/api/v1/log/checkpoint") as resp:
            resp.raise_for_status()
            text = await resp.text()
        try:
            cp = notes.verify_checkpoint(text, verifier)
        except notes.NoteError as exc:
            raise Alarm(f"the checkpoint is not signed by the log's key: {exc}") from None
        if state is not None:
            seen = notes.Checkpoint(cp.origin, state.size, bytes.fromhex(state.root))
            if cp.size < state.size:
                raise Alarm(f"the log shrank from {state.size} to {cp.size} leaves")
            await _consistent(http, base, seen, cp)
        for peer in peers:
            try:
                other = notes.verify_checkpoint(peer.read_text(), verifier)
            except notes.NoteError as exc:
                raise Alarm(f"peer checkpoint {peer} is not signed by the log's key: {exc}") from None
            await _consistent(http, base, other, cp)
        line = notes.cosign(cp.body, signer, int(time.time()) if now is None else now)
        cosigned = notes.add_signatures(text, [line])
        async with http.post(
            f"{base}/api/v1/log/cosignatures",
            data=cosigned.encode(),
            headers={"Content-Type": "text/plain; charset=utf-8"},
        ) as resp:
            if resp.status not in (200, 201):
                raise Alarm(f"the log refused the cosignature: HTTP {resp.status} {await resp.text()}")
    save_state(state_path, State(log_key, cp.size, cp.root.hex(), cosigned))
    return cp
