"""Categorical: discretise every action coordinate into bins and classify.

Each coordinate of each action of the chunk, normalised to [−1, 1], is cut into :math:`K` equal
bins with centres :math:`c_j = -1 + (2j + 1)/K`. The network outputs one categorical distribution
per coordinate and is trained with the cross-entropy of the demonstrated bin,

.. math::

    \\mathcal L(\\theta) = -\\mathbb E_{(o, a)} \\sum_{i,d} \\log p_\\theta(j(a_{i,d}) \\mid o)_{i,d},
    \\qquad j(x) = \\min\\big(K-1, \\lfloor (x + 1) K / 2 \\rfloor\\big).

A categorical distribution can put its mass on two separate bins, so it keeps both modes of a
bimodal demonstration instead of averaging them. The price is precision: decoding returns a bin
centre, so even a perfect classifier is off by up to half a bin, :math:`1/K` in normalised units
(a root-mean-square error of :math:`(2/K)/\\sqrt{12}` for actions spread evenly within bins). The
coordinates are independent given the observation, so sampling can also combine the
:math:`x` of one mode with the :math:`y` of another.

Introduced in chapter 6.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dplearn import seeding, validate
from dplearn.nets.mlp import mlp
from dplearn.policies.base import (
    MLPPolicyConfig,
    Policy,
    _check_choice,
    _check_float,
    _check_int,
    register_policy,
)

__all__ = ["CategoricalConfig", "CategoricalPolicy", "bin_centers", "discretize"]


def bin_centers(n_bins: int, device: torch.device | str | None = None) -> torch.Tensor:
    """The centres :math:`c_j = -1 + (2j+1)/K` of ``n_bins`` equal bins of [−1, 1], shape (K,).

    Introduced in chapter 6.
    """
    n_bins = validate.integer("n_bins", n_bins, low=2)
    return -1.0 + (2.0 * torch.arange(n_bins, device=device, dtype=torch.float32) + 1.0) / n_bins


def discretize(x: torch.Tensor, n_bins: int) -> torch.Tensor:
    """The bin index :math:`j(x) = \\min(K-1, \\lfloor (x+1)K/2 \\rfloor)` of values in [−1, 1] (clamped).

    Shapes: any → the same shape, dtype long.

    Introduced in chapter 6.
    """
    n_bins = validate.integer("n_bins", n_bins, low=2)
    return torch.clamp(torch.floor((x + 1.0) * n_bins / 2.0), 0, n_bins - 1).long()


@dataclass
class CategoricalConfig(MLPPolicyConfig):
    """:class:`~dplearn.policies.base.MLPPolicyConfig` plus

    ===========  ==================================================================================
    n_bins       :math:`K`, bins per action coordinate (>= 2)
    decode       ``"argmax"``: the most likely bin's centre; ``"sample"``: a bin drawn from
                 the distribution; ``"expectation"``: :math:`\\sum_j p_j c_j` (averages modes again)
    temperature  logits are divided by it before sampling (> 0)
    ===========  ==================================================================================

    Introduced in chapter 6.
    """

    n_bins: int = 64
    decode: str = "argmax"
    temperature: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int(self, "n_bins", 2)
        _check_choice(self, "decode", ("argmax", "sample", "expectation"))
        _check_float(self, "temperature", 0.0)


@register_policy
class CategoricalPolicy(Policy):
    """An MLP that outputs logits ``(B, T_p, action_dim, n_bins)``; trained by cross-entropy.

    Introduced in chapter 6.
    """

    name = "categorical"
    config_class = CategoricalConfig

    def __init__(self, config=None, obs_normalizer=None, action_normalizer=None):
        super().__init__(config, obs_normalizer, action_normalizer)
        c = self.config
        self.net = mlp(c.obs_horizon * c.obs_dim, c.hidden, c.n_layers,
                       c.pred_horizon * c.action_dim * c.n_bins)
        self.register_buffer("centers", bin_centers(c.n_bins), persistent=False)

    def logits(self, obs: torch.Tensor) -> torch.Tensor:
        """Normalised ``obs`` (B, T_o, obs_dim) → logits (B, T_p, action_dim, n_bins)."""
        c = self.config
        return self.net(obs.flatten(1)).view(-1, c.pred_horizon, c.action_dim, c.n_bins)

    def compute_loss(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        logits = self.logits(obs)
        target = discretize(action, self.config.n_bins)
        return F.cross_entropy(logits.reshape(-1, self.config.n_bins), target.reshape(-1))

    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        c = self.config
        logits = self.logits(obs)
        if c.decode == "argmax":
            return self.centers[logits.argmax(-1)]
        probs = torch.softmax(logits / c.temperature, dim=-1)
        if c.decode == "expectation":
            return probs @ self.centers
        flat = probs.reshape(-1, c.n_bins)
        index = seeding.multinomial(flat, 1, generator=generator).view(probs.shape[:-1])
        return self.centers[index]
