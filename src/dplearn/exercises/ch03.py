"""Checkers for the exercises of chapter 3 (DDPM).

Each checker tests the reader's answer on fresh random inputs against a float64 reference and
returns a :class:`~dplearn.exercises.checking.Result`; none of them prints the reference answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from dplearn.exercises.checking import (
    NotAttempted,
    Result,
    as_numpy,
    call,
    checker,
    close,
    failed,
    passed,
)

__all__ = ["check_posterior_mean", "check_simplified_loss", "check_small_beta_T", "SMALL_BETA_T_CHOICES"]


# ---------------------------------------------------------------------------------------------
# Exercise: the posterior mean
# ---------------------------------------------------------------------------------------------
def _posterior_mean(x0, xt, beta_t, abar_t, abar_prev, sqrt=True, swap=False, abar_in_num=False):
    """Reference (and a few typical mistakes, for hints)."""
    r = np.sqrt if sqrt else (lambda v: v)
    a_t = 1.0 - beta_t
    c0 = r(abar_t if abar_in_num else abar_prev) * beta_t / (1.0 - abar_t)
    ct = r(a_t) * (1.0 - abar_prev) / (1.0 - abar_t)
    if swap:
        c0, ct = ct, c0
    return c0 * x0 + ct * xt


@checker("posterior mean")
def check_posterior_mean(posterior_mean: Callable[..., Any]) -> Result:
    """Check ``posterior_mean(x0, xt, beta_t, alpha_bar_t, alpha_bar_prev)`` = mean of q(x_{t-1} | x_t, x_0).

    ``x0``, ``xt`` are NumPy arrays of shape (B, d); the schedule values are floats.
    """
    rng = np.random.default_rng()
    for trial in range(5):
        B, d = int(rng.integers(3, 9)), int(rng.integers(1, 4))
        x0, xt = rng.normal(size=(B, d)), rng.normal(size=(B, d))
        abar_prev = float(rng.uniform(0.05, 0.99)) if trial else 1.0  # trial 0: the first step
        beta_t = float(rng.uniform(0.01, 0.4))
        abar_t = abar_prev * (1.0 - beta_t)
        args = (x0.copy(), xt.copy(), beta_t, abar_t, abar_prev)
        out = as_numpy(call(posterior_mean, *args))
        expected = _posterior_mean(*args)
        if out.shape != expected.shape:
            return failed(f"for x0 and xt of shape {x0.shape} your function returned shape {out.shape}",
                          "The mean has the shape of x_t: combine x0 and xt elementwise.")
        if close(out, expected, rtol=1e-6, atol=1e-9):
            continue
        if close(out, _posterior_mean(*args, swap=True), rtol=1e-6, atol=1e-9):
            return failed("the two coefficients are swapped",
                          "x0 is weighted by √ᾱ_{t-1} β_t / (1-ᾱ_t), xt by √α_t (1-ᾱ_{t-1}) / (1-ᾱ_t).")
        if close(out, _posterior_mean(*args, sqrt=False), rtol=1e-6, atol=1e-9):
            return failed("the coefficients are missing square roots",
                          "Means scale with √ᾱ and √α (standard deviations), variances with ᾱ and α.")
        if close(out, _posterior_mean(*args, abar_in_num=True), rtol=1e-6, atol=1e-9):
            return failed("the x0 coefficient uses ᾱ_t where ᾱ_{t-1} belongs",
                          "x_{t-1} given x0 has mean √ᾱ_{t-1} x0: that is where the x0 term comes from.")
        if trial == 0:
            return failed("wrong at the first step (ᾱ_{t-1} = 1), where the posterior mean must be x0 itself",
                          "With ᾱ_{t-1} = 1 the xt coefficient vanishes and the x0 coefficient is β_t/(1-ᾱ_t) = 1.")
        return failed("wrong posterior mean",
                      "Multiply q(x_{t-1}|x0) by q(x_t|x_{t-1}), collect the terms in x_{t-1}, "
                      "and complete the square: the mean is (linear coefficient) × (variance).")
    return passed("Correct: your posterior mean matches on random inputs, including the first step.")


# ---------------------------------------------------------------------------------------------
# Exercise: the simplified loss
# ---------------------------------------------------------------------------------------------
class _RandomDenoiser(torch.nn.Module):
    """A fixed random function (x_t, t) -> eps_hat, standing in for a network."""

    def __init__(self, d: int, T: int, g: torch.Generator):
        super().__init__()
        self.W = torch.randn(d, d, generator=g) * 0.5
        self.b = torch.randn(T, d, generator=g) * 0.3

    def forward(self, x, t):
        return torch.tanh(x @ self.W) + self.b[t]


def _simplified_loss(model, x0, t, noise, alphas_cumprod, sqrt=True, feed=None, target="eps"):
    a = alphas_cumprod.double()[t].reshape(-1, *([1] * (x0.ndim - 1)))
    r = torch.sqrt if sqrt else (lambda v: v)
    xt = r(a) * x0.double() + r(1 - a) * noise.double()
    inp = xt if feed is None else feed
    eps_hat = model(inp.float(), t).double()
    goal = noise.double() if target == "eps" else x0.double()
    return ((eps_hat - goal) ** 2).mean()


@checker("simplified loss")
def check_simplified_loss(simplified_loss: Callable[..., Any]) -> Result:
    """Check ``simplified_loss(model, x0, t, noise, alphas_cumprod)`` = mean ‖ε − ε̂(x_t, t)‖²."""
    g = torch.Generator().manual_seed(int(np.random.default_rng().integers(2**31)))
    for _ in range(3):
        T = int(torch.randint(20, 200, (1,), generator=g))
        B, d = int(torch.randint(4, 12, (1,), generator=g)), int(torch.randint(1, 4, (1,), generator=g))
        betas = torch.linspace(1e-3, 0.1, T, dtype=torch.float64)
        alphas_cumprod = torch.cumprod(1 - betas, 0).float()
        model = _RandomDenoiser(d, T, g)
        x0 = torch.randn(B, d, generator=g)
        t = torch.randint(0, T, (B,), generator=g)
        noise = torch.randn(B, d, generator=g)
        args = (model, x0.clone(), t.clone(), noise.clone(), alphas_cumprod.clone())
        out = call(simplified_loss, *args)
        value = as_numpy(out)
        if value.size != 1:
            return failed(f"your function returned shape {value.shape}; expected a scalar",
                          "Average the squared error over the batch and the dimensions.")
        expected = _simplified_loss(*args)
        if close(value.reshape(()), expected, rtol=1e-4):
            continue
        if close(value.reshape(()), expected * B * d, rtol=1e-4) or close(value.reshape(()), expected * d, rtol=1e-4):
            return failed("your loss is a sum, not a mean", "Use the mean over all elements, as .mean() does.")
        if close(value.reshape(()), _simplified_loss(*args, sqrt=False), rtol=1e-4):
            return failed("x_t is built without square roots",
                          "x_t = √ᾱ_t x0 + √(1-ᾱ_t) ε: the coefficients are square roots.")
        if close(value.reshape(()), _simplified_loss(*args, feed=x0), rtol=1e-4):
            return failed("the model is fed the clean x0", "Feed the noisy x_t (and t) to the model.")
        if close(value.reshape(()), _simplified_loss(*args, target="x0"), rtol=1e-4):
            return failed("the model output is compared with x0", "The model predicts the noise ε: compare with `noise`.")
        return failed("wrong loss value",
                      "Gather ᾱ at each example's t, build x_t, call model(x_t, t), and average (ε̂ − ε)².")
    return passed("Correct: your loss matches on random models, data and steps.")


# ---------------------------------------------------------------------------------------------
# Exercise (conceptual): a schedule whose last beta is too small
# ---------------------------------------------------------------------------------------------
SMALL_BETA_T_CHOICES = {
    "a": "Nothing changes: the network learned to remove noise at every step, so the samples are as good.",
    "b": "Each mode still comes out sharp, but the modes get the wrong shares of the samples: the sampler "
         "starts from N(0, I), which has forgotten what q(x_T) still remembers about the data (such as "
         "which mode is heavier).",
    "c": "All samples collapse onto the heaviest mode.",
    "d": "The modes come out blurred, each as wide as the noise left at step T.",
    "e": "Sampling fails with NaNs because ᾱ_T is not 0.",
}

_SMALL_BETA_T_HINTS = {
    "a": "The network is trained on x_T drawn from q(x_T | x0). Where does the sampler's x_T come from, "
         "and what does q(x_T) still know about x0 when ᾱ_T is far from 0?",
    "c": "The reverse steps follow the data's density near every mode; nothing pushes all points to one mode. "
         "What changes is where the chain *starts*.",
    "d": "The last reverse steps see almost clean points and denoise them locally, exactly as in training; "
         "think about what the start of the chain decides instead.",
    "e": "Every coefficient stays finite when ᾱ_T > 0; the problem is statistical, not numerical.",
}


@checker("a too-small β_T")
def check_small_beta_T(answer: Any) -> Result:
    """Check the choice (``"a"``–``"e"``) for what happens when ᾱ_T is far from 0."""
    if answer is None or answer is Ellipsis or (isinstance(answer, str) and not answer.strip()):
        raise NotAttempted
    choice = str(answer).strip().lower().strip("()")
    if choice not in SMALL_BETA_T_CHOICES:
        return failed(f"{answer!r} is not one of the choices", f"Answer with one of {', '.join(SMALL_BETA_T_CHOICES)}.")
    if choice == "b":
        return passed("Correct: the prior p(x_T) = N(0, I) no longer matches q(x_T); the term L_T > 0 says so.")
    return failed("Not this one.", _SMALL_BETA_T_HINTS[choice])
