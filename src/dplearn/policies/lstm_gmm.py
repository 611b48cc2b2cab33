"""LSTM-GMM: a recurrent network over the observation history with a Gaussian-mixture head.

The LSTM-GMM baseline of Diffusion Policy's experiments is robomimic's BC-RNN
(Mandlekar et al., 2021): an LSTM reads the observations one step at a time and, at every step
:math:`i`, a Gaussian-mixture head predicts that step's action,

.. math::

    h_i = \\mathrm{LSTM}(o_i, h_{i-1}), \\qquad
    p_\\theta(a_i \\mid o_{\\le i}) = \\sum_k \\pi_k(h_i)\\, \\mathcal N\\big(a_i;\\ \\mu_k(h_i),\\ \\mathrm{diag}\\,\\sigma^2_k(h_i)\\big),

trained by the negative log-likelihood summed over the window. Here the LSTM runs over the last
:math:`T_o` observations (a sliding window, so ``pred_horizon == obs_horizon`` and
``action_horizon == 1``); the action executed is drawn from the mixture of the last step.

Introduced in chapter 6.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dplearn import validate
from dplearn.policies.base import MLPPolicyConfig, Policy, _check_float, _check_int, register_policy
from dplearn.policies.mixture import GaussianMixtureHead, gmm_log_prob, gmm_sample

__all__ = ["LSTMGMMConfig", "LSTMGMMPolicy"]


@dataclass
class LSTMGMMConfig(MLPPolicyConfig):
    """:class:`~dplearn.policies.base.MLPPolicyConfig` (``hidden`` is the LSTM's width, ``n_layers`` its
    depth; ``pred_horizon`` must equal ``obs_horizon`` and ``action_horizon`` be 1) plus

    ===============  ==============================================================================
    n_components     Gaussians in the mixture of every step (>= 1)
    min_std          added to every standard deviation (> 0)
    low_noise_eval   act with the drawn component's mean (True) or a full sample (False)
    ===============  ==============================================================================

    Introduced in chapter 6.
    """

    obs_horizon: int = 10
    pred_horizon: int = 10
    n_layers: int = 2
    n_components: int = 5
    min_std: float = 1e-4
    low_noise_eval: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pred_horizon != self.obs_horizon or self.action_horizon != 1:
            raise ValueError(
                "LSTMGMMConfig: the LSTM predicts one action per observation, so pred_horizon must equal "
                f"obs_horizon and action_horizon must be 1; got obs_horizon={self.obs_horizon}, "
                f"pred_horizon={self.pred_horizon}, action_horizon={self.action_horizon}")
        _check_int(self, "n_components", 1)
        _check_float(self, "min_std", 0.0)
        object.__setattr__(self, "low_noise_eval", validate.boolean("LSTMGMMConfig.low_noise_eval",
                                                                    self.low_noise_eval))


@register_policy
class LSTMGMMPolicy(Policy):
    """An LSTM over ``(B, T_o, obs_dim)`` and a per-step :class:`~dplearn.policies.mixture.GaussianMixtureHead`
    over ``action_dim``.

    Introduced in chapter 6.
    """

    name = "lstm-gmm"
    config_class = LSTMGMMConfig

    def __init__(self, config=None, obs_normalizer=None, action_normalizer=None):
        super().__init__(config, obs_normalizer, action_normalizer)
        c = self.config
        self.lstm = nn.LSTM(c.obs_dim, c.hidden, num_layers=c.n_layers, batch_first=True)
        self.head = GaussianMixtureHead(c.hidden, c.action_dim, c.n_components, c.min_std)

    def mixture(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised ``obs`` (B, T_o, obs_dim) → per step ``logits (B, T_o, K)``, ``means``/``stds``
        (B, T_o, K, action_dim)."""
        h, _ = self.lstm(obs)
        return self.head(h)

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Per-step :math:`\\log p_\\theta(a_i \\mid o_{\\le i})` of normalised ``action`` (B, T_o, action_dim); (B, T_o)."""
        return gmm_log_prob(*self.mixture(obs), action)

    def compute_loss(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return -self.log_prob(obs, action).sum(-1).mean()

    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        logits, means, stds = self.mixture(obs)
        B, T, K, D = means.shape
        x = gmm_sample(logits.reshape(B * T, K), means.reshape(B * T, K, D), stds.reshape(B * T, K, D),
                       generator=generator, noise=not self.config.low_noise_eval)
        return x.view(B, T, D)
