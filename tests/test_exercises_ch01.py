"""Chapter 1 checkers: reference solutions pass, typical mistakes fail with a hint, stubs are
reported as not attempted, and no message gives the answer away."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dplearn.exercises import ch01


# ---------------------------------------------------------------------------------------------
# Reader answers: the stub, a correct one written independently of the library, typical mistakes
# ---------------------------------------------------------------------------------------------
def stub(*args):
    ...  # YOUR CODE HERE


def kl_correct(p, q):
    terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0) / q), 0.0)
    return terms.sum(axis=-1)


def kl_no_zero_handling(p, q):
    return np.sum(p * np.log(p / q), axis=-1)


def kl_swapped(p, q):
    return kl_correct(q, p)


def kl_bits(p, q):
    return kl_correct(p, q) / np.log(2)


def kl_sums_everything(p, q):
    return kl_correct(p, q).sum()


def kl_clipped(p, q):  # hides the infinity with an epsilon
    eps = 1e-12
    return np.sum(p * np.log((p + eps) / (q + eps)), axis=-1)


def gauss_correct(mu_p, var_p, mu_q, var_q):
    # written from the definition with the per-dimension KL, independent of dplearn
    return 0.5 * np.sum(np.log(var_q / var_p) + (var_p + (mu_p - mu_q) ** 2) / var_q - 1.0, axis=-1)


def gauss_std_confusion(mu_p, var_p, mu_q, var_q):
    return gauss_correct(mu_p, var_p**2, mu_q, var_q**2)


def gauss_swapped(mu_p, var_p, mu_q, var_q):
    return gauss_correct(mu_q, var_q, mu_p, var_p)


def gauss_no_half(mu_p, var_p, mu_q, var_q):
    return 2 * gauss_correct(mu_p, var_p, mu_q, var_q)


def gauss_no_minus_one(mu_p, var_p, mu_q, var_q):
    return 0.5 * np.sum(np.log(var_q / var_p) + (var_p + (mu_p - mu_q) ** 2) / var_q, axis=-1)


def gauss_no_sum(mu_p, var_p, mu_q, var_q):
    return 0.5 * (np.log(var_q / var_p) + (var_p + (mu_p - mu_q) ** 2) / var_q - 1.0)


def gauss_raises(mu_p, var_p, mu_q, var_q):
    raise RuntimeError("oops")


# ---------------------------------------------------------------------------------------------
# Discrete KL
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("repeat", range(5))
def test_kl_categorical_reference_passes(repeat):
    result = ch01.check_kl_categorical(kl_correct)
    assert result, str(result)
    assert "✓" in str(result)


def test_kl_categorical_stub_is_not_attempted():
    result = ch01.check_kl_categorical(stub)
    assert not result and "Not attempted" in result.message


@pytest.mark.parametrize(
    "fn, hint_words",
    [
        (kl_no_zero_handling, "0·log 0"),
        (kl_swapped, "KL(q‖p)"),
        (kl_bits, "natural logarithm"),
        (kl_sums_everything, "last axis"),
        (kl_clipped, "inf"),
    ],
)
def test_kl_categorical_mistakes_fail_with_hint(fn, hint_words):
    result = ch01.check_kl_categorical(fn)
    assert not result
    assert hint_words in result.message + (result.hint or "")


# ---------------------------------------------------------------------------------------------
# Gaussian KL
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("repeat", range(5))
def test_kl_gaussian_reference_passes(repeat):
    result = ch01.check_kl_gaussian(gauss_correct)
    assert result, str(result)


def test_kl_gaussian_stub_is_not_attempted():
    result = ch01.check_kl_gaussian(stub)
    assert not result and "Not attempted" in result.message


@pytest.mark.parametrize(
    "fn, hint_words",
    [
        (gauss_std_confusion, "standard deviations"),
        (gauss_swapped, "KL(q‖p)"),
        (gauss_no_half, "1/2"),
        (gauss_no_minus_one, "−1"),
        (gauss_no_sum, "shape"),
        (gauss_raises, "RuntimeError"),
    ],
)
def test_kl_gaussian_mistakes_fail_with_hint(fn, hint_words):
    result = ch01.check_kl_gaussian(fn)
    assert not result
    assert hint_words in result.message + (result.hint or "")


# ---------------------------------------------------------------------------------------------
# Conceptual
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("answer", ["reverse", "Reverse KL", " B ", "KL(q||p)"])
def test_mode_seeking_right_answers(answer):
    assert ch01.check_mode_seeking(answer)


@pytest.mark.parametrize("answer", ["forward", "A", "KL(p||q)", "both", 3])
def test_mode_seeking_wrong_answers(answer):
    result = ch01.check_mode_seeking(answer)
    assert not result and result.hint
    assert "reverse" not in (result.message + (result.hint or "")).replace('"forward" or "reverse"', "")


def test_mode_seeking_stub():
    assert "Not attempted" in ch01.check_mode_seeking(...).message
    assert "Not attempted" in ch01.check_mode_seeking(None).message


def _kl_1d(mu_p, var_p, mu_q, var_q):
    """1-D Gaussian KL by quadrature: an independent reference for the predicted number."""
    from scipy import integrate, stats

    sp, sq = math.sqrt(var_p), math.sqrt(var_q)
    value, _ = integrate.quad(
        lambda x: stats.norm.pdf(x, mu_p, sp) * (stats.norm.logpdf(x, mu_p, sp) - stats.norm.logpdf(x, mu_q, sq)),
        -15, 15,
    )
    return value


def test_predicted_kl_accepts_the_true_value_only():
    truth = _kl_1d(0.0, 1.0, 1.0, 4.0)
    assert ch01.check_predicted_kl(truth)
    assert ch01.check_predicted_kl(round(truth, 3))
    assert ch01.check_predicted_kl(np.float32(truth))
    assert not ch01.check_predicted_kl(truth * 1.1)


@pytest.mark.parametrize(
    "value, hint_words",
    [
        (_kl_1d(1.0, 4.0, 0.0, 1.0), "reverse"),
        (_kl_1d(0.0, 1.0, 1.0, 2.0), "standard deviation"),
        (_kl_1d(0.0, 1.0, 1.0, 4.0) / math.log(2), "bits"),
        ("a lot", "number"),
    ],
)
def test_predicted_kl_mistakes(value, hint_words):
    result = ch01.check_predicted_kl(value)
    assert not result
    assert hint_words in result.message + (result.hint or "")


def test_predicted_kl_stub():
    assert "Not attempted" in ch01.check_predicted_kl(...).message


def test_messages_never_reveal_the_number():
    truth = _kl_1d(0.0, 1.0, 1.0, 4.0)
    for value in [0.1, 1.0, 5.0, _kl_1d(1.0, 4.0, 0.0, 1.0)]:
        result = ch01.check_predicted_kl(value)
        assert f"{truth:.2f}" not in str(result) and f"{truth:.3f}" not in str(result)
