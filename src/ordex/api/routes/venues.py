"""The venues ordex trades on: session state and what each supports (``GET /v1/venues``)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ordex.api.deps import CurrentAccount, ServicesDep
from ordex.api.routes.common import AUTH_ERRORS
from ordex.api.schemas import VenueList
from ordex.bootstrap import Services
from ordex.domain.errors import Code
from ordex.venues.base import Capability, Venue

router = APIRouter(prefix="/v1", tags=["venues"])


@router.get("/venues", summary="The venues, their session state and capabilities",
            responses={200: {"model": VenueList}, **AUTH_ERRORS})
async def list_venues(services: ServicesDep, _: CurrentAccount) -> JSONResponse:
    """Each venue's FIX session (connected, connecting or disconnected, and why), whether it
    takes the orders that name no venue (``default``), and the optional capabilities it has
    (mass status, trade capture, market data), each with how it was learnt. A missing
    capability never stops trading: ``notices`` say what ordex does instead."""
    linked = venues_of(services)
    return JSONResponse({"venues": [venue_json(v, i == 0) for i, v in enumerate(linked)]})


def venues_of(services: Services) -> list[Venue]:
    """Every venue the engine trades on, the default one first."""
    engine = services.engine
    if engine is None:
        return []
    return [engine.venue, *(v for n, v in engine.venues.items() if n != engine.default_venue)]


def venue_json(venue: Venue, default: bool = False) -> dict[str, object]:
    return {"name": venue.name, "default": default,
            "session": venue.session_status().as_json(),
            "capabilities": venue.capabilities.as_json(), "notices": capability_notices(venue)}


def capability_notices(venue: Venue) -> list[str]:
    """One sentence per capability the venue lacks: what it is, how that was learnt, and what
    ordex does instead."""
    notices = []
    for capability in Capability:
        state = venue.capabilities.state(capability)
        if state.supported is False:
            notices.append(f"Venue {venue.name} does not support {capability.words} "
                           f"({state.how}): {capability.without}.")
    return notices


def market_data_notice(services: Services, symbol: str) -> dict[str, str] | None:
    """For an order preview: the default venue, where market data comes from, sends none, so
    prices are checked against the instrument's stored reference price."""
    for venue in venues_of(services)[:1]:
        state = venue.capabilities.state(Capability.MARKET_DATA)
        if state.supported is False:
            return {"code": Code.NO_MARKET_DATA.value,
                    "message": f"Venue {venue.name} sends no market data ({state.how}): "
                               f"{symbol} is checked against its reference price, not a live "
                               "quote."}
    return None
