"""The client's exceptions: one class per kind of refusal, each carrying the API's errors.

``OrdexError`` is the base; catch it for any refusal, or a subclass for one kind::

    try:
        ordex.submit("AAPL", "buy", "10")
    except RateLimited as slow:
        time.sleep(slow.retry_after or 1)
    except ValidationRefused as refused:
        print(refused.code, refused.message, refused.hint)
"""

from __future__ import annotations

from typing import Any

import httpx


class OrdexError(Exception):
    """The API refused a request. ``errors`` are its ``{"code", "field", "message", "hint"}``
    (every problem found); ``code``, ``field``, ``message`` and ``hint`` are the first one's,
    ``codes`` every code."""

    def __init__(self, status: int, errors: list[dict[str, Any]]) -> None:
        self.status = status
        self.errors = errors
        self.codes = [e.get("code") for e in errors]
        first = errors[0] if errors else {}
        self.code: str | None = first.get("code")
        self.field: str | None = first.get("field")
        self.message: str = first.get("message") or f"HTTP {status}"
        self.hint: str = first.get("hint") or ""
        super().__init__("; ".join(f"{e.get('message')} ({e.get('hint')})" for e in errors)
                         or self.message)


class BadRequest(OrdexError):
    """400, 405, 413, 415: the request itself is malformed (not JSON, too large, ...)."""


class Unauthorized(OrdexError):
    """401: no API key, or one that is not valid (revoked, rotated, mistyped)."""


class Forbidden(OrdexError):
    """403: the account's role may not do this."""


class NotFound(OrdexError):
    """404: no such order or symbol, or one this account may not see."""


class Conflict(OrdexError):
    """409: the order is not in a state for this, or a client_order_id is reused."""


class ValidationRefused(OrdexError):
    """422: the order or a parameter breaks a rule; every problem is in ``errors``."""


class RateLimited(OrdexError):
    """429: too many orders this minute; ``retry_after`` is the seconds to wait."""

    def __init__(self, status: int, errors: list[dict[str, Any]],
                 retry_after: float | None = None) -> None:
        super().__init__(status, errors)
        self.retry_after = retry_after


class ServerError(OrdexError):
    """500: the service failed on its side."""


class ServerUnavailable(OrdexError):
    """502, 503, 504: the service, its store or its venue is not available just now."""


_BY_STATUS: dict[int, type[OrdexError]] = {
    400: BadRequest, 405: BadRequest, 413: BadRequest, 415: BadRequest,
    401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict, 422: ValidationRefused,
    429: RateLimited, 500: ServerError, 502: ServerUnavailable, 503: ServerUnavailable,
    504: ServerUnavailable,
}


def _errors_of(response: httpx.Response) -> list[dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        body = None
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and all(isinstance(e, dict) for e in errors):
        return errors
    text = response.text.strip()[:200] or response.reason_phrase
    return [{"code": "http_error", "field": None,
             "message": f"HTTP {response.status_code}: {text}",
             "hint": "Check the URL: it may not be an ordex service, or a proxy answered."}]


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def error_for(response: httpx.Response) -> OrdexError:
    """The exception for an error answer, by its status (``OrdexError`` for any other)."""
    status = response.status_code
    errors = _errors_of(response)
    kind = _BY_STATUS.get(status)
    if kind is None:
        kind = ServerError if status >= 500 else OrdexError
    if kind is RateLimited:
        return RateLimited(status, errors, _seconds(response.headers.get("retry-after")))
    return kind(status, errors)
