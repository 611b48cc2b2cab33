"""Mixture density network: a Gaussian mixture over the action chunk.

The network maps the observation history to the parameters of a mixture of :math:`K`
diagonal Gaussians over the flattened chunk :math:`a \\in \\mathbb R^D` (Bishop, 1994; 2006 §5.6),

.. math::

    p_\\theta(a \\mid o) = \\sum_{k=1}^K \\pi_k(o)\\, \\mathcal N\\big(a;\\ \\mu_k(o),\\ \\mathrm{diag}\\,\\sigma_k^2(o)\\big),
    \\qquad \\pi = \\mathrm{softmax}(\\ell), \\quad \\sigma = \\mathrm{softplus}(s) + \\sigma_{\\min},

and is trained by maximum likelihood, :math:`\\mathcal L(\\theta) = -\\mathbb E \\log p_\\theta(a \\mid o)`,
computed stably as a log-sum-exp over components (by ``torch.distributions.MixtureSameFamily``;
chapter 6 writes it from scratch and compares). Two components can sit on the two modes of a
bimodal demonstration. To act, the policy draws a component :math:`k \\sim \\pi(o)` and returns its
mean :math:`\\mu_k(o)` (robomimic's "low-noise evaluation"), or a full sample. Because the draw is
fresh at every query, a one-step policy can switch modes from one step to the next.

:class:`GaussianMixtureHead` is shared with the LSTM-GMM policy (:mod:`dplearn.policies.lstm_gmm`).

Introduced in chapter 6.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributions as D
import torch.nn.functional as F
from torch import nn

from dplearn import seeding
from dplearn.nets.mlp import mlp
from dplearn.policies.base import (
    MLPPolicyConfig,
    Policy,
    _check_float,
    _check_int,
    register_policy,
)

__all__ = ["MixtureConfig", "MixturePolicy", "GaussianMixtureHead", "gaussian_mixture", "gmm_log_prob",
           "gmm_sample"]


def gaussian_mixture(logits: torch.Tensor, means: torch.Tensor,
                     stds: torch.Tensor) -> torch.distributions.MixtureSameFamily:
    """The mixture :math:`\\sum_k \\pi_k \\mathcal N(\\mu_k, \\mathrm{diag}\\,\\sigma_k^2)` with
    :math:`\\pi = \\mathrm{softmax}(\\ell)`, as a ``torch.distributions.MixtureSameFamily`` over
    vectors of size D. Shapes: ``logits`` (..., K), ``means`` and ``stds`` (..., K, D); the
    distribution's batch shape is (...).

    Introduced in chapter 6.
    """
    if means.shape != stds.shape or means.shape[:-1] != logits.shape:
        raise ValueError(f"shapes must be logits (..., K), means/stds (..., K, D); got "
                         f"{tuple(logits.shape)}, {tuple(means.shape)}, {tuple(stds.shape)}")
    components = D.Independent(D.Normal(means, stds, validate_args=False), 1)
    return D.MixtureSameFamily(D.Categorical(logits=logits, validate_args=False), components,
                               validate_args=False)


def gmm_log_prob(logits: torch.Tensor, means: torch.Tensor, stds: torch.Tensor,
                 x: torch.Tensor) -> torch.Tensor:
    """:math:`\\log \\sum_k \\pi_k \\prod_d \\mathcal N(x_d; \\mu_{kd}, \\sigma_{kd}^2)` with
    :math:`\\pi = \\mathrm{softmax}(\\ell)`, computed by :func:`gaussian_mixture` (a log-sum-exp over
    components, so it does not underflow far from the means).

    Shapes: ``logits`` (..., K), ``means`` and ``stds`` (..., K, D), ``x`` (..., D) → (...).

    Introduced in chapter 6.
    """
    if x.shape != means.shape[:-2] + means.shape[-1:]:
        raise ValueError(f"shapes must be logits (..., K), means/stds (..., K, D), x (..., D); got "
                         f"{tuple(logits.shape)}, {tuple(means.shape)}, {tuple(stds.shape)}, {tuple(x.shape)}")
    return gaussian_mixture(logits, means, stds).log_prob(x)


def gmm_sample(logits: torch.Tensor, means: torch.Tensor, stds: torch.Tensor,
               generator: torch.Generator | None = None, noise: bool = True) -> torch.Tensor:
    """Draw :math:`k \\sim \\mathrm{softmax}(\\ell)`, then :math:`\\mu_k + \\sigma_k \\varepsilon` (or :math:`\\mu_k`
    when ``noise`` is False). Shapes: ``logits`` (B, K), ``means``/``stds`` (B, K, D) → (B, D).

    Introduced in chapter 6.
    """
    k = seeding.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator).squeeze(-1)
    rows = torch.arange(means.shape[0], device=means.device)
    mu, sd = means[rows, k], stds[rows, k]
    if not noise:
        return mu
    eps = seeding.randn(mu.shape, generator, device=mu.device, dtype=mu.dtype)
    return mu + sd * eps


class GaussianMixtureHead(nn.Module):
    """Features ``(..., in_dim)`` → mixture parameters ``logits (..., K)``, ``means (..., K, D)``,
    ``stds (..., K, D)`` with :math:`\\sigma = \\mathrm{softplus}(s) + \\sigma_{\\min}`.

    Introduced in chapter 6.
    """

    def __init__(self, in_dim: int, out_dim: int, n_components: int, min_std: float = 1e-4):
        super().__init__()
        self.out_dim, self.n_components, self.min_std = out_dim, n_components, float(min_std)
        self.proj = nn.Linear(in_dim, n_components * (1 + 2 * out_dim))

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        K, D = self.n_components, self.out_dim
        out = self.proj(h)
        logits = out[..., :K]
        means = out[..., K:K + K * D].unflatten(-1, (K, D))
        stds = F.softplus(out[..., K + K * D:].unflatten(-1, (K, D))) + self.min_std
        return logits, means, stds


@dataclass
class MixtureConfig(MLPPolicyConfig):
    """:class:`~dplearn.policies.base.MLPPolicyConfig` plus

    ===============  ==============================================================================
    n_components     :math:`K`, Gaussians in the mixture (>= 1)
    min_std          :math:`\\sigma_{\\min}` added to every standard deviation (> 0)
    low_noise_eval   act with the drawn component's mean (True) or a full sample (False)
    ===============  ==============================================================================

    Introduced in chapter 6.
    """

    n_components: int = 5
    min_std: float = 1e-4
    low_noise_eval: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int(self, "n_components", 1)
        _check_float(self, "min_std", 0.0)
        if not isinstance(self.low_noise_eval, bool):
            raise ValueError(f"MixtureConfig.low_noise_eval must be True or False, got {self.low_noise_eval!r}")


@register_policy
class MixturePolicy(Policy):
    """An MLP on the flattened history and a :class:`GaussianMixtureHead` over the flattened chunk
    (:math:`D = T_p \\cdot` action_dim); trained by negative log-likelihood.

    Introduced in chapter 6.
    """

    name = "mixture"
    config_class = MixtureConfig

    def __init__(self, config=None, obs_normalizer=None, action_normalizer=None):
        super().__init__(config, obs_normalizer, action_normalizer)
        c = self.config
        self.trunk = mlp(c.obs_horizon * c.obs_dim, c.hidden, c.n_layers, None)
        self.head = GaussianMixtureHead(c.hidden, c.pred_horizon * c.action_dim, c.n_components, c.min_std)

    def mixture(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised ``obs`` (B, T_o, obs_dim) → ``(logits (B, K), means (B, K, D), stds (B, K, D))``."""
        return self.head(self.trunk(obs.flatten(1)))

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """:math:`\\log p_\\theta(a \\mid o)` of normalised ``action`` (B, T_p, action_dim) given ``obs``; (B,)."""
        return gmm_log_prob(*self.mixture(obs), action.flatten(1))

    def compute_loss(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return -self.log_prob(obs, action).mean()

    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        c = self.config
        x = gmm_sample(*self.mixture(obs), generator=generator, noise=not c.low_noise_eval)
        return x.view(-1, c.pred_horizon, c.action_dim)
