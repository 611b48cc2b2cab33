"""Checkers for the exercises of chapter 2 (the forward process).

Each checker tests the reader's answer against :mod:`dplearn.diffusion` and
:mod:`dplearn.divergence` on fresh random inputs and returns a
:class:`~dplearn.exercises.checking.Result`; none of them prints the reference answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from dplearn.diffusion import NoiseSchedule, q_sample
from dplearn.divergence import kl_gaussian
from dplearn.exercises.checking import (
    MultipleChoice,
    NotAttempted,
    Result,
    as_numpy,
    checker,
    close,
    failed,
    passed,
    quiet_call,
)

__all__ = [
    "check_alphas_cumprod",
    "check_q_sample",
    "check_kl_to_prior",
    "check_snr_one",
    "check_why_alphas_cumprod_vanishes",
]




def _random_betas(rng: np.random.Generator, T: int) -> np.ndarray:
    return np.sort(rng.uniform(1e-3, 0.3, size=T))


# ---------------------------------------------------------------------------------------------
# Exercise: alphas_cumprod from betas
# ---------------------------------------------------------------------------------------------
@checker("alphas_cumprod from betas")
def check_alphas_cumprod(fn: Callable[[np.ndarray], Any]) -> Result:
    """Check ``fn(betas) -> alphas_cumprod``: :math:`\\bar\\alpha_t = \\prod_{s \\le t} (1 - \\beta_s)`,
    for a 1-D NumPy array ``betas`` of length T, returning length T."""
    rng = np.random.default_rng()
    for T in (1, int(rng.integers(5, 12)), int(rng.integers(50, 200))):
        betas = _random_betas(rng, T)
        out = quiet_call(fn, betas.copy())
        expected = NoiseSchedule(betas).float64("alphas_cumprod").numpy()
        if out.shape != expected.shape:
            if out.shape == (T + 1,):
                return failed(f"for T={T} betas you returned {T + 1} values",
                              "Return one value per step, ᾱ_1 … ᾱ_T; ᾱ_0 = 1 is not part of the array.")
            return failed(f"for betas of shape ({T},) you returned shape {out.shape}; expected ({T},)",
                          "Take a cumulative product along the only axis.")
        if close(out, expected, rtol=1e-8):
            continue
        alphas = 1 - betas
        wrong = [
            (np.cumprod(betas), "ᾱ multiplies the α_t = 1 − β_t (the signal kept), not the β_t."),
            (1 - np.cumsum(betas), "1 − Σβ is only the first-order approximation of the product Π(1 − β)."),
            (alphas, "ᾱ_t is the *cumulative* product of α_s = 1 − β_s over s ≤ t."),
            (np.concatenate([[1.0], np.cumprod(alphas)[:-1]]),
             "That is ᾱ_{t−1}: index t must include step t's own α_t."),
            (np.sqrt(np.cumprod(alphas)), "That is √ᾱ_t, the coefficient of x_0; return ᾱ_t itself."),
        ]
        for candidate, hint in wrong:
            if close(out, candidate, rtol=1e-8):
                return failed(f"wrong values for T={T}", hint)
        return failed(f"wrong values for T={T}", "ᾱ_t = (1 − β_1)(1 − β_2)…(1 − β_t); try np.cumprod.")
    return passed("Correct! ᾱ_t is the cumulative product of 1 − β_t.")


# ---------------------------------------------------------------------------------------------
# Exercise: the closed-form q_sample
# ---------------------------------------------------------------------------------------------
@checker("q_sample from scratch")
def check_q_sample(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], Any]) -> Result:
    """Check ``fn(x0, t, noise, alphas_cumprod) -> x_t = √ᾱ_t x0 + √(1 − ᾱ_t) noise``.

    ``x0`` and ``noise`` are float64 tensors of shape (B, ...), ``t`` a long tensor (B,) of indices
    into ``alphas_cumprod`` (shape (T,)).
    """
    rng = np.random.default_rng()
    g = torch.Generator().manual_seed(int(rng.integers(2**31)))
    T = int(rng.integers(20, 120))
    schedule = NoiseSchedule(_random_betas(rng, T) / 4)
    abar = schedule.float64("alphas_cumprod")
    for shape in ((int(rng.integers(3, 9)), 2), (int(rng.integers(3, 9)), 16, 2)):
        x0 = torch.randn(shape, generator=g, dtype=torch.float64)
        noise = torch.randn(shape, generator=g, dtype=torch.float64)
        t = torch.randint(0, T, (shape[0],), generator=g)
        t[0], t[-1] = 0, T - 1
        out = quiet_call(fn, x0.clone(), t.clone(), noise.clone(), abar.clone())
        expected = q_sample(schedule, x0, t, noise)
        if out.shape != tuple(shape):
            return failed(f"for x0 of shape {tuple(shape)} you returned shape {out.shape}",
                          "Pick ᾱ_t per example with alphas_cumprod[t] and reshape it to (B, 1, …, 1) "
                          "so that it broadcasts over the other dimensions of x0.")
        if close(out, expected, rtol=1e-8, atol=1e-10):
            continue
        a = abar[t].reshape(-1, *([1] * (len(shape) - 1)))
        wrong = [
            (a * x0 + (1 - a) * noise, "The coefficients are standard deviations: √ᾱ_t and √(1 − ᾱ_t)."),
            (a.sqrt() * x0 + (1 - a) * noise, "The noise is scaled by the standard deviation √(1 − ᾱ_t), "
                                              "not by the variance 1 − ᾱ_t."),
            (a.sqrt() * x0 + (1 - a.sqrt()) * noise, "The noise coefficient is √(1 − ᾱ_t), not 1 − √ᾱ_t: "
                                                     "the variances ᾱ_t and 1 − ᾱ_t add up to 1."),
        ]
        for candidate, hint in wrong:
            if close(out, candidate, rtol=1e-8, atol=1e-10):
                return failed(f"wrong values for x0 of shape {tuple(shape)}", hint)
        return failed(f"wrong values for x0 of shape {tuple(shape)}",
                      "x_t = √ᾱ_t · x0 + √(1 − ᾱ_t) · noise, with ᾱ_t = alphas_cumprod[t] for each example.")
    return passed("Correct! One line jumps to any step t.")


# ---------------------------------------------------------------------------------------------
# Exercise: how far from N(0, I) does the forward process end?
# ---------------------------------------------------------------------------------------------
@checker("KL of q(x_T | x_0) from N(0, I)")
def check_kl_to_prior(fn: Callable[[np.ndarray, float], Any]) -> Result:
    """Check ``fn(x0, alpha_bar) = KL(N(√ᾱ x0, (1 − ᾱ) I) ‖ N(0, I))`` in nats for a 1-D ``x0``."""
    rng = np.random.default_rng()
    for d, abar in ((1, float(rng.uniform(0.2, 0.8))), (int(rng.integers(2, 6)), float(rng.uniform(1e-4, 0.1))),
                    (int(rng.integers(2, 6)), float(rng.uniform(0.5, 0.99)))):
        x0 = rng.normal(size=d) * 2
        out = quiet_call(fn, x0.copy(), abar)
        expected = float(kl_gaussian(math.sqrt(abar) * x0, np.full(d, 1 - abar), np.zeros(d), np.ones(d)))
        if out.shape != ():
            return failed(f"for x0 of shape ({d},) you returned shape {out.shape}; expected a number",
                          "The KL of diagonal Gaussians sums over the dimensions.")
        if close(out, expected, rtol=1e-6):
            continue
        reverse = float(kl_gaussian(np.zeros(d), np.ones(d), math.sqrt(abar) * x0, np.full(d, 1 - abar)))
        no_mean = float(kl_gaussian(np.zeros(d), np.full(d, 1 - abar), np.zeros(d), np.ones(d)))
        std_as_var = float(kl_gaussian(math.sqrt(abar) * x0, np.full(d, math.sqrt(1 - abar)), np.zeros(d), np.ones(d)))
        wrong_mean = float(kl_gaussian(abar * x0, np.full(d, 1 - abar), np.zeros(d), np.ones(d)))
        for candidate, hint in (
            (reverse, "That is KL(N(0, I) ‖ q(x_T | x_0)); the question asks for KL(q ‖ N(0, I))."),
            (no_mean, "The mean √ᾱ x_0 is not zero: its squared length adds ½ ᾱ ‖x_0‖² to the KL."),
            (std_as_var, "The variance of q(x_T | x_0) is 1 − ᾱ (not its square root)."),
            (wrong_mean, "The mean of q(x_T | x_0) is √ᾱ x_0, not ᾱ x_0."),
        ):
            if math.isclose(float(out), candidate, rel_tol=1e-6):
                return failed(f"wrong value for d={d}", hint)
        return failed(f"wrong value for d={d}",
                      "Per dimension: ½[(1 − ᾱ) + ᾱ x_0² − 1 − log(1 − ᾱ)]; sum over dimensions.")
    return passed("Correct! The KL vanishes only when ᾱ → 0.")


# ---------------------------------------------------------------------------------------------
# Exercise: where does the cosine schedule's SNR cross 1?
# ---------------------------------------------------------------------------------------------
def _snr_one_fraction(s: float = 0.008) -> float:
    """t/T where ᾱ(t) = f(t)/f(0) = 1/2 (SNR = 1) for the uncapped cosine schedule with offset ``s``."""
    return (1 + s) * (2 / math.pi) * math.acos(math.cos(s / (1 + s) * math.pi / 2) / math.sqrt(2)) - s


@checker("SNR = 1 crossing of the cosine schedule")
def check_snr_one(fraction: Any) -> Result:
    """Check the fraction ``t/T`` (to 3 decimals) at which the cosine schedule (s = 0.008) has SNR = 1."""
    if fraction is None or fraction is Ellipsis:
        raise NotAttempted
    try:
        value = float(as_numpy(fraction))
    except (TypeError, ValueError):
        return failed(f"expected a number, got {fraction!r}", "Write t/T as a float, e.g. 0.123.")
    expected = _snr_one_fraction()
    if abs(value - expected) < 1e-3:
        return passed("Correct! Half of the signal is gone a little before the middle of the chain.")
    if 1.0 < value <= 1000:
        return failed("expected the fraction t/T in [0, 1], not a step number", "Divide by T.")
    if abs(value - 0.5) < 5e-4:
        return failed("Close, but that ignores the offset s.",
                      "0.5 is the answer for s = 0. Solve cos²(((u + s)/(1 + s))·π/2) = ½·f(0) for u = t/T.")
    return failed("Not quite.", "SNR = 1 means ᾱ = 1 − ᾱ = ½. Solve f(t)/f(0) = ½ for t/T with s = 0.008.")


# ---------------------------------------------------------------------------------------------
# Exercise: why must alphas_cumprod_T be nearly zero?
# ---------------------------------------------------------------------------------------------
_WHY = MultipleChoice(
    question="ch02.why",
    options=("a", "b", "c", "d"),
    key="366844c8f77b01c7",
    hints={
        "6e6da0bd2fa83806": "The amount the network must learn does not depend on ᾱ_T; think about where "
                            "sampling starts.",
        "ed33bfce0650e3fd": "The forward process is never inverted exactly; sampling *learns* a reverse "
                            "process.",
        "a4ee3ccfd99260b6": "Training cost per step is the same whatever ᾱ_T is; think about where sampling "
                            "starts.",
    },
    correct="Correct! Chapter 3 turns this into a number: the term L_T of the bound.",
)


@checker("why ᾱ_T must be nearly zero")
def check_why_alphas_cumprod_vanishes(answer: Any) -> Result:
    """Multiple choice (``"a"`` … ``"d"``): why a schedule must end with ᾱ_T ≈ 0."""
    return _WHY.check(answer)
