"""Sinusoidal embeddings of the diffusion step: a scalar ``t`` becomes a vector a network can use.

A denoiser must know how noisy its input is, i.e. the step :math:`t`. Feeding the raw integer
works poorly; the transformer's positional encoding (Vaswani et al., 2017) turns it into sines
and cosines of geometrically spaced frequencies, so that nearby steps get similar vectors and
both coarse and fine differences are visible:

.. math::

    \\omega_k = \\Big(\\frac{1}{P}\\Big)^{k/(h-1)}, \\quad k = 0, \\dots, h-1, \\qquad
    \\mathrm{emb}(t) = \\big[\\sin(\\omega_0 t), \\dots, \\sin(\\omega_{h-1} t),
                             \\cos(\\omega_0 t), \\dots, \\cos(\\omega_{h-1} t)\\big]

with :math:`h = \\text{dim}/2` and :math:`P` = ``max_period`` (10000). The sines come first, then
the cosines (the layout of DDPM's and Diffusion Policy's code; the transformer interleaves the
same numbers). The frequencies run from 1 down to exactly :math:`1/P`.

Introduced in chapter 3; reused by the temporal U-Net of chapter 8.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dplearn import validate

__all__ = ["SinusoidalTimeEmbedding", "step_encoder"]


class SinusoidalTimeEmbedding(nn.Module):
    """``t`` of shape ``(B,)`` (integer steps or real times) → embedding of shape ``(B, dim)``.

    Parameters
    ----------
    dim:
        Embedding width, an even integer >= 4.
    max_period:
        :math:`P`, the longest period is :math:`2\\pi P` (default 10000, as in the transformer).

    The module has no parameters; the frequencies are a buffer (so ``.to(device)`` moves them).

    Introduced in chapter 3.
    """

    def __init__(self, dim: int, max_period: float = 10000.0):
        super().__init__()
        dim = validate.integer("dim", dim, low=4)
        if dim % 2:
            raise ValueError(f"dim must be an even integer >= 4, got {dim!r}")
        self.dim = dim
        self.max_period = validate.finite_float("max_period", max_period, low=1.0, low_open=True)
        half = dim // 2
        k = torch.arange(half, dtype=torch.float64)
        freqs = torch.exp(-math.log(self.max_period) * k / (half - 1))
        self.register_buffer("freqs", freqs.to(torch.float32), persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"t must be a torch tensor of shape (B,), got {type(t).__name__}")
        if t.ndim != 1:
            raise ValueError(f"t must have shape (B,), got {tuple(t.shape)}")
        args = t.to(self.freqs.dtype)[:, None] * self.freqs[None, :]
        return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, max_period={self.max_period:g}"


def step_encoder(dim: int) -> nn.Sequential:
    """The diffusion step's features as DDPM's and Diffusion Policy's networks compute them: the
    sinusoidal embedding, then an MLP ``Linear(dim, 4 dim) → Mish → Linear(4 dim, dim)``.

    Shapes: ``t`` ``(B,)`` → ``(B, dim)``. Introduced in chapter 3; reused by the temporal U-Net of
    chapter 8.
    """
    return nn.Sequential(
        SinusoidalTimeEmbedding(dim),
        nn.Linear(dim, 4 * dim),
        nn.Mish(),
        nn.Linear(4 * dim, dim),
    )
