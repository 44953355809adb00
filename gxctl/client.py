"""A thin synchronous client of the Glidex REST API.

Every failure becomes a :class:`GxctlError` carrying the words a user should see: the server's own
``message`` for API errors, or a plain explanation (naming the URL) when the server cannot be
reached.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx

ACTIONS = ("start", "stop", "pause", "resume", "restart")
REQUEST_TIMEOUT = 15.0
ACTION_TIMEOUT = 120.0  # a graceful stop waits for the guest before forcing it


class GxctlError(Exception):
    """An error to print as ``gxctl: <message>``; ``code`` is the API's error code if any."""

    def __init__(self, message: str, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


@dataclass
class LogChunk:
    data: bytes
    offset: int  # offset of data[0] in the log
    size: int  # the log's total size when it was read

    @property
    def end(self) -> int:
        return self.offset + len(self.data)


def _vm_path(ref: str, *rest: str) -> str:
    return "/".join(["/vms", quote(ref, safe=""), *rest])


def _error_from(response: httpx.Response) -> GxctlError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("message"):
        return GxctlError(str(body["message"]), body.get("error"), response.status_code)
    if isinstance(body, dict) and body.get("detail"):  # a framework error outside the contract
        return GxctlError(str(body["detail"]), None, response.status_code)
    text = response.text.strip() or response.reason_phrase
    return GxctlError(f"HTTP {response.status_code}: {text}", None, response.status_code)


class Client:
    def __init__(self, url: str, token: str | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=REQUEST_TIMEOUT,
                                  transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing --------------------------------------------------------------------------------

    def _unreachable(self, exc: Exception) -> GxctlError:
        return GxctlError(f"cannot reach the Glidex control plane at {self.url} ({exc}); "
                          "is glidex-control-plane running? (set --url or GLIDEX_URL)")

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise GxctlError(f"the control plane at {self.url} did not answer in time "
                             f"({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code >= 400:
            raise _error_from(response)
        return response

    def _json(self, method: str, path: str, **kwargs):
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise GxctlError(f"the server at {self.url} sent a reply that is not JSON: "
                             f"{response.text[:200]!r}") from exc

    # -- the API ---------------------------------------------------------------------------------

    def health(self) -> dict:
        return self._json("GET", "/health")

    def list_vms(self) -> list[dict]:
        return self._json("GET", "/vms")

    def get_vm(self, ref: str) -> dict:
        return self._json("GET", _vm_path(ref))

    def create_vm(self, body: dict) -> dict:
        return self._json("POST", "/vms", json=body)

    def delete_vm(self, ref: str) -> None:
        self.request("DELETE", _vm_path(ref), timeout=ACTION_TIMEOUT)

    def action(self, ref: str, action: str, force: bool = False) -> dict:
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        params = {"force": "true"} if force else None
        return self._json("POST", _vm_path(ref, action), params=params, timeout=ACTION_TIMEOUT)

    def console_info(self, ref: str) -> dict:
        return self._json("GET", _vm_path(ref, "console"))

    def read_log(self, ref: str, *, tail_bytes: int | None = None, offset: int | None = None,
                 limit: int | None = None) -> LogChunk:
        params: dict[str, int] = {}
        if tail_bytes is not None:
            params["tail_bytes"] = tail_bytes
        if offset is not None:
            params["offset"] = offset
        if limit is not None:
            params["limit"] = limit
        response = self.request("GET", _vm_path(ref, "log"), params=params)
        data = response.content
        start = _int_header(response, "X-Log-Offset", 0 if offset is None else offset)
        size = _int_header(response, "X-Log-Size", start + len(data))
        return LogChunk(data, start, size)

    def events(self) -> Iterator[dict]:
        """Server-sent events from GET /events, decoded (``type`` is the event name)."""
        try:
            with self._http.stream("GET", "/events", timeout=httpx.Timeout(
                    REQUEST_TIMEOUT, read=None)) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error_from(response)
                yield from _parse_sse(response.iter_lines())
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    def console_ws_url(self, ref: str) -> str:
        base = self.url
        if base.startswith("https://"):
            base = "wss://" + base.removeprefix("https://")
        elif base.startswith("http://"):
            base = "ws://" + base.removeprefix("http://")
        return base + _vm_path(ref, "console", "ws")


def _int_header(response: httpx.Response, name: str, default: int) -> int:
    try:
        return int(response.headers[name])
    except (KeyError, ValueError):
        return default


def _parse_sse(lines: Iterator[str]) -> Iterator[dict]:
    event, data = None, []
    for line in lines:
        if not line:
            if data:
                try:
                    payload = json.loads("\n".join(data))
                except ValueError:
                    payload = {"data": "\n".join(data)}
                if isinstance(payload, dict):
                    payload.setdefault("type", event or "message")
                    yield payload
            event, data = None, []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
