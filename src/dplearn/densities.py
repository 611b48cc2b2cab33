"""Gaussian mixtures in :math:`\\mathbb R^d`: a multimodal density we know exactly.

A mixture of isotropic Gaussians,

.. math::

    p(x) = \\sum_{k=1}^{K} w_k\\, \\mathcal N(x;\\ \\mu_k,\\ s_k^2 I),

is the toy data of Part I: multimodal like the demonstrations of a robot task, yet its density,
its score :math:`\\nabla_x \\log p(x)` and, crucially, the density of its *noised* versions are
known in closed form. Noising a mixture with the forward process,
:math:`x_t = \\sqrt{\\bar\\alpha_t}\\,x_0 + \\sqrt{1-\\bar\\alpha_t}\\,\\varepsilon`, gives again a mixture
(a Gaussian convolved with a Gaussian is Gaussian):

.. math::

    q_t(x) = \\sum_k w_k\\, \\mathcal N\\big(x;\\ \\sqrt{\\bar\\alpha_t}\\,\\mu_k,\\
             (\\bar\\alpha_t s_k^2 + 1 - \\bar\\alpha_t) I\\big).

So we can score a trained model against the truth: its negative log-likelihood bound against
:math:`-\\log p` (chapter 3) and its learned score against :math:`\\nabla \\log q_t` (chapter 4).

Computations run in float64; inputs may be NumPy arrays or torch tensors, outputs are torch tensors.

Introduced in chapter 3.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from dplearn.validate import non_negative_int, positive_int

__all__ = ["GaussianMixture"]


def _as_float64(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to(device="cpu", dtype=torch.float64)
    try:
        return torch.as_tensor(np.asarray(x, dtype=np.float64))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of numbers, got {type(x).__name__}") from exc


class GaussianMixture:
    """:math:`p(x) = \\sum_k w_k \\mathcal N(x; \\mu_k, s_k^2 I)`.

    Parameters
    ----------
    means:
        (K, d) component means :math:`\\mu_k`.
    stds:
        a number or (K,) component standard deviations :math:`s_k > 0`.
    weights:
        (K,) non-negative weights (normalised here); ``None`` for equal weights.

    Introduced in chapter 3.
    """

    def __init__(self, means: Any, stds: Any, weights: Any | None = None):
        mu = _as_float64(means, "means")
        if mu.ndim != 2 or mu.shape[0] < 1 or mu.shape[1] < 1:
            raise ValueError(f"means must have shape (K, d), got {tuple(mu.shape)}")
        K = mu.shape[0]
        s = _as_float64(stds, "stds")
        if s.ndim == 0:
            s = s.expand(K).clone()
        if s.shape != (K,):
            raise ValueError(f"stds must be a number or have shape ({K},), got {tuple(s.shape)}")
        if not bool(torch.all(s > 0)) or not bool(torch.all(torch.isfinite(s))):
            raise ValueError("stds must be positive and finite")
        if weights is None:
            w = torch.full((K,), 1.0 / K, dtype=torch.float64)
        else:
            w = _as_float64(weights, "weights")
            if w.shape != (K,):
                raise ValueError(f"weights must have shape ({K},), got {tuple(w.shape)}")
            if not bool(torch.all(w >= 0)) or not float(w.sum()) > 0:
                raise ValueError("weights must be non-negative with a positive sum")
            w = w / w.sum()
        self.means, self.stds, self.weights = mu, s, w

    # ------------------------------------------------------------------ constructors
    @classmethod
    def ring(cls, n_modes: int = 8, radius: float = 1.0, std: float = 0.1,
             angle_offset: float = 0.0) -> GaussianMixture:
        """``n_modes`` equal Gaussians of std ``std`` evenly spaced on a circle of ``radius`` (2-D)."""
        n_modes = positive_int("n_modes", n_modes)
        if not float(radius) >= 0:
            raise ValueError(f"radius must be non-negative, got {radius!r}")
        angles = angle_offset + 2 * math.pi * torch.arange(n_modes, dtype=torch.float64) / n_modes
        means = float(radius) * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
        return cls(means, std)

    @classmethod
    def t_shape(cls, std: float = 0.06, spacing: float = 0.1) -> GaussianMixture:
        """A T-shaped density: equal Gaussians on a grid filling the Push-T block's T (2-D).

        The T of chapter 5 scaled by 1/100: a bar 1.2 wide and 0.3 high on top of a stem 0.3 wide
        and 0.9 long, centred at its centre of gravity and pointing down (bar at the top), so it
        spans about [-0.6, 0.6] × [-0.75, 0.45]. Component centres sit every ``spacing`` inside
        the two boxes; ``std`` about half the spacing or more blends them into one smooth shape.
        """
        if not float(std) > 0 or not float(spacing) > 0:
            raise ValueError(f"std and spacing must be positive, got std={std!r}, spacing={spacing!r}")
        h = float(spacing)

        def grid(x0: float, x1: float, y0: float, y1: float) -> torch.Tensor:
            xs = torch.arange(x0 + h / 2, x1 - h / 2 + 1e-9, h, dtype=torch.float64)
            ys = torch.arange(y0 + h / 2, y1 - h / 2 + 1e-9, h, dtype=torch.float64)
            return torch.cartesian_prod(xs, ys)

        bar = grid(-0.6, 0.6, 0.0, 0.3)       # the block's bar (-60..60, 0..30) / 100
        stem = grid(-0.15, 0.15, 0.3, 1.2)    # the stem (-15..15, 30..120) / 100
        points = torch.cat([bar, stem]) - torch.tensor([0.0, 0.45], dtype=torch.float64)
        points[:, 1] = -points[:, 1]          # bar on top
        return cls(points, std)

    def rotated(self, angle: float) -> GaussianMixture:
        """This mixture rotated by ``angle`` radians about the origin (2-D only)."""
        if self.dim != 2:
            raise ValueError(f"rotated needs a 2-D mixture, this one has dim={self.dim}")
        c, s = math.cos(float(angle)), math.sin(float(angle))
        R = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
        return GaussianMixture(self.means @ R.T, self.stds, self.weights)

    # ------------------------------------------------------------------ properties
    @property
    def n_modes(self) -> int:
        return int(self.means.shape[0])

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    def __repr__(self) -> str:
        return f"GaussianMixture(n_modes={self.n_modes}, dim={self.dim})"

    # ------------------------------------------------------------------ sampling and density
    def sample(self, n: int, generator: torch.Generator | None = None,
               return_labels: bool = False, dtype: torch.dtype = torch.float32):
        """``n`` samples, shape (n, d) of ``dtype`` (and their component labels, (n,) long)."""
        n = non_negative_int("n", n)
        labels = torch.multinomial(self.weights, int(n), replacement=True, generator=generator)
        noise = torch.randn(int(n), self.dim, generator=generator, dtype=torch.float64)
        x = (self.means[labels] + self.stds[labels, None] * noise).to(dtype)
        return (x, labels) if return_labels else x

    def _check_x(self, x: Any) -> torch.Tensor:
        x = _as_float64(x, "x")
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(f"x must have shape (..., {self.dim}), got {tuple(x.shape)}")
        return x

    def _component_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """(..., K): :math:`\\log w_k + \\log \\mathcal N(x; \\mu_k, s_k^2 I)`."""
        d = self.dim
        sq = ((x[..., None, :] - self.means) ** 2).sum(-1)
        var = self.stds**2
        return torch.log(self.weights) - 0.5 * sq / var - 0.5 * d * torch.log(2 * math.pi * var)

    def log_prob(self, x: Any) -> torch.Tensor:
        """:math:`\\log p(x)` in nats, shape (...,) for ``x`` of shape (..., d); float64."""
        return torch.logsumexp(self._component_log_probs(self._check_x(x)), dim=-1)

    def responsibilities(self, x: Any) -> torch.Tensor:
        """:math:`r_k(x) = p(k \\mid x)`, shape (..., K); float64."""
        return torch.softmax(self._component_log_probs(self._check_x(x)), dim=-1)

    def score(self, x: Any) -> torch.Tensor:
        """:math:`\\nabla_x \\log p(x) = \\sum_k r_k(x)\\,(\\mu_k - x)/s_k^2`, shape like ``x``; float64."""
        x = self._check_x(x)
        r = self.responsibilities(x)
        return ((r / self.stds**2)[..., None] * (self.means - x[..., None, :])).sum(-2)

    def noised(self, alpha_bar: float) -> GaussianMixture:
        """The law of :math:`\\sqrt{\\bar\\alpha}\\,x_0 + \\sqrt{1-\\bar\\alpha}\\,\\varepsilon` for :math:`x_0 \\sim p`.

        A mixture with means :math:`\\sqrt{\\bar\\alpha}\\,\\mu_k` and variances
        :math:`\\bar\\alpha s_k^2 + 1 - \\bar\\alpha`; ``alpha_bar`` in [0, 1].
        """
        a = float(alpha_bar)
        if not 0.0 <= a <= 1.0:
            raise ValueError(f"alpha_bar must lie in [0, 1], got {alpha_bar!r}")
        return GaussianMixture(math.sqrt(a) * self.means, torch.sqrt(a * self.stds**2 + 1.0 - a),
                               self.weights)
