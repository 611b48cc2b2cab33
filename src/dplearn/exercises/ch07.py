"""Checkers for the exercises of chapter 7 (implicit policies).

Each checker tests the reader's function against a reference on fresh random inputs and returns a
:class:`~dplearn.exercises.checking.Result`; none of them prints the reference answer.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from dplearn.exercises.checking import Result, as_numpy, call, checker, close, failed, passed
from dplearn.policies.ibc import info_nce

__all__ = ["check_info_nce_proposal", "check_dfo_iteration", "check_gaussian_near_fraction"]


def _quiet(fn: Callable[..., Any], *args: Any) -> Any:
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call(fn, *args)


# ---------------------------------------------------------------------------------------------
# Exercise: InfoNCE with counter-examples from another proposal
# ---------------------------------------------------------------------------------------------
def _info_nce_proposal(e_pos, e_neg, r_pos, r_neg, pos=True, neg=True, sign=-1.0):
    """Reference: mean_b −log softmax(−[E⁺, E⁻] − [log r⁺, log r⁻])_0; slips for the hints."""
    lp = r_pos if pos else torch.zeros_like(r_pos)
    ln = r_neg if neg else torch.zeros_like(r_neg)
    logits = -torch.cat([e_pos[:, None], e_neg], 1) + sign * torch.cat([lp[:, None], ln], 1)
    return (torch.logsumexp(logits, 1) - logits[:, 0]).mean().item()


@checker("InfoNCE with a proposal")
def check_info_nce_proposal(fn: Callable[..., Any]) -> Result:
    """Check ``fn(energy_pos (B,), energy_neg (B, N), log_r_pos (B,), log_r_neg (B, N))``: the batch
    mean of −log softmax of the logits −E − log r, the positive at index 0 (a scalar)."""
    rng = np.random.default_rng()
    B, N = int(rng.integers(3, 9)), int(rng.integers(4, 33))
    e_pos, e_neg = torch.as_tensor(rng.normal(size=B) * 2), torch.as_tensor(rng.normal(size=(B, N)) * 2)
    r_pos, r_neg = torch.as_tensor(rng.normal(size=B)), torch.as_tensor(rng.normal(size=(B, N)))
    args = (e_pos, e_neg, r_pos, r_neg)
    out = as_numpy(_quiet(fn, *(a.clone() for a in args)))
    expected = _info_nce_proposal(*args)
    if out.shape != ():
        return failed(f"your function returned shape {out.shape}; expected a scalar", "Average over the batch.")
    if not close(out, expected, rtol=1e-6):
        slips = [
            (dict(pos=False, neg=False), "the proposal is ignored: this is the uniform loss",
             "Every candidate's e^{−E} must be divided by r at that candidate, as in the estimate of Z."),
            (dict(pos=False), "only the counter-examples are corrected",
             "The positive is one of the N + 1 candidates: correct its logit the same way."),
            (dict(sign=1.0), "the correction has the wrong sign",
             "Dividing e^{−E} by r(a) subtracts log r(a) from the logit −E."),
        ]
        for kwargs, message, hint in slips:
            if close(out, _info_nce_proposal(*args, **kwargs), rtol=1e-6):
                return failed(message, hint)
        if close(out, B * expected, rtol=1e-6):
            return failed("your loss is summed over the batch", "Take the mean over the batch.")
        return failed("wrong value", "A cross-entropy over the N + 1 candidates, with logits −E − log r and "
                      "the positive (index 0) as the label.")
    flat_pos, flat_neg = torch.full((B,), -1.7, dtype=torch.float64), torch.full((B, N), -1.7, dtype=torch.float64)
    uniform = as_numpy(_quiet(fn, e_pos.clone(), e_neg.clone(), flat_pos, flat_neg))
    if not close(uniform, info_nce(e_pos, e_neg).item(), rtol=1e-6):
        return failed("with a uniform proposal (log r constant) the loss is not the chapter's InfoNCE",
                      "A constant log r shifts every logit equally, so it must cancel in the softmax.")
    big = [a * 200 for a in args]
    big[0][0], big[1][-1, 0] = 900.0, -900.0  # exp(-900) underflows and exp(900) overflows in float64
    out = as_numpy(_quiet(fn, *(a.clone() for a in big)))
    if out.shape != () or not np.isfinite(out) or not close(out, _info_nce_proposal(*big), rtol=1e-6):
        return failed("for large energies your loss is inf, nan or wrong",
                      "Use a log-sum-exp (torch.logsumexp or F.cross_entropy) instead of exp then log.")
    return passed("Correct: the loss now estimates −log p(a|o) up to a constant whatever the proposal.")


# ---------------------------------------------------------------------------------------------
# Exercise: one iteration of derivative-free optimisation
# ---------------------------------------------------------------------------------------------
@checker("one DFO iteration")
def check_dfo_iteration(fn: Callable[[Callable, torch.Tensor, float, torch.Generator], Any]) -> Result:
    """Check ``fn(energy_fn, samples (M, D), noise_scale, generator)`` → (M, D): resample in proportion
    to softmax(−E), add N(0, σ²) noise, clip to [−1, 1]."""
    rng = np.random.default_rng()
    D = int(rng.integers(1, 4))
    M = 6
    samples = torch.as_tensor(rng.uniform(-0.8, 0.8, (M, D)))
    energies = torch.as_tensor(rng.uniform(0, 2.5, M))

    def energy_fn(a: torch.Tensor) -> torch.Tensor:  # looks the energy up by the nearest sample
        d = ((a[:, None, :] - samples[None]) ** 2).sum(-1)
        return energies[d.argmin(1)]

    g = torch.Generator().manual_seed(int(rng.integers(2**31)))
    out = _quiet(fn, energy_fn, samples.clone(), 0.0, g)
    out = torch.as_tensor(as_numpy(out))
    if tuple(out.shape) != (M, D):
        return failed(f"for samples of shape ({M}, {D}) your function returned {tuple(out.shape)}",
                      "Return a new population of the same size.")
    dist = ((out[:, None, :] - samples[None]) ** 2).sum(-1)
    if dist.min(1).values.max() > 1e-9:
        return failed("with noise_scale = 0 the new samples should be copies of old ones",
                      "Resample the existing samples (torch.multinomial with replacement), then add noise.")
    counts = np.zeros(M)
    n_rounds = 3000
    for _ in range(n_rounds):
        new = torch.as_tensor(as_numpy(_quiet(fn, energy_fn, samples.clone(), 0.0, g)))
        idx = ((new[:, None, :] - samples[None]) ** 2).sum(-1).argmin(1).numpy()
        counts += np.bincount(idx, minlength=M)
    freq = counts / counts.sum()
    target = torch.softmax(-energies, 0).numpy()
    if np.abs(freq - target).max() > 0.02:
        flipped = torch.softmax(energies, 0).numpy()
        if np.abs(freq - flipped).max() < 0.02:
            return failed("high-energy samples are picked more often", "Weights are softmax(−E): low energy is good.")
        if np.abs(freq - 1 / M).max() < 0.02:
            return failed("every sample is picked equally often", "Weight the resampling by softmax(−E).")
        return failed("samples are not picked in proportion to softmax(−E)",
                      "torch.multinomial(weights, M, replacement=True, generator=generator).")
    out = torch.as_tensor(as_numpy(_quiet(fn, energy_fn, samples.clone(), 0.3, g)))
    noise = out - samples[((out[:, None, :] - samples[None]) ** 2).sum(-1).argmin(1)]
    if noise.abs().max() < 1e-6:
        return failed("no noise was added", "Add noise_scale * torch.randn(...) after resampling.")
    edge = torch.full((64, D), 0.99, dtype=samples.dtype)  # noise pushes about half of these past 1
    out = torch.as_tensor(as_numpy(_quiet(fn, lambda a: torch.zeros(a.shape[0], dtype=a.dtype), edge, 0.5, g)))
    if out.abs().max() > 1 + 1e-9:
        return failed("samples leave the action bounds", "Clip to [−1, 1] after adding noise (torch.clamp).")
    return passed("Correct: DFO keeps good samples, jitters them and stays in bounds.")


# ---------------------------------------------------------------------------------------------
# Exercise: how many Gaussian counter-examples land near the positive
# ---------------------------------------------------------------------------------------------
def _gauss_near(dim: int, r: float, sigma: float, scale: float = 2.0, squared: bool = True,
                upper: bool = False) -> float:
    """Reference P(‖u − a‖ < r), u ~ N(a, σ² I): the χ²_dim CDF at (r/σ)², i.e.
    gammainc(dim/2, r²/(2σ²)); slips for the hints."""
    x = (r / sigma) ** 2 / scale if squared else r / sigma
    a, x = torch.tensor(dim / 2, dtype=torch.float64), torch.tensor(x, dtype=torch.float64)
    return float(torch.special.gammaincc(a, x) if upper else torch.special.gammainc(a, x))


@checker("the fraction of useful Gaussian counter-examples")
def check_gaussian_near_fraction(fn: Callable[[int, float, float], Any]) -> Result:
    """Check ``fn(dim, radius, sigma)`` = P(‖u − a‖ < radius) for u ~ N(a, σ² I) in ``dim`` dimensions."""
    rng = np.random.default_rng()
    cases = [(1, 0.3, 0.5), (2, 0.5, 0.4), (int(rng.integers(3, 12)) | 1, float(rng.uniform(0.2, 1.0)),
             float(rng.uniform(0.1, 0.5))), (16, 0.1, 0.03), (16, 0.1, 0.05)]
    for dim, r, sigma in cases:
        out = as_numpy(_quiet(fn, dim, r, sigma))
        expected = _gauss_near(dim, r, sigma)
        if out.shape != ():
            return failed(f"your function returned shape {out.shape}; expected a number",
                          "Return one probability for the given dim, radius and sigma.")
        if close(out, expected, rtol=1e-4, atol=0.0):
            continue
        slips = [(dict(scale=1.0), "the factor 1/2 is missing",
                  "‖u − a‖²/σ² is χ² with dim degrees of freedom, whose CDF at x is gammainc(dim/2, x/2)."),
                 (dict(squared=False), "the radius is not squared",
                  "The event ‖u − a‖ < r is ‖u − a‖²/σ² < (r/σ)²: a χ² variable against (r/σ)²."),
                 (dict(upper=True), "you computed the fraction that lands farther than the radius",
                  "That is the upper incomplete gamma (gammaincc); the question asks for within.")]
        for kwargs, message, hint in slips:
            if close(out, _gauss_near(dim, r, sigma, **kwargs), rtol=1e-4, atol=0.0):
                return failed(f"{message} (dim={dim})", hint)
        if abs(float(out) - expected) < 0.1 * expected + 3e-3:
            return failed(f"close but not exact for dim={dim} (a Monte Carlo estimate?)",
                          "Use the χ² distribution of ‖u − a‖²/σ²: torch.special.gammainc(dim/2, r²/(2σ²)).")
        return failed(f"wrong value for dim={dim}",
                      "‖u − a‖²/σ² is a sum of dim squared standard normals: a χ² variable with dim degrees "
                      "of freedom.")
    return passed("Correct: in many dimensions a Gaussian's mass sits on a shell of radius σ√dim.")
