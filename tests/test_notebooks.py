"""Every chapter notebook runs top to bottom in a fresh kernel (``DPLEARN_BUDGET=quick``),
is committed without outputs, and installs dplearn on Colab from the book's own repository."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from conftest import NOTEBOOKS, ROOT

pytestmark = pytest.mark.notebooks


def test_there_are_chapters():
    assert NOTEBOOKS, "no chapter notebooks found in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, notebook_runner):
    result = notebook_runner.run(path)
    assert result.error is None, f"{path.name} failed after {result.seconds:.0f}s:\n{result.error}"
    # the quick tier promises about a minute per chapter on 2 CPU cores; report, don't assert speed
    print(f"{path.name}: {result.seconds:.1f}s")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: code cells {dirty} carry outputs; strip them before committing"


def _first_code_cell(path) -> str:
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            return "".join(cell["source"])
    raise AssertionError(f"{path.name} has no code cell")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_colab_install_cell_matches_config(path):
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    url = config["repository"]["url"].rstrip("/")
    source = _first_code_cell(path)
    assert "import dplearn" in source and "except ImportError" in source, (
        f"{path.name}: the first code cell must install dplearn when it is not importable"
    )
    urls = re.findall(r"git\+(https://[^\s\"'@]+)", source)
    assert urls, f"{path.name}: the first code cell has no `pip install git+URL`"
    assert all(u.rstrip("/").removesuffix(".git") == url for u in urls), (
        f"{path.name}: installs from {urls}, but _config.yml's repository is {url}"
    )
    assert re.search(r"dplearn\.budget\(", source), f"{path.name}: the first code cell must pick the budget"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_in_toc(path):
    toc = (ROOT / "_toc.yml").read_text()
    assert f"notebooks/{path.stem}" in toc, f"{path.name} is not listed in _toc.yml"
