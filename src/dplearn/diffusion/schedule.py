"""Noise schedules: the betas of the forward process and everything derived from them.

The forward (noising) process of a diffusion model adds a little Gaussian noise at each of
``T`` steps (Ho et al., 2020, eq. 2):

.. math::

    q(x_t \\mid x_{t-1}) = \\mathcal N\\big(\\sqrt{1-\\beta_t}\\,x_{t-1},\\ \\beta_t I\\big),
    \\qquad t = 1, \\dots, T.

With :math:`\\alpha_t = 1 - \\beta_t` and :math:`\\bar\\alpha_t = \\prod_{s \\le t} \\alpha_s`, the
noised sample at any step has the closed form :math:`q(x_t \\mid x_0) = \\mathcal N(\\sqrt{\\bar\\alpha_t}
x_0, (1 - \\bar\\alpha_t) I)`.

Indexing convention (the same as diffusers and the Diffusion Policy code): tensors have length
``T`` and **index** ``t = 0 .. T-1`` holds the quantities of **math step** ``t + 1``. So
``alphas_cumprod[0]`` is :math:`\\bar\\alpha_1` and ``alphas_cumprod[T-1]`` is :math:`\\bar\\alpha_T`;
:math:`\\bar\\alpha_0 = 1` (no noise) has no index and appears as ``alphas_cumprod_prev[0]``.

Introduced in chapter 2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from dplearn import validate

__all__ = ["NoiseSchedule"]


def _as_float64_betas(betas: torch.Tensor | np.ndarray | Sequence[float]) -> torch.Tensor:
    """``betas`` as a 1-D float64 CPU tensor, validated: length >= 1, every entry in (0, 1)."""
    if isinstance(betas, torch.Tensor):
        b = betas.detach().to(device="cpu", dtype=torch.float64)
    else:
        try:
            b = torch.as_tensor(np.asarray(betas, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"betas must be a 1-D sequence of numbers, got {betas!r}") from exc
    if b.ndim != 1:
        raise ValueError(f"betas must be 1-D (one beta per step), got shape {tuple(b.shape)}")
    if b.numel() < 1:
        raise ValueError("betas must hold at least one step (T >= 1), got an empty sequence")
    if not bool(torch.all(torch.isfinite(b))):
        raise ValueError("betas must be finite numbers")
    if not bool(torch.all((b > 0) & (b < 1))):
        bad = b[(b <= 0) | (b >= 1)]
        raise ValueError(
            f"betas must lie strictly inside (0, 1); got {bad.numel()} value(s) outside, e.g. {bad[0].item()!r}"
        )
    return b


class NoiseSchedule(nn.Module):
    """The variance schedule :math:`\\beta_1..\\beta_T` of the forward process and its derived tensors.

    Build one with :meth:`linear` (DDPM) or :meth:`cosine` (improved DDPM, used by Diffusion
    Policy), or from any betas: ``NoiseSchedule(betas)``. All quantities are computed in float64
    and stored as tensors of ``dtype`` (float32 by default); a float64 copy is kept so that
    functions working on float64 inputs lose no precision.

    Attributes (all of shape ``(T,)``, index ``t`` = math step ``t + 1``)
    -------------------------------------------------------------------
    betas
        :math:`\\beta_t`, the variance added at step t.
    alphas
        :math:`\\alpha_t = 1 - \\beta_t`.
    alphas_cumprod
        :math:`\\bar\\alpha_t = \\prod_{s=1}^t \\alpha_s`; the signal kept at step t.
    alphas_cumprod_prev
        :math:`\\bar\\alpha_{t-1}`, with :math:`\\bar\\alpha_0 = 1` at index 0.
    sqrt_alphas_cumprod, sqrt_one_minus_alphas_cumprod
        :math:`\\sqrt{\\bar\\alpha_t}` and :math:`\\sqrt{1-\\bar\\alpha_t}`, the two coefficients of
        :func:`~dplearn.diffusion.q_sample`.
    snr
        signal-to-noise ratio :math:`\\bar\\alpha_t / (1 - \\bar\\alpha_t)`.
    posterior_variance
        :math:`\\tilde\\beta_t = \\frac{1-\\bar\\alpha_{t-1}}{1-\\bar\\alpha_t}\\beta_t`, the variance of
        :math:`q(x_{t-1} \\mid x_t, x_0)` (0 at index 0).

    Parameters
    ----------
    betas:
        1-D sequence of length ``T >= 1`` with every entry in (0, 1).
    dtype:
        floating dtype of the public tensors (default ``torch.float32``).
    device:
        where the tensors live (default the CPU).

    The schedule is an ``nn.Module`` whose tensors are (non-persistent) buffers: a model that holds
    one as a submodule carries it along with ``model.to(device)``, so the noise math runs next to
    the network with no copies. ``schedule.to(device)`` moves it in place and returns it;
    ``schedule.to(dtype=...)`` recasts the public tensors from the float64 copies.

    Introduced in chapter 2.
    """

    _FIELDS = (
        "betas", "alphas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
        "sqrt_one_minus_alphas_cumprod", "snr", "posterior_variance",
        "posterior_mean_coef1", "posterior_mean_coef2",
    )

    def __init__(self, betas: torch.Tensor | np.ndarray | Sequence[float],
                 dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"):
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise ValueError(f"dtype must be a floating torch dtype, got {dtype!r}")
        b = _as_float64_betas(betas)
        a = 1.0 - b
        abar = torch.cumprod(a, dim=0)
        abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
        f64 = {
            "betas": b,
            "alphas": a,
            "alphas_cumprod": abar,
            "alphas_cumprod_prev": abar_prev,
            "sqrt_alphas_cumprod": abar.sqrt(),
            "sqrt_one_minus_alphas_cumprod": (1.0 - abar).sqrt(),
            "snr": abar / (1.0 - abar),
            "posterior_variance": (1.0 - abar_prev) / (1.0 - abar) * b,
            # mean of q(x_{t-1} | x_t, x_0) = coef1 * x_0 + coef2 * x_t (Ho et al. 2020, eq. 7)
            "posterior_mean_coef1": abar_prev.sqrt() * b / (1.0 - abar),
            "posterior_mean_coef2": a.sqrt() * (1.0 - abar_prev) / (1.0 - abar),
        }
        super().__init__()
        self.dtype = dtype
        for name, value in f64.items():
            self.register_buffer(f"_f64_{name}", value.to(device), persistent=False)
            self.register_buffer(name, value.to(device=device, dtype=dtype), persistent=False)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def linear(cls, T: int, beta_start: float = 1e-4, beta_end: float = 0.02,
               dtype: torch.dtype = torch.float32) -> NoiseSchedule:
        """Betas evenly spaced from ``beta_start`` to ``beta_end`` (Ho et al., 2020, sec. 4).

        :math:`\\beta_t = \\beta_{start} + \\frac{t-1}{T-1}(\\beta_{end} - \\beta_{start})`; DDPM uses
        ``T = 1000``, 1e-4 and 0.02. With ``T = 1`` the single beta is ``beta_start``.
        """
        T = _check_T(T)
        beta_start, beta_end = (validate.finite_float(name, value, low=0.0, high=1.0, low_open=True, high_open=True)
                                for name, value in (("beta_start", beta_start), ("beta_end", beta_end)))
        betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
        return cls(betas, dtype=dtype)

    @classmethod
    def cosine(cls, T: int, s: float = 0.008, max_beta: float = 0.999,
               dtype: torch.dtype = torch.float32) -> NoiseSchedule:
        """The squared-cosine schedule of improved DDPM (Nichol & Dhariwal, 2021, eq. 17).

        :math:`\\bar\\alpha(t) = f(t) / f(0)` with :math:`f(t) = \\cos^2\\!\\big(\\frac{t/T + s}{1 + s}
        \\cdot\\frac{\\pi}{2}\\big)`, and :math:`\\beta_t = \\min(1 - \\bar\\alpha(t)/\\bar\\alpha(t-1),
        \\text{max\\_beta})`; the cap keeps the last steps from being singular. The stored
        ``alphas_cumprod`` is the cumulative product of the capped betas. Diffusion Policy uses
        this schedule with ``T = 100`` (diffusers' ``squaredcos_cap_v2``).
        """
        T = _check_T(T)
        s = validate.finite_float("s", s, low=0.0)
        max_beta = validate.finite_float("max_beta", max_beta, low=0.0, high=1.0, low_open=True, high_open=True)

        def f(u: torch.Tensor) -> torch.Tensor:
            return torch.cos((u + s) / (1.0 + s) * math.pi / 2.0) ** 2

        u = torch.arange(T + 1, dtype=torch.float64) / T
        abar = f(u) / f(torch.zeros((), dtype=torch.float64))
        betas = torch.clamp(1.0 - abar[1:] / abar[:-1], max=float(max_beta))
        return cls(betas, dtype=dtype)

    # ------------------------------------------------------------------ properties
    @property
    def num_steps(self) -> int:
        """T, the number of diffusion steps."""
        return int(self.betas.shape[0])

    @property
    def T(self) -> int:  # noqa: N802 - the paper's name
        """T, the number of diffusion steps (alias of :attr:`num_steps`)."""
        return self.num_steps

    def __len__(self) -> int:
        return self.num_steps

    @property
    def device(self) -> torch.device:
        """The device the schedule's tensors live on."""
        return self.betas.device

    def to(self, *args, **kwargs) -> NoiseSchedule:
        """Move the tensors to a device (in place) and/or recast the public ones to a dtype.

        ``to(device)``, ``to(dtype)``, ``to(device, dtype)`` or keywords, as ``nn.Module.to``; the
        float64 copies stay float64. Returns the schedule.
        """
        device, dtype, non_blocking, _ = torch._C._nn._parse_to(*args, **kwargs)
        if dtype is not None and not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating torch dtype, got {dtype!r}")
        if device is not None:
            super().to(device=device, non_blocking=non_blocking)
        if dtype is not None:
            self.dtype = dtype
            for name in self._FIELDS:
                setattr(self, name, self.float64(name).to(dtype))
        return self

    def float64(self, name: str) -> torch.Tensor:
        """The float64 version of the tensor attribute ``name`` (e.g. ``"alphas_cumprod"``)."""
        if name not in self._FIELDS:
            raise ValueError(f"name must be one of {', '.join(self._FIELDS)}, got {name!r}")
        return getattr(self, f"_f64_{name}")

    def at(self, name: str, dtype: torch.dtype) -> torch.Tensor:
        """Tensor ``name`` in ``dtype`` on the schedule's device, without a copy when it is stored so."""
        if dtype == self.dtype and name in self._FIELDS:
            return getattr(self, name)
        return self.float64(name).to(dtype)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        b = self.float64("betas")
        abar_T = self.float64("alphas_cumprod")[-1].item()
        return (f"NoiseSchedule(T={self.num_steps}, beta_1={b[0].item():.3g}, beta_T={b[-1].item():.3g}, "
                f"alphas_cumprod_T={abar_T:.3g}, dtype={self.dtype})")


def _check_T(T: int) -> int:
    """The number of steps ``T`` as an ``int`` >= 1 (Python or NumPy integer)."""
    return validate.positive_int("T", T)
