"""The 1-D temporal U-Net of Diffusion Policy: a denoiser over action sequences, FiLM-conditioned.

Chi et al. (2023, sec. 3.4 and fig. 3) denoise a whole action sequence :math:`A^k` of shape
``(T_p, action_dim)`` at once. Time runs along the sequence, so the network is a stack of 1-D
convolutions over time with the action dimensions as channels, arranged as a U-Net: a down path
that halves the sequence length and widens the channels, a middle, and an up path that restores
the length, with skip connections between levels. Every residual block is told two things
through **FiLM** (:class:`dplearn.nets.FiLM`): the diffusion step :math:`k` (a sinusoidal
embedding and a small MLP) and the observation features :math:`O_t`, concatenated into one
condition vector :math:`c`. Inside a block,

.. math::

    h = \\mathrm{Conv}(x) \\;\\to\\; h \\leftarrow \\gamma(c) \\odot h + \\beta(c)
    \\;\\to\\; h = \\mathrm{Conv}(h), \\qquad \\text{out} = h + \\mathrm{res}(x),

where each Conv is a 1-D convolution, GroupNorm and Mish, and ``res`` a 1×1 convolution when the
width changes. The observation enters only through :math:`\\gamma, \\beta`: the network models
:math:`p(A \\mid O)`, never the observations themselves.

Introduced in chapter 8.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dplearn import validate
from dplearn.nets.embeddings import step_encoder
from dplearn.nets.film import FiLM

__all__ = ["Conv1dBlock", "ConditionalResidualBlock1D", "ConditionalUnet1D"]


class Conv1dBlock(nn.Sequential):
    """Conv1d (same length) → GroupNorm → Mish. ``(B, C_in, T)`` → ``(B, C_out, T)``.

    Introduced in chapter 8.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, n_groups: int = 8):
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (to keep the sequence length), got {kernel_size}")
        if out_channels % n_groups:
            raise ValueError(f"out_channels ({out_channels}) must be divisible by n_groups ({n_groups})")
        super().__init__(
            nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
            nn.GroupNorm(n_groups, out_channels),
            nn.Mish(),
        )


class ConditionalResidualBlock1D(nn.Module):
    """The FiLM residual block of Diffusion Policy's U-Net (fig. 3).

    ``x`` ``(B, C_in, T)`` and condition ``c`` ``(B, cond_dim)`` → ``(B, C_out, T)``:
    ``Conv1dBlock`` → FiLM with :math:`\\gamma(\\mathrm{Mish}(c)), \\beta(\\mathrm{Mish}(c))` per
    channel → ``Conv1dBlock``, plus the residual path (identity, or a 1×1 convolution when
    ``C_in != C_out``). FiLM starts as the identity (:class:`~dplearn.nets.FiLM`).

    Introduced in chapter 8.
    """

    def __init__(self, in_channels: int, out_channels: int, cond_dim: int, kernel_size: int = 5,
                 n_groups: int = 8):
        super().__init__()
        self.block1 = Conv1dBlock(in_channels, out_channels, kernel_size, n_groups)
        self.cond_act = nn.Mish()
        self.film = FiLM(cond_dim, out_channels)
        self.block2 = Conv1dBlock(out_channels, out_channels, kernel_size, n_groups)
        self.residual = (nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels
                         else nn.Identity())

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.film(self.block1(x), self.cond_act(c))
        return self.block2(h) + self.residual(x)


class ConditionalUnet1D(nn.Module):
    """Diffusion Policy's 1-D temporal U-Net: :math:`\\varepsilon_\\theta(A^k, k, O)`.

    Parameters
    ----------
    action_dim:
        Channels of the sequence being denoised (2 for Push-T targets).
    global_cond_dim:
        Width of the observation features (e.g. ``T_o · obs_dim`` for flattened keypoints); 0 for
        an unconditional model.
    down_dims:
        Channel widths of the levels, e.g. ``(256, 512, 1024)`` (the paper's) or ``(64, 128, 256)``.
        The sequence length is halved between levels, so ``T_p`` must be divisible by
        ``2 ** (len(down_dims) - 1)``.
    kernel_size:
        Temporal kernel of every convolution (odd; 5 in the paper).
    n_groups:
        GroupNorm groups (8 in the paper); every width must be divisible by it.
    step_embed_dim:
        Width of the diffusion-step embedding (256 in the paper's state recipe).

    Shapes: ``forward(x, k, global_cond)`` with ``x`` ``(B, T_p, action_dim)``, ``k`` ``(B,)`` step
    indices (long or float) and ``global_cond`` ``(B, global_cond_dim)`` → ``(B, T_p, action_dim)``.

    Introduced in chapter 8.
    """

    def __init__(self, action_dim: int, global_cond_dim: int = 0,
                 down_dims: Sequence[int] = (256, 512, 1024), kernel_size: int = 5, n_groups: int = 8,
                 step_embed_dim: int = 256):
        super().__init__()
        validate.positive_int("action_dim", action_dim)
        global_cond_dim = validate.non_negative_int("global_cond_dim", global_cond_dim)
        down_dims = tuple(down_dims)
        if not down_dims:
            raise ValueError("down_dims must list at least one width")
        for d in down_dims:
            validate.positive_int("down_dims entries", d)
            if d % n_groups:
                raise ValueError(f"every width in down_dims must be divisible by n_groups={n_groups}, got {d}")
        self.action_dim = action_dim
        self.global_cond_dim = global_cond_dim
        self.down_dims = down_dims
        self.kernel_size = kernel_size
        self.step_embed_dim = step_embed_dim

        # diffusion step k -> features: sinusoidal embedding, then an MLP (as the paper's code)
        self.step_encoder = step_encoder(step_embed_dim)
        cond_dim = step_embed_dim + global_cond_dim

        def block(c_in: int, c_out: int) -> ConditionalResidualBlock1D:
            return ConditionalResidualBlock1D(c_in, c_out, cond_dim, kernel_size, n_groups)

        widths = (action_dim, *down_dims)
        self.down = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            last = i == len(down_dims) - 1
            self.down.append(nn.ModuleList([
                block(c_in, c_out), block(c_out, c_out),
                nn.Identity() if last else nn.Conv1d(c_out, c_out, 3, stride=2, padding=1),  # halve T
            ]))
        self.mid = nn.ModuleList([block(down_dims[-1], down_dims[-1]), block(down_dims[-1], down_dims[-1])])
        self.up = nn.ModuleList()
        for c_out, c_in in reversed(list(zip(down_dims[:-1], down_dims[1:], strict=True))):
            self.up.append(nn.ModuleList([
                block(2 * c_in, c_out), block(c_out, c_out),  # 2 × c_in: the skip is concatenated
                nn.ConvTranspose1d(c_out, c_out, 4, stride=2, padding=1),  # double T
            ]))
        self.final = nn.Sequential(Conv1dBlock(down_dims[0], down_dims[0], kernel_size, n_groups),
                                   nn.Conv1d(down_dims[0], action_dim, 1))

    @property
    def min_horizon_multiple(self) -> int:
        """``T_p`` must be a multiple of this: the length is halved ``len(down_dims) - 1`` times."""
        return 2 ** (len(self.down_dims) - 1)

    def condition(self, k: torch.Tensor, global_cond: torch.Tensor | None) -> torch.Tensor:
        """The FiLM condition :math:`c = [\\mathrm{emb}(k), O]`, shape ``(B, step_embed_dim + global_cond_dim)``."""
        c = self.step_encoder(k)
        if self.global_cond_dim:
            if global_cond is None or global_cond.ndim != 2 or global_cond.shape[1] != self.global_cond_dim:
                shape = None if global_cond is None else tuple(global_cond.shape)
                raise ValueError(f"global_cond must have shape (B, {self.global_cond_dim}), got {shape}")
            c = torch.cat([c, global_cond.to(c.dtype)], dim=-1)
        return c

    def forward(self, x: torch.Tensor, k: torch.Tensor | int, global_cond: torch.Tensor | None = None) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim != 3 or x.shape[2] != self.action_dim:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must have shape (B, T_p, {self.action_dim}), got {shape}")
        if x.shape[1] % self.min_horizon_multiple:
            raise ValueError(f"the sequence length T_p={x.shape[1]} must be a multiple of "
                             f"{self.min_horizon_multiple} for {len(self.down_dims)} U-Net levels")
        if not isinstance(k, torch.Tensor):
            k = torch.full((x.shape[0],), int(k), device=x.device)
        elif k.ndim == 0:
            k = k.expand(x.shape[0])
        c = self.condition(k, global_cond)
        h = x.transpose(1, 2)  # (B, action_dim, T_p): time is the convolution axis
        skips = []
        for block1, block2, downsample in self.down:
            h = block2(block1(h, c), c)
            skips.append(h)
            h = downsample(h)
        for blk in self.mid:
            h = blk(h, c)
        for block1, block2, upsample in self.up:
            h = torch.cat([h, skips.pop()], dim=1)
            h = upsample(block2(block1(h, c), c))
        return self.final(h).transpose(1, 2)

    def extra_repr(self) -> str:
        n = sum(p.numel() for p in self.parameters())
        return (f"action_dim={self.action_dim}, global_cond_dim={self.global_cond_dim}, "
                f"down_dims={self.down_dims}, kernel_size={self.kernel_size}, parameters={n:,}")
