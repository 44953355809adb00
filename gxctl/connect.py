"""``gxctl connect``: attach the local terminal to a VM's live console.

The console is reached through the VM's keeper socket when the server runs on this host (the
socket path it names exists here and accepts a connection), otherwise through the API's WebSocket.
The local terminal goes to raw mode so every key reaches the guest; the escape key (Ctrl+] unless
``--escape`` says otherwise) detaches, and the terminal is put back however the session ends.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import signal
import socket
import termios
import threading
import tty
from collections.abc import Callable, Iterator
from typing import Protocol

from gxctl.client import Client, GxctlError
from gxctl.escape import ESCAPE_WAIT, EscapeFilter, describe_escape

READ_CHUNK = 65536
EOF_LINGER = 1.0  # after stdin ends (a pipe), keep showing output this long before detaching

DETACHED, CLOSED, STDIN_EOF = "detached", "closed", "stdin-eof"


class Transport(Protocol):
    description: str

    def recv(self) -> bytes: ...  # b"" once the connection is gone

    def send(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class SocketTransport:
    """The keeper's Unix socket: raw console bytes both ways."""

    def __init__(self, sock: socket.socket, description: str) -> None:
        self.sock = sock
        self.description = description

    @classmethod
    def connect(cls, path: str, timeout: float = 5.0) -> SocketTransport:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.settimeout(None)
        except OSError:
            sock.close()
            raise
        return cls(sock, f"socket {path}")

    def recv(self) -> bytes:
        try:
            return self.sock.recv(READ_CHUNK)
        except OSError:
            return b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class WebSocketTransport:
    """GET /vms/{id}/console/ws: binary frames both ways."""

    def __init__(self, url: str, token: str | None, timeout: float = 10.0) -> None:
        from websockets.exceptions import InvalidStatus, WebSocketException
        from websockets.sync.client import connect

        self.description = f"websocket {url}"
        headers = {"Authorization": f"Bearer {token}"} if token else None
        try:
            self.ws = connect(url, additional_headers=headers, open_timeout=timeout,
                              max_size=None, compression=None)
        except InvalidStatus as exc:
            raise GxctlError(_ws_refusal(url, exc)) from exc
        except (OSError, WebSocketException, TimeoutError) as exc:
            raise GxctlError(f"cannot open the console WebSocket {url}: {exc}") from exc

    def recv(self) -> bytes:
        from websockets.exceptions import ConnectionClosed

        try:
            message = self.ws.recv()
        except (ConnectionClosed, OSError, RuntimeError):
            return b""
        return message.encode() if isinstance(message, str) else message

    def send(self, data: bytes) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            self.ws.send(data)
        except ConnectionClosed as exc:
            raise OSError("the console WebSocket closed") from exc

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()


def _ws_refusal(url: str, exc: Exception) -> str:
    """The server's own message when it refused the WebSocket handshake with an error body."""
    import json

    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", "?")
    try:
        message = json.loads(response.body)["message"]
    except Exception:
        message = None
    return message or f"the server refused the console WebSocket {url} (HTTP {status})"


def open_transport(client: Client, vm: dict, console: dict, via: str = "auto") -> Transport:
    """The keeper socket when it is on this host and answers (unless ``via`` says ws)."""
    path = console.get("console_socket_path")
    if via in ("auto", "socket") and path and os.path.exists(path):
        try:
            return SocketTransport.connect(path)
        except OSError as exc:
            if via == "socket":
                raise GxctlError(f"cannot connect to the console socket {path}: {exc}") from exc
    elif via == "socket":
        raise GxctlError(f"the console socket {path or '(none)'} is not on this host; "
                         "use --via ws")
    return WebSocketTransport(client.console_ws_url(vm.get("id") or vm["name"]), client.token)


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """Raw mode on ``fd`` if it is a terminal, restored on exit, at interpreter exit, and on
    SIGTERM/SIGHUP (turned into SystemExit so the restore runs)."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)

    def restore() -> None:
        with contextlib.suppress(termios.error, OSError):
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)

    def leave(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    atexit.register(restore)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            previous[signum] = signal.signal(signum, leave)
    try:
        tty.setraw(fd, termios.TCSADRAIN)
        yield
    finally:
        restore()
        atexit.unregister(restore)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def pump(transport: Transport, stdin_fd: int, stdout_fd: int, escape: int,
         escape_wait: float = ESCAPE_WAIT, eof_linger: float = EOF_LINGER) -> str:
    """Copy bytes both ways until the escape key, the connection's end, or stdin's end.

    Returns DETACHED, CLOSED or STDIN_EOF. Console output is written by a thread so a slow
    keyboard never holds up the guest's output; a self-pipe wakes this loop when it ends.
    """
    wake_r, wake_w = os.pipe()
    closed = threading.Event()

    def receive() -> None:
        try:
            while True:
                data = transport.recv()
                if not data:
                    break
                _write_all(stdout_fd, data)
        except OSError:
            pass
        finally:
            closed.set()
            with contextlib.suppress(OSError):
                os.write(wake_w, b"x")

    reader = threading.Thread(target=receive, name="gxctl-console-out", daemon=True)
    reader.start()
    keys = EscapeFilter(escape)
    try:
        while True:
            if closed.is_set():
                return CLOSED
            ready, _, _ = select.select([stdin_fd, wake_r], [], [],
                                        escape_wait if keys.pending else None)
            if not ready:
                keys.timeout()
            elif stdin_fd in ready:
                data = os.read(stdin_fd, READ_CHUNK)
                if not data:
                    closed.wait(eof_linger)
                    return CLOSED if closed.is_set() else STDIN_EOF
                out = keys.feed(data)
                if out:
                    try:
                        transport.send(out)
                    except OSError:
                        closed.wait(1.0)
                        return CLOSED
            if keys.detached:
                return DETACHED
    finally:
        transport.close()
        reader.join(timeout=2.0)
        os.close(wake_r)
        os.close(wake_w)


def connect(client: Client, ref: str, escape: int, *, via: str = "auto",
            stdin_fd: int = 0, stdout_fd: int = 1,
            say: Callable[[str], None] = print) -> str:
    """Attach to ``ref``'s console until detached; returns how the session ended."""
    vm = client.get_vm(ref)
    console = client.console_info(vm.get("id") or ref)
    name = vm.get("name") or ref
    if not console.get("available", True):
        raise GxctlError(f"the console of {name} is not available: the VM is "
                         f"{vm.get('state', 'not running')}")
    transport = open_transport(client, vm, console, via)
    say(f"Connected to {name}. Escape: {describe_escape(escape)}")
    try:
        with raw_terminal(stdin_fd):
            how = pump(transport, stdin_fd, stdout_fd, escape)
    finally:
        transport.close()
    if how == CLOSED:
        say("\r\nConnection closed")
    elif how == DETACHED:
        say(f"\r\nDetached from {name}")
    return how
