"""Diffusion Policy with the transformer denoiser (``diffusion-transformer``).

Everything but the network is the CNN policy's (:mod:`dplearn.policies.diffusion`): the same
ε-prediction loss on action chunks, the same squared-cosine schedule with K = 100 steps, the same
DDPM/DDIM samplers and receding horizon. The denoiser is a
:class:`~dplearn.nets.TransformerDenoiser`: each action step of :math:`A^k_t` is a token, and the
diffusion step and the ``T_o`` observations are the tokens of the memory it reads with causal
cross-attention, so the observation history stays a sequence ``(B, T_o, features)`` instead of
being flattened into one FiLM vector.

The paper's Push-T settings (Chi et al., 2023, appendix): 8 layers, 4 heads, width 256, attention
dropout 0.01, causal attention, AdamW with lr 1e-4, weight decay 0.1 on the weight matrices only,
betas (0.9, 0.95), 1000 warmup steps. The paper finds it as good as the CNN at its best (0.95 max on
Push-T states) but more sensitive to its hyperparameters (0.79 average of the last checkpoints).

Introduced in chapter 10.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from dplearn import validate
from dplearn.nets import TransformerDenoiser
from dplearn.policies.base import _check_int, register_policy
from dplearn.policies.diffusion import DiffusionConfig, DiffusionPolicy

__all__ = ["TransformerDiffusionConfig", "TransformerDiffusionPolicy"]

#: The U-Net's settings, which the transformer does not have (left out of its saved config).
CNN_FIELDS = ("down_dims", "kernel_size", "n_groups", "step_embed_dim")


@dataclass
class TransformerDiffusionConfig(DiffusionConfig):
    """:class:`~dplearn.policies.diffusion.DiffusionConfig` with the transformer's settings instead of
    the U-Net's.

    ======================  ====================================================================
    n_layer                 decoder layers (8)
    n_head                  attention heads (4)
    n_emb                   token width (256; divisible by ``n_head``)
    p_drop_emb              dropout on the token embeddings (0.0)
    p_drop_attn             dropout in attention and feed-forward blocks (0.01)
    causal                  causal self- and cross-attention (True)
    ======================  ====================================================================

    Introduced in chapter 10.
    """

    n_layer: int = 8
    n_head: int = 4
    n_emb: int = 256
    p_drop_emb: float = 0.0
    p_drop_attn: float = 0.01
    causal: bool = True

    def _check_network(self) -> None:
        for name in CNN_FIELDS:
            if getattr(self, name) != DiffusionConfig.__dataclass_fields__[name].default:
                raise ValueError(f"TransformerDiffusionConfig.{name} is a setting of the U-Net "
                                 f"(diffusion-cnn); the transformer does not have it")
        for name in ("n_layer", "n_head", "n_emb"):
            _check_int(self, name, 1)
        if self.n_emb % self.n_head:
            raise ValueError(f"TransformerDiffusionConfig.n_emb must be divisible by n_head={self.n_head}, "
                             f"got {self.n_emb}")
        for name in ("p_drop_emb", "p_drop_attn"):
            value = validate.finite_float(f"TransformerDiffusionConfig.{name}", getattr(self, name), low=0.0,
                                          high=1.0, high_open=True)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "causal", validate.boolean("TransformerDiffusionConfig.causal", self.causal))

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        for name in CNN_FIELDS:
            out.pop(name)
        return out

    @property
    def cond_dim(self) -> int:
        """Width of one observation token (the CNN's global condition divided by ``T_o``)."""
        return super().cond_dim // self.obs_horizon


@register_policy
class TransformerDiffusionPolicy(DiffusionPolicy):
    """Diffusion Policy with the causal transformer denoiser (``diffusion-transformer``).

    ``condition(obs)`` keeps the history as tokens, ``(B, T_o, features)``; the rest is
    :class:`~dplearn.policies.diffusion.DiffusionPolicy`'s. :meth:`optim_groups` decays only the
    transformer's weight matrices (and any image encoder), as the paper's recipe does.

    Introduced in chapter 10.
    """

    name = "diffusion-transformer"
    config_class = TransformerDiffusionConfig

    def make_denoiser(self) -> TransformerDenoiser:
        """The network :math:`\\varepsilon_\\theta`: a :class:`~dplearn.nets.TransformerDenoiser`."""
        c: TransformerDiffusionConfig = self.config
        return TransformerDenoiser(c.action_dim, c.pred_horizon, c.cond_dim, c.obs_horizon,
                                   n_layer=c.n_layer, n_head=c.n_head, n_emb=c.n_emb,
                                   p_drop_emb=c.p_drop_emb, p_drop_attn=c.p_drop_attn, causal=c.causal)

    def condition(self, obs: Any) -> torch.Tensor:
        """Normalised observations → observation tokens ``(B, T_o, features)``."""
        flat = super().condition(obs)
        return flat.view(flat.shape[0], self.config.obs_horizon, -1)

    def denoise(self, x: torch.Tensor, k: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """:math:`\\varepsilon_\\theta(A^k, k, O)`: ``x`` (B, T_p, action_dim), ``k`` (B,), ``cond`` (B, T_o, features)."""
        return self.model(x, k, cond)

    def optim_groups(self, weight_decay: float) -> list[dict]:
        """AdamW groups: the transformer's own split (:meth:`TransformerDenoiser.optim_groups`), and
        every other trainable parameter (image encoders) decayed with ``weight_decay``."""
        groups = self.model.optim_groups(weight_decay)
        inside = {id(p) for p in self.model.parameters()}
        rest = [p for p in self.parameters() if id(p) not in inside]
        if rest:
            groups.append({"params": rest, "weight_decay": float(weight_decay)})
        return groups
