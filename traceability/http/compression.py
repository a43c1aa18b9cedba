"""Fewer bytes to a phone on a market's 4G: gzip on text answers, pages kept rendered, static files from memory.

- :func:`compress`, on every answer: an HTML, CSS, JavaScript, JSON or plain-text answer of at least
  :data:`MIN_SIZE` bytes goes gzip-compressed to a client that accepts it (``Vary: Accept-Encoding``).
- :class:`Rendered`: rendered pages kept with their gzip form, so a hot page is compressed once, not per
  request (a bounded LRU; the caller chooses the key, which must name every version of what the page shows).
- :class:`StaticFiles`: ``/static/{name}`` from memory, plain or gzip, with a content-hash ETag; pages link
  them with ``?v={hash}`` and those answers are cached for a year (``render._static_caching``).
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from aiohttp import hdrs, web
from multidict import CIMultiDict, CIMultiDictProxy

from traceability.domain.budgeted import Budgeted

MIN_SIZE = 1024
"""Smaller answers are sent as they are: below a packet or two, gzip saves nothing worth its time."""
LEVEL = 6
COMPRESSIBLE = ("text/html", "text/css", "text/plain", "application/javascript", "text/javascript", "application/json")
RENDERED = 16 << 20
"""Bytes of rendered pages kept, plain and gzip (a demo page is 20-80 KB, a fifth of that compressed)."""
KEPT_COST = 800
"""Bytes a kept answer costs besides its bodies: the object, its headers, its key and place in the cache."""

PLAIN = web.ResponseKey("compression.plain", bool)
"""Set ``response[PLAIN] = True`` on an answer that is not worth its gzip time: mostly hex hashes (an event's
inclusion proof shrinks from 2.4 to 1.4 KB and costs 120-145 µs of CPU to compress, four times its own work)."""


def accepts_gzip(request: web.Request) -> bool:
    """The client said it accepts gzip (and did not refuse it with ``q=0``)."""
    for part in request.headers.get(hdrs.ACCEPT_ENCODING, "").lower().split(","):
        name, _, params = part.strip().partition(";")
        if name.strip() in ("gzip", "*"):
            q = params.strip().removeprefix("q=")
            return not (params.strip().startswith("q=") and _zero(q))
    return False


def _zero(q: str) -> bool:
    try:
        return float(q) == 0
    except ValueError:
        return False


def _vary(headers: CIMultiDict[str] | web.StreamResponse) -> None:
    h = headers.headers if isinstance(headers, web.StreamResponse) else headers
    vary = h.get(hdrs.VARY, "")
    if "accept-encoding" not in vary.lower():
        h[hdrs.VARY] = f"{vary}, Accept-Encoding" if vary else "Accept-Encoding"


def compress(request: web.Request, response: web.StreamResponse) -> None:
    """gzip a text answer worth compressing when the client accepts it (run by :mod:`.pipeline`)."""
    # PLAIN first: an answer marked so (a proof, a receipt) skips the rest, parsing its Content-Type included
    # (about 4% of a proof's CPU when it came last).
    if (
        type(response) is web.Response
        and not response.get(PLAIN, False)
        and hdrs.CONTENT_ENCODING not in response.headers
        and response.status not in (204, 304)
        and isinstance(response.body, bytes)
        and len(response.body) >= MIN_SIZE
        and response.content_type in COMPRESSIBLE
    ):
        _vary(response)
        if accepts_gzip(request):
            response.enable_compression(web.ContentCoding.gzip)


@dataclass(frozen=True, slots=True)
class Kept:
    """A rendered answer kept to be sent again: its bytes, plain and gzip, and the headers of each (built
    once: a response copies the headers it is given, so these are never changed)."""

    status: int
    body: bytes
    gz: bytes
    headers: CIMultiDictProxy[str]
    gz_headers: CIMultiDictProxy[str]

    @classmethod
    def of(cls, response: web.Response) -> Kept:
        body = response.body
        assert isinstance(body, bytes)
        skip = {hdrs.CONTENT_LENGTH.lower(), hdrs.SET_COOKIE.lower(), hdrs.CONTENT_ENCODING.lower()}
        headers = CIMultiDict(response.headers)
        _vary(headers)
        kept = CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in skip)
        zipped = CIMultiDict(kept)
        zipped[hdrs.CONTENT_ENCODING] = "gzip"
        gz = gzip.compress(body, LEVEL, mtime=0)
        return cls(response.status, body, gz, CIMultiDictProxy(kept), CIMultiDictProxy(zipped))

    def response(self, request: web.Request) -> web.Response:
        if accepts_gzip(request):
            return web.Response(status=self.status, body=self.gz, headers=self.gz_headers)
        return web.Response(status=self.status, body=self.body, headers=self.headers)


class Rendered:
    """Rendered answers by key, least recently used dropped past ``budget`` bytes (bodies and their keeping):
    bounded by memory, not by a count, since an answer's size depends on the batch (a carcass cut into
    hundreds of parts lists them all)."""

    def __init__(self, budget: int = RENDERED) -> None:
        self._kept: Budgeted[object, Kept] = Budgeted(budget)

    @property
    def budget(self) -> int:
        return self._kept.budget

    @property
    def used(self) -> int:
        return self._kept.used

    def get(self, key: object) -> Kept | None:
        return self._kept.get(key)

    def put(self, key: object, kept: Kept) -> None:
        self._kept.put(key, kept, len(kept.body) + len(kept.gz) + KEPT_COST)

    def clear(self) -> None:
        self._kept.clear()


@dataclass(frozen=True, slots=True)
class _File:
    body: bytes
    gz: bytes
    etag: str
    content_type: str


class StaticFiles:
    """The files of one flat folder, read once, served from memory: plain or gzip, with an ETag."""

    def __init__(self, folder: Path) -> None:
        self.files: dict[str, _File] = {}
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.name.startswith("."):
                continue
            body = path.read_bytes()
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            self.files[path.name] = _File(body, gzip.compress(body, 9, mtime=0), f'"{self.version(body)}"', kind)

    @staticmethod
    def version(body: bytes) -> str:
        return hashlib.sha256(body).hexdigest()[:12]

    def versions(self) -> dict[str, str]:
        return {name: f.etag.strip('"') for name, f in self.files.items()}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        found = self.files.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        # A versioned URL (?v=, the content's hash) never changes: cached for a year; else revalidated after 5 minutes.
        cache = "public, max-age=31536000, immutable" if "v" in request.query else "public, max-age=300"
        headers = {hdrs.ETAG: found.etag, hdrs.VARY: "Accept-Encoding", hdrs.CACHE_CONTROL: cache}
        if found.etag in {x.strip() for x in request.headers.get(hdrs.IF_NONE_MATCH, "").split(",")}:
            return web.Response(status=304, headers=headers)
        charset = "utf-8" if found.content_type.startswith(("text/", "application/javascript")) else None
        if accepts_gzip(request) and len(found.body) >= MIN_SIZE:
            headers[hdrs.CONTENT_ENCODING] = "gzip"
            return web.Response(body=found.gz, content_type=found.content_type, charset=charset, headers=headers)
        return web.Response(body=found.body, content_type=found.content_type, charset=charset, headers=headers)
