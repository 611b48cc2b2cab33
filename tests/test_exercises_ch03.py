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


# --------------------------------------------------------------------------- bound weight λ_t
def weight_correct(beta_t, alpha_bar_t, sigma2_t):
    # from the Gaussian KL: ‖μ̃ − μ_θ‖² / (2σ²) with μ̃ − μ_θ = β_t / (√α_t √(1 − ᾱ_t)) (ε̂ − ε)
    coef = beta_t / (np.sqrt(1 - beta_t) * np.sqrt(1 - alpha_bar_t))
    return coef**2 / (2 * sigma2_t)


def test_bound_weight_reference_passes():
    result = ch03.check_bound_weight(weight_correct)
    assert result.passed, result


@pytest.mark.parametrize("fn, words", [
    (lambda b, a, s: 2 * weight_correct(b, a, s), "1/2"),
    (lambda b, a, s: weight_correct(b, a, s) * (1 - b), "α_t"),
    (lambda b, a, s: weight_correct(b, a, s) * np.sqrt(1 - a), "square root"),
    (lambda b, a, s: weight_correct(b, a, s) / b, "not squared"),
    (lambda b, a, s: weight_correct(b, a, s) + 0.1, "wrong weight"),
    (lambda b, a, s: float(np.mean(weight_correct(b, a, s))), "shape"),
])
def test_bound_weight_mistakes_fail_with_hint(fn, words):
    result = ch03.check_bound_weight(fn)
    assert not result.passed and words in result.message and result.hint


def test_bound_weight_stub():
    assert "Not attempted" in ch03.check_bound_weight(stub).message


# --------------------------------------------------------------------------- mode coverage
def coverage_correct(samples, means, radius):
    # the library's definition, written with torch
    from dplearn.sample_quality import mode_coverage
    per_mode, off = mode_coverage(samples, means, radius)
    return per_mode, off


def coverage_loop(samples, means, radius):
    # a plain loop: nearest mode first, then the radius
    counts = np.zeros(len(means))
    for x in samples:
        d = np.sqrt(((means - x) ** 2).sum(1))
        if d.min() <= radius:
            counts[d.argmin()] += 1
    return counts / len(samples), 1 - counts.sum() / len(samples)


def coverage_any(samples, means, radius):
    d = np.linalg.norm(samples[:, None] - means[None], axis=-1)
    per_mode = (d <= radius).mean(0)
    return per_mode, 1 - per_mode.sum()


def coverage_no_radius(samples, means, radius):
    d = np.linalg.norm(samples[:, None] - means[None], axis=-1)
    return np.bincount(d.argmin(1), minlength=len(means)) / len(samples), 0.0


def coverage_squared(samples, means, radius):
    return coverage_loop(samples, means, radius**0.5)  # d² <= r is d <= √r


def coverage_of_counted(samples, means, radius):
    per_mode, off = coverage_loop(samples, means, radius)
    return per_mode / per_mode.sum(), off


def coverage_counts(samples, means, radius):
    per_mode, off = coverage_loop(samples, means, radius)
    return per_mode * len(samples), off


def coverage_bad_off(samples, means, radius):
    per_mode, off = coverage_loop(samples, means, radius)
    return per_mode, 1.0 - off


def test_mode_coverage_reference_passes():
    assert ch03.check_mode_coverage(coverage_correct).passed
    assert ch03.check_mode_coverage(coverage_loop).passed


@pytest.mark.parametrize("fn, words", [
    (coverage_any, "both"), (coverage_no_radius, "far from every mode"), (coverage_squared, "squared"),
    (coverage_of_counted, "of the counted"), (coverage_counts, "counts"), (coverage_bad_off, "off"),
    (lambda s, m, r: coverage_loop(s, m, r)[0], "pair"),
    (lambda s, m, r: (coverage_loop(s, m, r)[0][:-1], 0.0), "shape"),
])
def test_mode_coverage_mistakes_fail_with_hint(fn, words):
    for _ in range(5):  # fresh random inputs each time: the slip must be caught every time
        result = ch03.check_mode_coverage(fn)
        assert not result.passed and words in result.message and result.hint, result


def test_mode_coverage_stub():
    assert "Not attempted" in ch03.check_mode_coverage(stub).message


# --------------------------------------------------------------------------- energy distance
def _mean_dist(a, b, squared=False, skip_self=False):
    d = np.linalg.norm(a[:, None] - b[None], axis=-1)
    d = d**2 if squared else d
    if skip_self:
        return (d.sum() - np.trace(d)) / (len(a) * (len(a) - 1))
    return d.mean()


def energy_correct(x, y):
    return 2 * _mean_dist(x, y) - _mean_dist(x, x) - _mean_dist(y, y)


def energy_torch(x, y):
    # the same in torch, returning a 0-d tensor: any array-like number is accepted
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    return 2 * torch.cdist(x, y).mean() - torch.cdist(x, x).mean() - torch.cdist(y, y).mean()


def test_energy_distance_reference_passes():
    assert ch03.check_energy_distance(energy_correct).passed
    assert ch03.check_energy_distance(energy_torch).passed


@pytest.mark.parametrize("fn, words", [
    (lambda x, y: 2 * _mean_dist(x, y, True) - _mean_dist(x, x, True) - _mean_dist(y, y, True), "squared"),
    (lambda x, y: 2 * _mean_dist(x, y) - _mean_dist(x, x, skip_self=True) - _mean_dist(y, y, skip_self=True),
     "itself"),
    (lambda x, y: _mean_dist(x, y) - _mean_dist(x, x) - _mean_dist(y, y), "factor 2"),
    (lambda x, y: -energy_correct(x, y), "sign"),
    (lambda x, y: np.sqrt(energy_correct(x, y)), "square root"),
    (lambda x, y: np.array([energy_correct(x, y)] * 2), "shape"),
    (lambda x, y: energy_correct(x, y) + 0.01, "wrong value"),
])
def test_energy_distance_mistakes_fail_with_hint(fn, words):
    result = ch03.check_energy_distance(fn)
    assert not result.passed and words in result.message and result.hint


def test_energy_distance_must_vanish_on_equal_samples():
    # right on x vs y, but not 0 for a sample against itself: caught by the second call
    def biased(x, y):
        return energy_correct(x, y) + (0.5 if x is y or np.array_equal(x, y) else 0.0)

    result = ch03.check_energy_distance(biased)
    assert not result.passed and "exactly 0" in result.message


def test_energy_distance_stub():
    assert "Not attempted" in ch03.check_energy_distance(stub).message


def test_new_messages_never_contain_reference_numbers():
    for check, fn in [(ch03.check_bound_weight, lambda b, a, s: b * 0 + 7.0),
                      (ch03.check_mode_coverage, lambda s, m, r: (np.full(len(m), 7.0), 7.0)),
                      (ch03.check_energy_distance, lambda x, y: 7.0)]:
        result = check(fn)
        assert not result.passed
        assert not re.search(r"\d\.\d", result.message + (result.hint or ""))
