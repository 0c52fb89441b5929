"""``POST /v1/orders`` by a trader, answered beside FastAPI's router rather than through it.

Submitting is the one call on the order path; FastAPI's routing, request objects and
dependency solving cost it about as much CPU as everything the execution core does for the
order (0.4 ms of 0.9 in process). The lane sits inside ``BodyGuard``, which has already
authenticated the caller and bounded the body, and answers with the same function as the route
(``routes.orders.submit``), so both give the same answers, headers and errors; whatever else
arrives (another path or method, an account that is not a trader) goes on to the app. The route
stays for the API's documentation and for those other callers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ordex.api.guard import ACCOUNT_KEY
from ordex.api.routes.orders import submit
from ordex.bootstrap import Services
from ordex.domain.accounts import Account, Role

PATH = "/v1/orders"

Handler = Callable[[Request, Exception], Awaitable[Response]]


class OrderLane:
    def __init__(self, app: ASGIApp, services: Services,
                 handlers: Mapping[Any, Callable[..., Any]]) -> None:
        """``handlers``: the app's exception handlers (read when an error happens, so those
        installed later count too)."""
        self.app = app
        self.services = services
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        account = scope.get(ACCOUNT_KEY)
        if (scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST"
                or not isinstance(account, Account) or account.role is not Role.TRADER):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response: Response = await submit(self.services, account, request)
        except ClientDisconnect:
            return  # nobody is there to answer
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> Handler | None:
        for kind in type(exc).__mro__:
            handler = self.handlers.get(kind)
            if handler is not None:
                return handler  # type: ignore[no-any-return]
        return None
