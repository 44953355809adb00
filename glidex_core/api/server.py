"""Serving the API with uvicorn, from the headless control plane or from the dashboard.

We bind the socket ourselves: a port in use becomes a clear error instead of uvicorn's
``sys.exit(1)``, and the dashboard can run the server without uvicorn touching its signals or
writing logs over the screen.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import socket
from pathlib import Path

import uvicorn

from glidex_core.api.app import create_app
from glidex_core.config import Paths
from glidex_core.models import GlidexError
from glidex_core.store import atomic_write
from glidex_core.supervisor import Supervisor


class ApiConfigError(GlidexError):
    code = "config_error"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_token(paths: Paths, host: str, token: str | None) -> str | None:
    """Loopback needs no token; any other address does: given, or generated and kept 0600."""
    if token or is_loopback(host):
        return token or None
    token_file = paths.home / "api-token"
    if token_file.exists():
        return token_file.read_text().strip()
    generated = secrets.token_urlsafe(32)
    atomic_write(token_file, generated.encode() + b"\n", mode=0o600)
    return generated


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit it. asyncio sets it only when sock.proto == IPPROTO_TCP (ours is
    # 0): without it every keep-alive response waits ~40 ms for the client's delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ApiConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port"
        ) from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host (the dashboard)."""

    def capture_signals(self):  # type: ignore[override]
        import contextlib

        return contextlib.nullcontext()


def discovery_file(paths: Paths) -> Path:
    """Where a running control plane tells local clients (glidex, gxctl) how to reach it."""
    return paths.run_dir / "control-plane.json"


def read_discovery(paths: Paths) -> dict | None:
    try:
        return json.loads(discovery_file(paths).read_text())
    except (OSError, ValueError):
        return None


class ApiServer:
    def __init__(self, supervisor: Supervisor, host: str, port: int, token: str | None,
                 *, handle_signals: bool = True) -> None:
        self.supervisor = supervisor
        self.host = host
        self.token = resolve_token(supervisor.paths, host, token)
        self.sock = bind(host, port)
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(create_app(supervisor, token=self.token), log_config=None,
                                access_log=False, lifespan="off", ws="websockets-sansio")
        server_class = uvicorn.Server if handle_signals else QuietServer
        self.server = server_class(config)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def serve(self) -> None:
        path = discovery_file(self.supervisor.paths)
        atomic_write(path, json.dumps({"url": self.url, "pid": os.getpid(),
                                       "token": self.token}).encode(), mode=0o600)
        try:
            await self.server.serve(sockets=[self.sock])
        finally:
            path.unlink(missing_ok=True)

    def stop(self) -> None:
        self.server.should_exit = True
