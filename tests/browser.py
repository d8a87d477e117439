"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, for the browser tests.

Locally the browser tests are skipped when chromium is missing; in CI (CI=true) they fail instead,
since .ci/run installs it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
OUTPUT = Path(__file__).resolve().parent.parent / "test-output"


def require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run must install it")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")


@contextmanager
def chromium() -> Iterator[object]:
    """A Playwright Browser on Debian's chromium, closed afterwards."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot_path(name: str) -> Path:
    """Where a test keeps a screenshot (test-output/, kept as test output, not committed)."""
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT / name
