"""Why a FIX logon failed, in words an operator acts on: the venue's Text (58) when it sent one,
what it means, and what to do."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SEQ_TOO_LOW = re.compile(r"msgseqnum.*too low|too low.*msgseqnum|seq\w* num\w* too low", re.I)
_COMP_ID = re.compile(r"comp ?id|unknown session|session not found|no such session", re.I)
_CREDENTIALS = re.compile(r"password|username|credential|auth|api ?key|not allowed|"
                          r"login|logon refused|permission", re.I)


@dataclass(frozen=True, slots=True)
class LogonProblem:
    problem: str
    hint: str
    kind: str  # seq_too_low, credentials, comp_id, refused, no_answer, dropped, unreachable

    @property
    def has_venue_text(self) -> bool:
        return self.kind in ("seq_too_low", "credentials", "comp_id", "refused")


@dataclass(frozen=True, slots=True)
class LogonContext:
    """What the hint names: where ordex dials, as whom, and where its sequence numbers live."""

    address: str
    sender_comp_id: str
    target_comp_id: str
    store: str


def refused(text: str, ctx: LogonContext) -> LogonProblem:
    """The venue answered the logon with a Logout carrying ``text``."""
    said = f"the venue refused the logon: \"{text}\""
    if _SEQ_TOO_LOW.search(text):
        return LogonProblem(
            f"{said} (ordex's sequence numbers are behind the venue's: a new or reset store)",
            "restart with `--venue-reset-seq` (ResetSeqNumFlag=Y: both ends start again at 1) "
            f"or align the store ({ctx.store}) with the venue's", "seq_too_low")
    if _CREDENTIALS.search(text):
        return LogonProblem(
            f"{said} (credentials refused)",
            "check EXCHANGE_API_KEY (sent as Password, 554) and ORDEX_VENUE_USERNAME "
            "(sent as Username, 553) against what the venue expects", "credentials")
    if _COMP_ID.search(text):
        return LogonProblem(
            f"{said} (unknown CompID)", _comp_id_hint(ctx), "comp_id")
    return LogonProblem(said, "read the venue's reason above; "
                        f"ordex logs on as {ctx.sender_comp_id} to {ctx.target_comp_id}",
                        "refused")


def dropped(seconds: float, logon_timeout: float, ctx: LogonContext) -> LogonProblem:
    """The connection closed after ordex sent its logon, with no Logout to say why."""
    if seconds >= logon_timeout * 0.8:
        return LogonProblem(
            f"the venue at {ctx.address} did not answer the logon within {logon_timeout:g} s",
            f"check that {ctx.address} is a FIX 4.4 acceptor and that it expects "
            f"{ctx.sender_comp_id} -> {ctx.target_comp_id}", "no_answer")
    return LogonProblem(
        f"the venue at {ctx.address} closed the connection without answering the logon "
        "(it usually means it does not know these CompIDs)", _comp_id_hint(ctx), "dropped")


def unreachable(ctx: LogonContext) -> LogonProblem:
    """No logon could even be sent: nothing accepts connections at the address."""
    return LogonProblem(
        f"no answer from {ctx.address} (connection refused or unreachable)",
        "start the venue, or point --venue at it; ordex keeps trying", "unreachable")


def _comp_id_hint(ctx: LogonContext) -> str:
    return (f"ordex logs on as SenderCompID {ctx.sender_comp_id} to TargetCompID "
            f"{ctx.target_comp_id}: set --venue-sender-comp-id and --venue-target-comp-id to "
            "what the venue has configured for you")
