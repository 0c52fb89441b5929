"""Headless Chromium for browser tests, driven through Playwright's async API.

The browser is Debian's ``chromium`` package (``scripts/test`` installs it), never one that
``playwright install`` would download. A missing browser is an error, not a skip: the browser
tests must run wherever the suite runs.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import Browser, async_playwright

CHROMIUM = Path("/usr/bin/chromium")

CHROMIUM_ARGS: tuple[str, ...] = (
    "--no-sandbox",  # the tests run as root, where the sandbox cannot start
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
)

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "screenshots"

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def screenshot_path(name: str) -> Path:
    """Where to save the screenshot called ``name`` (``.png`` added when it has no suffix).

    Characters that do not belong in a file name (a test id's ``[`` ``/`` ``:`` …) become ``_``.
    """
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    stem = _UNSAFE.sub("_", name).strip("._") or "screenshot"
    path = ARTIFACTS / stem
    return path if path.suffix else path.with_suffix(".png")


def _check_chromium() -> None:
    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(f"{CHROMIUM} not found: install Debian's 'chromium' package "
                           "(scripts/test does it)")


@asynccontextmanager
async def chromium_browser() -> AsyncIterator[Browser]:
    """A headless Chromium for the length of the block, closed after it.

    It runs with HOME set to a fresh temporary directory (removed afterwards), so nothing of a
    developer's own browser profile, caches or crash reports is read or left behind.
    """
    _check_chromium()
    home = tempfile.mkdtemp(prefix="ordex-chromium-home-")
    env = dict(os.environ)
    env["HOME"] = home
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        env.pop(var, None)  # so that they too fall back to the temporary HOME
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                               args=list(CHROMIUM_ARGS), env=env)
            try:
                yield browser
            finally:
                await browser.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
