"""Settings: environment (``ORDEX_`` prefix, plus the spec's own names) and command-line flags."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _alias(name: str) -> AliasChoices:
    return AliasChoices(f"ORDEX_{name}", name)


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

    # Execution: the embedded simulated venue, or a FIX venue at HOST:PORT.
    execution_enabled: bool = True
    venue: str | None = None
    venue_name: str = "SIM"
    sim_seed: int = 7
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

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'ordex.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url().startswith("sqlite")
