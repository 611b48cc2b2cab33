"""How close are generated samples to the data? Energy distance and per-mode coverage.

Looking at a scatter plot is not a measurement. Two numbers that are:

* the **energy distance** between two sample sets (Székely & Rizzo), zero exactly when the two
  distributions are equal,

  .. math:: D^2(P, Q) = 2\\,\\mathbb E\\|X - Y\\| - \\mathbb E\\|X - X'\\| - \\mathbb E\\|Y - Y'\\|,
            \\qquad X, X' \\sim P,\\ Y, Y' \\sim Q,

  computed on the empirical distributions (the V-statistic, as ``scipy.stats.energy_distance``,
  which returns :math:`D`). Finite samples of the *same* distribution still give :math:`D^2 > 0`, so
  always compare with a data-vs-data baseline of the same sizes;
* **mode coverage** for data with known modes: the fraction of samples near each mode, and the
  fraction near none (the "in-between" samples that a mode-averaging model produces).

Introduced in chapter 3.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["energy_distance", "mode_coverage"]


def _points(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        x = x.detach().to(device="cpu", dtype=torch.float64)
    else:
        try:
            x = torch.as_tensor(np.asarray(x, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be an array of shape (N, d), got {type(x).__name__}") from exc
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"{name} must have shape (N, d) with N >= 1, got {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} must be finite, found nan or inf")
    return x


def _mean_distance(a: torch.Tensor, b: torch.Tensor, chunk: int = 2048) -> float:
    total = 0.0
    for i in range(0, a.shape[0], chunk):
        total += float(torch.cdist(a[i:i + chunk], b, compute_mode="donot_use_mm_for_euclid_dist").sum())
    return total / (a.shape[0] * b.shape[0])


def energy_distance(x: Any, y: Any) -> float:
    """Squared energy distance :math:`D^2` between the samples ``x`` (N, d) and ``y`` (M, d).

    1-D arrays are read as (N, 1). Float64, Euclidean norm, V-statistic (diagonal included), so
    :math:`\\sqrt{D^2}` equals ``scipy.stats.energy_distance`` in one dimension.

    Introduced in chapter 3.
    """
    x, y = _points(x, "x"), _points(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same dimension, got {x.shape[1]} and {y.shape[1]}")
    return 2 * _mean_distance(x, y) - _mean_distance(x, x) - _mean_distance(y, y)


def mode_coverage(samples: Any, means: Any, radius: Any) -> tuple[np.ndarray, float]:
    """Fraction of ``samples`` (N, d) within ``radius`` of each mode, and the fraction near none.

    ``means`` (K, d) are the modes; ``radius`` a number or (K,) per mode (e.g. 3 standard
    deviations). A sample counts for its nearest mode when it lies within that mode's radius.
    Returns ``(per_mode, off)``: ``per_mode`` (K,) fractions of all samples, and ``off`` the
    fraction within no radius; ``per_mode.sum() + off == 1``.

    Introduced in chapter 3.
    """
    x, mu = _points(samples, "samples"), _points(means, "means")
    if x.shape[1] != mu.shape[1]:
        raise ValueError(f"samples and means must have the same dimension, got {x.shape[1]} and {mu.shape[1]}")
    r = torch.as_tensor(np.asarray(radius, dtype=np.float64))
    if r.ndim == 0:
        r = r.expand(mu.shape[0])
    if r.shape != (mu.shape[0],) or not bool((r > 0).all()):
        raise ValueError(f"radius must be a positive number or have shape ({mu.shape[0]},) of positive values")
    dist = torch.cdist(x, mu, compute_mode="donot_use_mm_for_euclid_dist")
    nearest = dist.argmin(dim=1)
    near = dist.gather(1, nearest[:, None])[:, 0] <= r[nearest]
    counts = torch.bincount(nearest[near], minlength=mu.shape[0]).to(torch.float64)
    per_mode = (counts / x.shape[0]).numpy()
    return per_mode, float(1.0 - per_mode.sum())
