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
    MultipleChoice,
    Result,
    as_numpy,
    call,
    checker,
    close,
    failed,
    passed,
)

__all__ = ["check_posterior_mean", "check_simplified_loss", "check_bound_weight", "check_mode_coverage",
           "check_small_beta_T", "check_energy_distance", "SMALL_BETA_T_CHOICES"]


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

_SMALL_BETA_T = MultipleChoice(
    question="ch03.small-beta",
    options=tuple(SMALL_BETA_T_CHOICES),
    key="2604937a92023ce0",
    hints={
        "110de2486143836a": "The network is trained on x_T drawn from q(x_T | x0). Where does the sampler's "
                            "x_T come from, and what does q(x_T) still know about x0 when ᾱ_T is far from 0?",
        "5681933376e58301": "The reverse steps follow the data's density near every mode; nothing pushes all "
                            "points to one mode. What changes is where the chain *starts*.",
        "20c7956c75d9fd49": "The last reverse steps see almost clean points and denoise them locally, exactly "
                            "as in training; think about what the start of the chain decides instead.",
        "5e4ad8907b0cb035": "Every coefficient stays finite when ᾱ_T > 0; the problem is statistical, not "
                            "numerical.",
    },
    correct="Correct! Now name the term of the bound that warns you in advance, and compute it.",
)


@checker("a too-small β_T")
def check_small_beta_T(answer: Any) -> Result:
    """Check the choice (``"a"``–``"e"``) for what happens when ᾱ_T is far from 0."""
    return _SMALL_BETA_T.check(answer)


# ---------------------------------------------------------------------------------------------
# Exercise: the weight λ_t of a denoising term
# ---------------------------------------------------------------------------------------------
def _bound_weight(beta_t, abar_t, sigma2, half=True, alpha=True, sqrt_noise=False, square=True):
    """Reference λ_t = β_t² / (2 σ_t² α_t (1 − ᾱ_t)), and typical slips for hints."""
    b = beta_t**2 if square else beta_t
    noise = np.sqrt(1.0 - abar_t) if sqrt_noise else 1.0 - abar_t
    a = 1.0 - beta_t if alpha else 1.0
    return b / ((2.0 if half else 1.0) * sigma2 * a * noise)


@checker("the weight of a denoising term")
def check_bound_weight(bound_weight: Callable[..., Any]) -> Result:
    """Check ``bound_weight(beta_t, alpha_bar_t, sigma2_t)`` = β_t² / (2 σ_t² α_t (1 − ᾱ_t)), elementwise
    on NumPy arrays of one shape."""
    rng = np.random.default_rng()
    n = int(rng.integers(4, 10))
    beta = rng.uniform(0.05, 0.5, n)                   # large steps: α_t = 1 − β_t differs from 1
    abar = np.cumprod(1.0 - beta) * rng.uniform(0.3, 0.9)
    sigma2 = rng.uniform(0.02, 0.6, n)
    out = as_numpy(call(bound_weight, beta.copy(), abar.copy(), sigma2.copy()))
    expected = _bound_weight(beta, abar, sigma2)
    if out.shape != expected.shape:
        return failed(f"for inputs of shape {beta.shape} your function returned shape {out.shape}",
                      "Compute the weight elementwise: one λ_t per step.")
    if close(out, expected, rtol=1e-6):
        return passed("Correct: the bound weights each step's squared noise error by λ_t.")
    slips = [
        (dict(half=False), "the factor 1/2 is missing",
         "The Gaussian KL has ‖μ̃ − μ_θ‖² / (2σ²): keep the 2."),
        (dict(alpha=False), "the factor α_t is missing",
         "μ_θ and μ̃ both carry 1/√α_t in front of the noise term; squared, that is 1/α_t."),
        (dict(sqrt_noise=True), "1 − ᾱ_t appears under a square root",
         "The noise term of the mean is β_t/√(1−ᾱ_t) · ε; squaring it gives 1 − ᾱ_t itself."),
        (dict(square=False), "β_t is not squared",
         "The mean difference is (β_t / (√α_t √(1−ᾱ_t))) (ε̂ − ε): its square has β_t²."),
    ]
    for kwargs, message, hint in slips:
        if close(out, _bound_weight(beta, abar, sigma2, **kwargs), rtol=1e-6):
            return failed(message, hint)
    return failed("wrong weight",
                  "Write μ̃_t and μ_θ through ε and ε̂, subtract, and divide the squared norm by 2σ_t².")


# ---------------------------------------------------------------------------------------------
# Exercise: per-mode coverage
# ---------------------------------------------------------------------------------------------
def _coverage(x, means, radius, rule="nearest"):
    """Reference (``rule="nearest"``) and typical slips: ``"any"`` counts a sample for every mode within
    the radius, ``"no_radius"`` for its nearest mode however far, ``"squared"`` compares squared
    distances with the radius, ``"of_counted"`` divides by the counted samples instead of all."""
    dist = np.linalg.norm(x[:, None, :] - means[None, :, :], axis=-1)
    if rule == "squared":
        dist = dist**2
    nearest = dist.argmin(1)
    near = dist[np.arange(len(x)), nearest] <= radius
    if rule == "any":
        per_mode = (dist <= radius).sum(0) / len(x)
        return per_mode, 1.0 - per_mode.sum()
    if rule == "no_radius":
        near = np.ones(len(x), dtype=bool)
    counts = np.bincount(nearest[near], minlength=len(means)).astype(float)
    per_mode = counts / (max(near.sum(), 1) if rule == "of_counted" else len(x))
    return per_mode, float(1.0 - near.mean())


@checker("per-mode coverage")
def check_mode_coverage(mode_coverage: Callable[..., Any]) -> Result:
    """Check ``mode_coverage(samples (N, d), means (K, d), radius)`` → ``(per_mode (K,), off)``: each
    sample counts for its nearest mode when it lies within ``radius`` of it; ``per_mode[k]`` is the
    fraction of all samples counted for mode k and ``off`` the fraction counted for none."""
    rng = np.random.default_rng()
    K = int(rng.integers(3, 7))
    angles = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.arange(K) / K
    means = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # at least 1 apart
    means[1] = means[0] + [0.3, 0.0]  # two modes closer than two radii: their disks overlap
    radius = 0.25
    x = np.concatenate([means[rng.integers(K, size=60)] + rng.normal(scale=0.12, size=(60, 2)),
                        rng.uniform(-1.5, 1.5, (30, 2)),
                        [means[0] + [0.15, 0.0],      # within the radius of both close modes
                         means[2] * 1.4,              # 0.4 from a mode: inside r only if squared
                         [3.0, 3.0]]])                # far from every mode
    x = x[rng.permutation(len(x))]
    out = call(mode_coverage, x.copy(), means.copy(), radius)
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        return failed("return a pair (per_mode, off)", "per_mode has one fraction per mode; off is one number.")
    per_mode, off = as_numpy(out[0]), as_numpy(out[1])
    if per_mode.shape != (K,) or off.size != 1:
        return failed(f"for {K} modes your per_mode has shape {per_mode.shape} and off {off.shape}",
                      "per_mode: one number per mode, shape (K,); off: a single number.")
    want_modes, want_off = _coverage(x, means, radius)
    if close(per_mode, want_modes, atol=1e-9) and close(off.reshape(()), want_off, atol=1e-9):
        return passed("Correct: every sample is counted once, for its nearest mode, or not at all.")
    slips = [("any", "a sample near two modes was counted for both",
              "Find each sample's nearest mode first, then check the radius for that mode only."),
             ("no_radius", "samples far from every mode were counted too",
              "A sample counts only if it lies within the radius of its nearest mode."),
             ("squared", "squared distances were compared with the radius",
              "Compare the distance itself (not its square) with the radius."),
             ("of_counted", "the fractions are of the counted samples, not of all samples",
              "Divide by the total number of samples, so that per_mode.sum() + off = 1.")]
    for rule, message, hint in slips:
        modes, o = _coverage(x, means, radius, rule)
        if close(per_mode, modes, atol=1e-9):
            return failed(message, hint)
    if close(per_mode, want_modes * len(x), atol=1e-9):
        return failed("per_mode holds counts, not fractions", "Divide the counts by the number of samples.")
    if close(per_mode, want_modes, atol=1e-9):
        return failed("per_mode is right but off is not", "off is the fraction of samples counted for no mode.")
    return failed("wrong coverage", "Distances to every mode, the nearest one, the radius test, then "
                  "fractions of all samples.")


# ---------------------------------------------------------------------------------------------
# Exercise: the energy distance
# ---------------------------------------------------------------------------------------------
def _pair_mean(a, b, squared=False, off_diagonal=False):
    d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    d = d2 if squared else np.sqrt(d2)
    if off_diagonal:
        n = len(a)
        return (d.sum() - np.trace(d)) / (n * (n - 1))
    return d.mean()


def _energy(x, y, squared=False, unbiased=False, factor=2.0):
    return (factor * _pair_mean(x, y, squared) - _pair_mean(x, x, squared, unbiased)
            - _pair_mean(y, y, squared, unbiased))


@checker("the energy distance")
def check_energy_distance(energy_distance: Callable[..., Any]) -> Result:
    """Check ``energy_distance(x, y)`` = 2 E‖X − Y‖ − E‖X − X′‖ − E‖Y − Y′‖, each expectation the average
    over all pairs (the V-statistic), for NumPy arrays ``x`` (N, d) and ``y`` (M, d)."""
    rng = np.random.default_rng()
    d = int(rng.integers(1, 4))
    x = rng.normal(size=(int(rng.integers(5, 12)), d))
    y = rng.normal(size=(int(rng.integers(5, 12)), d)) * 1.5 + 0.3
    out = as_numpy(call(energy_distance, x.copy(), y.copy()))
    if out.size != 1:
        return failed(f"your function returned shape {out.shape}; expected one number",
                      "Average the pairwise distances: each expectation is one number.")
    out = out.reshape(())
    if close(out, _energy(x, y), rtol=1e-6):
        same = as_numpy(call(energy_distance, x.copy(), x.copy())).reshape(())
        if not close(same, 0.0, atol=1e-9):
            return failed("a sample against itself should give exactly 0",
                          "With all pairs averaged, the three terms cancel when y is x.")
        return passed("Correct: zero only when the two distributions agree, and it sees more than means.")
    if close(out, _energy(x, y, squared=True), rtol=1e-6):
        return failed("you used squared distances",
                      "With ‖·‖² the three terms collapse to 2‖mean(x) − mean(y)‖²: a ring and a blob with the "
                      "same mean would score 0. Use the distances themselves.")
    if close(out, _energy(x, y, unbiased=True), rtol=1e-6):
        return failed("the within-sample averages leave out the pairs of a point with itself",
                      "That is the unbiased U-statistic; here average over all N² (and M²) pairs, as the "
                      "library's `energy_distance` does.")
    if close(out, _energy(x, y, factor=1.0), rtol=1e-6):
        return failed("the cross term is missing its factor 2", "D² = 2 E‖X − Y‖ − E‖X − X′‖ − E‖Y − Y′‖.")
    if close(out, -_energy(x, y), rtol=1e-6):
        return failed("the sign is flipped", "The cross term is the positive one: D² ≥ 0.")
    if close(out, np.sqrt(max(_energy(x, y), 0.0)), rtol=1e-6):
        return failed("you returned D, the square root", "Return D² itself, as the chapter's tables do.")
    return failed("wrong value",
                  "Average ‖x_i − y_j‖ over all pairs (twice), and subtract the averages within x and within y.")
