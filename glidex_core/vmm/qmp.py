"""A minimal asyncio QMP client: greeting, capabilities, one command at a time.

QEMU interleaves asynchronous events (``{"event": ...}``) with replies, so replies are matched by
skipping events until a ``return`` or ``error`` arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any


class QmpError(Exception):
    pass


class QmpClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def connect(cls, path: Path, timeout: float = 5.0) -> QmpClient:
        reader, writer = await asyncio.wait_for(
            asyncio.open_unix_connection(str(path)), timeout
        )
        client = cls(reader, writer)
        await asyncio.wait_for(client._read_message(), timeout)  # the greeting
        await client.execute("qmp_capabilities", timeout=timeout)
        return client

    async def _read_message(self) -> dict[str, Any]:
        line = await self._reader.readline()
        if not line:
            raise QmpError("QEMU closed its QMP socket")
        return json.loads(line)

    async def execute(
        self, command: str, arguments: dict[str, Any] | None = None, timeout: float = 5.0
    ) -> Any:
        request: dict[str, Any] = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        self._writer.write(json.dumps(request).encode() + b"\n")
        await self._writer.drain()

        async def reply() -> Any:
            while True:
                message = await self._read_message()
                if "return" in message:
                    return message["return"]
                if "error" in message:
                    raise QmpError(message["error"].get("desc", str(message["error"])))

        return await asyncio.wait_for(reply(), timeout)

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()


async def qmp_command(path: Path, command: str, arguments: dict[str, Any] | None = None) -> Any:
    """Connect, run one command, disconnect: QMP allows several clients only if configured,
    and holding no connection keeps the supervisor stateless across restarts."""
    client = await QmpClient.connect(path)
    try:
        return await client.execute(command, arguments)
    finally:
        await client.close()
