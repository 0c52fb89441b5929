"""``ordex serve`` as a subprocess, the way a user starts it, for end-to-end tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ORDEX = [sys.executable, "-m", "ordex.cli"]
DEMO_NAMES = {"alice", "bob", "carol", "admin"}
_KEY_LINE = re.compile(r"^\s+(\w+)\s+(ordex_\S+)$")


@contextmanager
def ordex_serve(data: Path, port: int, *flags: str, env: dict[str, str] | None = None,
                preexec_fn: Callable[[], object] | None = None,
                ) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """``ordex serve --port PORT --data-dir DATA FLAGS…``; yields the process and the demo keys
    it printed, and stops it at the end (SIGTERM) unless the test already did."""
    proc = subprocess.Popen([*ORDEX, "serve", "--port", str(port), "--data-dir", str(data),
                             *flags], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env if env is not None else dict(os.environ),
                            preexec_fn=preexec_fn)
    assert proc.stdout is not None
    try:
        keys: dict[str, str] = {}
        while set(keys) != DEMO_NAMES:
            line = proc.stdout.readline()
            assert line, f"ordex serve stopped before printing its keys (exit {proc.poll()})"
            match = _KEY_LINE.match(line)
            if match:
                keys[match.group(1)] = match.group(2)
        yield proc, keys
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=20)
        proc.stdout.close()
