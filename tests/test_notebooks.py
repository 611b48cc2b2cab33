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


CODE_LINE_LIMIT = 88  # what a code cell shows on the website's page without scrolling


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_code_lines_fit_the_page(path):
    nb = json.loads(path.read_text())
    long = [f"cell {i}: {len(line)} characters: {line.strip()[:60]}..."
            for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
            for line in "".join(c["source"]).split("\n") if len(line) > CODE_LINE_LIMIT]
    assert not long, (f"{path.name}: code lines longer than {CODE_LINE_LIMIT} characters "
                      "(`ruff format --line-length 88` wraps code; split long strings and "
                      "comments by hand):\n" + "\n".join(long))


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


def test_colab_launch_settings_match_repository():
    """The Colab button, the README's Colab link and the site's address all follow _config.yml's
    repository, and its branch is the one the book workflow publishes from."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = config["repository"]
    match = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+)", repo["url"].rstrip("/"))
    assert match, f"repository.url is not a GitHub repository: {repo['url']}"
    owner, name = match.groups()
    book_workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    on = book_workflow.get("on", book_workflow.get(True))  # YAML 1.1 reads the key `on` as True
    assert on["push"]["branches"] == [repo["branch"]], "the site is published from another branch"
    assert config["html"]["baseurl"] == f"https://{owner.lower()}.github.io/{name}/"

    colab = config["launch_buttons"]["colab_url"].rstrip("/")
    assert colab == "https://colab.research.google.com"
    book_dir = repo.get("path_to_book", "").strip("/")  # the launch button opens <book_dir>/notebooks/
    base = f"{colab}/github/{owner}/{name}/blob/{repo['branch']}/"
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"https://colab\.research\.google\.com/github/[^\s`)>\]]+", readme)
    assert links, "the README gives no Colab link"
    pages = base + (f"{book_dir}/" if book_dir else "") + "notebooks/"
    for link in links:
        assert link.startswith(pages), f"README's Colab link {link} is not under {pages}"
        assert (ROOT / link.removeprefix(base)).is_file(), f"README's Colab link {link} names no notebook"


def test_numpy_2_is_required_where_its_api_is_used():
    """np.trapezoid is NumPy 2's (np.trapz is gone from NumPy 2.4): where the book uses it,
    pyproject.toml and environment.yml require numpy>=2 (Colab preinstalls NumPy 2)."""
    sources = [p.read_text() for p in NOTEBOOKS] + [p.read_text() for p in (ROOT / "src").rglob("*.py")]
    if not any("np.trapezoid" in text for text in sources):
        pytest.skip("no NumPy-2-only call in the book")
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'"numpy>=2[",.]', pyproject), "pyproject.toml must require numpy>=2"
    assert re.search(r"-\s*numpy>=2\b", (ROOT / "environment.yml").read_text())
