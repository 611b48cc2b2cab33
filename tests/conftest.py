"""Shared fixtures: the repository root, chapter notebooks executed once per session, and the
website built once per session from them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# DPLEARN_NOTEBOOKS=01,03 limits the notebook and book tests to chapters whose names start so
if os.environ.get("DPLEARN_NOTEBOOKS"):
    _wanted = tuple(x.strip() for x in os.environ["DPLEARN_NOTEBOOKS"].split(",") if x.strip())
    NOTEBOOKS = [p for p in NOTEBOOKS if p.stem.startswith(_wanted)]


@dataclass
class Execution:
    """One notebook run top to bottom: where the executed copy is, how long it took, what failed."""

    source: Path
    executed: Path
    seconds: float
    error: str | None


class NotebookRunner:
    """Executes each chapter notebook at most once per test session with ``DPLEARN_BUDGET=quick``."""

    def __init__(self, out_dir: Path, timeout: int = 600):
        self.out_dir = out_dir
        self.timeout = timeout
        self._done: dict[str, Execution] = {}

    def run(self, path: Path) -> Execution:
        if path.name in self._done:
            return self._done[path.name]
        import nbformat
        from nbclient import NotebookClient

        nb = nbformat.read(path, as_version=4)
        env_before = dict(os.environ)
        os.environ["DPLEARN_BUDGET"] = "quick"
        os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
        os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
        client = NotebookClient(
            nb, timeout=self.timeout, kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
        )
        start = time.perf_counter()
        error = None
        try:
            client.execute()
        except Exception as exc:  # CellExecutionError carries the traceback text
            error = f"{type(exc).__name__}: {exc}"
        finally:
            os.environ.clear()
            os.environ.update(env_before)
        seconds = time.perf_counter() - start
        executed = self.out_dir / path.name
        nbformat.write(nb, executed)
        result = Execution(path, executed, seconds, error)
        self._done[path.name] = result
        return result


@pytest.fixture(scope="session")
def notebook_runner(tmp_path_factory) -> NotebookRunner:
    return NotebookRunner(tmp_path_factory.mktemp("executed_notebooks"))


@pytest.fixture(scope="session")
def built_site(notebook_runner, tmp_path_factory) -> Path:
    """The book built into a temporary folder from the quick-budget executions; its _build/html."""
    import yaml

    failed = [r.source.name for r in map(notebook_runner.run, NOTEBOOKS) if r.error]
    if failed:
        pytest.fail(f"cannot build the book: notebooks failed to execute: {failed}")
    site = tmp_path_factory.mktemp("book")
    for folder in ("book", "_static", "_ext"):  # pages, the site's CSS, its Sphinx extension
        if (ROOT / folder).is_dir():
            shutil.copytree(ROOT / folder, site / folder, ignore=shutil.ignore_patterns("__pycache__"))
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    present = {f"notebooks/{p.stem}" for p in NOTEBOOKS}
    for part in toc["parts"]:  # keep only the chapters under test (DPLEARN_NOTEBOOKS may select some)
        part["chapters"] = [c for c in part["chapters"]
                            if not c["file"].startswith("notebooks/") or c["file"] in present]
    toc["parts"] = [p for p in toc["parts"] if p["chapters"]]
    chapters = {p.stem[:2] for p in NOTEBOOKS}
    for page in (site / "book").rglob("*.md"):  # references into chapters left out: plain text
        text = page.read_text()
        kept = re.sub(r"\{(?:ref|numref)\}`(?:[^`<]*<)?((?:ex|sec)-(\d\d)-[^`>]*)>?`",
                      lambda m: m[0] if m[2] in chapters else f"`{m[1]}`", text)
        if kept != text:
            page.write_text(kept)
    (site / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    (site / "notebooks").mkdir()
    for path in NOTEBOOKS:
        shutil.copy(notebook_runner.run(path).executed, site / "notebooks" / path.name)
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "off"  # already executed above, with the quick budget
    (site / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "jupyter-book"), "build", str(site), "--builder", "html",
         "-W", "--keep-going"],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, f"jupyter-book build failed (warnings are errors):\n{proc.stdout[-6000:]}\n{proc.stderr[-4000:]}"
    return site / "_build" / "html"


@pytest.fixture
def one_torch_thread():
    """Small convolutions on a busy 2-core machine: one torch thread is fastest (and avoids
    contention); the previous setting is restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
