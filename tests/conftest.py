"""Shared fixtures: the repository root, and chapter notebooks executed once per session."""

from __future__ import annotations

import os
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
