"""Settings: environment (``ORDEX_`` prefix, plus the spec's own names) and command-line flags."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ordex.domain.routing import VENUE_NAME

EMBEDDED = "embedded"  # a named venue entry's value for another embedded simulated exchange


def _alias(name: str) -> AliasChoices:
    return AliasChoices(f"ORDEX_{name}", name)


@dataclass(frozen=True, slots=True)
class VenueSpec:
    """One venue to trade on: ``address`` HOST:PORT of a FIX venue, or None for an embedded
    simulated exchange."""

    name: str
    address: str | None = None


def check_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) as host and port, or ValueError saying what is wrong."""
    host, sep, port_text = address.strip().rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"venue address must be HOST:PORT, got {address!r}")
    return host.strip("[]"), int(port_text)


def named_venue(entry: str) -> VenueSpec:
    """``NAME=HOST:PORT`` (a FIX venue) or ``NAME=embedded`` (an embedded exchange)."""
    name, sep, where = (part.strip() for part in entry.partition("="))
    if not sep or not VENUE_NAME.fullmatch(name):
        raise ValueError(f"a named venue must be NAME=HOST:PORT or NAME={EMBEDDED}, with NAME "
                         f"of letters, digits, '.', '_' or '-'; got {entry!r}")
    if where == EMBEDDED:
        return VenueSpec(name)
    check_address(where)
    return VenueSpec(name, where)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORDEX_", extra="ignore", populate_by_name=True)

    data_dir: Path = Path("data")
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    seed_demo: bool = True

    # The spec's own variables (Deployment Considerations), read with or without the prefix.
    exchange_api_key: str = Field(default="test-key", validation_alias=_alias("EXCHANGE_API_KEY"))
    order_retry_max_attempts: int = Field(
        default=3, ge=0, validation_alias=_alias("ORDER_RETRY_MAX_ATTEMPTS")
    )
    order_timeout_seconds: int = Field(
        default=120, gt=0, validation_alias=_alias("ORDER_TIMEOUT_SECONDS")
    )
    order_execution_v2_enabled: bool = Field(
        default=True, validation_alias=_alias("ORDER_EXECUTION_V2_ENABLED")
    )

    rate_limit_per_minute: int = Field(default=100, gt=0)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)  # API request bodies
    header_timeout_seconds: float = Field(default=10.0, gt=0)  # to send complete headers
    stream_connections_per_trader: int = Field(default=20, ge=1)
    stream_max_message_bytes: int = Field(default=64 * 1024, ge=1024)
    # permessage-deflate on /v1/stream: off, since events are small JSON frames whose
    # compression costs more CPU than the bytes it saves are worth on a LAN
    stream_compression: bool = False
    price_band: Decimal = Decimal("0.10")
    market_order_buffer: Decimal = Decimal("0.01")
    default_cash: Decimal = Decimal("100000")
    sql_echo: bool = False

    # Execution: the embedded simulated venue, or a FIX venue at HOST:PORT, named venue_name;
    # more venues as NAME=HOST:PORT or NAME=embedded (ORDEX_VENUES, comma-separated). Orders
    # that name no venue go to default_venue (default: venue_name).
    execution_enabled: bool = True
    venue: str | None = None
    venue_name: str = Field(default="SIM", pattern=VENUE_NAME.pattern)
    venues: Annotated[list[str], NoDecode] = Field(default_factory=list)
    default_venue: str | None = None
    sim_seed: int = 7
    # The engine's random numbers (the jitter of send retries): unseeded unless given, so that
    # a run can be replayed with the same draws.
    seed: int | None = None
    sim_tick_seconds: float = Field(default=0.25, ge=0)
    # The FIX session with a venue (``--venue``): who ordex is, who the venue is (default: the
    # venue name), ResetSeqNumFlag=Y on the first logon, HeartBtInt, Username (553); the
    # Password (554) is EXCHANGE_API_KEY.
    venue_sender_comp_id: str = Field(default="ORDEX", min_length=1, pattern=r"^[!-~]+$")
    venue_target_comp_id: str | None = Field(default=None, min_length=1, pattern=r"^[!-~]+$")
    venue_reset_seq: bool = False
    venue_heartbeat: int = Field(default=5, ge=1, le=300)
    venue_username: str | None = None
    venue_logon_timeout: float = Field(default=5.0, gt=0)  # start-up waits this long at most
    venue_request_timeout: float = Field(default=5.0, gt=0)  # then a request has no answer

    # Recovery (FR-008 to FR-010): retries of a send, acks, reconciliation.
    retry_base_seconds: float = Field(default=1.0, ge=0)  # backoff: base, 2x base, 4x base...
    ack_timeout_seconds: float = Field(default=2.0, gt=0)  # then the venue is asked
    stall_check_seconds: float = Field(default=5.0, gt=0)  # sampling of working orders
    unsent_policy: str = Field(default="resend", pattern="^(resend|fail)$")
    ghost_policy: str = Field(default="cancel", pattern="^(cancel|alert)$")

    @field_validator("venues", mode="before")
    @classmethod
    def _split_venues(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part for part in (p.strip() for p in value.split(",")) if part]
        return value

    @model_validator(mode="after")
    def _check_venues(self) -> Self:
        if self.venue is not None:
            check_address(self.venue)
        names = [spec.name for spec in self.venue_specs()]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"venue {', '.join(twice)} is configured more than once")
        if self.default_venue is not None and self.default_venue not in names:
            raise ValueError(f"the default venue {self.default_venue!r} is not configured; the "
                             f"venues are {', '.join(names)}")
        return self

    def venue_specs(self) -> list[VenueSpec]:
        """Every venue to trade on: ``venue_name`` (the FIX venue at ``venue``, or else the
        embedded exchange, unless a named entry takes that name), then the named ones."""
        named = [named_venue(entry) for entry in self.venues]
        first: list[VenueSpec] = []
        if self.venue is not None:
            first = [VenueSpec(self.venue_name, self.venue)]
        elif all(spec.name != self.venue_name for spec in named):
            first = [VenueSpec(self.venue_name)]
        return first + named

    @property
    def default_venue_name(self) -> str:
        return self.default_venue or self.venue_name

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'ordex.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url().startswith("sqlite")
