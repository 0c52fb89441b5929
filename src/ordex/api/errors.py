"""Error codes to HTTP statuses, and handlers so that no failure escapes as a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ordex.domain.errors import Code, DomainError, Violation

log = logging.getLogger("ordex.api")

STATUS: dict[Code, int] = {
    Code.UNAUTHORIZED: 401,
    Code.FORBIDDEN: 403,
    Code.NOT_FOUND: 404,
    Code.METHOD_NOT_ALLOWED: 405,
    Code.ORDER_NOT_CANCELABLE: 409,
    Code.ORDER_NOT_FAILED: 409,
    Code.CLIENT_ORDER_ID_CONFLICT: 409,
    Code.RATE_LIMITED: 429,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.INVALID_JSON: 400,
    Code.INVALID_BODY: 400,
    Code.UNSUPPORTED_MEDIA_TYPE: 415,
    Code.BODY_TOO_LARGE: 413,
}


def error_response(violations: list[Violation], status: int | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    code = status or STATUS.get(violations[0].code, 422)
    if status is None and code == 400 and len(violations) > 1:
        code = 422
    return JSONResponse({"errors": [v.as_dict() for v in violations]}, status_code=code,
                        headers=headers)


class ApiError(Exception):
    """A refusal raised by the interface layer itself (auth, rate limit), with HTTP headers."""

    def __init__(self, violation: Violation, headers: dict[str, str] | None = None,
                 status: int | None = None) -> None:
        self.violation = violation
        self.headers = headers
        self.status = status
        super().__init__(violation.message)


_FRIENDLY = {
    "missing": ("{field} is required.", "Add {field}."),
    "extra_forbidden": ("Unknown field '{field}'.", "Remove {field}; see /docs for the fields."),
    "uuid_parsing": ("{field} is not a valid id.", "Use an id as returned by the API."),
    "datetime_from_date_parsing": ("{field} is not a date and time.",
                                   "Use ISO 8601, for example 2026-01-31T14:30:00Z."),
    "datetime_parsing": ("{field} is not a date and time.",
                         "Use ISO 8601, for example 2026-01-31T14:30:00Z."),
    "int_parsing": ("{field} must be a whole number.", "Send a whole number such as 50."),
    "decimal_parsing": ("{field} must be a number.", "Send a number such as 100."),
    "bool_parsing": ("{field} must be true or false.", "Send true or false."),
    "json_invalid": ("The request body is not valid JSON.", "Send a JSON object."),
}


def _from_validation_error(error: dict[str, Any]) -> Violation:
    loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path", "header")]
    field = ".".join(loc) if loc else None
    kind = str(error.get("type", ""))
    label = field or "The request"
    if kind in _FRIENDLY:
        message, hint = _FRIENDLY[kind]
        return Violation(Code.INVALID_VALUE, field, message.format(field=label),
                         hint.format(field=label))
    detail = str(error.get("msg", "is not valid")).rstrip(".")
    return Violation(Code.INVALID_VALUE, field, f"{label}: {detail}.",
                     f"Correct {label}; /docs describes what it accepts.")


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def on_domain_error(_: Request, exc: DomainError) -> JSONResponse:
        return error_response(exc.violations)

    @app.exception_handler(ApiError)
    async def on_api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response([exc.violation], status=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def on_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        violations = [_from_validation_error(e) for e in exc.errors()]
        return error_response(violations or [Violation(
            Code.INVALID_VALUE, None, "The request is not valid.", "See /docs.")], status=422)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            v = Violation(Code.NOT_FOUND, None, "There is nothing at this address.",
                          "Check the URL; /docs lists every endpoint.")
        elif exc.status_code == 405:
            v = Violation(Code.METHOD_NOT_ALLOWED, None,
                          "This endpoint does not accept that method.",
                          "See /docs for the methods each endpoint takes.")
        elif exc.status_code == 413:
            v = Violation(Code.BODY_TOO_LARGE, None, str(exc.detail),
                          "Send one order or one change per request, without padding.")
        elif exc.status_code == 400:
            # FastAPI's answer to a body it cannot decode (not UTF-8); its endpoints answer a
            # body that is not JSON with 422, and document only that.
            return error_response([Violation(
                Code.INVALID_JSON, None, "The request body is not valid JSON.",
                "Send a JSON object encoded as UTF-8; /docs describes its fields.")], status=422)
        else:
            v = Violation(Code.INVALID_BODY, None, str(exc.detail), "See /docs.")
        return error_response([v], status=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response([Violation(
            Code.INTERNAL, None, "Something went wrong on our side; your request was not "
            "completed and nothing was saved.",
            "Try again in a moment; if it keeps happening, contact support.")], status=500)
