"""Time-ordered identifiers (UUID version 7) and API keys."""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from uuid import UUID

_last = [0, 0]  # the millisecond of the last id, and its counter


def new_id() -> UUID:
    """A UUIDv7: 48 bits of Unix milliseconds, a 12-bit counter within the millisecond (RFC
    9562's method 1, so that ids made one after the other in this process sort in that order),
    then random bits."""
    ms = time.time_ns() // 1_000_000
    last_ms, counter = _last
    if ms <= last_ms:
        ms, counter = last_ms, counter + 1
        if counter > 0xFFF:
            ms, counter = ms + 1, 0
    else:
        counter = int.from_bytes(os.urandom(1), "big")  # a random start leaves room to count
    _last[0], _last[1] = ms, counter
    rand = int.from_bytes(os.urandom(8), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return UUID(int=value)


API_KEY_PREFIX = "ordex_"


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
