"""FiLM: feature-wise linear modulation, the way a condition steers a network.

Perez et al. (2018): a condition vector :math:`c` predicts one scale and one bias per channel,
and the features are modulated channel by channel,

.. math::

    \\mathrm{FiLM}(h; c) = \\gamma(c) \\odot h + \\beta(c), \\qquad
    [\\gamma(c), \\beta(c)] = W c + b .

Here the linear map starts at zero weight with :math:`b = [\\mathbf 1, \\mathbf 0]`, so at
initialisation :math:`\\gamma = 1, \\beta = 0` and FiLM is the identity: a freshly built network
behaves the same whatever the condition, and learns how much to listen to it.

The diffusion denoisers condition on the diffusion step (chapter 3) and on observations
(chapter 8: "observation as condition") through FiLM.

Introduced in chapter 3; reused by the temporal U-Net of chapter 8.
"""

from __future__ import annotations

import torch
from torch import nn

from dplearn import validate

__all__ = ["FiLM"]


class FiLM(nn.Module):
    """Per-channel affine modulation :math:`h \\mapsto \\gamma(c) \\odot h + \\beta(c)`.

    Parameters
    ----------
    cond_dim:
        Width of the condition vector :math:`c`.
    channels:
        Number of channels :math:`C` of the modulated features.

    Shapes: ``h`` is ``(B, C)`` or ``(B, C, *rest)`` (e.g. ``(B, C, T)`` for a 1-D convolution; the
    same :math:`\\gamma, \\beta` apply at every position); ``c`` is ``(B, cond_dim)``. The output has
    ``h``'s shape.

    Introduced in chapter 3.
    """

    def __init__(self, cond_dim: int, channels: int):
        super().__init__()
        cond_dim = validate.positive_int("cond_dim", cond_dim)
        channels = validate.positive_int("channels", channels)
        self.cond_dim = cond_dim
        self.channels = channels
        self.proj = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.proj.weight)
        with torch.no_grad():
            self.proj.bias[:channels].fill_(1.0)
            self.proj.bias[channels:].zero_()

    def scale_bias(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:math:`(\\gamma(c), \\beta(c))`, each of shape ``(B, C)``."""
        if not isinstance(c, torch.Tensor) or c.ndim != 2 or c.shape[1] != self.cond_dim:
            shape = tuple(c.shape) if isinstance(c, torch.Tensor) else type(c).__name__
            raise ValueError(f"c must be a tensor of shape (B, {self.cond_dim}), got {shape}")
        gamma, beta = self.proj(c).chunk(2, dim=-1)
        return gamma, beta

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if not isinstance(h, torch.Tensor) or h.ndim < 2 or h.shape[1] != self.channels:
            shape = tuple(h.shape) if isinstance(h, torch.Tensor) else type(h).__name__
            raise ValueError(f"h must be a tensor of shape (B, {self.channels}, ...), got {shape}")
        gamma, beta = self.scale_bias(c)
        if c.shape[0] != h.shape[0]:
            raise ValueError(f"c has batch size {c.shape[0]} but h has {h.shape[0]}")
        trailing = (1,) * (h.ndim - 2)
        return gamma.reshape(*gamma.shape, *trailing) * h + beta.reshape(*beta.shape, *trailing)

    def extra_repr(self) -> str:
        return f"cond_dim={self.cond_dim}, channels={self.channels}"
