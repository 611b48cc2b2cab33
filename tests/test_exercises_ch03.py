"""Chapter 3 checkers: reference solutions pass, typical mistakes fail with a hint, stubs are
reported as not attempted, and no message gives the answer away."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from dplearn.exercises import ch03


def stub(*args):
    ...  # YOUR CODE HERE


# --------------------------------------------------------------------------- posterior mean
def mean_correct(x0, xt, beta_t, alpha_bar_t, alpha_bar_prev):
    # Bayes on Gaussians: precision-weighted combination, written independently of the checker
    alpha_t = 1 - beta_t
    var = 1.0 / (alpha_t / beta_t + 1.0 / (1 - alpha_bar_prev)) if alpha_bar_prev < 1 else 0.0
    if alpha_bar_prev == 1.0:
        return x0 + 0 * xt
    return var * (np.sqrt(alpha_t) / beta_t * xt + np.sqrt(alpha_bar_prev) / (1 - alpha_bar_prev) * x0)


def mean_swapped(x0, xt, beta_t, alpha_bar_t, alpha_bar_prev):
    return mean_correct(xt, x0, beta_t, alpha_bar_t, alpha_bar_prev) if alpha_bar_prev < 1 else xt


def mean_no_sqrt(x0, xt, beta_t, alpha_bar_t, alpha_bar_prev):
    return (alpha_bar_prev * beta_t * x0 + (1 - beta_t) * (1 - alpha_bar_prev) * xt) / (1 - alpha_bar_t)


def mean_wrong_abar(x0, xt, beta_t, alpha_bar_t, alpha_bar_prev):
    return (np.sqrt(alpha_bar_t) * beta_t * x0 + np.sqrt(1 - beta_t) * (1 - alpha_bar_prev) * xt) / (1 - alpha_bar_t)


def mean_scalar(x0, xt, beta_t, alpha_bar_t, alpha_bar_prev):
    return float(np.mean(mean_correct(x0, xt, beta_t, alpha_bar_t, alpha_bar_prev)))


def test_posterior_mean_reference_passes():
    result = ch03.check_posterior_mean(mean_correct)
    assert result.passed, result


@pytest.mark.parametrize("fn, words", [(mean_swapped, "swapped"), (mean_no_sqrt, "square roots"),
                                       (mean_wrong_abar, "ᾱ_t where"), (mean_scalar, "shape")])
def test_posterior_mean_mistakes_fail_with_hint(fn, words):
    result = ch03.check_posterior_mean(fn)
    assert not result.passed and words in result.message and result.hint


def test_posterior_mean_stub_and_crash():
    assert "Not attempted" in ch03.check_posterior_mean(stub).message
    result = ch03.check_posterior_mean(lambda *a: 1 / 0)
    assert not result.passed and "ZeroDivisionError" in result.message


# --------------------------------------------------------------------------- simplified loss
def loss_correct(model, x0, t, noise, alphas_cumprod):
    a = alphas_cumprod[t][:, None]
    xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
    return ((model(xt, t) - noise) ** 2).mean()


def loss_sum(model, x0, t, noise, alphas_cumprod):
    return loss_correct(model, x0, t, noise, alphas_cumprod) * x0.numel()


def loss_no_sqrt(model, x0, t, noise, alphas_cumprod):
    a = alphas_cumprod[t][:, None]
    return ((model(a * x0 + (1 - a) * noise, t) - noise) ** 2).mean()


def loss_clean_input(model, x0, t, noise, alphas_cumprod):
    return ((model(x0, t) - noise) ** 2).mean()


def loss_predicts_x0(model, x0, t, noise, alphas_cumprod):
    a = alphas_cumprod[t][:, None]
    return ((model(a.sqrt() * x0 + (1 - a).sqrt() * noise, t) - x0) ** 2).mean()


def loss_per_example(model, x0, t, noise, alphas_cumprod):
    a = alphas_cumprod[t][:, None]
    return ((model(a.sqrt() * x0 + (1 - a).sqrt() * noise, t) - noise) ** 2).mean(1)


def test_simplified_loss_reference_passes():
    result = ch03.check_simplified_loss(loss_correct)
    assert result.passed, result


@pytest.mark.parametrize("fn, words", [(loss_sum, "sum"), (loss_no_sqrt, "square roots"),
                                       (loss_clean_input, "clean"), (loss_predicts_x0, "compared with x0"),
                                       (loss_per_example, "scalar")])
def test_simplified_loss_mistakes_fail_with_hint(fn, words):
    result = ch03.check_simplified_loss(fn)
    assert not result.passed and words in result.message and result.hint


def test_simplified_loss_stub():
    assert "Not attempted" in ch03.check_simplified_loss(stub).message


# --------------------------------------------------------------------------- conceptual
def test_small_beta_T_choices():
    assert ch03.check_small_beta_T("b").passed
    assert ch03.check_small_beta_T(" (B) ").passed
    for wrong in "acde":
        result = ch03.check_small_beta_T(wrong)
        assert not result.passed and result.hint
        assert "b" not in result.hint.split()  # the hint never names the right letter
    assert "Not attempted" in ch03.check_small_beta_T(None).message
    assert "Not attempted" in ch03.check_small_beta_T(...).message
    assert not ch03.check_small_beta_T("z").passed


def test_messages_never_contain_reference_numbers():
    # a wrong answer's message must not leak the expected array
    result = ch03.check_posterior_mean(lambda x0, xt, *a: np.zeros_like(x0))
    assert not result.passed
    assert not re.search(r"\d\.\d", result.message + (result.hint or ""))
    result = ch03.check_simplified_loss(lambda *a: torch.tensor(123.0))
    assert "123" not in result.message
