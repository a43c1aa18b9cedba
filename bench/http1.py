"""A lean HTTP/1.1 client for the load generator: one keep-alive connection per concurrent client.

The load generator shares the machine's cores with the servers it measures. aiohttp's client spent
about 190 us of CPU a request (capture_single's load worker used half a core to send 2,800 requests a
second), CPU the service and the bare baseline handler then did not have. This client writes each request
as bytes and reads back the status, the headers it needs (Content-Length, Transfer-Encoding, Connection,
Content-Encoding) and the body, whole, as sent: nothing is decoded, which is all the load generator ever
looked at. Chunked bodies are read to their end; a connection the server closes is opened again.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024


class ProtocolError(Exception):
    """The server's answer was not HTTP/1.1 as this client reads it."""


class _Reader(asyncio.Protocol):
    """Collects bytes; hands back complete responses one at a time."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.closed: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = exc or ConnectionResetError("the server closed the connection")
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def more(self) -> None:
        if self.closed is not None:
            raise self.closed
        self.waiter = asyncio.get_running_loop().create_future()
        await self.waiter
        self.waiter = None


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class Connection:
    """One keep-alive connection to ``base_url``'s host; requests are sent one after another."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.host_header = f"Host: {parts.netloc}\r\n".encode()
        self._reader: _Reader | None = None

    async def _open(self) -> _Reader:
        loop = asyncio.get_running_loop()
        _, reader = await loop.create_connection(_Reader, self.host, self.port)
        return reader

    def close(self) -> None:
        if self._reader is not None and self._reader.transport is not None:
            self._reader.transport.close()
        self._reader = None

    async def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None
    ) -> Response:
        head = [f"{method} {path} HTTP/1.1\r\n".encode(), self.host_header]
        for name, value in (headers or {}).items():
            head.append(f"{name}: {value}\r\n".encode())
        if body is not None:
            head.append(f"Content-Length: {len(body)}\r\n".encode())
        head.append(b"\r\n")
        if body:
            head.append(body)
        if self._reader is None or self._reader.closed is not None:
            self._reader = await self._open()
        reader = self._reader
        assert reader.transport is not None
        reader.transport.writelines(head)
        try:
            response = await self._read(reader, method)
        except BaseException:
            self.close()
            raise
        if response.headers.get("connection", "").lower() == "close":
            self.close()
        return response

    async def _read(self, reader: _Reader, method: str) -> Response:
        buf = reader.buffer
        while (end := buf.find(b"\r\n\r\n")) < 0:
            if len(buf) > MAX_HEAD:
                raise ProtocolError("response head too long")
            await reader.more()
        lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
        del buf[: end + 4]
        status_line = lines[0].split(" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith("HTTP/1."):
            raise ProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        status = int(status_line[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return Response(status, headers, b"")
        if headers.get("transfer-encoding", "").lower() == "chunked":
            return Response(status, headers, await self._chunked(reader))
        length = headers.get("content-length")
        if length is None:
            raise ProtocolError("a response with neither a length nor chunks")
        size = int(length)
        while len(buf) < size:
            await reader.more()
        body = bytes(buf[:size])
        del buf[:size]
        return Response(status, headers, body)

    async def _chunked(self, reader: _Reader) -> bytes:
        buf = reader.buffer
        parts = []
        while True:
            while (end := buf.find(b"\r\n")) < 0:
                await reader.more()
            size = int(bytes(buf[:end]).split(b";", 1)[0], 16)
            del buf[: end + 2]
            if size == 0:
                while (end := buf.find(b"\r\n")) != 0:  # trailers, then the blank line
                    if end < 0:
                        await reader.more()
                    else:
                        del buf[: end + 2]
                del buf[:2]
                return b"".join(parts)
            while len(buf) < size + 2:
                await reader.more()
            parts.append(bytes(buf[:size]))
            del buf[: size + 2]
