"""Headless Chromium for the tests, through playwright, or a skip.

The browser is the system's Chromium (Debian: ``apt-get install chromium``), driven by
the ``playwright`` Python package (``pip install playwright``); playwright's own browser
downloads are never used. Which executable: ``$PEERKEEPER_CHROMIUM`` if set, else the
first of :data:`CANDIDATES` that exists. Without playwright or without a Chromium, a
test that asks for a browser is skipped with the reason (and the command that fixes it).

Usage (an async test; pytest-asyncio runs it)::

    async with browser_or_skip() as browser:
        page = await browser.new_page()
        await page.goto(url)
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Browser

__all__ = ["CANDIDATES", "LAUNCH_ARGS", "browser_or_skip", "find_chromium"]

#: Where Chromium is looked for, in order (absolute paths, then names on $PATH).
CANDIDATES = (
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "chromium",
    "chromium-browser",
    "google-chrome",
)
#: Chromium's flags: headless, as root (no sandbox), and no traffic of its own (no
#: QUIC, component updates, sync or background requests). playwright adds a fresh
#: ``--user-data-dir`` of its own and removes it on close.
LAUNCH_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
#: How long Chromium may take to start (ms).
LAUNCH_TIMEOUT_MS = 60_000


def find_chromium() -> str | None:
    """The Chromium executable to use, or ``None`` when there is none."""
    env = os.environ.get("PEERKEEPER_CHROMIUM")
    if env:
        return env if os.access(env, os.X_OK) else None
    for candidate in CANDIDATES:
        if os.path.isabs(candidate):
            if os.access(candidate, os.X_OK):
                return candidate
        elif (found := shutil.which(candidate)) is not None:
            return found
    return None


@contextlib.asynccontextmanager
async def browser_or_skip() -> AsyncIterator[Browser]:
    """A headless Chromium for the ``async with`` block, closed after it.

    Calls :func:`pytest.skip` when playwright is not installed or no Chromium is found.
    A Chromium that is found but fails to start is an error, not a skip.
    """
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("playwright is not installed (python3 -m pip install playwright)")
    executable = find_chromium()
    if executable is None:
        pytest.skip("no Chromium found (apt-get install chromium, or set PEERKEEPER_CHROMIUM)")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=executable,
            headless=True,
            args=list(LAUNCH_ARGS),
            timeout=LAUNCH_TIMEOUT_MS,
        )
        try:
            yield browser
        finally:
            await browser.close()
