"""Checkers for the exercises of chapter 4 (DDIM and scores).

Each checker tests the reader's answer on fresh random inputs against a float64 reference and
returns a :class:`~dplearn.exercises.checking.Result`; none of them prints the reference answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dplearn.exercises.checking import (
    MultipleChoice,
    NotAttempted,
    Result,
    as_numpy,
    call,
    checker,
    close,
    failed,
    passed,
)

__all__ = ["check_ddim_step", "check_eps_to_score", "check_eta", "check_random_draws", "ETA_CHOICES"]


# ---------------------------------------------------------------------------------------------
# Exercise: one deterministic DDIM step
# ---------------------------------------------------------------------------------------------
def _ddim_step(x_t, eps, abar_t, abar_prev, sqrt=True, use_xt=False):
    r = np.sqrt if sqrt else (lambda v: v)
    x0_hat = x_t if use_xt else (x_t - r(1 - abar_t) * eps) / r(abar_t)
    return r(abar_prev) * x0_hat + r(1 - abar_prev) * eps


def _ddpm_mean(x_t, eps, abar_t, abar_prev):
    alpha = abar_t / abar_prev
    return (x_t - (1 - alpha) / np.sqrt(1 - abar_t) * eps) / np.sqrt(alpha)


@checker("DDIM step")
def check_ddim_step(ddim_step: Callable[..., Any]) -> Result:
    """Check ``ddim_step(x_t, eps, alpha_bar_t, alpha_bar_prev)``: the η = 0 DDIM update (Song et al., eq. 12).

    ``x_t``, ``eps`` are NumPy arrays (B, d); ``alpha_bar_prev > alpha_bar_t`` are floats (the previous
    step of a sub-sequence need not be t − 1).
    """
    rng = np.random.default_rng()
    for trial in range(5):
        B, d = int(rng.integers(3, 9)), int(rng.integers(1, 4))
        x_t, eps = rng.normal(size=(B, d)), rng.normal(size=(B, d))
        abar_t = float(rng.uniform(0.01, 0.7))
        abar_prev = float(rng.uniform(abar_t + 0.05, 0.999)) if trial else 1.0  # trial 0: the last step
        args = (x_t.copy(), eps.copy(), abar_t, abar_prev)
        out = as_numpy(call(ddim_step, *args))
        expected = _ddim_step(*args)
        if out.shape != expected.shape:
            return failed(f"for x_t of shape {x_t.shape} your function returned shape {out.shape}",
                          "The update is elementwise: the result has the shape of x_t.")
        if close(out, expected, rtol=1e-6, atol=1e-9):
            continue
        if close(out, _ddpm_mean(*args), rtol=1e-6, atol=1e-9):
            return failed("this is the mean of a DDPM step, not DDIM",
                          "DDIM first predicts x̂0 from ε, then re-noises it to the previous level with the *same* ε.")
        if close(out, _ddim_step(*args, sqrt=False), rtol=1e-6, atol=1e-9):
            return failed("the coefficients are missing square roots",
                          "x_t = √ᾱ_t x0 + √(1-ᾱ_t) ε: use square roots of ᾱ and 1-ᾱ.")
        if close(out, _ddim_step(*args, use_xt=True), rtol=1e-6, atol=1e-9):
            return failed("x_t was used in place of the predicted x̂0", "x̂0 = (x_t − √(1-ᾱ_t) ε) / √ᾱ_t.")
        if trial == 0:
            return failed("wrong at the last step (ᾱ_prev = 1), where the step must return x̂0",
                          "With ᾱ_prev = 1 the ε term vanishes.")
        return failed("wrong DDIM step",
                      "Predict x̂0 from (x_t, ε), then return √ᾱ_prev x̂0 + √(1-ᾱ_prev) ε.")
    return passed("Correct: your DDIM step matches on random inputs, including the last step.")


# ---------------------------------------------------------------------------------------------
# Exercise: noise prediction → score
# ---------------------------------------------------------------------------------------------
@checker("ε → score")
def check_eps_to_score(eps_to_score: Callable[..., Any]) -> Result:
    """Check ``eps_to_score(eps, alpha_bar_t)`` = −ε / √(1 − ᾱ_t)."""
    rng = np.random.default_rng()
    for _ in range(4):
        eps = rng.normal(size=(int(rng.integers(2, 8)), 2))
        abar = float(rng.uniform(0.05, 0.95))
        out = as_numpy(call(eps_to_score, eps.copy(), abar))
        expected = -eps / np.sqrt(1 - abar)
        if out.shape != expected.shape:
            return failed(f"for eps of shape {eps.shape} your function returned shape {out.shape}",
                          "The score has the shape of x (and of ε).")
        if close(out, expected, rtol=1e-6, atol=1e-9):
            continue
        if close(out, -expected, rtol=1e-6, atol=1e-9):
            return failed("the sign is wrong",
                          "ε points from the clean point towards the noisy one; the score points back towards the data.")
        if close(out, -eps / (1 - abar), rtol=1e-6, atol=1e-9):
            return failed("you divided by the variance 1 − ᾱ_t",
                          "The noise is √(1-ᾱ_t) ε; the score of N(√ᾱ x0, (1-ᾱ)I) is −(x_t − √ᾱ x0)/(1-ᾱ).")
        if close(out, -eps / np.sqrt(abar), rtol=1e-6, atol=1e-9):
            return failed("you divided by √ᾱ_t", "The noise scale at step t is √(1 − ᾱ_t).")
        return failed("wrong score", "Start from the score of q(x_t | x0) and substitute x_t − √ᾱ_t x0 = √(1-ᾱ_t) ε.")
    return passed("Correct: score = −ε / √(1 − ᾱ_t).")


# ---------------------------------------------------------------------------------------------
# Exercises (conceptual): η, and how much randomness DDIM uses
# ---------------------------------------------------------------------------------------------
ETA_CHOICES = {
    "a": "With η = 0 no noise is added after x_T is drawn, so x_0 is a fixed function of x_T; with η = 1 "
         "and all T steps, σ_t² equals the posterior variance β̃_t and DDIM is DDPM's ancestral sampler.",
    "b": "With η = 0 the sampler is deterministic because the network is evaluated only once; η = 1 "
         "gives σ_t² = β_t, the other DDPM variance.",
    "c": "With η = 0 the output is deterministic only for a linear network; η = 1 returns pure noise.",
    "d": "Neither is deterministic, since x_T is random; η = 1 makes every step ignore the network's "
         "noise prediction.",
}

_ETA = MultipleChoice(
    question="ch04.eta",
    options=tuple(ETA_CHOICES),
    key="390fc3aa05be77cd",
    hints={
        "04e8826a3e7091cc": "The network is called at every step whatever η is. Set η = 1 in σ_t(η) and "
                            "compare with β̃_t.",
        "1a537c9af98a2e63": "Look at the update: with σ = 0, which term could inject randomness?",
        "ce7d5e4f125a2d4b": "'Deterministic' here means: the same x_T always gives the same x_0. Which η has "
                            "no noise term?",
    },
    correct="Correct! Check the η = 1 half numerically: σ_t(1)² against β̃_t on any schedule.",
)


@checker("what η does")
def check_eta(answer: Any) -> Result:
    """Check the choice (``"a"``–``"d"``) about η = 0 and η = 1."""
    return _ETA.check(answer)


@checker("random numbers drawn by DDIM")
def check_random_draws(count: Any, n_samples: int = 500, dim: int = 2, steps: int = 10) -> Result:
    """Check the predicted number of standard normal draws DDIM (η = 0) needs for ``n_samples`` points."""
    if count is None or count is Ellipsis:
        raise NotAttempted
    try:
        value = float(count)
    except (TypeError, ValueError):
        return failed(f"{count!r} is not a number", "Answer with a single integer.")
    expected = n_samples * dim
    if value == expected:
        return passed("Correct: only x_T is random; the rest of the chain is a deterministic map.")
    if value == n_samples * dim * (steps + 1) or value == n_samples * dim * steps:
        return failed("That is what a stochastic sampler would draw.",
                      "With η = 0, does any step after the first draw add noise?")
    return failed("Not quite.", "Count the Gaussian numbers in x_T, then those added by each η = 0 step.")
