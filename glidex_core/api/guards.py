"""What stands between a request and the supervisor: size limit, content type, bearer token."""

from __future__ import annotations

import hmac
import json

from fastapi import Request

from glidex_core.api.errors import error_response

MAX_BODY_BYTES = 1 << 20
OPEN_PATHS = {"/health", "/docs", "/openapi.json", "/docs/oauth2-redirect"}


class BodyLimitMiddleware:
    """Answer 413 for bodies over the limit, counted as they arrive (chunked bodies too)."""

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(send)
            return
        received = 0
        too_large = False

        async def counting_receive():
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def guarded_send(message) -> None:
            if not too_large:
                await send(message)
            elif message["type"] == "http.response.start":
                await self._too_large(send)

        await self.app(scope, counting_receive, guarded_send)

    async def _too_large(self, send) -> None:
        body = json.dumps({"error": "payload_too_large",
                           "message": f"request body over {self.max_bytes} bytes"},
                          separators=(",", ":")).encode()  # as every other error body
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def token_matches(expected: str | None, presented: str | None) -> bool:
    """Constant-time comparison, so response timing does not leak the token."""
    if expected is None:
        return True
    return presented is not None and hmac.compare_digest(expected.encode(), presented.encode())


def bearer(header: str | None) -> str | None:
    if header and header.lower().startswith("bearer "):
        return header[7:].strip()
    return None


class BearerAuthMiddleware:
    """401 for HTTP requests without the bearer token (``/health`` and the docs stay open).

    A plain ASGI middleware: Starlette's ``@app.middleware("http")`` wraps every request and
    response in extra tasks and streams, which cost more than the handler of ``GET /vms/{id}``
    (bench/RESULTS.md, H). WebSocket consoles check the token themselves (console_ws.py).
    """

    def __init__(self, app, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope, receive, send) -> None:
        if self.token is None or scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        presented = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                presented = bearer(value.decode("latin-1"))
                break
        if token_matches(self.token, presented):
            await self.app(scope, receive, send)
            return
        response = error_response(401, "unauthorized", "a valid bearer token is required",
                                  {"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)


async def require_json(request: Request) -> None:
    from fastapi import HTTPException

    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        sent = f"not {content_type}" if content_type else "with a Content-Type header"
        raise HTTPException(415, f"send the body as application/json, {sent}")
