"""The website builds with warnings as errors, from the notebooks the session executed (the
``built_site`` fixture of conftest.py), and each chapter page shows math, figures, exercises with
hidden solutions and the Colab button."""

from __future__ import annotations

import re

import pytest

from conftest import NOTEBOOKS

pytestmark = pytest.mark.book


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
