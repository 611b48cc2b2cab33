"""KL divergence: categorical, diagonal Gaussian (closed form) and Monte Carlo estimates.

Introduced in chapter 1. Chapter 3 writes the diffusion training objective as a sum of the
Gaussian KL terms computed here.

The Kullback-Leibler divergence of :math:`q` from :math:`p` is

.. math::

    \\mathrm{KL}(p \\,\\|\\, q) = \\mathbb{E}_{x \\sim p}\\left[\\log p(x) - \\log q(x)\\right] \\ge 0,

measured in nats (natural logarithm); divide by :math:`\\log 2` for bits. The categorical and
Gaussian functions accept NumPy arrays or torch tensors and return the same kind (torch results
keep gradients); if any argument is a tensor, the others are converted to tensors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "MonteCarloEstimate",
    "cross_entropy_categorical",
    "entropy_categorical",
    "kl_categorical",
    "kl_gaussian",
    "kl_monte_carlo",
]


# ---------------------------------------------------------------------------------------------
# Array plumbing: NumPy or torch in, the same kind out
# ---------------------------------------------------------------------------------------------
def _is_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def _as_arrays(names: tuple[str, ...], values: tuple[Any, ...]):
    """Convert ``values`` to float arrays of one kind; returns ``(arrays, xp)`` with ``xp`` the namespace.

    If any value is a torch tensor all become tensors (dtype and device of the first tensor,
    float64 for integer tensors); otherwise all become float64 NumPy arrays.
    """
    tensors = [v for v in values if _is_tensor(v)]
    if tensors:
        import torch

        ref = tensors[0]
        dtype = ref.dtype if ref.is_floating_point() else torch.float64
        out = []
        for name, v in zip(names, values, strict=True):
            if _is_tensor(v):
                out.append(v.to(dtype=dtype) if v.dtype != dtype else v)
            else:
                try:
                    out.append(torch.as_tensor(np.asarray(v, dtype=np.float64), dtype=dtype,
                                               device=ref.device))
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"{name} must be an array of numbers, got {v!r}") from exc
        return out, torch
    out = []
    for name, v in zip(names, values, strict=True):
        try:
            out.append(np.asarray(v, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be an array of numbers, got {v!r}") from exc
    return out, np


def _numpy_view(x: Any) -> np.ndarray:
    """A float64 NumPy view of ``x`` for validation (detached from any autograd graph)."""
    if _is_tensor(x):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _broadcast_shape(names: tuple[str, ...], arrays: list[Any]) -> tuple[int, ...]:
    shapes = [tuple(a.shape) for a in arrays]
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        listed = ", ".join(f"{n} {s}" for n, s in zip(names, shapes, strict=True))
        raise ValueError(f"shapes do not broadcast: {listed}") from None


def _default_tol(x: Any) -> float:
    """Tolerance on ``sum(p) == 1``: tight for float64, loose for single or half precision."""
    dtype = getattr(x, "dtype", None)
    return 1e-6 if str(dtype).endswith("float64") else 1e-3


def _check_probabilities(name: str, p: Any, atol: float | None) -> None:
    """``p`` must be finite, non-negative and sum to 1 over the last axis (within ``atol``)."""
    v = _numpy_view(p)
    if v.ndim == 0:
        raise ValueError(f"{name} must have at least one axis (the categories), got a scalar")
    if v.shape[-1] == 0:
        raise ValueError(f"{name} must have at least one category on its last axis, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must contain finite probabilities, found nan or inf")
    if np.any(v < 0):
        raise ValueError(f"{name} must be non-negative, found minimum {v.min():.3g}")
    tol = _default_tol(p) if atol is None else atol
    sums = v.sum(axis=-1)
    worst = float(np.max(np.abs(sums - 1.0)))
    if worst > tol:
        raise ValueError(
            f"{name} must sum to 1 over its last axis (tolerance {tol:g}); "
            f"found a sum off by {worst:.3g}"
        )


def _check_categorical_pair(p: Any, q: Any, atol: float | None):
    (p, q), xp = _as_arrays(("p", "q"), (p, q))
    _check_probabilities("p", p, atol)
    _check_probabilities("q", q, atol)
    if p.shape[-1] != q.shape[-1]:
        raise ValueError(
            f"p and q must have the same number of categories on the last axis, "
            f"got p {tuple(p.shape)} and q {tuple(q.shape)}"
        )
    _broadcast_shape(("p", "q"), [p, q])
    return p, q, xp


# ---------------------------------------------------------------------------------------------
# Categorical distributions
# ---------------------------------------------------------------------------------------------
def _xlogy(xp, x, y):
    """``x * log(y)`` with ``0 * log(y) = 0`` for every ``y`` (including 0).

    ``y`` is replaced by 1 where ``x = 0`` before the log, so torch gradients stay finite there.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        safe_y = xp.where(x > 0, y, 1.0)
        return xp.where(x > 0, x * xp.log(safe_y), 0.0)


def entropy_categorical(p: Any, *, atol: float | None = None) -> Any:
    """Entropy :math:`H(p) = -\\sum_k p_k \\log p_k` in nats, over the last axis.

    Introduced in chapter 1.

    Parameters
    ----------
    p:
        Probabilities of shape ``(..., K)`` (NumPy array or torch tensor), non-negative, summing to 1
        over the last axis (within ``atol``; default ``1e-6`` in float64, ``1e-3`` otherwise).

    Returns
    -------
    Array or tensor of shape ``(...)``, the same kind as ``p``; ``0 log 0`` counts as 0.
    """
    (p,), xp = _as_arrays(("p",), (p,))
    _check_probabilities("p", p, atol)
    return -_xlogy(xp, p, p).sum(-1)


def cross_entropy_categorical(p: Any, q: Any, *, atol: float | None = None) -> Any:
    """Cross-entropy :math:`H(p, q) = -\\sum_k p_k \\log q_k = H(p) + \\mathrm{KL}(p\\|q)`, in nats.

    Introduced in chapter 1. The expected code length (in nats) when symbols drawn from ``p`` are
    encoded with a code built for ``q``.

    Parameters
    ----------
    p, q:
        Probabilities of shapes ``(..., K)`` that broadcast together (NumPy or torch).

    Returns
    -------
    Shape ``(...)``; ``inf`` where some ``q_k = 0 < p_k``.
    """
    p, q, xp = _check_categorical_pair(p, q, atol)
    return -_xlogy(xp, p, q).sum(-1)


def kl_categorical(p: Any, q: Any, *, atol: float | None = None) -> Any:
    """KL divergence :math:`\\mathrm{KL}(p\\|q) = \\sum_k p_k (\\log p_k - \\log q_k)` over the last axis.

    Introduced in chapter 1. Terms with :math:`p_k = 0` contribute 0 (:math:`0 \\log 0 = 0`); the
    result is ``inf`` where some :math:`q_k = 0 < p_k` (``q`` misses part of the support of ``p``).

    ============  ===============  ==============================================================
    argument      shape            meaning
    ============  ===============  ==============================================================
    ``p``         ``(..., K)``     probabilities of the reference distribution (sum to 1)
    ``q``         ``(..., K)``     probabilities of the approximation (sum to 1); broadcasts with p
    ``atol``      scalar           tolerance on the sums (default 1e-6 in float64, 1e-3 otherwise)
    return        ``(...)``        KL in nats, NumPy array or torch tensor like the inputs
    ============  ===============  ==============================================================

    Raises ``ValueError`` naming ``p`` or ``q`` when it is negative, not finite, does not sum to 1,
    or when the numbers of categories differ.
    """
    p, q, xp = _check_categorical_pair(p, q, atol)
    return (_xlogy(xp, p, p) - _xlogy(xp, p, q)).sum(-1)


# ---------------------------------------------------------------------------------------------
# Diagonal Gaussians
# ---------------------------------------------------------------------------------------------
def kl_gaussian(mu_p: Any, var_p: Any, mu_q: Any, var_q: Any) -> Any:
    """KL divergence of diagonal Gaussians :math:`\\mathrm{KL}(\\mathcal N(\\mu_p, \\sigma_p^2) \\| \\mathcal N(\\mu_q, \\sigma_q^2))`.

    Introduced in chapter 1; chapter 3 uses it for every term of the diffusion bound.

    .. math::

        \\mathrm{KL} = \\frac12 \\sum_{i=1}^{d} \\left[ \\log\\frac{\\sigma_{q,i}^2}{\\sigma_{p,i}^2}
        + \\frac{\\sigma_{p,i}^2 + (\\mu_{p,i} - \\mu_{q,i})^2}{\\sigma_{q,i}^2} - 1 \\right]

    ============  ===============  ==============================================================
    argument      shape            meaning
    ============  ===============  ==============================================================
    ``mu_p``      ``(..., d)``     mean of p
    ``var_p``     ``(..., d)``     variances of p (> 0); **variances**, not standard deviations
    ``mu_q``      ``(..., d)``     mean of q
    ``var_q``     ``(..., d)``     variances of q (> 0)
    return        ``(...)``        KL in nats, summed over the last axis
    ============  ===============  ==============================================================

    The four arguments broadcast together (e.g. a scalar variance). If all four are scalars the
    result is the KL of two one-dimensional Gaussians (``d = 1``), a scalar. Raises ``ValueError``
    naming the argument when a variance is not positive, a value is not finite, or shapes do not
    broadcast.
    """
    names = ("mu_p", "var_p", "mu_q", "var_q")
    arrays, xp = _as_arrays(names, (mu_p, var_p, mu_q, var_q))
    for name, a in zip(names, arrays, strict=True):
        v = _numpy_view(a)
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name} must be finite, found nan or inf")
        if name.startswith("var") and np.any(v <= 0):
            raise ValueError(f"{name} must be positive (a variance), found minimum {v.min():.3g}")
    shape = _broadcast_shape(names, arrays)
    mu_p, var_p, mu_q, var_q = arrays
    terms = xp.log(var_q) - xp.log(var_p) + (var_p + (mu_p - mu_q) ** 2) / var_q - 1.0
    if len(shape) == 0:  # four scalars: one-dimensional Gaussians
        return 0.5 * terms
    return 0.5 * terms.sum(-1)


# ---------------------------------------------------------------------------------------------
# Monte Carlo
# ---------------------------------------------------------------------------------------------
class MonteCarloEstimate(NamedTuple):
    """A Monte Carlo estimate: the sample mean, its standard error and the number of samples.

    Introduced in chapter 1.
    """

    estimate: float
    stderr: float
    n: int

    def interval(self, k: float = 2.0) -> tuple[float, float]:
        """``estimate ± k · stderr`` (k = 2 gives roughly a 95 % interval)."""
        return (self.estimate - k * self.stderr, self.estimate + k * self.stderr)


def kl_monte_carlo(
    samples: Any,
    log_p: Callable[[Any], Any],
    log_q: Callable[[Any], Any],
) -> MonteCarloEstimate:
    """Unbiased Monte Carlo estimate of :math:`\\mathrm{KL}(p\\|q)` from samples of ``p``, with its standard error.

    Introduced in chapter 1.

    .. math::

        \\widehat{\\mathrm{KL}} = \\frac1N \\sum_{n=1}^{N} \\big[\\log p(x_n) - \\log q(x_n)\\big],
        \\qquad x_n \\sim p, \\qquad
        \\mathrm{s.e.} = \\frac{s}{\\sqrt N}

    with :math:`s` the sample standard deviation of the log-ratios. A single estimate can be
    negative; its expectation is the (non-negative) KL.

    ============  ===============  ==============================================================
    argument      shape            meaning
    ============  ===============  ==============================================================
    ``samples``   ``(N, ...)``     N independent draws from p (NumPy or torch)
    ``log_p``     callable         ``log_p(samples)`` → log-densities of shape ``(N,)``
    ``log_q``     callable         ``log_q(samples)`` → log-densities of shape ``(N,)``
    return        MonteCarloEstimate(estimate, stderr, n)  as Python floats
    ============  ===============  ==============================================================
    """
    if not callable(log_p):
        raise ValueError(f"log_p must be a callable returning log-densities, got {type(log_p).__name__}")
    if not callable(log_q):
        raise ValueError(f"log_q must be a callable returning log-densities, got {type(log_q).__name__}")
    n = len(samples) if hasattr(samples, "__len__") else 0
    if n < 2:
        raise ValueError(f"samples must hold at least 2 draws along its first axis, got {n}")
    lp = _numpy_view(log_p(samples))
    lq = _numpy_view(log_q(samples))
    for name, v in (("log_p", lp), ("log_q", lq)):
        if v.shape != (n,):
            raise ValueError(f"{name}(samples) must have shape ({n},), one log-density per sample, got {v.shape}")
        if np.any(np.isnan(v)):
            raise ValueError(f"{name}(samples) returned nan")
    ratio = lp - lq
    estimate = float(ratio.mean())
    if np.all(np.isfinite(ratio)):
        stderr = float(ratio.std(ddof=1) / math.sqrt(n))
    else:
        stderr = math.nan
    return MonteCarloEstimate(estimate, stderr, n)
