"""What the venue's admin HTTP API refuses before it runs a command.

The API changes the market and injects faults, so only this machine's own tools may use it, never
a web page: it listens on loopback only, answers only requests whose Host is a loopback name (a
page on another site that rebinds its DNS name to 127.0.0.1 still sends its own Host), and takes
POSTs only as ``application/json``, which a browser cannot send to another site without asking
first (a CORS preflight, which this API never allows).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

MAX_BODY_BYTES = 64 * 1024
LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost", "ip6-loopback"})


def is_loopback(host: str) -> bool:
    name = host.strip().lower().strip("[]")
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(host: str) -> None:
    """Raises ValueError for an address that is not loopback."""
    if not is_loopback(host):
        raise ValueError(f"the admin API listens on loopback only (127.0.0.1 or ::1), not {host!r}")


def _host_name(header: str) -> str:
    try:
        return urlsplit(f"//{header.strip()}").hostname or ""
    except ValueError:
        return ""


def refusal(method: str, headers: Mapping[str, str]) -> tuple[int, dict[str, str]] | None:
    """The status and JSON answer that refuse this request, or None to let it through."""
    host = headers.get("Host")
    if not host or not is_loopback(_host_name(host)):
        said = f"Host {host!r} is not this machine" if host else "No Host header was sent"
        return 403, {"code": "host_not_allowed",
                     "error": f"{said}; the admin API answers only requests to localhost, "
                              "127.0.0.1 or [::1]."}
    length_text = (headers.get("Content-Length") or "0").strip()
    if not length_text.isdigit():
        return 400, {"code": "invalid_length",
                     "error": "Content-Length must be a whole number of bytes."}
    if headers.get("Transfer-Encoding"):
        return 411, {"code": "length_required",
                     "error": "Send the body with a Content-Length, not chunked."}
    if int(length_text) > MAX_BODY_BYTES:
        return 413, {"code": "body_too_large",
                     "error": f"The body is {int(length_text):,} bytes; the limit is "
                              f"{MAX_BODY_BYTES:,}."}
    if method == "POST":
        media = (headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if media != "application/json":
            return 415, {"code": "unsupported_media_type",
                         "error": "POST needs 'Content-Type: application/json' (send {} when "
                                  "there is nothing to say)."}
    return None
