"""The website builds with warnings as errors, from the notebooks the session executed, and each
chapter page shows math, figures, exercises with hidden solutions and the Colab button."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import NOTEBOOKS, ROOT

pytestmark = pytest.mark.book


@pytest.fixture(scope="session")
def built_site(notebook_runner, tmp_path_factory) -> Path:
    failed = [r.source.name for r in map(notebook_runner.run, NOTEBOOKS) if r.error]
    if failed:
        pytest.fail(f"cannot build the book: notebooks failed to execute: {failed}")
    site = tmp_path_factory.mktemp("book")
    shutil.copytree(ROOT / "book", site / "book")
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    present = {f"notebooks/{p.stem}" for p in NOTEBOOKS}
    for part in toc["parts"]:  # keep only the chapters under test (DPLEARN_NOTEBOOKS may select some)
        part["chapters"] = [c for c in part["chapters"]
                            if not c["file"].startswith("notebooks/") or c["file"] in present]
    toc["parts"] = [p for p in toc["parts"] if p["chapters"]]
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


def test_front_and_back_matter_built(built_site):
    for page in ["book/intro", "book/how_to_use", "book/notation", "book/instructors", "book/bibliography"]:
        assert (built_site / f"{page}.html").exists(), f"{page}.html missing from the site"
    bib = (built_site / "book/bibliography.html").read_text()
    assert "denoising diffusion probabilistic models" in bib.lower()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_chapter_page(built_site, path):
    page = (built_site / "notebooks" / f"{path.stem}.html").read_text()
    figures = re.findall(r'<img[^>]+src="[^"]*_images/[^"]+"', page)
    animations = page.count("animation") if "anim-state" in page else 0
    assert figures or animations, f"{path.stem}: no figures on the page"
    assert "math notranslate" in page, f"{path.stem}: no rendered math"
    assert 'class="exercise' in page, f"{path.stem}: no exercise boxes"
    assert re.search(r'class="solution[^"]*dropdown', page), f"{path.stem}: solutions are not hidden dropdowns"
    assert "colab.research.google.com/github/" in page, f"{path.stem}: no Colab launch button"
    assert "Traceback (most recent call last)" not in page, f"{path.stem}: a cell output shows a traceback"
