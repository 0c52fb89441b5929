"""QuickFIX session settings built in code, and the rules for calling QuickFIX from Python.

Both ends run one FIX 4.4 session (ordex ``ORDEX`` <-> venue ``SIM`` by default) with
``UseDataDictionary=N``, ``ResetOnLogon=N`` and a persistent ``FileStore`` (sequence numbers and
sent messages) under ``<data dir>/fix-store``, so that sequence numbers survive reconnects and
restarts and missed messages are resent on a ResendRequest. The session is a daily one
(``StartTime`` = ``EndTime`` = 00:00:00 UTC): QuickFIX resets sequence numbers when a new UTC day
starts, on both ends alike.

The quickfix-ssl wheel aborts the process on any C++ exception that reaches Python (a missing
field in ``getField``, ``sendToTarget`` to an unknown session, an exception raised in a callback
such as ``RejectLogon`` or ``DoNotSend``). So: messages are read from ``toString()`` with
``messages.parse``, sessions are looked up (``lookupSession`` returns None) before ``send``, and
every callback catches everything (``guarded``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol

import quickfix as fix

from ordex.files import private_dir
from ordex.venues.fix.messages import BEGIN_STRING

if TYPE_CHECKING:
    import quickfix

log = logging.getLogger("ordex.venues.fix")

P = ParamSpec("P")

STORE_DIR = "fix-store"
DEFAULT_CLIENT_COMP_ID = "ORDEX"


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """One end of the session: who we are, who the other end is, where the store lives."""

    sender_comp_id: str
    target_comp_id: str
    store_dir: Path
    heartbeat_seconds: int = 5
    reconnect_seconds: int = 1
    log_dir: Path | None = None  # QuickFIX's message log (FileLog), off when None
    # ResetSeqNumFlag=Y on logon: both ends start again at 1 (the initiator turns it off once
    # logged on, so that a later reconnect resends what was missed)
    reset_on_logon: bool = False

    def session_id(self) -> quickfix.SessionID:
        import quickfix as fix

        return fix.SessionID(BEGIN_STRING, self.sender_comp_id, self.target_comp_id)

    def seqnums_file(self) -> Path:
        """QuickFIX FileStore's ``.seqnums`` file: ``<next sender> : <next target>``."""
        name = f"{BEGIN_STRING}-{self.sender_comp_id}-{self.target_comp_id}.seqnums"
        return self.store_dir / name


def read_seqnums(path: Path) -> tuple[int, int] | None:
    """The next sender and next target sequence numbers a FileStore holds, or None."""
    try:
        sender, _, target = path.read_text().partition(":")
        return int(sender), int(target)
    except (OSError, ValueError):
        return None


def _common(config: SessionConfig) -> dict[str, str]:
    values = {
        "FileStorePath": str(config.store_dir),
        "StartTime": "00:00:00",
        "EndTime": "00:00:00",
        "UseDataDictionary": "N",
        "ResetOnLogon": "Y" if config.reset_on_logon else "N",
        "ResetOnLogout": "N",
        "ResetOnDisconnect": "N",
        "PersistMessages": "Y",
        "HeartBtInt": str(config.heartbeat_seconds),
        "SocketNodelay": "Y",
        "ValidateLengthAndChecksum": "Y",
        "CheckLatency": "N",
        "LogonTimeout": "10",
        "LogoutTimeout": "2",
    }
    if config.log_dir is not None:
        values["FileLogPath"] = str(config.log_dir)
    return values


def _settings(config: SessionConfig, defaults: dict[str, str],
              session: dict[str, str]) -> quickfix.SessionSettings:
    import quickfix as fix

    private_dir(config.store_dir)
    if config.log_dir is not None:
        private_dir(config.log_dir)
    settings = fix.SessionSettings()
    default_dict = fix.Dictionary()
    for key, value in defaults.items():
        default_dict.setString(key, value)
    settings.set(default_dict)
    session_dict = fix.Dictionary()
    for key, value in session.items():
        session_dict.setString(key, value)
    settings.set(config.session_id(), session_dict)
    return settings


def initiator_settings(config: SessionConfig, host: str, port: int) -> quickfix.SessionSettings:
    """Settings for ordex's end (QuickFIX reads ``ReconnectInterval`` and ``FileLogPath`` from
    the defaults section only, so everything common goes there)."""
    defaults = {**_common(config), "ConnectionType": "initiator",
                "ReconnectInterval": str(config.reconnect_seconds)}
    session = {"SocketConnectHost": host, "SocketConnectPort": str(port)}
    return _settings(config, defaults, session)


def acceptor_settings(config: SessionConfig, port: int) -> quickfix.SessionSettings:
    """Settings for the venue's end. QuickFIX 1.15's acceptor listens on every interface."""
    defaults = {**_common(config), "ConnectionType": "acceptor"}
    session = {"SocketAcceptPort": str(port), "SocketReuseAddress": "Y"}
    return _settings(config, defaults, session)


def store_factory(settings: quickfix.SessionSettings) -> quickfix.MessageStoreFactory:
    import quickfix as fix

    return fix.FileStoreFactory(settings)


def log_factory(config: SessionConfig,
                settings: quickfix.SessionSettings) -> quickfix.LogFactory | None:
    import quickfix as fix

    return fix.FileLogFactory(settings) if config.log_dir is not None else None


def guarded(fn: Callable[P, None]) -> Callable[P, None]:
    """A QuickFIX callback that never lets an exception out (it would abort the process)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            fn(*args, **kwargs)
        except BaseException:  # anything escaping into QuickFIX aborts the process
            try:
                log.exception("FIX callback %s failed", fn.__name__)
            except BaseException:
                pass

    return wrapper


class LoopOwner(Protocol):
    """Either end of a session: its callbacks run on the event loop that started the socket."""

    def on_logon(self) -> None: ...
    def on_logout(self) -> None: ...
    def on_logon_sent(self) -> None: ...
    def logon_fields(self) -> list[tuple[int, str]]:
        """Fields added to each Logon this end sends (Username, Password); called on
        QuickFIX's thread, so it returns fixed values only."""
        ...
    def check_logon(self, raw: str) -> str | None:
        """On QuickFIX's thread, for each Logon received: why it is refused, or None."""
        ...
    def on_admin(self, raw: str) -> None: ...
    def on_session_reject_sent(self, raw: str) -> None: ...
    def on_message(self, raw: str) -> None: ...


class LoopApplication(fix.Application):  # type: ignore[misc]
    """QuickFIX callbacks for either end: hand everything to the owner's loop, never raise."""

    def __init__(self, owner: LoopOwner, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._owner = owner
        self._loop = loop

    def _post(self, fn: Callable[..., None], *args: object) -> None:
        """Run ``fn`` on the owner's loop (called from QuickFIX's threads); dropped once the loop
        is closed."""
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(fn, *args)

    @guarded
    def onCreate(self, session_id: Any) -> None:
        pass

    @guarded
    def onLogon(self, session_id: Any) -> None:
        self._post(self._owner.on_logon)

    @guarded
    def onLogout(self, session_id: Any) -> None:
        self._post(self._owner.on_logout)

    @guarded
    def toAdmin(self, message: Any, session_id: Any) -> None:
        raw = message.toString()
        if "\x0135=A\x01" in raw:
            for tag, value in self._owner.logon_fields():
                message.setField(tag, value)
            self._post(self._owner.on_logon_sent)
        elif "\x0135=3\x01" in raw:  # QuickFIX refuses a message from the other end: say so
            self._post(self._owner.on_session_reject_sent, raw)

    @guarded
    def fromAdmin(self, message: Any, session_id: Any) -> None:
        raw = message.toString()
        if "\x0135=A\x01" in raw:
            # A refusal cannot be raised here (RejectLogon aborts the process in this wheel):
            # the session is logged out with the reason once the logon completes.
            why = self._owner.check_logon(raw)
            if why is not None:
                session = fix.Session.lookupSession(session_id)
                if session is not None:
                    session.logout(why)
        if "\x0135=5\x01" in raw or "\x0135=3\x01" in raw:  # logout or session reject: say why
            self._post(self._owner.on_admin, raw)

    @guarded
    def toApp(self, message: Any, session_id: Any) -> None:
        pass

    @guarded
    def fromApp(self, message: Any, session_id: Any) -> None:
        self._post(self._owner.on_message, message.toString())


async def start_socket(kind: Callable[..., Any], owner: LoopOwner, config: SessionConfig,
                       settings: Any) -> Any:
    """Build and start a QuickFIX SocketInitiator or SocketAcceptor off the event loop."""
    app = LoopApplication(owner, asyncio.get_running_loop())
    logs = log_factory(config, settings)

    def build() -> Any:
        args = [app, store_factory(settings), settings] + ([logs] if logs else [])
        started = kind(*args)
        started.start()
        return started

    return await asyncio.to_thread(build)
