"""Chapter 6 checkers accept correct answers and reject typical mistakes (and stubs) with a hint."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp
from scipy.stats import norm

from dplearn.exercises import ch06


def test_mse_minimizer_checker():
    assert ch06.check_mse_minimizer(lambda modes, w: w @ modes)
    assert ch06.check_mse_minimizer(lambda modes, w: np.einsum("k,kd->d", w, modes))
    assert not ch06.check_mse_minimizer(lambda modes, w: modes.mean(0))
    assert not ch06.check_mse_minimizer(lambda modes, w: modes[np.argmax(w)])
    assert not ch06.check_mse_minimizer(lambda modes, w: w @ modes[:, :1])
    res = ch06.check_mse_minimizer(lambda modes, w: ...)
    assert not res and "Not attempted" in res.message


def test_quantize_checker():
    def good(x, k):
        j = np.clip(np.floor((x + 1) * k / 2), 0, k - 1)
        return -1 + (2 * j + 1) / k

    def edges(x, k):
        return -1 + 2 * np.clip(np.floor((x + 1) * k / 2), 0, k - 1) / k

    def unclipped(x, k):
        return -1 + (2 * np.floor((x + 1) * k / 2) + 1) / k

    assert ch06.check_quantize(good)
    res = ch06.check_quantize(edges)
    assert not res and "edges" in res.message
    res = ch06.check_quantize(unclipped)
    assert not res and "end points" in res.message
    assert not ch06.check_quantize(lambda x, k: np.round(x * k) / k)


def test_gmm_log_likelihood_checker():
    def good(x, w, m, s):
        comp = norm.logpdf(x[:, None, :], m, s).sum(-1) + np.log(w)
        return logsumexp(comp, axis=1)

    def naive(x, w, m, s):
        return np.log((w * norm.pdf(x[:, None, :], m, s).prod(-1)).sum(1))

    def first(x, w, m, s):
        return norm.logpdf(x, m[:, 0], s[:, 0]).sum(-1)

    assert ch06.check_gmm_log_likelihood(good)
    res = ch06.check_gmm_log_likelihood(naive)
    assert not res and "-inf or nan" in res.message
    res = ch06.check_gmm_log_likelihood(first)
    assert not res and "first component" in res.message
    res = ch06.check_gmm_log_likelihood(lambda x, w, m, s: np.exp(good(x, w, m, s)))
    assert not res and "not its logarithm" in res.message
