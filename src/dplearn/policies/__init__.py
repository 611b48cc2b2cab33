"""Policies (layer 3): models that map an observation history to an action chunk.

One interface (:class:`Policy`): built from a config dataclass, trained by minimising
``policy.loss(batch)`` (the loop lives in :mod:`dplearn.training`), queried with
``policy.act(obs_history)``, saved and loaded as a checkpoint with its normalisers.

============  ===============================================  ==========
name          idea                                             chapter
============  ===============================================  ==========
regression    MSE to the action chunk (averages modes)          6
categorical   per-coordinate bins, cross-entropy                6
mixture       Gaussian mixture (MDN), maximum likelihood        6
lstm-gmm      LSTM over the history, GMM head (BC-RNN)          6
ibc           energy, InfoNCE, derivative-free inference        7
diffusion-cnn DDPM over action chunks, 1-D temporal U-Net, FiLM  8
diffusion-    the same, with a causal transformer denoiser      10
transformer
============  ===============================================  ==========
"""

from dplearn.policies.base import MLPPolicyConfig, Policy, PolicyConfig
from dplearn.policies.categorical import CategoricalConfig, CategoricalPolicy
from dplearn.policies.diffusion import DiffusionConfig, DiffusionPolicy
from dplearn.policies.diffusion_transformer import (
    TransformerDiffusionConfig,
    TransformerDiffusionPolicy,
)
from dplearn.policies.ibc import IBCConfig, IBCPolicy
from dplearn.policies.lstm_gmm import LSTMGMMConfig, LSTMGMMPolicy
from dplearn.policies.mixture import MixtureConfig, MixturePolicy
from dplearn.policies.registry import (
    POLICIES,
    load_policy,
    load_shipped_policy,
    make_config,
    make_policy,
    policy_class,
    register_policy,
    shipped_checkpoint_path,
)
from dplearn.policies.regression import RegressionConfig, RegressionPolicy

__all__ = [
    "Policy", "PolicyConfig", "MLPPolicyConfig", "POLICIES", "make_policy", "make_config", "load_policy", "policy_class",
    "register_policy", "load_shipped_policy", "shipped_checkpoint_path",
    "RegressionConfig", "RegressionPolicy", "TransformerDiffusionConfig", "TransformerDiffusionPolicy", "CategoricalConfig", "CategoricalPolicy",
    "MixtureConfig", "MixturePolicy", "LSTMGMMConfig", "LSTMGMMPolicy", "IBCConfig", "IBCPolicy",
    "DiffusionConfig", "DiffusionPolicy",
]
