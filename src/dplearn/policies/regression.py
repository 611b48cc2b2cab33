"""Regression: predict the action chunk directly and minimise the squared error.

.. math::

    \\mathcal L(\\theta) = \\mathbb E_{(o, a)}\\, \\|a - f_\\theta(o)\\|^2,
    \\qquad f^*(o) = \\mathbb E[a \\mid o].

The minimiser is the conditional mean of the demonstrated actions. When the demonstrations are
multimodal (go left *or* right around an obstacle) the mean lies between the modes: the policy
averages them, straight into the obstacle. Chapter 6 shows and measures it.

Introduced in chapter 6.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dplearn.nets.mlp import mlp
from dplearn.policies.base import MLPPolicyConfig, Policy, register_policy

__all__ = ["RegressionConfig", "RegressionPolicy"]


@dataclass
class RegressionConfig(MLPPolicyConfig):
    """:class:`~dplearn.policies.base.MLPPolicyConfig`; regression adds nothing.

    Introduced in chapter 6.
    """


@register_policy
class RegressionPolicy(Policy):
    """An MLP :math:`f_\\theta`: flattened observations ``(B, T_o·obs_dim)`` → chunk ``(B, T_p, action_dim)``,
    trained with the mean squared error (in normalised units).

    Introduced in chapter 6.
    """

    name = "regression"
    config_class = RegressionConfig

    def __init__(self, config=None, obs_normalizer=None, action_normalizer=None):
        super().__init__(config, obs_normalizer, action_normalizer)
        c = self.config
        self.net = mlp(c.obs_horizon * c.obs_dim, c.hidden, c.n_layers, c.pred_horizon * c.action_dim)

    def predict(self, obs: torch.Tensor) -> torch.Tensor:
        """Normalised ``obs`` (B, T_o, obs_dim) → normalised chunk (B, T_p, action_dim)."""
        c = self.config
        return self.net(obs.flatten(1)).view(-1, c.pred_horizon, c.action_dim)

    def compute_loss(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self.predict(obs), action)

    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.predict(obs)
