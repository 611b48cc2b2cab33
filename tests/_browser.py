"""Finding a Chromium binary for the browser tests (Debian's ``chromium``; Playwright's own browser
download is not used). ``DPLEARN_CHROMIUM=/path/to/chrome`` picks another binary."""

from __future__ import annotations

import os
import shutil


def chromium() -> str | None:
    """The path of a Chromium-family browser on this machine, or None."""
    for candidate in (os.environ.get("DPLEARN_CHROMIUM"), "chromium", "chromium-browser",
                      "google-chrome", "google-chrome-stable"):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


def playwright_and_chromium(what: str):
    """``(playwright.sync_api, chromium path)``, or skip the test saying that ``what`` is not checked
    in a browser and why."""
    import pytest

    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed: pip install -e '.[dev]'")
    exe = chromium()
    if exe is None:
        pytest.skip("no Chromium binary found (Debian: apt-get install chromium; or set "
                    f"DPLEARN_CHROMIUM): {what} is not checked in a browser")
    return sync_api, exe
