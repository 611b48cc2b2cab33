"""Budget tiers: the environment picks the tier, and bad values are refused with a clear error."""

from __future__ import annotations

import pytest

import dplearn
from dplearn.budget import SETTINGS, TIERS


@pytest.mark.parametrize("tier", TIERS)
def test_env_var_selects_tier(monkeypatch, tier):
    monkeypatch.setenv("DPLEARN_BUDGET", tier)
    assert dplearn.budget().tier == tier


def test_default_is_book_without_cuda(monkeypatch):
    import torch

    monkeypatch.delenv("DPLEARN_BUDGET", raising=False)
    assert dplearn.budget().tier == ("full" if torch.cuda.is_available() else "book")


def test_bad_tier_names_the_variable(monkeypatch):
    monkeypatch.setenv("DPLEARN_BUDGET", "huge")
    with pytest.raises(ValueError, match="DPLEARN_BUDGET"):
        dplearn.budget()


def test_unknown_chapter_is_refused():
    with pytest.raises(ValueError, match="chapter"):
        dplearn.budget("99_nothing", tier="quick")


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool)


@pytest.mark.parametrize("chapter", sorted(SETTINGS))
def test_every_setting_has_three_tiers(chapter):
    for name, values in SETTINGS[chapter].items():
        assert isinstance(values, tuple) and len(values) == 3, f"{chapter}.{name}"


@pytest.mark.parametrize("chapter", sorted(SETTINGS))
def test_costs_grow_from_quick_to_book_to_full(chapter):
    """DESIGN.md's tiers as read through ``budget()``: every count a chapter reads is no larger in
    ``quick`` than in ``book``, nor in ``book`` than in ``full``, and ``quick`` really is cheaper
    (some count is smaller than in ``book``). Swapped tiers, or a tier read from the wrong column,
    break this."""
    quick, book, full = (dplearn.budget(chapter, tier=t) for t in ("quick", "book", "full"))
    assert (quick.tier, book.tier, full.tier) == ("quick", "book", "full")
    counts = [name for name in quick if _is_count(quick[name])]
    assert counts, f"{chapter} has no count settings"
    for name in counts:
        assert quick[name] <= book[name] <= full[name], f"{chapter}.{name}: quick <= book <= full"
    assert any(quick[name] < book[name] for name in counts), f"{chapter}: quick costs as much as book"


def _notebook_settings() -> dict[str, tuple[str, set[str]]]:
    """For each chapter notebook: the chapter it asks ``budget()`` for and the settings it reads."""
    import json
    import re
    from pathlib import Path

    found = {}
    for path in sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb")):
        code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                         if c["cell_type"] == "code")
        calls = re.findall(r'(\w+)\s*=\s*(?:dplearn\.)?budget\(\s*"([^"]+)"', code)
        if calls:
            (var, chapter), = calls
            found[path.stem] = (chapter, set(re.findall(rf"\b{var}\.(\w+)", code)) - {"tier", "chapter"})
    return found


def test_each_notebook_reads_its_own_settings_and_every_setting_is_read():
    """A notebook asks for its own chapter, every setting it reads exists (else it fails only when
    run), and every setting is read by its chapter (no dead entries)."""
    found = _notebook_settings()
    assert found, "no notebook reads a budget"
    for stem, (chapter, used) in found.items():
        assert chapter == stem, f"{stem} reads the budget of {chapter}"
        assert used <= set(SETTINGS[chapter]), f"{stem} reads unknown settings {used - set(SETTINGS[chapter])}"
        assert set(SETTINGS[chapter]) <= used, f"{chapter} settings no notebook reads: {set(SETTINGS[chapter]) - used}"


def test_book_and_full_evaluate_on_the_benchmark_protocol():
    """DESIGN.md: scores on Push-T are the benchmark's, 50 test starts of up to 300 steps, in the
    book and full tiers (the quick tier only checks that the code runs)."""
    protocol = {"n_eval_episodes": 50, "pusht_episodes": 50, "test_episodes": 50, "episode_steps": 300}
    seen = set()
    for chapter, settings in SETTINGS.items():
        for name, value in protocol.items():
            if name in settings:
                seen.add(name)
                assert settings[name][1:] == (value, value), f"{chapter}.{name}"
    assert seen == set(protocol)


def test_missing_setting_names_the_chapter():
    b = dplearn.budget("01_kl_divergence", tier="quick")
    with pytest.raises(AttributeError, match="01_kl_divergence"):
        _ = b.no_such_setting
