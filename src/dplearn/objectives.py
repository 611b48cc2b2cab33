"""What a diffusion model optimises: the simplified ε-prediction loss and the full variational bound.

DDPM (Ho et al., 2020) bounds the negative log-likelihood by a sum of KL divergences,

.. math::

    -\\log p_\\theta(x_0) \\le
    \\underbrace{\\mathrm{KL}(q(x_T \\mid x_0)\\,\\|\\,p(x_T))}_{L_T}
    + \\sum_{t=2}^{T} \\underbrace{\\mathbb E_{q(x_t \\mid x_0)}\\,
        \\mathrm{KL}(q(x_{t-1} \\mid x_t, x_0)\\,\\|\\,p_\\theta(x_{t-1} \\mid x_t))}_{L_{t-1}}
    + \\underbrace{\\mathbb E_{q(x_1 \\mid x_0)}\\big[-\\log p_\\theta(x_0 \\mid x_1)\\big]}_{L_0},

and, with the mean of :math:`p_\\theta(x_{t-1} \\mid x_t)` parametrised through a noise prediction
:math:`\\hat\\varepsilon_\\theta(x_t, t)`, every :math:`L_{t-1}` is a weighted
:math:`\\|\\varepsilon - \\hat\\varepsilon_\\theta\\|^2`. Dropping the weights gives the loss everyone
trains with (:func:`diffusion_loss`); :func:`vlb_terms` computes the bound itself, term by term,
to measure a trained model in nats.

Introduced in chapter 3.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from dplearn.diffusion import NoiseSchedule, predict_x0_from_eps, q_posterior, q_sample
from dplearn.divergence import kl_gaussian

__all__ = ["diffusion_loss", "vlb_terms"]


def _call(model: nn.Module, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
    return model(x, t) if cond is None else model(x, t, cond)


def _check_x0(x0: torch.Tensor) -> None:
    if not isinstance(x0, torch.Tensor) or x0.ndim < 2 or x0.shape[0] < 1:
        shape = tuple(x0.shape) if isinstance(x0, torch.Tensor) else type(x0).__name__
        raise ValueError(f"x0 must be a tensor of shape (B, ...) with B >= 1, got {shape}")


def diffusion_loss(model: nn.Module, schedule: NoiseSchedule, x0: torch.Tensor,
                   cond: torch.Tensor | None = None, t: torch.Tensor | None = None,
                   noise: torch.Tensor | None = None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """The simplified DDPM loss (Ho et al., 2020, eq. 14), averaged over the batch and the dimensions.

    .. math::

        L_{simple} = \\mathbb E_{t \\sim U\\{1..T\\},\\, \\varepsilon \\sim \\mathcal N(0, I)}
        \\Big[\\tfrac1d \\big\\|\\varepsilon - \\hat\\varepsilon_\\theta\\big(\\sqrt{\\bar\\alpha_t} x_0
        + \\sqrt{1-\\bar\\alpha_t}\\,\\varepsilon,\\ t\\big)\\big\\|^2\\Big]

    Parameters
    ----------
    model:
        ``model(x_t, t)`` (or ``model(x_t, t, cond)``) → predicted noise like ``x_t``.
    schedule:
        the :class:`~dplearn.diffusion.NoiseSchedule` of the forward process.
    x0:
        (B, ...) clean data.
    cond:
        optional (B, ...) condition passed to the model.
    t, noise:
        optional step indices (B,) long in ``[0, T-1]`` and noise like ``x0``; drawn uniformly and
        from :math:`\\mathcal N(0, I)` (with ``generator``, else the global torch RNG) when ``None``.

    Returns a scalar tensor (differentiable).

    Introduced in chapter 3.
    """
    _check_x0(x0)
    if t is None:  # drawn where the generator lives (the CPU for a CPU generator), then moved
        where = generator.device if generator is not None else x0.device
        t = torch.randint(0, schedule.num_steps, (x0.shape[0],), generator=generator, device=where).to(x0.device)
    if noise is None:
        where = generator.device if generator is not None else x0.device
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=where).to(x0.device)
    x_t = q_sample(schedule, x0, t, noise)
    eps_hat = _call(model, x_t, t, cond)
    if eps_hat.shape != noise.shape:
        raise ValueError(f"the model returned shape {tuple(eps_hat.shape)}, expected the shape of x0 {tuple(x0.shape)}")
    return torch.mean((eps_hat - noise) ** 2)


@torch.no_grad()
def vlb_terms(model: nn.Module, schedule: NoiseSchedule, x0: torch.Tensor,
              cond: torch.Tensor | None = None, generator: torch.Generator | None = None,
              decoder_variance: str = "beta", reverse_variance: str = "posterior",
              n_draws: int | Sequence[int] | torch.Tensor = 1) -> torch.Tensor:
    """Every term of the variational bound on :math:`-\\log p_\\theta(x_0)`, in nats, per example.

    Returns a float64 tensor of shape (B, T + 1) whose column ``k`` is :math:`L_k`:

    * column 0, the **decoder** :math:`L_0 = -\\log \\mathcal N(x_0;\\ \\mu_\\theta(x_1, 1),\\ \\sigma_1^2 I)`,
      a Gaussian density on continuous data with :math:`\\sigma_1^2 = \\beta_1` (``decoder_variance
      ="beta"``; the posterior variance :math:`\\tilde\\beta_1` is 0 and cannot be used), or
      :math:`\\sigma_1^2 = \\tilde\\beta_2` (``"posterior"``);
    * columns :math:`k = 1..T-1`, the **denoising** terms
      :math:`L_k = \\mathrm{KL}\\big(q(x_k \\mid x_{k+1}, x_0)\\,\\|\\,\\mathcal N(\\mu_\\theta(x_{k+1}, k+1),\\
      \\sigma_{k+1}^2 I)\\big)`, closed-form Gaussian KLs, with the reverse variance fixed to the
      posterior variance :math:`\\sigma_t^2 = \\tilde\\beta_t` (``reverse_variance="posterior"``, the
      choice of :class:`~dplearn.diffusion.DDPMSampler`) or to :math:`\\sigma_t^2 = \\beta_t` (``"beta"``);
    * column T, the **prior** term :math:`L_T = \\mathrm{KL}(\\mathcal N(\\sqrt{\\bar\\alpha_T} x_0,
      (1-\\bar\\alpha_T) I)\\,\\|\\,\\mathcal N(0, I))`, which has no parameters.

    Here :math:`\\mu_\\theta(x_t, t) = \\tilde\\mu_t(\\hat x_0, x_t)` with
    :math:`\\hat x_0 = (x_t - \\sqrt{1-\\bar\\alpha_t}\\,\\hat\\varepsilon_\\theta(x_t, t))/\\sqrt{\\bar\\alpha_t}`
    (no clipping). The expectation over :math:`x_t \\sim q(x_t \\mid x_0)` uses ``n_draws`` draws per
    example and step (an int, or one int per step: the low-noise terms are the noisiest, so a few
    more draws there shrink the error bars cheaply), so ``terms.sum(1)`` is an unbiased estimate of
    each example's bound; average over many examples. ``terms.sum(1).mean()`` is the bound per
    example in nats (divide by :math:`d \\log 2` for bits per dimension).

    The model runs in the dtype of its parameters (float64 when it has none); everything else is
    computed in float64.

    Shapes: ``x0`` (B, ...), ``cond`` (B, ...) or ``None``. One model call per step (T calls), on a
    batch of ``n_draws[k] * B`` examples at step ``k``.

    Introduced in chapter 3.
    """
    _check_x0(x0)
    if reverse_variance not in ("beta", "posterior"):
        raise ValueError(f"reverse_variance must be 'beta' or 'posterior', got {reverse_variance!r}")
    if decoder_variance not in ("beta", "posterior"):
        raise ValueError(f"decoder_variance must be 'beta' or 'posterior', got {decoder_variance!r}")
    T = schedule.num_steps
    draws = torch.as_tensor(n_draws).long().flatten()
    if draws.numel() == 1:
        draws = draws.expand(T)
    if draws.numel() != T or bool((draws < 1).any()):
        raise ValueError(f"n_draws must be a positive int or {T} positive ints (one per step), got {n_draws!r}")
    param = next(iter(model.parameters()), None) if isinstance(model, nn.Module) else None
    model_dtype = param.dtype if param is not None else torch.float64
    device = param.device if param is not None else x0.device
    x0 = x0.detach().to(device=device, dtype=torch.float64)
    B = x0.shape[0]
    flat = (B, -1)
    terms = torch.zeros(B, T + 1, dtype=torch.float64, device=device)

    abar = schedule.float64("alphas_cumprod").to(device)
    mean_T = abar[-1].sqrt() * x0
    var_T = (1 - abar[-1]).expand_as(x0)
    terms[:, T] = kl_gaussian(mean_T.reshape(flat), var_T.reshape(flat), 0.0, 1.0)

    post_var = schedule.float64("posterior_variance").to(device)
    for k in range(T):  # index k holds math step t = k + 1
        m = int(draws[k])
        x0_k = x0 if m == 1 else x0.repeat(m, *([1] * (x0.ndim - 1)))   # m copies of the batch
        cond_k = cond if (cond is None or m == 1) else cond.repeat(m, *([1] * (cond.ndim - 1)))
        t = torch.full((x0_k.shape[0],), k, dtype=torch.long, device=device)
        noise = torch.randn(x0_k.shape, generator=generator, dtype=torch.float64).to(device)
        x_t = q_sample(schedule, x0_k, t, noise)
        eps_hat = _call(model, x_t.to(model_dtype), t, cond_k).to(torch.float64)
        x0_hat = predict_x0_from_eps(schedule, x_t, t, eps_hat)
        mean_theta, _ = q_posterior(schedule, x0_hat, x_t, t)
        flat_k = (x0_k.shape[0], -1)
        if k == 0:
            var = schedule.float64("betas")[0] if decoder_variance == "beta" else post_var[1 if T > 1 else 0]
            var = float(var)
            sq = ((x0_k - mean_theta) ** 2).reshape(flat_k).sum(1)
            d = x0[0].numel()
            value = 0.5 * sq / var + 0.5 * d * math.log(2 * math.pi * var)
        else:
            mean_q, var_q = q_posterior(schedule, x0_k, x_t, t)
            var_p = var_q if reverse_variance == "posterior" else torch.full_like(
                var_q, float(schedule.float64("betas")[k]))
            value = kl_gaussian(mean_q.reshape(flat_k), var_q.reshape(flat_k),
                                mean_theta.reshape(flat_k), var_p.reshape(flat_k))
        terms[:, k] = value.reshape(m, B).mean(0)
    return terms
