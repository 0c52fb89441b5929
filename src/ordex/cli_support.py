"""What the ``ordex`` command checks before it acts, and how it words what went wrong.

A user's mistake (a wrong flag value, a store or service that is not there, a port in use) is a
``CliError``: one line that says what is wrong and what to do, and an exit status (2 for usage,
1 for a failure). Anything else is a defect of ordex and keeps its traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from ordex.config import Settings
from ordex.store.database import Database

USAGE = 2
FAILURE = 1
DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
STORE_CHECK_SECONDS = 10.0
LOCK_FILE = "serve.lock"


class CliError(Exception):
    def __init__(self, message: str, status: int = FAILURE) -> None:
        super().__init__(message)
        self.status = status


def redact(url: str) -> str:
    """The URL without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def check_database_url(url: str) -> None:
    example = "postgresql+asyncpg://USER:PASSWORD@HOST:5432/DB or sqlite+aiosqlite:///PATH"
    try:
        driver = make_url(url).drivername
    except ArgumentError:
        raise CliError(f"the database URL '{redact(url)}' is not a URL; use {example}",
                       USAGE) from None
    if driver not in DRIVERS:
        raise CliError(f"ordex cannot use the database URL '{redact(url)}' (driver '{driver}'); "
                       f"use {example}", USAGE)


def check_data_dir(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise CliError(f"the data dir '{path}' is a file, not a folder; pass --data-dir with a "
                       "folder (it is created if missing)", USAGE)


def settings_from(args: argparse.Namespace, **overrides: Any) -> Settings:
    """Settings from the environment, then the command's flags."""
    values: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    if getattr(args, "data_dir", None):
        values["data_dir"] = Path(args.data_dir)
    if getattr(args, "database_url", None):
        values["database_url"] = args.database_url
    return Settings(**values)


def check_settings(settings: Settings) -> None:
    check_data_dir(Path(settings.data_dir))
    if settings.database_url:
        check_database_url(settings.database_url)


def where(settings: Settings) -> str:
    if settings.database_url:
        return redact(settings.database_url)
    return str(Path(settings.data_dir) / "ordex.db")


def _reason(exc: BaseException) -> str:
    """The innermost useful words of a store failure (drivers wrap one another)."""
    inner: BaseException = exc
    while True:
        nxt = getattr(inner, "orig", None) or inner.__cause__
        if not isinstance(nxt, BaseException) or nxt is inner:
            break
        inner = nxt
    name = type(inner).__name__
    if name == "InvalidCatalogNameError":
        return f"{inner}; create that database first (e.g. createdb), then run `ordex migrate`"
    if name in ("InvalidPasswordError", "InvalidAuthorizationSpecificationError"):
        return f"{inner}; check the user and password in the database URL"
    if isinstance(inner, socket.gaierror):
        return "unknown host; check the host in the database URL"
    if isinstance(inner, ConnectionRefusedError):
        return "connection refused; is the database server running there?"
    words = str(inner).strip().splitlines()
    return words[0] if words else name


@contextlib.contextmanager
def store_errors(settings: Settings) -> Iterator[None]:
    """Turn a store that cannot be reached or opened into one line."""
    try:
        yield
    except CliError:
        raise
    except (OSError, SQLAlchemyError, TimeoutError) as exc:
        raise _store_error(settings, exc) from None
    except Exception as exc:
        if type(exc).__module__.startswith("asyncpg"):
            raise _store_error(settings, exc) from None
        raise


def _store_error(settings: Settings, exc: BaseException) -> CliError:
    reason = "no answer" if isinstance(exc, TimeoutError) else _reason(exc)
    flag = "--database-url" if settings.database_url else "--data-dir"
    return CliError(f"cannot use the store at {where(settings)}: {reason} (check {flag})")


@contextlib.asynccontextmanager
async def open_store(settings: Settings, *, existing: bool) -> AsyncIterator[Database]:
    """The store, reachable; with ``existing``, it must be an ordex store at this version
    (nothing is created: an empty one would issue keys the running server cannot know)."""
    check_settings(settings)
    if existing and not settings.database_url:
        path = Path(settings.data_dir) / "ordex.db"
        if not path.is_file():
            raise CliError(
                f"there is no ordex store in '{settings.data_dir}' ({path} does not exist); "
                "pass the --data-dir (or --database-url) the server uses, or create the store "
                f"with `ordex migrate --data-dir {settings.data_dir}`")
    with store_errors(settings):
        if not existing and not settings.database_url:
            await asyncio.to_thread(Path(settings.data_dir).mkdir, parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url())
        try:
            async with asyncio.timeout(STORE_CHECK_SECONDS):
                if existing:
                    await _require_schema(db, settings)
                else:
                    async with db.reader.connect() as conn:
                        await conn.execute(text("SELECT 1"))
        except BaseException:
            await db.dispose()
            raise
        try:
            yield db
        finally:
            await db.dispose()


async def _require_schema(db: Database, settings: Settings) -> None:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from ordex.store.migrate import alembic_config

    async with db.reader.connect() as conn:
        current = set(await conn.run_sync(
            lambda c: MigrationContext.configure(c).get_current_heads()))
    wanted = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    flag = (f"--database-url {redact(settings.database_url)}" if settings.database_url
            else f"--data-dir {settings.data_dir}")
    if not current:
        raise CliError(f"{where(settings)} is not an ordex store (it has no ordex schema); "
                       f"pass the store the server uses, or create one with `ordex migrate "
                       f"{flag}`")
    if current != wanted:
        raise CliError(f"the store at {where(settings)} has schema {', '.join(sorted(current))}"
                       f", this ordex needs {', '.join(sorted(wanted))}: run `ordex migrate "
                       f"{flag}` (with this version of ordex)")


class DataDirLock:
    """An OS lock on a file in the data dir, held while ``ordex serve`` runs. The kernel
    releases it when the process ends, however it ends (kill -9 too), so a restart is never
    blocked by a lock left behind."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise CliError(f"another ordex serve{who} is using the data dir "
                           f"'{self.path.parent}'; stop it first, or give this one its own "
                           "--data-dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or one line saying why there cannot be one."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror:
        raise CliError(f"cannot listen on '{host}': no such host or address; use --host "
                       "127.0.0.1 (this machine only) or 0.0.0.0 (every interface)",
                       USAGE) from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise CliError(_bind_failure(host, port, exc)) from None
    sock.set_inheritable(True)
    return sock


def _bind_failure(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (f"port {port} on {host} is already in use (another ordex serve?); stop what "
                "uses it, or choose another --port")
    if exc.errno == errno.EACCES:
        return f"not allowed to listen on port {port}; choose a --port above 1023"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this machine; use --host 127.0.0.1 or 0.0.0.0"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
