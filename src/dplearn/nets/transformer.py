"""The transformer denoiser of Diffusion Policy: action steps as tokens, step and observations as memory.

Chi et al. (2023, sec. 3.4) offer a second network for :math:`\\varepsilon_\\theta(O_t, A^k_t, k)`,
built like a minGPT decoder. Each of the :math:`T_p` noisy actions in :math:`A^k_t` becomes one
**token** (a linear embedding plus a learned position), and a stack of decoder layers turns the
tokens into the predicted noise. The condition does not enter through FiLM as in the U-Net: it is a
second sequence, the **memory**, that every layer reads with cross-attention,

.. math::

    m = \\mathrm{MLP}\\big([\\,e(k);\\; W O_{t-T_o+1};\\; \\dots;\\; W O_t\\,] + P\\big)
    \\in \\mathbb{R}^{(1 + T_o) \\times d},

the sinusoidal embedding :math:`e(k)` of the diffusion step followed by one token per observation
in the history, each with a learned position :math:`P`. Both attentions are causal:

- self-attention: action token :math:`i` sees action tokens :math:`j \\le i` only;
- cross-attention: action token :math:`i` sees the step token and observation tokens
  :math:`1..i` only (memory position :math:`s` is visible when :math:`i \\ge s - 1`),

so the first actions of the chunk are decided from the oldest evidence first, as in the paper.
Layers are pre-norm (LayerNorm before attention), with GELU feed-forward blocks of width
:math:`4d` and dropout on the attention weights.

Shapes: ``sample`` ``(B, T_p, action_dim)``, ``k`` ``(B,)`` or a scalar, ``cond``
``(B, T_o, cond_dim)``; output ``(B, T_p, action_dim)``.

Introduced in chapter 10.
"""

from __future__ import annotations

import torch
from torch import nn

from dplearn import validate
from dplearn.nets.embeddings import SinusoidalTimeEmbedding

__all__ = ["TransformerDenoiser", "causal_masks"]


def causal_masks(horizon: int, n_cond_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean attention masks (``True`` = may not attend), as ``nn.MultiheadAttention`` takes them.

    Returns ``(self_mask, memory_mask)`` of shapes ``(horizon, horizon)`` and
    ``(horizon, n_cond_tokens)``: action token ``i`` may attend to action token ``j`` iff
    ``j <= i``, and to memory token ``s`` (0 = the diffusion step, ``1..T_o`` = observations) iff
    ``i >= s - 1``.
    """
    horizon = validate.positive_int("horizon", horizon)
    n_cond_tokens = validate.positive_int("n_cond_tokens", n_cond_tokens)
    i = torch.arange(horizon)[:, None]
    self_mask = torch.arange(horizon)[None, :] > i
    memory_mask = ~(i >= torch.arange(n_cond_tokens)[None, :] - 1)
    return self_mask, memory_mask


class TransformerDenoiser(nn.Module):
    """Predicts the noise in an action sequence with a causal transformer decoder.

    Args:
        action_dim: size of one action.
        horizon: :math:`T_p`, the number of action tokens.
        cond_dim: size of one observation feature vector.
        n_obs_steps: :math:`T_o`, the number of observation tokens.
        n_layer, n_head, n_emb: decoder depth, heads and width (paper, Push-T: 8, 4, 256).
        p_drop_emb: dropout on the token embeddings (paper: 0.0).
        p_drop_attn: dropout inside the attention and feed-forward blocks (paper: 0.01).
        causal: apply the two masks of :func:`causal_masks` (paper: yes).

    ``forward(sample, k, cond)``: ``(B, T_p, action_dim)``, ``(B,)`` or scalar,
    ``(B, T_o, cond_dim)`` → ``(B, T_p, action_dim)``.

    Introduced in chapter 10.
    """

    def __init__(self, action_dim: int, horizon: int, cond_dim: int, n_obs_steps: int,
                 n_layer: int = 8, n_head: int = 4, n_emb: int = 256,
                 p_drop_emb: float = 0.0, p_drop_attn: float = 0.01, causal: bool = True):
        super().__init__()
        self.action_dim = validate.positive_int("action_dim", action_dim)
        self.horizon = validate.positive_int("horizon", horizon)
        self.cond_dim = validate.positive_int("cond_dim", cond_dim)
        self.n_obs_steps = validate.positive_int("n_obs_steps", n_obs_steps)
        n_layer = validate.positive_int("n_layer", n_layer)
        n_head = validate.positive_int("n_head", n_head)
        n_emb = validate.positive_int("n_emb", n_emb)
        if n_emb % n_head:
            raise ValueError(f"n_emb ({n_emb}) must be divisible by n_head ({n_head})")
        for name, p in (("p_drop_emb", p_drop_emb), ("p_drop_attn", p_drop_attn)):
            validate.finite_float(name, p, low=0.0, high=1.0, high_open=True)  # a dropout probability
        n_cond = 1 + self.n_obs_steps

        self.input_emb = nn.Linear(self.action_dim, n_emb)
        self.pos_emb = nn.Parameter(torch.zeros(1, self.horizon, n_emb))
        self.drop = nn.Dropout(p_drop_emb)
        self.step_emb = SinusoidalTimeEmbedding(n_emb)
        self.cond_obs_emb = nn.Linear(self.cond_dim, n_emb)
        self.cond_pos_emb = nn.Parameter(torch.zeros(1, n_cond, n_emb))
        self.encoder = nn.Sequential(nn.Linear(n_emb, 4 * n_emb), nn.Mish(), nn.Linear(4 * n_emb, n_emb))
        layer = nn.TransformerDecoderLayer(d_model=n_emb, nhead=n_head, dim_feedforward=4 * n_emb,
                                           dropout=p_drop_attn, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, num_layers=n_layer)
        self.ln_f = nn.LayerNorm(n_emb)
        self.head = nn.Linear(n_emb, self.action_dim)

        self.causal = bool(causal)
        self_mask, memory_mask = causal_masks(self.horizon, n_cond)
        self.register_buffer("self_mask", self_mask, persistent=False)
        self.register_buffer("memory_mask", memory_mask, persistent=False)
        self.apply(self._init_weights)
        nn.init.normal_(self.pos_emb, std=0.02)
        nn.init.normal_(self.cond_pos_emb, std=0.02)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # minGPT's initialisation: N(0, 0.02) weights, zero biases, unit LayerNorms
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.MultiheadAttention):
            for name in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"):
                if getattr(module, name, None) is not None:
                    nn.init.normal_(getattr(module, name), std=0.02)
            if module.in_proj_bias is not None:
                nn.init.zeros_(module.in_proj_bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def optim_groups(self, weight_decay: float) -> list[dict]:
        """Parameter groups for AdamW: decay on the weights of linear and attention maps only.

        Biases, LayerNorm gains and the learned positions are not decayed (minGPT's rule, which the
        paper's transformer recipe follows with weight decay 0.1).
        """
        decay, no_decay = [], []
        for name, param in self.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            is_norm = ".norm" in name or name.startswith("ln_f")
            if leaf.endswith("weight") and not is_norm:
                decay.append(param)
            else:
                no_decay.append(param)
        return [{"params": decay, "weight_decay": float(weight_decay)},
                {"params": no_decay, "weight_decay": 0.0}]

    def forward(self, sample: torch.Tensor, k: torch.Tensor | int, cond: torch.Tensor) -> torch.Tensor:
        if sample.ndim != 3 or sample.shape[1:] != (self.horizon, self.action_dim):
            raise ValueError(f"sample must have shape (B, {self.horizon}, {self.action_dim}), "
                             f"got {tuple(sample.shape)}")
        batch = sample.shape[0]
        if cond.ndim != 3 or cond.shape != (batch, self.n_obs_steps, self.cond_dim):
            raise ValueError(f"cond must have shape ({batch}, {self.n_obs_steps}, {self.cond_dim}), "
                             f"got {tuple(cond.shape)}")
        k = torch.as_tensor(k, device=sample.device)
        if k.ndim == 0:
            k = k.expand(batch)
        if k.shape != (batch,):
            raise ValueError(f"k must be a scalar or have shape ({batch},), got {tuple(k.shape)}")

        step_token = self.step_emb(k).to(sample.dtype)[:, None, :]             # (B, 1, d)
        obs_tokens = self.cond_obs_emb(cond)                                     # (B, T_o, d)
        memory = self.encoder(self.drop(torch.cat([step_token, obs_tokens], 1) + self.cond_pos_emb))
        x = self.drop(self.input_emb(sample) + self.pos_emb)                     # (B, T_p, d)
        masks = {"tgt_mask": self.self_mask, "memory_mask": self.memory_mask} if self.causal else {}
        x = self.decoder(x, memory, **masks)
        return self.head(self.ln_f(x))
