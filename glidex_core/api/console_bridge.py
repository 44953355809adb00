"""Make a remote VM's console look local, so the dashboard's console panes need no change.

A pane reads a console from two things: a Unix socket with the live stream (input goes back the
same way) and a log file for what came before. For a VM on a remote control plane the bridge
provides both: a private socket relayed to the API's WebSocket console, and a *mirror* log that
starts with the log's tail fetched over the API and then grows with every live byte.

The mirror holds only what this dashboard has seen (the tail, then live output); the full log
stays on the control plane (``GET /vms/{id}/log``). Bytes written between fetching the tail and
the WebSocket opening can be missing from the mirror.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from pathlib import Path

log = logging.getLogger(__name__)

CLIENT_BACKLOG_LIMIT = 8 << 20  # a local client this far behind is dropped, as by the keeper


class ConsoleBridge:
    def __init__(self, ws_url: str, headers: dict[str, str], socket_path: Path,
                 log_path: Path, tail: bytes) -> None:
        self.ws_url = ws_url
        self.headers = headers
        self.socket_path = socket_path
        self.log_path = log_path
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        self._log = os.fdopen(fd, "wb", buffering=0)
        self._log.write(tail)
        # Listening before this returns: a pane may connect at once; it is served once the
        # WebSocket is up (the kernel holds the connection meanwhile).
        socket_path.unlink(missing_ok=True)
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(socket_path))
        os.chmod(socket_path, 0o600)
        self._listener.listen(8)
        self._listener.setblocking(False)
        self._clients: set[asyncio.StreamWriter] = set()
        self._ws = None
        self._task = asyncio.ensure_future(self._run())

    @property
    def alive(self) -> bool:
        return not self._task.done()

    async def _run(self) -> None:
        from websockets.asyncio.client import connect

        try:
            async with connect(self.ws_url, additional_headers=self.headers,
                               max_size=None) as ws:
                self._ws = ws
                server = await asyncio.start_unix_server(self._serve_client, sock=self._listener)
                async with server:
                    async for message in ws:
                        data = message if isinstance(message, bytes) else message.encode()
                        self._log.write(data)
                        self._fan_out(data)
        except Exception as exc:  # the stream ended: the panes show the console as closed
            log.info("console bridge to %s ended: %s", self.ws_url, exc)
        finally:
            self._shut()

    def _fan_out(self, data: bytes) -> None:
        for writer in list(self._clients):
            if writer.transport.get_write_buffer_size() > CLIENT_BACKLOG_LIMIT:
                self._clients.discard(writer)
                writer.close()
            else:
                writer.write(data)

    async def _serve_client(self, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        try:
            while data := await reader.read(65536):
                await self._ws.send(data)
        except Exception:
            pass
        finally:
            self._clients.discard(writer)
            writer.close()

    def _shut(self) -> None:
        for writer in list(self._clients):
            writer.close()
        self._clients.clear()
        with contextlib.suppress(OSError):
            self._listener.close()
        self.socket_path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self._log.close()

    def close(self) -> None:
        self._task.cancel()
        self._shut()
