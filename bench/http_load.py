"""A minimal HTTP/1.1 keep-alive client, the load generator of figure 4.

httpx spends ~4 ms of CPU per request here, so 50 httpx clients in one process saturated their
own core long before the control plane (bench/RESULTS.md, C and H): figure 4 then measured the
client. This client does only what a GET on a keep-alive connection needs (one write; read the
head, then exactly Content-Length bytes), so the server is what is measured. Every answer's
status is checked and its body read in full.
"""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit


class HttpError(RuntimeError):
    pass


class KeepAliveConnection:
    """One TCP connection to the server, one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 host: str) -> None:
        self._reader, self._writer, self._host = reader, writer, host

    @classmethod
    async def open(cls, url: str) -> KeepAliveConnection:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        # As the server does: a request is one write, and must not wait for a delayed ACK.
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer, parts.netloc)

    async def get(self, path: str) -> bytes:
        """The body of ``GET path``; HttpError unless the answer is 200 with a Content-Length."""
        self._writer.write(f"GET {path} HTTP/1.1\r\nHost: {self._host}\r\n\r\n".encode())
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, _, header_block = head.partition(b"\r\n")
        if not status_line.startswith(b"HTTP/1.1 200 "):
            raise HttpError(f"GET {path}: {status_line.decode(errors='replace')}")
        for line in header_block.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                return await self._reader.readexactly(int(value))
        raise HttpError(f"GET {path}: no Content-Length in the answer")

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()
