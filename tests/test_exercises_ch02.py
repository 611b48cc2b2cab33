"""Chapter 2 checkers: reference solutions pass, typical mistakes fail with a hint, stubs are 'not attempted'."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dplearn.exercises import ch02


def is_not_attempted(result):
    return (not result.passed) and "Not attempted" in result.message


# ----- alphas_cumprod -------------------------------------------------------------------------
def test_alphas_cumprod_reference_passes():
    assert ch02.check_alphas_cumprod(lambda b: np.cumprod(1 - b))
    assert ch02.check_alphas_cumprod(lambda b: np.exp(np.cumsum(np.log1p(-b))))  # another route


@pytest.mark.parametrize("wrong, hint_word", [
    (lambda b: np.cumprod(b), "α_t = 1 − β_t"),
    (lambda b: 1 - np.cumsum(b), "approximation"),
    (lambda b: 1 - b, "cumulative"),
    (lambda b: np.concatenate([[1.0], np.cumprod(1 - b)[:-1]]), "ᾱ_{t−1}"),
    (lambda b: np.concatenate([[1.0], np.cumprod(1 - b)]), "ᾱ_0"),
    (lambda b: np.sqrt(np.cumprod(1 - b)), "√ᾱ_t"),
])
def test_alphas_cumprod_mistakes_fail_with_hint(wrong, hint_word):
    result = ch02.check_alphas_cumprod(wrong)
    assert not result.passed and result.hint and hint_word in result.hint


def test_alphas_cumprod_stub_and_crash():
    def stub(betas):
        ...  # YOUR CODE HERE

    assert is_not_attempted(ch02.check_alphas_cumprod(stub))

    def crash(betas):
        raise RuntimeError("boom")

    result = ch02.check_alphas_cumprod(crash)
    assert not result.passed and "RuntimeError" in result.message


# ----- q_sample -------------------------------------------------------------------------------
def reference_q_sample(x0, t, noise, alphas_cumprod):
    a = alphas_cumprod[t].reshape(-1, *([1] * (x0.ndim - 1)))
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def test_q_sample_reference_passes():
    assert ch02.check_q_sample(reference_q_sample)


def _shaped(t, x0, alphas_cumprod):
    return alphas_cumprod[t].reshape(-1, *([1] * (x0.ndim - 1)))


@pytest.mark.parametrize("wrong, hint_word", [
    (lambda x0, t, n, ac: _shaped(t, x0, ac) * x0 + (1 - _shaped(t, x0, ac)) * n, "standard deviations"),
    (lambda x0, t, n, ac: _shaped(t, x0, ac).sqrt() * x0 + (1 - _shaped(t, x0, ac)) * n, "variance"),
    (lambda x0, t, n, ac: _shaped(t, x0, ac).sqrt() * (x0 - n) + n, "1 − √ᾱ_t"),
    (lambda x0, t, n, ac: reference_q_sample(x0, torch.clamp(t + 1, max=ac.shape[0] - 1), n, ac), "alphas_cumprod[t]"),
    (lambda x0, t, n, ac: reference_q_sample(x0, t, n, ac)[..., :1], "broadcast"),
])
def test_q_sample_mistakes_fail_with_hint(wrong, hint_word):
    result = ch02.check_q_sample(wrong)
    assert not result.passed and result.hint and hint_word in result.hint


def test_q_sample_without_broadcasting_reports_the_error():
    result = ch02.check_q_sample(lambda x0, t, n, ac: ac[t].sqrt() * x0 + (1 - ac[t]).sqrt() * n)
    assert not result.passed  # (B,) against (B, 2) raises or broadcasts wrongly: either way a failure


def test_q_sample_stub():
    assert is_not_attempted(ch02.check_q_sample(lambda x0, t, noise, alphas_cumprod: None))


# ----- KL to the prior ------------------------------------------------------------------------
def reference_kl(x0, abar):
    """KL(N(√ᾱ x0, (1−ᾱ) I) ‖ N(0, I)) written out independently of the library."""
    return float(np.sum(0.5 * ((1 - abar) + abar * x0**2 - 1 - math.log(1 - abar))))


def test_kl_to_prior_reference_passes():
    assert ch02.check_kl_to_prior(reference_kl)


@pytest.mark.parametrize("wrong, hint_word", [
    (lambda x0, a: float(np.sum(0.5 * (math.log(1 - a) + (1 + a * x0**2) / (1 - a) - 1))), "KL(N(0, I)"),
    (lambda x0, a: float(np.sum(0.5 * ((1 - a) - 1 - math.log(1 - a)) + 0 * x0)), "mean"),
    (lambda x0, a: float(np.sum(0.5 * ((1 - a) + a**2 * x0**2 - 1 - math.log(1 - a)))), "√ᾱ x_0"),
])
def test_kl_to_prior_mistakes_fail_with_hint(wrong, hint_word):
    result = ch02.check_kl_to_prior(wrong)
    assert not result.passed and result.hint and hint_word in result.hint


def test_kl_to_prior_wrong_shape_and_stub():
    result = ch02.check_kl_to_prior(lambda x0, a: 0.5 * ((1 - a) + a * x0**2 - 1 - math.log(1 - a)))
    assert not result.passed and "shape" in result.message
    assert is_not_attempted(ch02.check_kl_to_prior(lambda x0, a: ...))


# ----- SNR = 1 --------------------------------------------------------------------------------
def test_snr_one_against_a_root_finder():
    """The exact fraction, found numerically by bisection on SNR(u) - 1 (not the closed form)."""
    s = 0.008

    def snr(u):
        f = lambda v: math.cos((v + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
        abar = f(u) / f(0.0)
        return abar / (1 - abar)

    lo, hi = 0.01, 0.99
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if snr(mid) > 1 else (lo, mid)
    assert ch02.check_snr_one(lo)
    assert ch02.check_snr_one(round(lo, 3))
    assert not ch02.check_snr_one(lo + 0.01)


def test_snr_one_mistakes():
    half = ch02.check_snr_one(0.5)
    assert not half.passed and "offset" in half.message
    steps = ch02.check_snr_one(496)
    assert not steps.passed and "fraction" in steps.message
    assert not ch02.check_snr_one("half").passed
    assert is_not_attempted(ch02.check_snr_one(...))


# ----- why alphas_cumprod_T ~ 0 ---------------------------------------------------------------
def test_why_choice():
    assert ch02.check_why_alphas_cumprod_vanishes("b")
    assert ch02.check_why_alphas_cumprod_vanishes(" (B) ")
    for wrong in "acd":
        result = ch02.check_why_alphas_cumprod_vanishes(wrong)
        assert not result.passed and result.hint
    assert not ch02.check_why_alphas_cumprod_vanishes("e").passed
    assert not ch02.check_why_alphas_cumprod_vanishes(2).passed
    assert is_not_attempted(ch02.check_why_alphas_cumprod_vanishes(...))


def test_messages_never_reveal_the_numeric_answer():
    answer = f"{ch02._snr_one_fraction():.3f}"
    for value in (0.5, 0.3, 496, ...):
        result = ch02.check_snr_one(value)
        assert answer not in str(result)
