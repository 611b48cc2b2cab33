"""The built website in a real browser: every page opens in headless Chromium (Playwright for
Python driving Debian's ``chromium``), its images decode, its solution dropdowns open, it raises no
JavaScript error, and on a 390 px wide phone screen nothing but code and tables (which scroll in
their own boxes) is wider than the screen.

The site comes from the ``built_site`` fixture (conftest.py), the same build tests/test_book.py
checks. Requests that leave the site (MathJax and fonts from a CDN) are blocked, so the result is
the same with or without a network; a failure to load them is not an error here. The tests skip,
saying why, when Playwright or a Chromium binary is missing: ``pip install -e '.[dev]'`` brings
Playwright, ``apt-get install chromium`` the browser (Playwright's own browser download is not
used); ``DPLEARN_CHROMIUM=/path/to/chrome`` picks another binary.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from _browser import playwright_and_chromium

pytestmark = pytest.mark.book

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def browser():
    sync_api, exe = playwright_and_chromium("the site")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe)
        yield browser
        browser.close()


def site_pages(site: Path) -> list[Path]:
    """Every HTML page of the site, except a redirect (index.html sends the browser to the first
    page, which is checked itself)."""
    found = []
    for p in sorted(site.rglob("*.html")):
        if {"_static", "_sources", "_images"} & set(p.relative_to(site).parts):
            continue
        if re.search(r'<meta http-equiv="refresh"', p.read_text(errors="replace"), re.I):
            continue
        found.append(p)
    return found


@pytest.fixture(scope="module")
def pages(built_site) -> list[Path]:
    found = site_pages(built_site)
    assert len(found) >= 5, f"only {len(found)} pages in {built_site}"
    return found


def _open(browser, path: Path, viewport: dict):
    """A page at ``path`` with outside requests blocked; returns (page, JavaScript errors)."""
    context = browser.new_context(viewport=viewport)
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
        ("file:", "data:", "blob:")) else route.abort())
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}")
            if msg.type == "error" and not _blocked_request(msg.text) else None)
    page.goto(path.as_uri(), wait_until="load")
    return page, errors


def _blocked_request(text: str) -> bool:
    """A console error that only reports a request this test blocked (a CDN script or font)."""
    return "net::ERR_FAILED" in text or "Failed to load resource" in text


def _name(site: Path, path: Path) -> str:
    return str(path.relative_to(site))


IMAGES_JS = """async () => {
  const bad = [];
  for (const img of document.querySelectorAll('img')) {
    if (!/^(file|data|blob):/.test(img.currentSrc || img.src)) continue;  // outside: blocked
    img.loading = 'eager';
    try { await img.decode(); } catch (e) {}
    if (!(img.complete && img.naturalWidth > 0)) bad.push(img.getAttribute('src').slice(0, 80));
  }
  return [document.querySelectorAll('img').length, bad];
}"""

OVERFLOW_JS = """() => {
  const width = document.documentElement.clientWidth;
  const scrolls = el => { for (let a = el.parentElement; a; a = a.parentElement) {
      const x = getComputedStyle(a).overflowX;
      if (x === 'auto' || x === 'scroll' || x === 'hidden') return true; }
    return false; };
  const wide = [];
  for (const el of document.querySelectorAll('main *, article *')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.right <= width + 1 || scrolls(el)) continue;
    if (getComputedStyle(el).visibility === 'hidden') continue;
    wide.push(`${el.tagName.toLowerCase()}.${el.className}`.slice(0, 60) + ` (right edge ${Math.round(r.right)} px)`);
  }
  const code = [];
  for (const pre of document.querySelectorAll('div.highlight pre, div.cell_output pre')) {
    if (pre.scrollWidth <= pre.clientWidth + 1) continue;
    const x = getComputedStyle(pre).overflowX;
    if (x !== 'auto' && x !== 'scroll' && !scrolls(pre)) code.push(pre.textContent.slice(0, 40));
  }
  return {pageWidth: document.documentElement.scrollWidth, width, wide: wide.slice(0, 10), code};
}"""

SOLUTIONS_JS = """() => [...document.querySelectorAll('div.solution.dropdown, details.solution')].map(
  el => ({hidden: el.matches('details') ? !el.open : el.classList.contains('toggle-hidden'),
          label: (el.querySelector('.admonition-title, summary') || el).textContent.trim().slice(0, 60)}))"""


def test_pages_load_without_javascript_errors_and_images_decode(browser, pages, built_site):
    problems, images = [], 0
    for path in pages:
        page, errors = _open(browser, path, DESKTOP)
        count, bad = page.evaluate(IMAGES_JS)
        images += count
        problems += [f"{_name(built_site, path)}: image does not decode: {src}" for src in bad]
        page.wait_for_timeout(200)  # late script errors
        problems += [f"{_name(built_site, path)}: {e}" for e in errors]
        page.context.close()
    assert images > 0
    assert not problems, "\n".join(problems)


def test_solution_dropdowns_open(browser, pages, built_site):
    chapters = [p for p in pages if p.parent.name == "notebooks"]
    assert chapters
    problems, opened = [], 0
    for path in chapters:
        page, errors = _open(browser, path, DESKTOP)
        solutions = page.evaluate(SOLUTIONS_JS)
        if not solutions:
            problems.append(f"{_name(built_site, path)}: no solution dropdowns")
        for k, sol in enumerate(solutions):
            if not sol["hidden"]:
                problems.append(f"{_name(built_site, path)}: solution {sol['label']!r} is not folded")
                continue
            box = page.locator("div.solution.dropdown, details.solution").nth(k)
            box.locator("button.toggle-button, summary").first.click()  # the chevron a reader clicks
            body = box.locator(":scope > :not(.admonition-title):not(summary)").first
            try:
                body.wait_for(state="visible", timeout=3000)
                opened += 1
            except Exception:  # Playwright's TimeoutError
                problems.append(f"{_name(built_site, path)}: solution {sol['label']!r} does not open")
        problems += [f"{_name(built_site, path)}: {e}" for e in errors]
        page.context.close()
    assert opened > 0
    assert not problems, "\n".join(problems)


def test_text_fits_a_phone_screen(browser, pages, built_site):
    """At 390 px nothing but code cells, tables and formulas (each scrolling in its own box) may be
    wider than the screen, and code that is wider scrolls."""
    problems = []
    for path in pages:
        page, _ = _open(browser, path, PHONE)
        found = page.evaluate(OVERFLOW_JS)
        name = _name(built_site, path)
        if found["pageWidth"] > found["width"] + 1:
            problems.append(f"{name}: the page is {found['pageWidth']} px wide on a {found['width']} px "
                            f"screen; too wide: {found['wide']}")
        elif found["wide"]:
            problems.append(f"{name}: elements wider than the screen: {found['wide']}")
        problems += [f"{name}: code does not scroll: {c!r}" for c in found["code"]]
        page.context.close()
    assert not problems, "\n".join(problems)
