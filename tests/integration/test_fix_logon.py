"""Setting up the FIX session. ``ordex venue`` listens on its ``--host`` only. A FIX logon that
fails says why: the venue's Text (58) and a hint, in the log and in the
venue's session status (``/readyz``, ``GET /v1/venues``). Each test has its own CompIDs (QuickFIX
keeps one registry of sessions per process)."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import pytest
import quickfix as fix

from ordex.venues.fix.adapter import FixVenue
from tests.support.postgres import free_port
from tests.support.venue_process import VenueProcess


def make(port: int, data_dir: Path, sender: str, target: str, **kwargs: object) -> FixVenue:
    options: dict[str, object] = {"name": target, "data_dir": data_dir, "sender_comp_id": sender,
                                  "heartbeat_seconds": 1, "reconnect_seconds": 1,
                                  "logon_timeout": 3.0, "request_timeout": 2.0}
    options.update(kwargs)
    return FixVenue("127.0.0.1", port, **options)  # type: ignore[arg-type]


async def problem_of(venue: FixVenue, seconds: float = 8.0) -> tuple[str, str]:
    async with asyncio.timeout(seconds):
        while venue.session_status().problem is None:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    status = venue.session_status()
    assert status.problem is not None and status.hint is not None
    return status.problem, status.hint


async def gone(venue: FixVenue) -> None:
    """Wait until QuickFIX has let go of the stopped venue's session."""
    for _ in range(100):
        if fix.Session.lookupSession(venue.config.session_id()) is None:
            return
        await asyncio.sleep(0.05)


async def test_a_fresh_ordex_against_a_venue_that_remembers_an_older_session(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The venue expects a higher MsgSeqNum than a fresh store sends: the logon is refused with
    the venue's words and the hint names --venue-reset-seq; with it, the session logs on."""
    process = VenueProcess(tmp_path / "venue", name="SIMSEQ", client_comp_id="ORDEXSEQ")
    process.start()
    try:
        first = make(process.port, tmp_path / "first", "ORDEXSEQ", "SIMSEQ")
        await first.start()
        assert first.logged_on
        await asyncio.sleep(2.5)  # heartbeats move the venue's expected sequence number on
        await first.stop()
        await gone(first)

        caplog.set_level(logging.WARNING, logger="ordex.venues.fix")
        fresh = make(process.port, tmp_path / "fresh", "ORDEXSEQ", "SIMSEQ")
        await fresh.start()
        try:
            problem, hint = await problem_of(fresh)
            assert not fresh.logged_on
            assert "MsgSeqNum too low" in problem and "the venue refused the logon" in problem
            assert "--venue-reset-seq" in hint and "align the store" in hint
            assert fresh.session_status().state == "connecting"
            said = [r for r in caplog.records if "MsgSeqNum too low" in r.getMessage()]
            await asyncio.sleep(2.5)  # QuickFIX retries every second: said once, not each time
            assert len([r for r in caplog.records if "MsgSeqNum too low" in r.getMessage()]) \
                == len(said) == 1
        finally:
            await fresh.stop()
        await gone(fresh)

        reset = make(process.port, tmp_path / "fresh", "ORDEXSEQ", "SIMSEQ", reset_seq=True)
        await reset.start()
        try:
            assert reset.logged_on
            assert reset.session_status().problem is None
            logons = [line for f in (process.data_dir / "fix-log").glob("*messages*")
                      for line in f.read_text(errors="replace").splitlines()
                      if "\x0135=A\x01" in line and "\x0141=Y\x01" not in line
                      and "\x01141=Y\x01" in line and "\x0134=1\x01" in line]
            assert logons, "no Logon with ResetSeqNumFlag=Y and MsgSeqNum 1 reached the venue"
        finally:
            await reset.stop()
    finally:
        process.stop()


async def test_an_unknown_comp_id_is_explained(tmp_path: Path) -> None:
    process = VenueProcess(tmp_path / "venue", name="SIMCID", client_comp_id="SOMEONE")
    process.start()
    venue = make(process.port, tmp_path / "ordex", "ORDEXCID", "SIMCID")
    try:
        await venue.start()
        problem, hint = await problem_of(venue)
        assert not venue.logged_on
        assert "without answering the logon" in problem and "CompIDs" in problem
        assert "--venue-sender-comp-id" in hint and "ORDEXCID" in hint
    finally:
        await venue.stop()
        process.stop()


async def test_a_wrong_password_is_refused_with_a_logout_text_and_the_right_one_logs_on(
        tmp_path: Path) -> None:
    process = VenueProcess(tmp_path / "venue", name="SIMPW", client_comp_id="ORDEXPW",
                           password="s3cret")
    process.start()
    try:
        wrong = make(process.port, tmp_path / "ordex", "ORDEXPW", "SIMPW", password="guess")
        await wrong.start()
        try:
            problem, hint = await problem_of(wrong)
            assert "wrong Password (554)" in problem and "credentials refused" in problem
            assert "EXCHANGE_API_KEY" in hint
            await asyncio.sleep(1.5)
            assert not wrong.logged_on
            assert (await process.admin("GET", "/session"))["logons"] == 0
        finally:
            await wrong.stop()
        await gone(wrong)
        right = make(process.port, tmp_path / "ordex", "ORDEXPW", "SIMPW", password="s3cret",
                     username="desk1")
        await right.start()
        try:
            assert right.logged_on and right.session_status().state == "connected"
        finally:
            await right.stop()
    finally:
        process.stop()


async def test_no_venue_at_the_address_is_explained(tmp_path: Path) -> None:
    venue = make(free_port(), tmp_path / "ordex", "ORDEXNONE", "SIMNONE", logon_timeout=0.5)
    await venue.start()
    try:
        problem, hint = await problem_of(venue, 2.0)
        assert "no answer from 127.0.0.1:" in problem and "connection refused" in problem
        assert "start the venue" in hint
    finally:
        await venue.stop()


def _own_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: it only picks a route
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


async def test_the_venue_listens_on_its_host_only(tmp_path: Path) -> None:
    own = _own_address()
    if own is None:
        pytest.skip("this machine has no address but loopback")
    loopback = VenueProcess(tmp_path / "lo", name="SIMHOST", client_comp_id="ORDEXHOST")
    loopback.start()
    try:
        assert f"fix 127.0.0.1:{loopback.port}" in loopback.ready_line
        assert _reachable("127.0.0.1", loopback.port)
        assert not _reachable(own, loopback.port)
        venue = make(loopback.port, tmp_path / "ordex", "ORDEXHOST", "SIMHOST")
        await venue.start()
        try:
            assert venue.logged_on  # QuickFIX accepts through the socket bound to loopback
        finally:
            await venue.stop()
    finally:
        loopback.stop()
    everywhere = VenueProcess(tmp_path / "all", name="SIMALL", client_comp_id="ORDEXALL",
                              host="0.0.0.0")
    everywhere.start()
    try:
        assert _reachable(own, everywhere.port)
    finally:
        everywhere.stop()
