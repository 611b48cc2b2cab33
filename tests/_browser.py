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
