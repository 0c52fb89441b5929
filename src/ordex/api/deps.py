"""Request dependencies: the wired services and the authenticated account."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ordex.api.errors import ApiError
from ordex.api.guard import ACCOUNT_KEY
from ordex.bootstrap import Services
from ordex.domain.accounts import Account, Role
from ordex.domain.errors import Code, Violation

bearer = HTTPBearer(auto_error=False, description="Your API key: `Authorization: Bearer KEY`.")

MAX_KEY_LENGTH = 256


async def get_services(request: Request) -> Services:
    """Async, so that FastAPI calls it on the event loop, not through its thread pool."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def account_for(services: Services, authorization: str | None) -> Account:
    """The account whose key is in an ``Authorization: Bearer KEY`` header; else ApiError."""
    challenge = {"WWW-Authenticate": "Bearer"}
    scheme, _, key = (authorization or "").strip().partition(" ")
    key = key.strip() if scheme.lower() == "bearer" else ""
    if not key:
        raise ApiError(Violation(
            Code.UNAUTHORIZED, None, "No API key was sent.",
            "Send your API key in the header 'Authorization: Bearer YOUR_KEY'."), challenge)
    account = None
    if len(key) <= MAX_KEY_LENGTH:
        account = await services.accounts.authenticate(key)
    if account is None:
        raise invalid_key()
    return account


async def current_account(
    request: Request, services: ServicesDep,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],  # documents the scheme
) -> Account:
    """Checked once per request: by the body guard when the request has a body, else here."""
    known = request.scope.get(ACCOUNT_KEY)
    if isinstance(known, Account):
        return known
    return await account_for(services, request.headers.get("authorization"))


def invalid_key() -> ApiError:
    return ApiError(Violation(
        Code.UNAUTHORIZED, None, "The API key is not valid.",
        "Check that you copied the whole key; ask an administrator for a new one if it "
        "was revoked."), {"WWW-Authenticate": "Bearer"})


CurrentAccount = Annotated[Account, Depends(current_account)]


def require(*roles: Role) -> object:
    async def check(account: CurrentAccount) -> Account:
        if account.role not in roles:
            allowed = " or ".join(r.value for r in roles)
            raise ApiError(Violation(
                Code.FORBIDDEN, None,
                f"Your account's role ({account.role.value}) cannot do this; it needs {allowed}.",
                "Use an account with that role."))
        return account

    return Depends(check)


Trader = Annotated[Account, require(Role.TRADER)]
Admin = Annotated[Account, require(Role.ADMIN)]
