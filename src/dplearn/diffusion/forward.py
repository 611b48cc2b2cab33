"""The forward (noising) process: one step, the closed form, the posterior, and conversions.

Shapes: a batch ``x`` has shape ``(B, ...)`` (any trailing dims, e.g. ``(B, 2)`` points or
``(B, horizon, action_dim)`` action sequences); ``t`` is a long tensor of shape ``(B,)`` holding
each example's step **index** (``0 .. T-1``, index ``t`` = math step ``t + 1``, see
:mod:`dplearn.diffusion.schedule`). A Python ``int`` or 0-d tensor ``t`` applies to the whole batch.
Coefficients are gathered in float64 and cast to ``x``'s dtype, broadcast over the trailing dims.

Introduced in chapter 2 (:func:`q_step`, :func:`q_sample`) and chapter 3 (:func:`q_posterior`,
:func:`predict_x0_from_eps`, :func:`predict_eps_from_x0`).
"""

from __future__ import annotations

import numbers

import torch

from dplearn import seeding
from dplearn.diffusion.schedule import NoiseSchedule

__all__ = ["q_step", "q_sample", "q_posterior", "predict_x0_from_eps", "predict_eps_from_x0"]


# ---------------------------------------------------------------------------------------------
# validation and gathering
# ---------------------------------------------------------------------------------------------
def check_timesteps(schedule: NoiseSchedule, t: torch.Tensor | int, x: torch.Tensor,
                    x_name: str = "x0") -> torch.Tensor:
    """``t`` as a long tensor of shape ``(B,)`` on ``x``'s device, checked against ``schedule`` and ``x``.

    Raises ``ValueError`` naming ``t`` when it is not an integer, out of ``[0, T-1]``, or its length
    differs from ``x.shape[0]``.
    """
    if not isinstance(schedule, NoiseSchedule):
        raise ValueError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{x_name} must be a torch tensor, got {type(x).__name__}")
    if x.ndim < 1:
        raise ValueError(f"{x_name} must have a batch dimension, shape (B, ...), got a 0-d tensor")
    if isinstance(t, bool):
        raise ValueError(f"t must be an integer step index or a long tensor, got {t!r}")
    if isinstance(t, numbers.Integral):  # Python and NumPy integers alike
        t = torch.full((x.shape[0],), int(t), dtype=torch.long)
    elif isinstance(t, torch.Tensor):
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise ValueError(f"t must be an integer (long) tensor of step indices, got dtype {t.dtype}")
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        elif t.ndim != 1:
            raise ValueError(f"t must have shape (B,), got {tuple(t.shape)}")
        elif t.shape[0] != x.shape[0]:
            raise ValueError(
                f"t has {t.shape[0]} entries but {x_name} has batch size {x.shape[0]}; expected t of shape (B,)"
            )
        t = t.long()
    else:
        raise ValueError(f"t must be an int or a long tensor of shape (B,), got {type(t).__name__}")
    T = schedule.num_steps
    # Range check on the host only: on an accelerator reading t back would stall the device on
    # every call (a host-device sync); an out-of-range index then fails inside the gather.
    if t.device.type == "cpu" and t.numel() and (int(t.min()) < 0 or int(t.max()) > T - 1):
        raise ValueError(
            f"t must hold step indices in [0, {T - 1}] for a schedule of T={T} steps, "
            f"got values in [{int(t.min())}, {int(t.max())}]"
        )
    return t.to(x.device, non_blocking=True)


def extract(schedule: NoiseSchedule, name: str, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The schedule tensor ``name`` at indices ``t`` (shape ``(B,)``), shaped ``(B, 1, ..., 1)`` like ``x``.

    Gathered on the schedule's device when it is ``x``'s (no copy, no sync): keep the schedule
    next to the data (``schedule.to(device)``, or a model that holds it as a submodule).
    """
    table = schedule.at(name, x.dtype)
    if table.device != x.device:
        table = table.to(x.device)
    values = table[t]
    return values.reshape(t.shape[0], *([1] * (x.ndim - 1)))


def _check_same_shape(a: torch.Tensor, a_name: str, b: torch.Tensor, b_name: str) -> None:
    if not isinstance(b, torch.Tensor):
        raise ValueError(f"{b_name} must be a torch tensor, got {type(b).__name__}")
    if a.shape != b.shape:
        raise ValueError(f"{b_name} must have the shape of {a_name} {tuple(a.shape)}, got {tuple(b.shape)}")


def randn_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard normal noise of ``x``'s shape, dtype and device, drawn on ``generator``'s device
    (the rule of :mod:`dplearn.seeding`: the CPU or ``x``'s device; any other raises ``ValueError``)."""
    return seeding.randn(x.shape, generator, device=x.device, dtype=x.dtype)


def _noise_like(x: torch.Tensor, noise: torch.Tensor | None, generator: torch.Generator | None,
                x_name: str) -> torch.Tensor:
    if noise is None:
        return randn_like(x, generator)
    _check_same_shape(x, x_name, noise, "noise")
    return noise


# ---------------------------------------------------------------------------------------------
# the forward process
# ---------------------------------------------------------------------------------------------
def q_step(schedule: NoiseSchedule, x_prev: torch.Tensor, t: torch.Tensor | int,
           noise: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """One step of the forward process, :math:`x_t \\sim q(x_t \\mid x_{t-1})`.

    .. math:: x_t = \\sqrt{1-\\beta_t}\\, x_{t-1} + \\sqrt{\\beta_t}\\, \\varepsilon,
              \\quad \\varepsilon \\sim \\mathcal N(0, I)

    (Ho et al., 2020, eq. 2). ``t`` is the index of the step being taken: ``q_step(s, x0, 0)``
    gives :math:`x_1`, and applying it with ``t = 0, 1, ..., k-1`` gives :math:`x_k`, which has the
    distribution of ``q_sample(s, x0, k - 1)``.

    Shapes: ``x_prev`` (B, ...), ``t`` (B,) long or int, ``noise`` like ``x_prev`` (drawn from
    ``generator`` when ``None``). Returns a tensor like ``x_prev``.

    Introduced in chapter 2.
    """
    t = check_timesteps(schedule, t, x_prev, "x_prev")
    noise = _noise_like(x_prev, noise, generator, "x_prev")
    beta = extract(schedule, "betas", t, x_prev)
    return (1.0 - beta).sqrt() * x_prev + beta.sqrt() * noise


def q_sample(schedule: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor | int,
             noise: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Jump straight to step ``t``: a sample of :math:`q(x_t \\mid x_0) = \\mathcal N(\\sqrt{\\bar\\alpha_t} x_0,
    (1-\\bar\\alpha_t) I)`.

    .. math:: x_t = \\sqrt{\\bar\\alpha_t}\\, x_0 + \\sqrt{1-\\bar\\alpha_t}\\, \\varepsilon

    (Ho et al., 2020, eq. 4), in O(1) instead of ``t`` calls of :func:`q_step`.

    Shapes: ``x0`` (B, ...), ``t`` (B,) long or int in ``[0, T-1]``, ``noise`` like ``x0``
    (drawn from ``generator`` when ``None``). Returns a tensor like ``x0``.
    Raises ``ValueError`` when ``t`` is out of range or its length, or ``noise``'s shape, does not
    match ``x0``.

    Introduced in chapter 2.
    """
    t = check_timesteps(schedule, t, x0, "x0")
    noise = _noise_like(x0, noise, generator, "x0")
    return (extract(schedule, "sqrt_alphas_cumprod", t, x0) * x0
            + extract(schedule, "sqrt_one_minus_alphas_cumprod", t, x0) * noise)


def q_posterior(schedule: NoiseSchedule, x0: torch.Tensor, xt: torch.Tensor,
                t: torch.Tensor | int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of the forward-process posterior :math:`q(x_{t-1} \\mid x_t, x_0)`.

    .. math::
        \\tilde\\mu_t = \\frac{\\sqrt{\\bar\\alpha_{t-1}}\\,\\beta_t}{1-\\bar\\alpha_t} x_0
                      + \\frac{\\sqrt{\\alpha_t}\\,(1-\\bar\\alpha_{t-1})}{1-\\bar\\alpha_t} x_t, \\qquad
        \\tilde\\beta_t = \\frac{1-\\bar\\alpha_{t-1}}{1-\\bar\\alpha_t}\\,\\beta_t

    (Ho et al., 2020, eqs. 6–7), with :math:`\\bar\\alpha_{t-1} = 1` at index 0, where the
    posterior is the point mass at :math:`x_0` (variance 0).

    Shapes: ``x0`` and ``xt`` (B, ...), ``t`` (B,) long or int. Returns ``(mean, variance)``,
    both of ``xt``'s shape.

    Introduced in chapter 3.
    """
    t = check_timesteps(schedule, t, xt, "xt")
    _check_same_shape(xt, "xt", x0, "x0")
    mean = extract(schedule, "posterior_mean_coef1", t, xt) * x0 + extract(schedule, "posterior_mean_coef2", t, xt) * xt
    variance = extract(schedule, "posterior_variance", t, xt).expand_as(xt)
    return mean, variance


def predict_x0_from_eps(schedule: NoiseSchedule, xt: torch.Tensor, t: torch.Tensor | int,
                        eps: torch.Tensor) -> torch.Tensor:
    """Invert :func:`q_sample` for ``x0`` given the noise: :math:`\\hat x_0 = (x_t - \\sqrt{1-\\bar\\alpha_t}\\,
    \\varepsilon) / \\sqrt{\\bar\\alpha_t}`.

    Shapes: ``xt`` and ``eps`` (B, ...), ``t`` (B,). Returns a tensor like ``xt``.

    Introduced in chapter 3.
    """
    t = check_timesteps(schedule, t, xt, "xt")
    _check_same_shape(xt, "xt", eps, "eps")
    return (xt - extract(schedule, "sqrt_one_minus_alphas_cumprod", t, xt) * eps) / extract(
        schedule, "sqrt_alphas_cumprod", t, xt)


def predict_eps_from_x0(schedule: NoiseSchedule, xt: torch.Tensor, t: torch.Tensor | int,
                        x0: torch.Tensor) -> torch.Tensor:
    """Invert :func:`q_sample` for the noise given ``x0``: :math:`\\varepsilon = (x_t - \\sqrt{\\bar\\alpha_t}\\,
    x_0) / \\sqrt{1-\\bar\\alpha_t}`.

    Shapes: ``xt`` and ``x0`` (B, ...), ``t`` (B,). Returns a tensor like ``xt``.

    Introduced in chapter 3.
    """
    t = check_timesteps(schedule, t, xt, "xt")
    _check_same_shape(xt, "xt", x0, "x0")
    return (xt - extract(schedule, "sqrt_alphas_cumprod", t, xt) * x0) / extract(
        schedule, "sqrt_one_minus_alphas_cumprod", t, xt)
