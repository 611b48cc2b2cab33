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


@pytest.mark.parametrize("chapter", sorted(SETTINGS))
def test_every_setting_has_three_tiers_and_quick_is_cheapest(chapter):
    for name, values in SETTINGS[chapter].items():
        assert isinstance(values, tuple) and len(values) == 3, f"{chapter}.{name}"
        quick, book, full = values
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            assert quick <= book <= full, f"{chapter}.{name}: integer settings are costs: quick <= book <= full"
    b = dplearn.budget(chapter, tier="quick")
    for name in SETTINGS[chapter]:
        assert getattr(b, name) == SETTINGS[chapter][name][0]


def test_missing_setting_names_the_chapter():
    b = dplearn.budget("01_kl_divergence", tier="quick")
    with pytest.raises(AttributeError, match="01_kl_divergence"):
        _ = b.no_such_setting
