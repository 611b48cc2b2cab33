"""Reverse-process samplers: DDPM ancestral sampling and DDIM (deterministic or stochastic).

A sampler owns the noise math and is separate from the network (as diffusers' schedulers are):
the network predicts the noise, :math:`\\hat\\varepsilon = \\varepsilon_\\theta(x_t, t)`, and the
sampler turns it into the next, less noisy sample. ``model(x, t)`` (or ``model(x, t, cond)``) takes
``x`` of shape ``(B, ...)`` and ``t`` a long tensor of shape ``(B,)`` of step indices and returns a
tensor of ``x``'s shape.

Step indices follow :mod:`dplearn.diffusion.schedule`: index ``t`` in ``0 .. T-1`` is math step
``t + 1``; sampling runs the indices in descending order and ends at :math:`x_0`.

Introduced in chapter 3 (:class:`DDPMSampler`) and chapter 4 (:class:`DDIMSampler`).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import torch

from dplearn import seeding, validate
from dplearn.diffusion.forward import (
    _check_same_shape,
    check_timesteps,
    extract,
    predict_x0_from_eps,
    q_posterior,
    randn_like,
)
from dplearn.diffusion.schedule import NoiseSchedule

__all__ = ["DDPMSampler", "DDIMSampler"]

Model = Callable[..., torch.Tensor]


def _is_index(t: object) -> bool:
    """Is ``t`` one step index for the whole batch (a Python or NumPy integer, not a tensor)?"""
    return isinstance(t, numbers.Integral) and not isinstance(t, bool)


def _host_table(schedule: NoiseSchedule, name: str) -> list[float]:
    """The float64 schedule tensor ``name`` as Python floats, for coefficients read on the host."""
    return schedule.float64(name).cpu().tolist()


class _Sampler:
    """The loop shared by the samplers: start from noise, call the model, step, repeat.

    ``step`` accepts ``t`` either as a long tensor ``(B,)`` (each example at its own step) or as one
    integer index for the whole batch. With an integer the coefficients are read from host-side
    tables as Python numbers: no gathers, no copies and no host-device syncs, which is what
    :meth:`sample` uses (on a GPU a tensor ``t`` costs a gather per coefficient instead).
    """

    schedule: NoiseSchedule
    timesteps: torch.Tensor

    def _check_index(self, t: int) -> int:
        T = self.schedule.num_steps
        if not 0 <= int(t) < T:
            raise ValueError(f"t must be a step index in [0, {T - 1}] for a schedule of T={T} steps, got {t}")
        return int(t)

    def step(self, eps: torch.Tensor, t: torch.Tensor | int, x_t: torch.Tensor,
             noise: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def _clip(self, x0_hat: torch.Tensor) -> torch.Tensor:
        if self.clip_sample:
            return x0_hat.clamp(-self.clip_range, self.clip_range)
        return x0_hat

    @property
    def num_steps(self) -> int:
        """How many model calls one :meth:`sample` makes."""
        return int(self.timesteps.shape[0])

    @torch.no_grad()
    def sample(self, model: Model, shape: tuple[int, ...] | torch.Size, generator: torch.Generator | None = None,
               cond: torch.Tensor | None = None, return_trajectory: bool = False,
               x_T: torch.Tensor | None = None, device: str | torch.device = "cpu",
               dtype: torch.dtype = torch.float32):
        """Run the whole reverse chain: :math:`x_T \\sim \\mathcal N(0, I)`, then :meth:`step` for every
        index in :attr:`timesteps`.

        Parameters
        ----------
        model:
            ``model(x, t) -> eps`` (or ``model(x, t, cond)`` when ``cond`` is given); ``x`` (B, ...),
            ``t`` long (B,).
        shape:
            shape ``(B, ...)`` of the samples.
        generator:
            ``torch.Generator`` for the initial noise and the noise of every step, on the CPU (the
            same numbers on every device) or on ``device`` (see :mod:`dplearn.seeding`).
        cond:
            conditioning passed to the model as its third argument (e.g. observation features).
        return_trajectory:
            also return every intermediate sample, a tensor of shape ``(num_steps + 1, *shape)``
            from :math:`x_T` to :math:`x_0`.
        x_T:
            start from this tensor instead of fresh noise (e.g. the output of
            :meth:`DDIMSampler.invert`); must have shape ``shape``.

        Returns ``x0`` of shape ``shape`` (and the trajectory when asked).
        """
        shape = tuple(int(s) for s in shape)
        if len(shape) < 1 or any(s < 1 for s in shape):
            raise ValueError(f"shape must be a non-empty tuple of positive sizes (B, ...), got {shape}")
        if x_T is None:
            x = seeding.randn(shape, generator, device=device, dtype=dtype)
        else:
            if tuple(x_T.shape) != shape:
                raise ValueError(f"x_T must have shape {shape}, got {tuple(x_T.shape)}")
            x = x_T
        trajectory = [x] if return_trajectory else None
        for t in self.timesteps.tolist():
            t_batch = torch.full((shape[0],), t, dtype=torch.long, device=x.device)
            eps = model(x, t_batch) if cond is None else model(x, t_batch, cond)
            x = self.step(eps, t, x, generator=generator)  # a Python int: the sync-free path
            if trajectory is not None:
                trajectory.append(x)
        if trajectory is not None:
            return x, torch.stack(trajectory)
        return x


class DDPMSampler(_Sampler):
    """Ancestral sampling of DDPM (Ho et al., 2020, Algorithm 2), one step per training step.

    Each step predicts the clean sample from the noise prediction,
    :math:`\\hat x_0 = (x_t - \\sqrt{1-\\bar\\alpha_t}\\,\\hat\\varepsilon)/\\sqrt{\\bar\\alpha_t}` (optionally
    clipped to ``[-clip_range, clip_range]``, as Diffusion Policy does for its [-1, 1]-normalised
    actions), then draws from the posterior with that prediction plugged in:

    .. math:: x_{t-1} = \\tilde\\mu_t(\\hat x_0, x_t) + \\sqrt{\\tilde\\beta_t}\\, z, \\quad z \\sim \\mathcal N(0, I),

    with no noise at the last step (index 0). Without clipping this equals Algorithm 2's
    :math:`\\frac{1}{\\sqrt{\\alpha_t}}(x_t - \\frac{\\beta_t}{\\sqrt{1-\\bar\\alpha_t}}\\hat\\varepsilon) + \\sigma_t z`
    with :math:`\\sigma_t^2 = \\tilde\\beta_t`.

    Attributes: ``timesteps``, the long tensor ``T-1, ..., 0``.

    Introduced in chapter 3.
    """

    def __init__(self, schedule: NoiseSchedule, clip_sample: bool = True, clip_range: float = 1.0):
        if not isinstance(schedule, NoiseSchedule):
            raise ValueError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
        self.schedule = schedule
        self.clip_sample = validate.boolean("clip_sample", clip_sample)
        self.clip_range = validate.positive_float("clip_range", clip_range)
        self.timesteps = torch.arange(schedule.num_steps - 1, -1, -1, dtype=torch.long)
        self._host = {name: _host_table(schedule, name) for name in (
            "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod", "posterior_mean_coef1",
            "posterior_mean_coef2", "posterior_variance")}

    def step(self, eps: torch.Tensor, t: torch.Tensor | int, x_t: torch.Tensor,
             noise: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """One ancestral step :math:`x_t \\to x_{t-1}`.

        Shapes: ``eps`` and ``x_t`` (B, ...), ``t`` long (B,) or int (index ``0 .. T-1``),
        ``noise`` like ``x_t`` (drawn from ``generator`` when ``None``; ignored where ``t == 0``).
        Returns :math:`x_{t-1}` like ``x_t``.
        """
        if _is_index(t):
            return self._step_index(eps, self._check_index(t), x_t, noise, generator)
        t = check_timesteps(self.schedule, t, x_t, "x_t")
        _check_same_shape(x_t, "x_t", eps, "eps")
        x0_hat = self._clip(predict_x0_from_eps(self.schedule, x_t, t, eps))
        mean, _ = q_posterior(self.schedule, x0_hat, x_t, t)
        if noise is None:
            if t.device.type == "cpu" and bool((t == 0).all()):  # (no device sync on accelerators)
                return mean
            noise = randn_like(x_t, generator)
        else:
            _check_same_shape(x_t, "x_t", noise, "noise")
        not_last = (t > 0).to(x_t.dtype).reshape(-1, *([1] * (x_t.ndim - 1)))
        std = extract(self.schedule, "posterior_variance", t, x_t).sqrt()
        return mean + not_last * std * noise

    def _step_index(self, eps: torch.Tensor, t: int, x_t: torch.Tensor, noise: torch.Tensor | None,
                    generator: torch.Generator | None) -> torch.Tensor:
        """:meth:`step` with one index ``t`` for the whole batch, coefficients as Python numbers."""
        if not isinstance(x_t, torch.Tensor):
            raise ValueError(f"x_t must be a torch tensor, got {type(x_t).__name__}")
        _check_same_shape(x_t, "x_t", eps, "eps")
        h = self._host
        x0_hat = self._clip((x_t - h["sqrt_one_minus_alphas_cumprod"][t] * eps) / h["sqrt_alphas_cumprod"][t])
        mean = h["posterior_mean_coef1"][t] * x0_hat + h["posterior_mean_coef2"][t] * x_t
        if t == 0:
            return mean
        if noise is None:
            noise = randn_like(x_t, generator)
        else:
            _check_same_shape(x_t, "x_t", noise, "noise")
        return mean + h["posterior_variance"][t] ** 0.5 * noise

    def __repr__(self) -> str:
        return f"DDPMSampler(T={self.schedule.num_steps}, clip_sample={self.clip_sample}, clip_range={self.clip_range})"


class DDIMSampler(_Sampler):
    """DDIM (Song et al., 2021): sampling on a sub-sequence of steps, deterministic when ``eta = 0``.

    From :math:`x_t` at index ``t`` to the previous index ``p`` of :attr:`timesteps` (eq. 12):

    .. math::
        x_p = \\sqrt{\\bar\\alpha_p}\\,\\hat x_0 + \\sqrt{1 - \\bar\\alpha_p - \\sigma_t^2}\\,\\hat\\varepsilon
              + \\sigma_t z, \\qquad
        \\sigma_t(\\eta) = \\eta \\sqrt{\\frac{1-\\bar\\alpha_p}{1-\\bar\\alpha_t}}
                          \\sqrt{1 - \\frac{\\bar\\alpha_t}{\\bar\\alpha_p}},

    with :math:`\\hat x_0 = (x_t - \\sqrt{1-\\bar\\alpha_t}\\,\\hat\\varepsilon)/\\sqrt{\\bar\\alpha_t}`.
    With ``clip_sample``, :math:`\\hat x_0` is clipped and :math:`\\hat\\varepsilon` recomputed from the
    clipped :math:`\\hat x_0` (diffusers' ``use_clipped_model_output=True``).
    The final step uses :math:`\\bar\\alpha_p = 1`, so it returns :math:`\\hat x_0`.

    ``eta = 0`` is the deterministic DDIM: Euler steps of the probability-flow ODE in the variables
    :math:`\\bar x = x/\\sqrt{\\bar\\alpha}`, :math:`\\sigma = \\sqrt{(1-\\bar\\alpha)/\\bar\\alpha}`
    (eqs. 13–14), so few steps trade accuracy for speed (a first-order error). ``eta = 1`` with
    ``num_steps = T`` is exactly DDPM ancestral sampling.

    Parameters
    ----------
    schedule:
        the training schedule (T steps).
    num_steps:
        number of sampling steps, ``1 <= num_steps <= T``.
    eta:
        stochasticity, ``eta >= 0``.
    clip_sample, clip_range:
        clip :math:`\\hat x_0` to ``[-clip_range, clip_range]`` (as :class:`DDPMSampler`).
    spacing:
        how :attr:`timesteps` picks ``num_steps`` of the ``T`` indices (the names of diffusers):
        ``"leading"`` (default; DDIM's and diffusers' ``DDIMScheduler`` default with
        ``steps_offset=0``): ``k * (T // num_steps)`` for ``k = num_steps-1, ..., 0``, e.g. T=100,
        10 steps → 90, 80, ..., 0; ``"trailing"``: ``round(T - k * T/num_steps) - 1``, which starts
        at the last index T-1 (99, 89, ..., 9); ``"linspace"``: ``round(linspace(0, T-1, num_steps))``.

    Introduced in chapter 4.
    """

    SPACINGS = ("leading", "trailing", "linspace")

    def __init__(self, schedule: NoiseSchedule, num_steps: int, eta: float = 0.0, clip_sample: bool = True,
                 clip_range: float = 1.0, spacing: str = "leading"):
        if not isinstance(schedule, NoiseSchedule):
            raise ValueError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
        T = schedule.num_steps
        num_steps = validate.integer("num_steps", num_steps, low=1, high=T)  # at most the training steps
        self.schedule = schedule
        self.eta = validate.finite_float("eta", eta, low=0.0)
        self.clip_sample = validate.boolean("clip_sample", clip_sample)
        self.clip_range = validate.positive_float("clip_range", clip_range)
        self.spacing = validate.choice("spacing", spacing, self.SPACINGS)
        k = torch.arange(num_steps - 1, -1, -1, dtype=torch.float64)
        if spacing == "leading":
            ts = k * (T // num_steps)
        elif spacing == "trailing":
            ts = torch.round(T - (num_steps - 1 - k) * (T / num_steps)) - 1
        else:
            ts = torch.round(torch.linspace(0, T - 1, num_steps, dtype=torch.float64)).flip(0)
        self.timesteps = ts.long()
        # the index each timestep steps to; -1 marks the final step (alphas_cumprod_prev = 1)
        prev = torch.full((T,), -2, dtype=torch.long)
        prev[self.timesteps] = torch.cat([self.timesteps[1:], torch.tensor([-1])])
        self._prev = prev
        self._prev_host = prev.tolist()
        self._abar_host = _host_table(schedule, "alphas_cumprod")

    def previous_timestep(self, t: torch.Tensor) -> torch.Tensor:
        """The index each ``t`` (long, (B,)) steps to; -1 for the last step. ``ValueError`` if ``t``
        is not one of :attr:`timesteps`."""
        prev = self._prev.to(t.device)[t]
        if t.device.type == "cpu" and bool((prev == -2).any()):  # (no device sync on accelerators)
            bad = t[prev == -2][0].item()
            raise ValueError(f"t={bad} is not one of this sampler's timesteps {self.timesteps.tolist()}")
        return prev

    def _alphas_cumprod_at(self, idx: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """:math:`\\bar\\alpha` at indices ``idx`` (B,), with 1 where ``idx < 0``; shaped like ``x``."""
        abar = self.schedule.float64("alphas_cumprod").to(x.device)
        values = torch.where(idx >= 0, abar[idx.clamp(min=0)], torch.ones((), dtype=abar.dtype, device=x.device))
        return values.to(x.dtype).reshape(-1, *([1] * (x.ndim - 1)))

    def step(self, eps: torch.Tensor, t: torch.Tensor | int, x_t: torch.Tensor,
             noise: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """One DDIM step from index ``t`` to the previous index of :attr:`timesteps` (eq. 12).

        Shapes: ``eps`` and ``x_t`` (B, ...), ``t`` long (B,) or int, each one of :attr:`timesteps`;
        ``noise`` like ``x_t`` (only used when ``eta > 0``; drawn from ``generator`` when ``None``).
        """
        if _is_index(t):
            return self._step_index(eps, self._check_index(t), x_t, noise, generator)
        t = check_timesteps(self.schedule, t, x_t, "x_t")
        _check_same_shape(x_t, "x_t", eps, "eps")
        prev = self.previous_timestep(t)
        abar_t = extract(self.schedule, "alphas_cumprod", t, x_t)
        abar_p = self._alphas_cumprod_at(prev, x_t)
        return self._update(x_t, eps, abar_t, abar_p, noise, generator)

    def _update(self, x_t: torch.Tensor, eps: torch.Tensor, abar_t, abar_p, noise: torch.Tensor | None,
                generator: torch.Generator | None) -> torch.Tensor:
        """Eq. 12 from :math:`\\bar\\alpha_t` to :math:`\\bar\\alpha_p`, given as tensors shaped like ``x_t``
        (one per example) or as Python numbers (one for the batch)."""
        def relu(v):
            return v.clamp(min=0) if isinstance(v, torch.Tensor) else max(v, 0.0)

        x0_hat = (x_t - (1 - abar_t) ** 0.5 * eps) / abar_t ** 0.5
        if self.clip_sample:  # keep eps consistent with the clipped x0_hat (so eta=1, all steps == DDPM)
            x0_hat = self._clip(x0_hat)
            eps = (x_t - abar_t ** 0.5 * x0_hat) / (1 - abar_t) ** 0.5
        sigma = self.eta * ((1 - abar_p) / (1 - abar_t)) ** 0.5 * relu(1 - abar_t / abar_p) ** 0.5
        x_prev = abar_p ** 0.5 * x0_hat + relu(1 - abar_p - sigma ** 2) ** 0.5 * eps
        if self.eta > 0:
            if noise is None:
                noise = randn_like(x_t, generator)
            else:
                _check_same_shape(x_t, "x_t", noise, "noise")
            x_prev = x_prev + sigma * noise
        return x_prev

    def _step_index(self, eps: torch.Tensor, t: int, x_t: torch.Tensor, noise: torch.Tensor | None,
                    generator: torch.Generator | None) -> torch.Tensor:
        """:meth:`step` with one index ``t`` for the whole batch, coefficients as Python numbers."""
        if not isinstance(x_t, torch.Tensor):
            raise ValueError(f"x_t must be a torch tensor, got {type(x_t).__name__}")
        _check_same_shape(x_t, "x_t", eps, "eps")
        p = self._prev_host[t]
        if p == -2:
            raise ValueError(f"t={t} is not one of this sampler's timesteps {self.timesteps.tolist()}")
        return self._update(x_t, eps, self._abar_host[t], 1.0 if p < 0 else self._abar_host[p], noise, generator)

    @torch.no_grad()
    def invert(self, model: Model, x0: torch.Tensor, cond: torch.Tensor | None = None,
               return_trajectory: bool = False):
        """DDIM inversion: run the deterministic (``eta = 0``) update forwards, :math:`x_0 \\to x_T`.

        From index ``p`` (starting at :math:`x_0`, :math:`\\bar\\alpha_p = 1`) to the next index ``t``
        of :attr:`timesteps` in ascending order, with :math:`\\hat\\varepsilon = \\varepsilon_\\theta(x_p, t)`:

        .. math:: x_t = \\sqrt{\\bar\\alpha_t}\\,\\frac{x_p - \\sqrt{1-\\bar\\alpha_p}\\,\\hat\\varepsilon}{\\sqrt{\\bar\\alpha_p}}
                       + \\sqrt{1-\\bar\\alpha_t}\\,\\hat\\varepsilon,

        the DDIM step solved for :math:`x_t` with :math:`\\varepsilon_\\theta(x_t, t)` approximated by
        :math:`\\varepsilon_\\theta(x_p, t)` (exact in the limit of small steps). Decoding the result
        with :meth:`sample` (``x_T=``, ``eta = 0``, no clipping) returns ``x0`` up to that
        approximation, an error that shrinks like ``1 / num_steps``. Never clips, whatever
        ``clip_sample`` says. Steps where :math:`\\bar\\alpha` drops by orders of magnitude (the
        capped last step of the cosine schedule) amplify any mismatch of the model's noise
        prediction; invert over a sub-sequence that skips them when the model is not exact.

        Shapes: ``x0`` (B, ...). Returns the latent at index ``timesteps[0]`` (and, when asked, the
        trajectory of shape ``(num_steps + 1, *x0.shape)`` from ``x0`` upwards).
        """
        if not isinstance(x0, torch.Tensor) or x0.ndim < 1:
            raise ValueError("x0 must be a torch tensor of shape (B, ...)")
        x = x0
        abar_p = torch.ones((), dtype=x0.dtype, device=x0.device)
        trajectory = [x] if return_trajectory else None
        for t in self.timesteps.flip(0).tolist():
            t_batch = torch.full((x0.shape[0],), t, dtype=torch.long, device=x0.device)
            eps = model(x, t_batch) if cond is None else model(x, t_batch, cond)
            abar_t = extract(self.schedule, "alphas_cumprod", t_batch, x)
            x0_hat = (x - (1 - abar_p).sqrt() * eps) / abar_p.sqrt()
            x = abar_t.sqrt() * x0_hat + (1 - abar_t).sqrt() * eps
            abar_p = abar_t
            if trajectory is not None:
                trajectory.append(x)
        if trajectory is not None:
            return x, torch.stack(trajectory)
        return x

    def __repr__(self) -> str:
        return (f"DDIMSampler(T={self.schedule.num_steps}, num_steps={self.num_steps}, eta={self.eta}, "
                f"clip_sample={self.clip_sample}, spacing={self.spacing!r})")
