"""A residual MLP noise predictor :math:`\\hat\\varepsilon_\\theta(x_t, t[, c])` for low-dimensional data.

The network a diffusion model trains (chapter 3) takes a noisy point :math:`x_t`, the step
:math:`t` and optionally a condition :math:`c`, and predicts the noise that was added. The step
and the condition enter every block through :class:`~dplearn.nets.FiLM`:

.. math::

    z &= [\\,\\mathrm{MLP}(\\mathrm{emb}(t)),\\ c\\,] \\\\
    h_0 &= W_{in} x_t \\\\
    h_{l+1} &= h_l + W_2^{(l)}\\,\\mathrm{Mish}\\big(\\mathrm{FiLM}^{(l)}(\\mathrm{LN}(W_1^{(l)} h_l);\\ z)\\big)
              \\quad (l = 0, \\dots, L-1) \\\\
    \\hat\\varepsilon &= W_{out}\\,\\mathrm{Mish}(h_L)

where emb is :class:`~dplearn.nets.SinusoidalTimeEmbedding` and LN a layer norm without its own
affine parameters (FiLM supplies them). This is the fully connected cousin of Diffusion
Policy's temporal U-Net (chapter 8), which conditions its convolutional blocks the same way.

The plain multilayer perceptron :func:`mlp` (linear maps and Mish, no conditioning) is the trunk
of the explicit and implicit policies of chapters 6 and 7.

Introduced in chapter 3 (time conditioning) and chapter 4 (an extra condition :math:`c`).
"""

from __future__ import annotations

import numbers

import torch
from torch import nn

from dplearn import validate
from dplearn.nets.embeddings import step_encoder
from dplearn.nets.film import FiLM

__all__ = ["MLPDenoiser", "FiLMResidualBlock", "mlp"]


def mlp(in_dim: int, hidden: int, n_layers: int, out_dim: int | None) -> nn.Sequential:
    """``n_layers`` hidden layers of width ``hidden`` with Mish, then a linear map to ``out_dim``.

    Shapes: (..., in_dim) → (..., out_dim); with ``out_dim=None`` the last linear map is left out
    and the output is the last hidden layer's features (..., hidden), for a head to sit on.

    Introduced in chapter 6.
    """
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(n_layers):
        layers += [nn.Linear(width, hidden), nn.Mish()]
        width = hidden
    if out_dim is not None:
        layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class FiLMResidualBlock(nn.Module):
    """:math:`h \\mapsto h + W_2\\,\\mathrm{Mish}(\\mathrm{FiLM}(\\mathrm{LN}(W_1 h); z))`.

    Shapes: ``h`` (B, width), ``z`` (B, cond_dim) → (B, width).

    Introduced in chapter 3.
    """

    def __init__(self, width: int, cond_dim: int):
        super().__init__()
        self.linear1 = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.film = FiLM(cond_dim, width)
        self.act = nn.Mish()
        self.linear2 = nn.Linear(width, width)

    def forward(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        r = self.film(self.norm(self.linear1(h)), z)
        return h + self.linear2(self.act(r))


class MLPDenoiser(nn.Module):
    """Noise predictor :math:`\\hat\\varepsilon_\\theta(x_t, t[, c])` for points in :math:`\\mathbb R^{d}`.

    Parameters
    ----------
    x_dim:
        :math:`d`, the dimension of the data (2 for the toy problems of Part I).
    hidden:
        Width of the residual blocks.
    n_layers:
        Number of residual blocks :math:`L` (>= 1).
    time_dim:
        Width of the sinusoidal step embedding (even, >= 4).
    cond_dim:
        Width of the optional condition :math:`c`; 0 (default) means unconditional.

    ``forward(x, t, cond=None)``:

    ========  ====================================================================
    ``x``     (B, x_dim) float, the noisy points :math:`x_t`
    ``t``     (B,) steps (long indices or floats), or an int / 0-d tensor for all
    ``cond``  (B, cond_dim) float; required iff ``cond_dim > 0``
    returns   (B, x_dim), the predicted noise :math:`\\hat\\varepsilon`
    ========  ====================================================================

    Introduced in chapter 3.
    """

    def __init__(self, x_dim: int, hidden: int = 128, n_layers: int = 3, time_dim: int = 32,
                 cond_dim: int = 0):
        super().__init__()
        x_dim, hidden, n_layers = (validate.positive_int(name, value) for name, value in
                                   (("x_dim", x_dim), ("hidden", hidden), ("n_layers", n_layers)))
        cond_dim = validate.non_negative_int("cond_dim", cond_dim)
        self.x_dim, self.hidden, self.n_layers = x_dim, hidden, n_layers
        self.time_dim, self.cond_dim = time_dim, cond_dim
        self.time_embedding = step_encoder(time_dim)
        z_dim = time_dim + cond_dim
        self.input = nn.Linear(x_dim, hidden)
        self.blocks = nn.ModuleList([FiLMResidualBlock(hidden, z_dim) for _ in range(n_layers)])
        self.act = nn.Mish()
        self.output = nn.Linear(hidden, x_dim)

    def _steps(self, t, batch: int, device: torch.device) -> torch.Tensor:
        if isinstance(t, bool):
            raise ValueError(f"t must be a number or a tensor of shape (B,), got {t!r}")
        if isinstance(t, numbers.Real):  # Python or NumPy, integer or float
            return torch.full((batch,), validate.finite_float("t", t), device=device)
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"t must be a number or a tensor of shape (B,), got {type(t).__name__}")
        if t.ndim == 0:
            return t.to(device=device, dtype=torch.float32).expand(batch)
        if t.shape != (batch,):
            raise ValueError(f"t must have shape ({batch},) to match x, got {tuple(t.shape)}")
        return t.to(device=device, dtype=torch.float32)

    def forward(self, x: torch.Tensor, t, cond: torch.Tensor | None = None) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != self.x_dim:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be a tensor of shape (B, {self.x_dim}), got {shape}")
        z = self.time_embedding(self._steps(t, x.shape[0], x.device))
        if self.cond_dim:
            if cond is None:
                raise ValueError(f"cond is required: this denoiser was built with cond_dim={self.cond_dim}")
            if not isinstance(cond, torch.Tensor) or cond.shape != (x.shape[0], self.cond_dim):
                shape = tuple(cond.shape) if isinstance(cond, torch.Tensor) else type(cond).__name__
                raise ValueError(f"cond must have shape ({x.shape[0]}, {self.cond_dim}), got {shape}")
            z = torch.cat([z, cond.to(z.dtype)], dim=-1)
        elif cond is not None:
            raise ValueError("cond must be None: this denoiser was built with cond_dim=0")
        h = self.input(x)
        for block in self.blocks:
            h = block(h, z)
        return self.output(self.act(h))
