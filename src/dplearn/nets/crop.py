"""The image augmentation of Diffusion Policy: a random crop while training, the centre crop when acting.

A policy that sees 96 × 96 images is trained on random 84 × 84 crops of them (each image of the
batch cropped at its own random offset, 13 × 13 possible offsets) and acts on the centre crop,
so it learns features that do not depend on the exact pixel position of the scene (Chi et al., 2023,
following robomimic's ``CropRandomizer``). Both functions work on a whole batch at once, on the
tensor's own device (a GPU in training), with no Python loop over images.

Introduced in chapter 9.
"""

from __future__ import annotations

import torch
from torch import nn

from dplearn import seeding, validate

__all__ = ["crop", "random_crop", "center_crop", "RandomCrop"]


def _check(images: torch.Tensor, size: int) -> tuple[int, int]:
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor of shape (N, C, H, W), got {shape}")
    h, w = images.shape[-2:]
    validate.integer("size", size, low=1, high=min(h, w))  # at most the images' smaller side
    return h, w


def crop(images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size: int) -> torch.Tensor:
    """``out[n] = images[n, :, top[n]:top[n] + size, left[n]:left[n] + size]`` for every n at once.

    ``images`` (N, C, H, W) of any dtype; ``top``, ``left`` (N,) integer offsets on the same device
    → (N, C, size, size), same dtype. One gather, no loop.
    """
    h, w = _check(images, size)
    n = images.shape[0]
    if top.shape != (n,) or left.shape != (n,):
        raise ValueError(f"top and left must have shape ({n},), got {tuple(top.shape)} and {tuple(left.shape)}")
    steps = torch.arange(size, device=images.device)
    rows = (top.to(images.device).long()[:, None] + steps)[:, :, None]  # (N, size, 1)
    cols = (left.to(images.device).long()[:, None] + steps)[:, None, :]  # (N, 1, size)
    batch = torch.arange(n, device=images.device)[:, None, None]
    # advanced indices around a slice put their dimensions first: (N, size, size, C) -> (N, C, size, size),
    # a view whose memory is channels-last (what convolutions on a GPU prefer)
    return images[batch, :, rows, cols].permute(0, 3, 1, 2)


def random_crop(images: torch.Tensor, size: int = 84, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each image of ``images`` (N, C, H, W) cropped to ``size × size`` at its own offset, drawn
    uniformly from the ``(H − size + 1) × (W − size + 1)`` possible ones (from ``generator`` when
    given, on the CPU or the images' device: the rule of :mod:`dplearn.seeding`)."""
    h, w = _check(images, size)
    n, device = images.shape[0], images.device
    top = seeding.randint(0, h - size + 1, (n,), generator, device=device)
    left = seeding.randint(0, w - size + 1, (n,), generator, device=device)
    return crop(images, top, left, size)


def center_crop(images: torch.Tensor, size: int = 84) -> torch.Tensor:
    """The central ``size × size`` window of every image, offset ``((H − size) // 2, (W − size) // 2)``
    (6 for 84 of 96): what the policy sees when it acts."""
    h, w = _check(images, size)
    top, left = (h - size) // 2, (w - size) // 2
    return images[:, :, top:top + size, left:left + size]


class RandomCrop(nn.Module):
    """:func:`random_crop` in training mode, :func:`center_crop` in eval mode (``module.eval()``).

    Images smaller than ``size`` are refused; images of exactly ``size`` pass unchanged.
    """

    def __init__(self, size: int = 84):
        super().__init__()
        self.size = validate.positive_int("size", size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return random_crop(images, self.size) if self.training else center_crop(images, self.size)

    def extra_repr(self) -> str:
        return f"size={self.size}"
