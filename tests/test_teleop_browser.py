"""The teleoperation panel in a real browser: a Jupyter server on 127.0.0.1 runs a notebook with
the panel, headless Chromium (Playwright for Python driving Debian's ``chromium``) moves the pointer
over the scene, presses keys and buttons, and the test reads back what the panel drew and saved.

What must hold: two seconds of pointer movement while recording take about 20 steps (10 Hz in real
time); the pusher, found by its blue pixels in the picture the browser shows, moves towards the
pointer; the arrow keys move it the way they point; keep and save write a file that
:func:`dplearn.data.load_demos` reads and whose episode replays exactly. The test also measures the
latency from a pointer move to the new picture (printed with ``-s``; tests never assert timings
beyond a generous sanity bound).

It skips, saying why, without Playwright, a Chromium binary (``apt-get install chromium``, or set
``DPLEARN_CHROMIUM``), JupyterLab or ``ipyevents`` (``pip install -e '.[dev]'`` brings all but the
browser). Marked ``browser``: ``pytest -m "not browser"`` leaves it out.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

from _browser import playwright_and_chromium

pytestmark = pytest.mark.browser

SIZE = 320  # the scene's size on screen, pixels
SEED = 7
NOTEBOOK = {
    "cells": [{
        "cell_type": "code", "execution_count": None, "id": "panel", "metadata": {}, "outputs": [],
        "source": ["from dplearn.teleop import TeleopSession, teleop_widget\n",
                   f"panel = teleop_widget(TeleopSession(seed={SEED}), size={SIZE})\n",
                   "panel"],
    }],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
    "nbformat": 4, "nbformat_minor": 5,
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 serving a folder with the panel's notebook: (url, folder)."""
    pytest.importorskip("jupyterlab", reason="JupyterLab is not installed: pip install -e '.[dev]'")
    pytest.importorskip("ipyevents", reason="ipyevents is not installed: pip install -e '.[dev]'")
    root = tmp_path_factory.mktemp("teleop_lab")
    (root / "teleop.ipynb").write_text(json.dumps(NOTEBOOK))
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(root / ".runtime"),
               JUPYTER_CONFIG_DIR=str(root / ".config"), MPLBACKEND="Agg",
               JUPYTERLAB_SETTINGS_DIR=str(root / ".settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(root / ".workspaces"))
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.port={port}",
         "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", "--allow-root",
         "--LabApp.extension_manager=readonly",
         f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the Jupyter server did not start:\n"
                                + server.stderr.read().decode(errors="replace")[-3000:]
                                if server.poll() is not None else "the Jupyter server did not "
                                "answer within 30 s")
                time.sleep(0.3)
        yield f"{base}/lab/tree/teleop.ipynb?token={token}", root
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def page(jupyter):
    sync_api, exe = playwright_and_chromium("the panel")
    url, _ = jupyter
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.route("**/*", lambda route: route.continue_()
                          if route.request.url.startswith(("http://127.0.0.1", "data:", "blob:"))
                          else route.abort())
            pg = context.new_page()
            pg.set_default_timeout(30_000)
            pg.goto(url)
            _run_the_cell(pg)
            pg.wait_for_function("document.querySelector('.jp-OutputArea-output .widget-html')"
                                 " && /step 0\\//.test(document.body.innerText)")
            yield pg
        finally:
            browser.close()


def _run_the_cell(page, timeout: float = 90.0) -> None:
    """Run the notebook's cell once its kernel is ready: Shift+Enter, again if the press came
    before the kernel could take it, until the panel's picture shows. A JupyterLab dialog that
    opens meanwhile (on a busy machine, e.g. about the kernel's start) is answered with its default
    button and named in the failure message if the panel never shows."""
    page.locator(".jp-Notebook .jp-Cell .cm-content").first.wait_for()
    deadline = time.monotonic() + timeout
    dialogs: list[str] = []
    while time.monotonic() < deadline:
        dialog = page.locator(".jp-Dialog")
        if dialog.count():
            text = " ".join(dialog.first.inner_text().split())[:200]
            dialogs += [text] if text not in dialogs else []
            try:
                page.locator(".jp-Dialog .jp-mod-accept").first.click(timeout=5_000)
            except Exception:  # Playwright's TimeoutError: a dialog without a default button
                page.keyboard.press("Escape")
            continue
        prompt = page.locator(".jp-Notebook .jp-InputPrompt").first.inner_text()
        if "*" not in prompt:  # not queued or running: (re)run it
            try:
                page.locator(".jp-Notebook .jp-Cell .cm-content").first.click(timeout=5_000)
            except Exception:  # Playwright's TimeoutError: something covers the cell; look again
                continue
            page.keyboard.press("Shift+Enter")
        try:
            page.locator(".jp-OutputArea-output img").first.wait_for(timeout=5_000)
            return
        except Exception:  # Playwright's TimeoutError: not there yet
            pass
    pytest.fail(f"the panel did not show within {timeout:.0f} s; prompt "
                f"{page.locator('.jp-Notebook .jp-InputPrompt').first.inner_text()!r}; "
                f"dialogs answered: {dialogs or 'none'}")


PIXELS_JS = """(img) => {
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const ctx = c.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  let s = '';
  for (let i = 0; i < d.length; i += 8192) s += String.fromCharCode(...d.subarray(i, i + 8192));
  return [c.width, c.height, btoa(s)];
}"""


def _picture(page) -> np.ndarray:
    """The scene as the browser shows it, (height, width, 3) uint8 (read back through a canvas)."""
    width, height, data = page.locator(".jp-OutputArea-output img").first.evaluate(PIXELS_JS)
    rgba = np.frombuffer(base64.b64decode(data), dtype=np.uint8).reshape(height, width, 4)
    return rgba[..., :3]


def _pusher(page) -> np.ndarray:
    """(x, y) centre of the pusher's blue pixels in the picture, in workspace units."""
    image = _picture(page)
    rows, cols = np.nonzero(np.all(np.abs(image.astype(int) - [78, 126, 255]) <= 12, axis=-1))
    assert rows.size > 20, "no pusher in the browser's picture"
    return np.array([cols.mean() + 0.5, rows.mean() + 0.5]) * 512 / image.shape[0]


def _status(page) -> str:
    return page.locator(".jp-OutputArea-output .widget-html").last.inner_text()


def _steps(page) -> int:
    import re

    return int(re.search(r"step (\d+)/", _status(page))[1])


def test_mouse_follow_keys_keep_and_save_in_a_browser(page, jupyter):
    from dplearn.data import load_demos
    from dplearn.exercises import ch08

    _, root = jupyter
    scene = page.locator(".jp-OutputArea-output img").first
    box = scene.bounding_box()
    assert abs(box["width"] - SIZE) < 2 and abs(box["height"] - SIZE) < 2

    def screen(xy):  # workspace units -> page pixels
        return box["x"] + xy[0] / 512 * box["width"], box["y"] + xy[1] / 512 * box["height"]

    start = _pusher(page)
    goal = start + np.array([110.0, 80.0]) * np.sign(256 - start)  # towards the middle
    # latency from a pointer move to the new picture (the red cross follows, not recording)
    latencies = []
    for k in range(10):
        old = scene.get_attribute("src")
        page.mouse.move(*screen(start + [8.0 * (k % 2) - 4, 0]))
        t0 = time.perf_counter()
        page.wait_for_function("(old) => document.querySelector('.jp-OutputArea-output img')"
                               ".getAttribute('src') !== old", arg=old, polling="raf")
        latencies.append(time.perf_counter() - t0)
        page.wait_for_timeout(60)
    assert _steps(page) == 0  # hovering alone records nothing
    # click (start recording), glide to the goal in 1.4 s, hold still, click again: ~2 s
    page.mouse.move(*screen(start))
    t_start = time.perf_counter()
    page.mouse.click(*screen(start))
    while (t := time.perf_counter() - t_start) < 2.0:
        page.mouse.move(*screen(start + min(t / 1.4, 1.0) * (goal - start)))
        page.wait_for_timeout(25)
    page.mouse.click(*screen(goal))
    elapsed = time.perf_counter() - t_start
    page.wait_for_timeout(300)
    recorded = _steps(page)
    after = _pusher(page)
    print(f"\nmouse-follow: {recorded} steps in {elapsed:.2f} s = {recorded / elapsed:.1f} "
          f"steps/s; pointer move -> picture: median {1000 * np.median(latencies):.0f} ms "
          f"(max {1000 * max(latencies):.0f} ms); pusher {start.round()} -> {after.round()}, "
          f"pointer at {goal.round()}")
    assert 0.75 * 10 * elapsed <= recorded <= 1.1 * 10 * elapsed + 1, (recorded, elapsed)
    assert np.linalg.norm(after - goal) < 0.4 * np.linalg.norm(start - goal)
    assert page.wait_for_timeout(400) is None and _steps(page) == recorded  # stopped
    assert np.median(latencies) < 2.0  # sanity only: measured, printed above
    # arrow keys (pointer over the scene gives it the keys): right 3, down 3, wait 4
    page.mouse.move(*screen(after))
    before = _pusher(page)
    for key in ["ArrowRight"] * 3 + ["ArrowDown"] * 3 + ["w"] * 4:
        page.keyboard.press(key)
        page.wait_for_timeout(120)
    page.wait_for_function(f"/step {recorded + 10}\\//.test(document.body.innerText)")
    recorded += 10
    moved = _pusher(page) - before
    assert moved[0] > 25 and moved[1] > 25, moved  # right and down in the picture
    # a held pad button repeats at 10 steps per second
    steps = _steps(page)
    left = page.get_by_role("button", name="←", exact=True)
    left.hover()
    t_hold = time.perf_counter()
    page.mouse.down()
    page.wait_for_timeout(1000)
    page.mouse.up()
    held = time.perf_counter() - t_hold
    page.wait_for_timeout(300)
    repeats = _steps(page) - steps
    print(f"held button: {repeats} steps in {held:.2f} s")
    assert 0.7 * 10 * held <= repeats <= 1.1 * 10 * held + 1, (repeats, held)
    recorded += repeats
    # keep (k, the pointer back over the scene) and save (button); the status shows the
    # absolute path written
    page.mouse.move(*screen(after))
    page.keyboard.press("k")
    page.wait_for_function("/kept 1/.test(document.body.innerText)")
    page.get_by_role("button", name="save", exact=True).click()
    page.wait_for_function("/saved 1 episode/.test(document.body.innerText)")
    status = _status(page)
    path = root / "my_pusht_demos.npz"
    assert str(path) in status, status
    demos = load_demos(path)
    assert demos.n_episodes == 1 and demos.n_steps == recorded
    assert ch08.check_own_demos(path)  # the shipped format, and it replays exactly
    # a second save never overwrites: the next free name
    page.get_by_role("button", name="save", exact=True).click()
    page.wait_for_function("/my_pusht_demos-1.npz/.test(document.body.innerText)")
    assert load_demos(root / "my_pusht_demos-1.npz").n_steps == demos.n_steps
    assert path.read_bytes() and load_demos(path).n_steps == demos.n_steps


@pytest.mark.book
def test_the_website_shows_a_picture_of_the_panel_not_a_dead_widget(built_site):
    """On the site no output is a widget view (it would look live and do nothing); chapter 5's
    panel cell shows its picture and the link to run the chapter instead."""
    import re

    page = built_site / "notebooks" / "05_pusht.html"
    if not page.is_file():
        pytest.skip("chapter 5 is not in this build (DPLEARN_NOTEBOOKS)")
    dead = [p.name for p in built_site.rglob("*.html")
            if "application/vnd.jupyter.widget-view+json" in p.read_text(errors="replace")]
    assert not dead, f"widget views on the site: {dead}"
    text = page.read_text()
    static = re.search(r'<div class="dplearn-teleop-static".*?</div></div>', text, re.S)
    assert static, "chapter 5 lacks the teleoperation panel's picture"
    assert '<img src="data:image/png;base64,' in static[0]
    assert "run this chapter in Jupyter or Colab to drive it" in static[0]
    assert "colab.research.google.com/github/dplearn/dplearn/blob/main/colab/notebooks/05_pusht" \
        in static[0]
