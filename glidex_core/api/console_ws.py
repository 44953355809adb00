"""``/vms/{id}/console/ws``: the live console over a WebSocket, binary frames both ways.

Each WebSocket is one more client of the VM's keeper socket, so any number of remote and local
clients see the same bytes and can all type.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from glidex_core.api.guards import bearer, token_matches
from glidex_core.models import NotFoundError
from glidex_core.supervisor import Supervisor

POLICY_VIOLATION = 1008
VM_NOT_FOUND = 4404
VM_NOT_RUNNING = 4409


def origin_allowed(websocket: WebSocket) -> bool:
    """Browsers send Origin: only pages served by this API may open its consoles."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True  # not a browser (gxctl, scripts)
    return urlsplit(origin).netloc == websocket.headers.get("host")


def install_console_websocket(app: FastAPI, supervisor: Supervisor, token: str | None) -> None:
    @app.websocket("/vms/{ref}/console/ws")
    async def console_ws(websocket: WebSocket, ref: str) -> None:
        presented = bearer(websocket.headers.get("authorization")) or websocket.query_params.get(
            "token")
        if not token_matches(token, presented) or not origin_allowed(websocket):
            await websocket.close(POLICY_VIOLATION, "unauthorized")
            return
        # Authorised clients are told why they cannot attach, in the close code and reason.
        await websocket.accept()
        try:
            info = supervisor.console_info(ref)
        except NotFoundError as exc:
            await websocket.close(VM_NOT_FOUND, str(exc))
            return
        try:
            if not info.available:
                raise ConnectionRefusedError
            reader, writer = await asyncio.open_unix_connection(str(info.console_socket_path))
        except OSError:
            await websocket.close(VM_NOT_RUNNING, f"the VM is {supervisor.get(ref).state}")
            return

        async def to_guest() -> None:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                data = message.get("bytes") or (message.get("text") or "").encode()
                writer.write(data)
                await writer.drain()

        async def to_client() -> None:
            while chunk := await reader.read(65536):
                await websocket.send_bytes(chunk)

        tasks = [asyncio.ensure_future(to_guest()), asyncio.ensure_future(to_client())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            writer.close()
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                await websocket.close()
