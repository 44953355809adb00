"""Every error leaves the API as ``{"error": code, "message": text}`` with the right status."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from glidex_core.models import (
    NAME_RULE,
    ConflictError,
    GlidexError,
    HypervisorError,
    InvalidStateError,
    NotFoundError,
    ValidationError,
)

STATUS_BY_ERROR: dict[type[GlidexError], int] = {
    NotFoundError: 404,
    ConflictError: 409,
    InvalidStateError: 400,
    ValidationError: 422,
    HypervisorError: 500,
}
HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 413: "payload_too_large",
              415: "unsupported_media_type", 422: "validation_error"}


PATTERN_MESSAGES = {
    "name": f"not a valid name; use {NAME_RULE}",
    "kernel_args": "must not contain NUL or line breaks",
    "kernel_image_path": "must not be empty or contain NUL or newline characters",
    "rootfs_path": "must not be empty or contain NUL or newline characters",
    "initrd_path": "must not be empty or contain NUL or newline characters",
}


def error_response(status: int, code: str, message: str, headers=None) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


def _field_path(location: tuple) -> str:
    parts = [str(p) for p in location if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def describe_validation(exc: RequestValidationError) -> tuple[int, str, str]:
    problems = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            return 400, "invalid_json", f"the request body is not valid JSON: {error.get('msg')}"
        field = _field_path(tuple(error.get("loc", ())))
        if error.get("type") == "string_pattern_mismatch":
            problems.append(f"{field}: {PATTERN_MESSAGES.get(field, error.get('msg'))}")
        elif error.get("type") == "extra_forbidden":
            problems.append(f"{field}: unknown field")
        elif error.get("type") == "missing":
            problems.append(f"{field}: is required")
        else:
            problems.append(f"{field}: {error.get('msg')}")
    return 422, "validation_error", "; ".join(problems)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GlidexError)
    async def glidex_error(_request: Request, exc: GlidexError) -> JSONResponse:
        status = next((s for t, s in STATUS_BY_ERROR.items() if isinstance(exc, t)), 500)
        return error_response(status, exc.code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def request_validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(*describe_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "error")
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {"Allow": ", ".join(allowed_methods(app, request))}
        return error_response(exc.status_code, code, str(exc.detail), headers)


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method any route serves on this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET", "type": "http"})
        route_methods = getattr(route, "methods", None)
        if match != Match.NONE and route_methods:
            methods |= route_methods
    return sorted(methods)
