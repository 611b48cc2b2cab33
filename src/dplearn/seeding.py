"""Seeding and random draws: one call makes Python, NumPy and torch reproducible, and one rule says
where every random number of a sampler or a policy comes from.

The rule for ``torch.Generator`` s
----------------------------------
Every function and method of dplearn that takes a ``generator`` (the samplers, every policy's
``sample``/``act``, the image crop) draws its numbers **on the generator's device and moves them
to the tensors' device**. The generator must live on the CPU or on the tensors' device; any other
(a generator on ``cuda:1`` for tensors on ``cuda:0``, a CUDA generator for CPU tensors) is refused
with a ``ValueError`` naming both devices. So a caller chooses:

- a **CPU generator** gives the same random numbers whatever device the model runs on: a policy
  evaluated on a GPU draws exactly the noise it draws on the CPU, so a run on a laptop reproduces
  the draws of a run on a GPU (the arithmetic on them may still differ in the last bits); the
  price is one host-to-device copy per draw;
- a **generator on the tensors' device** (what :func:`dplearn.evaluation.evaluate` makes) draws
  there, with no copy, reproducibly on that kind of device (CUDA's generator is a different
  algorithm from the CPU's, so its numbers differ from a CPU generator's with the same seed).

Without a generator, draws come from torch's global generator of the tensors' device, which
:func:`seed_everything` seeds. The helpers :func:`randn`, :func:`rand`, :func:`randint` and
:func:`multinomial` apply the rule; the library draws through them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import torch

from dplearn import validate

__all__ = ["seed_everything", "draw_device", "randn", "rand", "randint", "multinomial"]


def seed_everything(seed: int) -> np.random.Generator:
    """Seed ``random``, NumPy's global state and torch (CPU and CUDA); return a fresh ``Generator``.

    Prefer passing the returned generator (or a ``torch.Generator``) explicitly over relying on
    global state; the global seeds are set so that third-party code is reproducible too.
    """
    seed = validate.non_negative_int("seed", seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def _same_device(a: torch.device, b: torch.device) -> bool:
    """Do ``a`` and ``b`` name one device (an unset CUDA index matches any index)?"""
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)


def draw_device(generator: torch.Generator | None, device: str | torch.device) -> torch.device:
    """The device random numbers for tensors on ``device`` are drawn on (the module's rule).

    ``generator``'s device when one is given (the CPU or ``device`` itself; any other raises
    ``ValueError``), else ``device``. A ``generator`` that is not a ``torch.Generator`` (an int
    seed, a NumPy generator) raises ``ValueError`` too.
    """
    device = torch.device(device)
    if generator is None:
        return device
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    where = generator.device
    if where.type != "cpu" and not _same_device(where, device):
        raise ValueError(f"generator is on {where} but the tensors are on {device}: pass a generator on the "
                         f"CPU (the same numbers on every device) or on {device}")
    return where


def randn(shape: Sequence[int], generator: torch.Generator | None = None, *, device: str | torch.device = "cpu",
          dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal numbers of ``shape`` on ``device``, drawn by the module's rule."""
    where = draw_device(generator, device)
    return torch.randn(tuple(shape), generator=generator, dtype=dtype, device=where).to(device)


def rand(shape: Sequence[int], generator: torch.Generator | None = None, *, device: str | torch.device = "cpu",
         dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Uniform numbers in [0, 1) of ``shape`` on ``device``, drawn by the module's rule."""
    where = draw_device(generator, device)
    return torch.rand(tuple(shape), generator=generator, dtype=dtype, device=where).to(device)


def randint(low: int, high: int, shape: Sequence[int], generator: torch.Generator | None = None, *,
            device: str | torch.device = "cpu") -> torch.Tensor:
    """Integers in ``[low, high)`` (long) of ``shape`` on ``device``, drawn by the module's rule."""
    where = draw_device(generator, device)
    return torch.randint(low, high, tuple(shape), generator=generator, device=where).to(device)


def multinomial(probs: torch.Tensor, num_samples: int, replacement: bool = False,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """``torch.multinomial(probs, ...)`` by the module's rule: the draw happens on the generator's
    device (``probs`` is copied there when it is the CPU) and the indices return to ``probs``' device.

    Shapes: ``probs`` (K,) or (B, K) → indices (num_samples,) or (B, num_samples).
    """
    where = draw_device(generator, probs.device)
    index = torch.multinomial(probs.to(where), num_samples, replacement=replacement, generator=generator)
    return index.to(probs.device)
