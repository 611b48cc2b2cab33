"""Checkers for the exercises of chapter 7 (implicit policies).

Each checker tests the reader's function against a reference on fresh random inputs and returns a
:class:`~dplearn.exercises.checking.Result`; none of them prints the reference answer.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from dplearn.exercises.checking import Result, as_numpy, call, checker, close, failed, passed
from dplearn.policies.ibc import info_nce

__all__ = ["check_info_nce", "check_dfo_iteration", "check_counter_example_fraction"]


def _quiet(fn: Callable[..., Any], *args: Any) -> Any:
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call(fn, *args)


# ---------------------------------------------------------------------------------------------
# Exercise: InfoNCE
# ---------------------------------------------------------------------------------------------
@checker("the InfoNCE loss")
def check_info_nce(fn: Callable[[torch.Tensor, torch.Tensor], Any]) -> Result:
    """Check ``fn(energy_pos (B,), energy_neg (B, N))`` = mean_b −log softmax(−[E⁺, E⁻])_0 (a scalar)."""
    rng = np.random.default_rng()
    B, N = int(rng.integers(3, 9)), int(rng.integers(4, 33))
    e_pos = torch.as_tensor(rng.normal(size=B) * 2)
    e_neg = torch.as_tensor(rng.normal(size=(B, N)) * 2)
    out = as_numpy(_quiet(fn, e_pos.clone(), e_neg.clone()))
    expected = info_nce(e_pos, e_neg).item()
    if out.shape != ():
        return failed(f"your function returned shape {out.shape}; expected a scalar", "Average over the batch.")
    if not close(out, expected, rtol=1e-6):
        if close(out, info_nce(-e_pos, -e_neg).item(), rtol=1e-6):
            return failed("the sign of the energies is flipped", "Low energy means likely: the logits are −E.")
        if close(out, B * expected, rtol=1e-6):
            return failed("your loss is summed over the batch", "Take the mean over the batch.")
        if close(out, -expected, rtol=1e-6):
            return failed("your loss has the wrong sign", "It is a negative log-probability, so it is ≥ 0.")
        return failed("wrong value", "Cross-entropy of the logits −[E⁺, E⁻_1, …, E⁻_N] with the positive (index 0) "
                      "as the label.")
    big_pos, big_neg = e_pos * 200, e_neg * 200
    big_pos[0], big_neg[-1, 0] = 900.0, -900.0  # exp(-900) underflows and exp(900) overflows in float64
    out = as_numpy(_quiet(fn, big_pos.clone(), big_neg.clone()))
    if out.shape != () or not np.isfinite(out) or not close(out, info_nce(big_pos, big_neg).item(), rtol=1e-6):
        return failed("for large energies your loss is inf, nan or wrong",
                      "Use a log-sum-exp (torch.logsumexp or F.cross_entropy) instead of exp then log.")
    return passed("Correct, and numerically stable.")


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
# Exercise: how many counter-examples land near the positive
# ---------------------------------------------------------------------------------------------
@checker("the fraction of useful counter-examples")
def check_counter_example_fraction(fn: Callable[[int, float], Any]) -> Result:
    """Check ``fn(dim, radius)`` = P(|u − a| < r) for u uniform in [−1, 1]^dim and a at the centre: the
    volume of a ``dim``-ball of radius r over 2^dim (for r ≤ 1)."""
    rng = np.random.default_rng()
    cases = [(1, 0.3), (2, 0.5), (int(rng.integers(3, 12)), float(rng.uniform(0.2, 1.0))), (16, 0.5)]
    for dim, r in cases:
        out = as_numpy(_quiet(fn, dim, r))
        expected = math.pi ** (dim / 2) / math.gamma(dim / 2 + 1) * r**dim / 2**dim
        if out.shape != ():
            return failed(f"your function returned shape {out.shape}; expected a number")
        if not close(out, expected, rtol=1e-4, atol=0):
            if dim >= 3 and abs(float(out) - expected) < 0.1 * expected + 3e-3:
                return failed(f"close but not exact for dim={dim} (a Monte Carlo estimate?)",
                              "Use the closed form: the volume of a d-ball is π^(d/2) r^d / Γ(d/2 + 1).")
            return failed(f"wrong value for dim={dim}, radius={r:.3g}",
                          "The box [−1, 1]^d has volume 2^d; the ball of radius r has π^(d/2) r^d / Γ(d/2 + 1).")
    return passed("Correct: the useful fraction shrinks exponentially with the dimension.")
