"""Checkers for the exercises of chapter 1 (KL divergence).

Each checker tests the reader's answer against :mod:`dplearn.divergence` on fresh random inputs
and returns a :class:`~dplearn.exercises.checking.Result`; none of them prints the reference answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from dplearn.divergence import kl_categorical, kl_gaussian
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
    "check_kl_categorical",
    "check_kl_gaussian",
    "check_mode_seeking",
    "check_predicted_kl",
]




def _random_categorical(rng: np.random.Generator, size: tuple[int, ...], k: int) -> np.ndarray:
    return rng.dirichlet(np.full(k, 0.8), size=size)


# ---------------------------------------------------------------------------------------------
# Exercise: discrete KL
# ---------------------------------------------------------------------------------------------
@checker("discrete KL divergence")
def check_kl_categorical(fn: Callable[[np.ndarray, np.ndarray], Any]) -> Result:
    """Check ``fn(p, q)`` = KL(p‖q) in nats over the last axis, with ``0 log 0 = 0``."""
    rng = np.random.default_rng()
    k = int(rng.integers(4, 9))

    # 1. strictly positive, one pair
    p, q = _random_categorical(rng, (), k), _random_categorical(rng, (), k)
    out = quiet_call(fn, p.copy(), q.copy())
    expected = kl_categorical(p, q)
    if out.shape != ():
        return failed(f"for p, q of shape ({k},) your function returned shape {out.shape}; expected a scalar",
                      "Sum over the categories (the last axis).")
    if not close(out, expected):
        if close(out, kl_categorical(q, p)):
            return failed("your function returned KL(q‖p) instead of KL(p‖q)",
                          "The expectation is under p: weight log(p/q) by p.")
        if close(out, expected / math.log(2)):
            return failed("your answer is in bits", "Use the natural logarithm (np.log) so the result is in nats.")
        if close(out, -expected):
            return failed("your answer has the wrong sign", "KL(p‖q) = Σ p log(p/q) ≥ 0.")
        return failed("wrong value on a pair of strictly positive distributions",
                      "KL(p‖q) = Σ_k p_k (log p_k − log q_k).")

    # 2. zeros in p (and in q where p is zero too)
    p = _random_categorical(rng, (), k)
    p[rng.choice(k, size=2, replace=False)] = 0.0
    p /= p.sum()
    q = _random_categorical(rng, (), k)
    q[np.flatnonzero(p == 0)[0]] = 0.0
    q /= q.sum()
    out = quiet_call(fn, p.copy(), q.copy())
    if not np.all(np.isfinite(out)):
        return failed("your function returns nan or inf when some p_k = 0",
                      "By convention 0·log 0 = 0: leave out (or mask with np.where) the terms with p_k = 0.")
    if not close(out, kl_categorical(p, q)):
        return failed("wrong value when p has zero entries",
                      "Terms with p_k = 0 contribute exactly 0, whatever q_k is.")

    # 3. q misses part of p's support
    q = _random_categorical(rng, (), k)
    q[np.flatnonzero(p > 0)[0]] = 0.0
    q /= q.sum()
    out = quiet_call(fn, p.copy(), q.copy())
    if not (out.shape == () and out == np.inf):
        return failed("when some q_k = 0 < p_k the KL must be inf",
                      "Q gives zero probability to an outcome P produces: the extra code length is infinite.")

    # 4. a batch: reduce over the last axis only
    p, q = _random_categorical(rng, (3, 5), k), _random_categorical(rng, (3, 5), k)
    out = quiet_call(fn, p.copy(), q.copy())
    if out.shape != (3, 5):
        return failed(f"for p, q of shape (3, 5, {k}) your function returned shape {out.shape}; expected (3, 5)",
                      "Sum over the last axis only: .sum(axis=-1).")
    if not close(out, kl_categorical(p, q)):
        return failed("wrong values on a batch of distributions", "Sum over the last axis only.")
    return passed("Correct! Your KL handles zeros, infinities and batches.")


# ---------------------------------------------------------------------------------------------
# Exercise: Gaussian closed form
# ---------------------------------------------------------------------------------------------
def _gaussian_mistake(out: np.ndarray, mu_p, var_p, mu_q, var_q) -> str | None:
    """Name a common mistake that reproduces ``out``, or None."""
    candidates = {
        "You computed KL(q‖p): the arguments are the wrong way round.":
            kl_gaussian(mu_q, var_q, mu_p, var_p),
        "Your formula treats the variances as standard deviations (or squares them again).":
            kl_gaussian(mu_p, var_p**2, mu_q, var_q**2),
        "Missing the factor 1/2 in front of the sum.":
            2.0 * kl_gaussian(mu_p, var_p, mu_q, var_q),
        "Missing the −1 inside the bracket (it makes KL(p‖p) = 0).":
            kl_gaussian(mu_p, var_p, mu_q, var_q) + 0.5 * np.shape(mu_p)[-1],
        "Sign of the log term: it is log(σ_q²/σ_p²), the variance of q on top.":
            kl_gaussian(mu_p, var_p, mu_q, var_q) - np.sum(np.log(var_q / var_p), axis=-1),
    }
    for hint, value in candidates.items():
        if close(out, value):
            return hint
    return None


@checker("Gaussian KL closed form")
def check_kl_gaussian(fn: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], Any]) -> Result:
    """Check ``fn(mu_p, var_p, mu_q, var_q)`` = KL of diagonal Gaussians, summed over the last axis."""
    rng = np.random.default_rng()
    d = int(rng.integers(2, 6))
    for shape in [(d,), (4, d)]:
        mu_p, mu_q = rng.normal(size=shape), rng.normal(size=shape)
        var_p, var_q = rng.uniform(0.2, 3.0, size=shape), rng.uniform(0.2, 3.0, size=shape)
        args = (mu_p, var_p, mu_q, var_q)
        out = quiet_call(fn, *(a.copy() for a in args))
        expected = kl_gaussian(*args)
        if out.shape != np.shape(expected):
            return failed(f"for inputs of shape {shape} your function returned shape {out.shape}, "
                          f"expected {np.shape(expected)}",
                          "Sum the per-dimension terms over the last axis.")
        if not close(out, expected):
            hint = _gaussian_mistake(out, *args)
            return failed(f"wrong value for inputs of shape {shape}",
                          hint or "½ Σ [log(σ_q²/σ_p²) + (σ_p² + (μ_p − μ_q)²)/σ_q² − 1].")
    same = quiet_call(fn, mu_p.copy(), var_p.copy(), mu_p.copy(), var_p.copy())
    if not close(same, np.zeros(mu_p.shape[:-1]), atol=1e-9):
        return failed("KL(p‖p) should be 0", "Check the −1 inside the bracket.")
    return passed("Correct! That is the closed form chapter 3 uses for every term of the diffusion bound.")


# ---------------------------------------------------------------------------------------------
# Conceptual exercises
# ---------------------------------------------------------------------------------------------
# Options "forward" (KL(p‖q), option A) and "reverse" (KL(q‖p), option B); the key is a salted hash.
_MODE_SEEKING = MultipleChoice(
    question="ch01.mode-seeking",
    options=("forward", "reverse"),
    aliases={"a": "forward", "kl(p||q)": "forward", "kl(p‖q)": "forward", "forwardkl": "forward",
             "b": "reverse", "kl(q||p)": "reverse", "kl(q‖p)": "reverse", "reversekl": "reverse"},
    key="a3b94104edba3beb",
    hints={"231772cb54b9f40d": "Ask which objective is infinite when q puts mass where p has almost "
                               "none, and which when q misses mass that p has."},
    correct="Correct! Now give the reason in one sentence: where can each objective become infinite?",
)


@checker("mode seeking")
def check_mode_seeking(answer: Any) -> Result:
    """Check the reader's choice of objective that fits a single Gaussian to one mode of a bimodal target.

    ``answer`` is ``"forward"`` (KL(p‖q), option A) or ``"reverse"`` (KL(q‖p), option B).
    """
    return _MODE_SEEKING.check(answer)


# The exercise: predict KL(N(0, 1) ‖ N(1, 4)) in nats, before computing it.
_PREDICT = dict(mu_p=0.0, var_p=1.0, mu_q=1.0, var_q=4.0)


@checker("predicted KL")
def check_predicted_kl(value: Any) -> Result:
    """Check a predicted value of KL(N(0, 1) ‖ N(1, 4)) in nats (to 2 significant digits)."""
    if value is None or value is Ellipsis:
        raise NotAttempted
    try:
        value = float(as_numpy(value))
    except (TypeError, ValueError):
        return failed(f"expected a number, got {value!r}", "Write the value as a float, e.g. 0.123.")
    a = _PREDICT
    expected = float(kl_gaussian(a["mu_p"], a["var_p"], a["mu_q"], a["var_q"]))
    if math.isclose(value, expected, rel_tol=1e-2):
        return passed("Correct!")
    wrong = {
        "That is KL(N(1, 4) ‖ N(0, 1)), the reverse direction.":
            kl_gaussian(a["mu_q"], a["var_q"], a["mu_p"], a["var_p"]),
        "You used the standard deviation 2 where the formula needs the variance 4.":
            kl_gaussian(a["mu_p"], a["var_p"], a["mu_q"], math.sqrt(a["var_q"])),
        "That is in bits; the question asks for nats (natural log).":
            kl_gaussian(a["mu_p"], a["var_p"], a["mu_q"], a["var_q"]) / math.log(2),
    }
    for hint, candidate in wrong.items():
        if math.isclose(value, float(candidate), rel_tol=1e-2):
            return failed("Not quite.", hint)
    return failed("Not quite.", "Plug μ_p=0, σ_p²=1, μ_q=1, σ_q²=4 into "
                  "½[log(σ_q²/σ_p²) + (σ_p² + (μ_p − μ_q)²)/σ_q² − 1].")
