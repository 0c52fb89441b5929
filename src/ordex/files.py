"""Files and folders that hold trading data are created readable by their owner only."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """``path`` and every missing parent made owner-only (0700); an existing leaf is tightened."""
    path = Path(path)
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=DIR_MODE)
        os.chmod(folder, DIR_MODE)  # mkdir's mode is narrowed by the umask, never widened
    if path.is_dir() and not missing:
        _tighten(path)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty and owner-only (0600) if missing, or tighten it if it exists."""
    path = Path(path)
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    os.close(fd)
    _tighten(path)
    return path


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text``, owner-only from the first byte."""
    path = Path(path)
    private_dir(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)


def _tighten(path: Path) -> None:
    """Drop group and other access from a file or folder this process owns."""
    with contextlib.suppress(OSError):
        current = path.stat().st_mode & 0o777
        if current & 0o077:
            os.chmod(path, current & 0o700)
