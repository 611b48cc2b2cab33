"""Checkers for the exercises of chapter 6 (explicit policies).

Each checker tests the reader's function against a reference on fresh random inputs and returns a
:class:`~dplearn.exercises.checking.Result`; none of them prints the reference answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from dplearn.exercises.checking import Result, checker, close, failed, passed, quiet_call
from dplearn.policies.categorical import bin_centers, discretize
from dplearn.policies.mixture import gmm_log_prob

__all__ = ["check_mse_minimizer", "check_quantize", "check_gmm_log_likelihood"]




# ---------------------------------------------------------------------------------------------
# Exercise: the MSE minimiser of a multimodal target
# ---------------------------------------------------------------------------------------------
@checker("the MSE-optimal action")
def check_mse_minimizer(fn: Callable[[np.ndarray, np.ndarray], Any]) -> Result:
    """Check ``fn(modes (K, D), weights (K,))`` = argmin_c Σ_k w_k |m_k − c|² (a (D,) array)."""
    rng = np.random.default_rng()
    for trial in range(5):
        k, d = int(rng.integers(2, 6)), int(rng.integers(1, 4))
        modes = rng.normal(size=(k, d)) * 3
        weights = rng.dirichlet(np.ones(k))
        out = quiet_call(fn, modes.copy(), weights.copy())
        expected = weights @ modes
        if out.shape != (d,):
            return failed(f"for {k} modes in {d} dimensions your function returned shape {out.shape}; "
                          f"expected ({d},)", "Return one action: a vector with one entry per dimension.")
        if close(out, expected, rtol=1e-6, atol=1e-8):
            continue
        if close(out, modes.mean(0)):
            return failed("your answer ignores the weights", "Modes that are demonstrated more often pull harder.")
        if any(close(out, m) for m in modes):
            return failed("your answer is one of the modes",
                          "The squared error punishes distance to every mode; set the gradient of "
                          "Σ_k w_k |m_k − c|² with respect to c to zero.")
        return failed(f"wrong value on trial {trial + 1}",
                      "Differentiate Σ_k w_k |m_k − c|² with respect to c and solve for c.")
    return passed("Correct: the minimiser is the weighted mean of the modes, between them, not on one.")


# ---------------------------------------------------------------------------------------------
# Exercise: discretise and decode
# ---------------------------------------------------------------------------------------------
@checker("quantising actions to bin centres")
def check_quantize(fn: Callable[[np.ndarray, int], Any]) -> Result:
    """Check ``fn(x, n_bins)``: the centre of the bin of [−1, 1] (of ``n_bins`` equal bins) holding each x."""
    rng = np.random.default_rng()
    for n_bins in (int(rng.integers(2, 6)), int(rng.integers(7, 40)), 256):
        x = np.concatenate([rng.uniform(-1, 1, 500), [-1.0, 1.0]])
        out = quiet_call(fn, x.copy(), n_bins)
        expected = bin_centers(n_bins).double()[discretize(torch.as_tensor(x), n_bins)].numpy()
        if out.shape != x.shape:
            return failed(f"for x of shape {x.shape} your function returned shape {out.shape}",
                          "Quantise every entry: the output has the input's shape.")
        wrong = ~np.isclose(out, expected, atol=1e-6)
        if wrong[:-2].any():
            i = int(np.flatnonzero(wrong)[0])
            edges = np.linspace(-1, 1, n_bins + 1)
            if np.isclose(out[i], edges, atol=1e-6).any():
                return failed("your function returns bin edges, not bin centres",
                              "The centre of bin j is −1 + (2j + 1)/K.")
            return failed(f"wrong value with {n_bins} bins",
                          "Bin j covers [−1 + 2j/K, −1 + 2(j+1)/K); find j with floor, then return its centre.")
        if wrong[-2:].any():
            return failed("the end points ±1 are not in the first/last bin",
                          "Clip the bin index to 0 … K−1 (x = 1 would otherwise land in bin K).")
        if np.abs(out - x).max() > 1.0 / n_bins + 1e-9:
            return failed("some values moved by more than half a bin", "Return the centre of the bin that holds x.")
    return passed("Correct: every action moves to its bin's centre, an error of at most 1/K.")


# ---------------------------------------------------------------------------------------------
# Exercise: mixture log-likelihood
# ---------------------------------------------------------------------------------------------
@checker("the Gaussian-mixture log-likelihood")
def check_gmm_log_likelihood(fn: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], Any]) -> Result:
    """Check ``fn(x (B, D), weights (B, K), means (B, K, D), stds (B, K, D))`` = (B,) log-likelihoods,
    including far-out points where a naive log(Σ exp) underflows."""
    rng = np.random.default_rng()
    B, K, D = 16, int(rng.integers(2, 5)), int(rng.integers(1, 4))
    weights = rng.dirichlet(np.ones(K), size=B)
    means = rng.normal(size=(B, K, D))
    stds = rng.uniform(0.1, 1.5, (B, K, D))
    x = rng.normal(size=(B, D)) * 1.5

    def reference(x, w, m, s):
        with np.errstate(divide="ignore"):  # log 0 = -inf: a component with no weight
            log_w = np.log(w)
        return gmm_log_prob(torch.as_tensor(log_w), torch.as_tensor(m), torch.as_tensor(s),
                            torch.as_tensor(x)).numpy()

    out = quiet_call(fn, x.copy(), weights.copy(), means.copy(), stds.copy())
    expected = reference(x, weights, means, stds)
    if out.shape != (B,):
        return failed(f"for a batch of {B} points your function returned shape {out.shape}; expected ({B},)",
                      "Sum over dimensions and mix over components; keep the batch axis.")
    if not close(out, expected, rtol=1e-6, atol=1e-6):
        if close(out, np.exp(expected)):
            return failed("your function returns the likelihood, not its logarithm")
        one = reference(x, np.eye(K)[np.zeros(B, dtype=int)], means, stds)
        if close(out, one):
            return failed("your function uses the first component only", "Mix: log Σ_k w_k N(x; μ_k, σ_k²).")
        return failed("wrong values on random mixtures",
                      "log p(x) = log Σ_k w_k Π_d N(x_d; μ_kd, σ_kd²) with N = exp(−z²/2)/(σ√(2π)).")
    far = x + 200.0  # every component density underflows to 0 in float64 here (z > 100)
    out = quiet_call(fn, far.copy(), weights.copy(), means.copy(), stds.copy())
    expected = reference(far, weights, means, stds)
    if out.shape != (B,) or not np.all(np.isfinite(out)):
        return failed("far from the means your function returns -inf or nan",
                      "Work with log-densities and combine them with a log-sum-exp "
                      "(in NumPy: subtract the largest term before exponentiating; "
                      "or torch.logsumexp).")
    if not close(out, expected, rtol=1e-6, atol=1e-6):
        return failed("wrong values far from the means", "Subtract the largest log-term before exponentiating.")
    return passed("Correct, and numerically stable.")
