"""Bodies cost nothing until the sender is known, and never more than the limit.

An ASGI middleware in front of the app: a request that carries a body under ``/v1/`` is
authenticated (and, under ``/v1/admin/``, authorized) from its headers before a byte of the body
is read, and its body is counted while it is read, so a declared or streamed body over the limit
is refused with a 413 without being buffered. Refusals close the connection, so the server does
not go on reading what the client is still sending.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException

from ordex.api.errors import ApiError, error_response
from ordex.domain.accounts import Role
from ordex.domain.errors import Code, Violation

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Authenticate = Callable[[str | None], Awaitable[Any]]

ACCOUNT_KEY = "ordex.account"  # where the account found here waits for the route's dependency
CLOSE = {"Connection": "close"}


def too_large(limit: int, size: int | None = None) -> Violation:
    said = f"The request body is {size:,} bytes" if size is not None else \
        "The request body is larger than allowed"
    return Violation(Code.BODY_TOO_LARGE, None, f"{said}; the limit is {limit:,} bytes.",
                     "Send one order or one change per request, without padding.")


class BodyTooLarge(StarletteHTTPException):
    """Raised from ``receive`` when a streamed body passes the limit; answered with a 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large(limit).message, headers=CLOSE)
        self.limit = limit


class BodyGuard:
    def __init__(self, app: ASGIApp, authenticate: Authenticate, *, limit: int) -> None:
        self.app = app
        self.authenticate = authenticate
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", ())}
        length = _content_length(headers.get("content-length"))
        if length is None and "transfer-encoding" not in headers:
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        if path.startswith("/v1/") and length != 0:
            try:
                account = await self.authenticate(headers.get("authorization"))
            except ApiError as exc:
                await self._answer(scope, receive, send, exc.violation, 401,
                                   exc.headers or {})
                return
            if path.startswith("/v1/admin/") and account.role is not Role.ADMIN:
                await self._answer(scope, receive, send, Violation(
                    Code.FORBIDDEN, None,
                    f"Your account's role ({account.role.value}) cannot do this; it needs "
                    "admin.", "Use an account with that role."), 403)
                return
            scope[ACCOUNT_KEY] = account
        if length is not None and length > self.limit:
            await self._answer(scope, receive, send, too_large(self.limit, length), 413)
            return
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        return counted

    async def _answer(self, scope: Scope, receive: Receive, send: Send, violation: Violation,
                      status: int, headers: dict[str, str] | None = None) -> None:
        response = error_response([violation], status=status, headers={**(headers or {}),
                                                                       **CLOSE})
        await response(scope, receive, send)


def _content_length(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    return int(text) if text.isdigit() and len(text) < 19 else None
