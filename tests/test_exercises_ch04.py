"""Chapter 4 checkers: reference solutions pass, typical mistakes fail with a hint, stubs are
reported as not attempted."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dplearn.diffusion import DDIMSampler, NoiseSchedule
from dplearn.exercises import ch04


def stub(*args):
    ...  # YOUR CODE HERE


# --------------------------------------------------------------------------- DDIM step
def ddim_correct(x_t, eps, alpha_bar_t, alpha_bar_prev):
    x0_hat = (x_t - np.sqrt(1 - alpha_bar_t) * eps) / np.sqrt(alpha_bar_t)
    return np.sqrt(alpha_bar_prev) * x0_hat + np.sqrt(1 - alpha_bar_prev) * eps


def ddim_via_library(x_t, eps, alpha_bar_t, alpha_bar_prev):
    # an independent route: the library sampler on a two-step schedule with exactly these ᾱ
    betas = [1 - alpha_bar_prev, 1 - alpha_bar_t / alpha_bar_prev] if alpha_bar_prev < 1 else [1 - alpha_bar_t]
    schedule = NoiseSchedule(betas, dtype=torch.float64)
    sampler = DDIMSampler(schedule, num_steps=len(betas), eta=0.0, clip_sample=False)
    t = len(betas) - 1
    out = sampler.step(torch.tensor(eps), t, torch.tensor(x_t))
    return out.numpy()


def ddim_ddpm_mean(x_t, eps, alpha_bar_t, alpha_bar_prev):
    alpha = alpha_bar_t / alpha_bar_prev
    return (x_t - (1 - alpha) / np.sqrt(1 - alpha_bar_t) * eps) / np.sqrt(alpha)


def ddim_no_sqrt(x_t, eps, alpha_bar_t, alpha_bar_prev):
    return alpha_bar_prev * (x_t - (1 - alpha_bar_t) * eps) / alpha_bar_t + (1 - alpha_bar_prev) * eps


def ddim_uses_xt(x_t, eps, alpha_bar_t, alpha_bar_prev):
    return np.sqrt(alpha_bar_prev) * x_t + np.sqrt(1 - alpha_bar_prev) * eps


@pytest.mark.parametrize("fn", [ddim_correct, ddim_via_library])
def test_ddim_step_reference_passes(fn):
    result = ch04.check_ddim_step(fn)
    assert result.passed, result


@pytest.mark.parametrize("fn, words", [(ddim_ddpm_mean, "DDPM"), (ddim_no_sqrt, "square roots"),
                                       (ddim_uses_xt, "x_t was used")])
def test_ddim_step_mistakes_fail_with_hint(fn, words):
    result = ch04.check_ddim_step(fn)
    assert not result.passed and words in result.message and result.hint


def test_ddim_step_stub():
    assert "Not attempted" in ch04.check_ddim_step(stub).message


# --------------------------------------------------------------------------- eps -> score
def score_correct(eps, alpha_bar_t):
    return -eps / np.sqrt(1 - alpha_bar_t)


def test_eps_to_score_against_a_gaussian_score():
    # independent check of the reference: for x0 = 0, q(x_t) = N(0, (1-ᾱ) I) has score -x_t/(1-ᾱ),
    # and eps = x_t / sqrt(1-ᾱ) exactly
    abar = 0.3
    x_t = np.random.default_rng(0).normal(size=(5, 2)) * np.sqrt(1 - abar)
    eps = x_t / np.sqrt(1 - abar)
    np.testing.assert_allclose(score_correct(eps, abar), -x_t / (1 - abar))
    assert ch04.check_eps_to_score(score_correct).passed


@pytest.mark.parametrize("fn, words", [
    (lambda e, a: e / np.sqrt(1 - a), "sign"),
    (lambda e, a: -e / (1 - a), "variance"),
    (lambda e, a: -e / np.sqrt(a), "√ᾱ_t"),
    (lambda e, a: -e[:, 0] / np.sqrt(1 - a), "shape"),
])
def test_eps_to_score_mistakes(fn, words):
    result = ch04.check_eps_to_score(fn)
    assert not result.passed and words in result.message and result.hint


def test_eps_to_score_stub():
    assert "Not attempted" in ch04.check_eps_to_score(stub).message


# --------------------------------------------------------------------------- conceptual
def test_eta_choices():
    assert ch04.check_eta("a").passed
    for wrong in "bcd":
        result = ch04.check_eta(wrong)
        assert not result.passed and result.hint
    assert "Not attempted" in ch04.check_eta(None).message
    assert not ch04.check_eta("q").passed


def test_eta_one_recovers_ddpm():
    # the fact behind choice (a): with all T steps and eta = 1, DDIM's sigma^2 is DDPM's posterior variance
    schedule = NoiseSchedule.linear(50, 1e-3, 0.2, dtype=torch.float64)
    abar = schedule.float64("alphas_cumprod").numpy()
    abar_prev = np.concatenate([[1.0], abar[:-1]])
    sigma2 = (1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev)
    np.testing.assert_allclose(sigma2, schedule.float64("posterior_variance").numpy(), rtol=1e-10, atol=1e-15)


def test_random_draws():
    assert ch04.check_random_draws(1000).passed          # 500 points x 2 dims
    assert not ch04.check_random_draws(11000).passed
    assert not ch04.check_random_draws("many").passed
    assert "Not attempted" in ch04.check_random_draws(None).message
