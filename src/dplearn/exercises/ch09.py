"""Checkers for the exercises of chapter 9 (the visuomotor policy).

The exercises:

- :func:`check_spatial_softmax` — keypoints from feature maps: a softmax over each map's pixels and the
  expected (x, y) under it (:class:`dplearn.nets.SpatialSoftmax` without its 1 × 1 convolution);
- :func:`check_crops` — the training crop (a random window per image) and the acting crop (the centre
  window), against :mod:`dplearn.nets.crop`;
- :func:`check_group_norm` — GroupNorm from scratch, against ``torch.nn.functional.group_norm`` in
  float64, with the batch's other images changed to show that it normalises each image by itself.

Each checker tests the reader's function on fresh random inputs and returns a
:class:`~dplearn.exercises.checking.Result`; none of them prints the reference answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dplearn.exercises.checking import Result, call, checker, close, failed, passed
from dplearn.nets.crop import center_crop
from dplearn.nets.vision import SpatialSoftmax

__all__ = ["check_spatial_softmax", "check_crops", "check_group_norm"]


def _as_tensor(x: Any) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


# ---------------------------------------------------------------------------------------------
# Exercise: spatial softmax
# ---------------------------------------------------------------------------------------------
def _library_keypoints(maps: torch.Tensor) -> torch.Tensor:
    """The library's SpatialSoftmax with its 1 × 1 convolution set to the identity: keypoints of ``maps``."""
    k = maps.shape[1]
    layer = SpatialSoftmax(k, k).double()
    with torch.no_grad():
        layer.keypoint_maps.weight.copy_(torch.eye(k, dtype=torch.float64)[:, :, None, None])
        layer.keypoint_maps.bias.zero_()
        return layer(maps)


@checker("the spatial softmax")
def check_spatial_softmax(spatial_softmax: Callable[[torch.Tensor], Any]) -> Result:
    """Check ``spatial_softmax(maps)``: maps (N, K, H, W) → keypoints (N, K, 2), each the expected
    ``(x, y)`` under a softmax over the map's H·W pixels, with x along the width and pixel coordinates
    spaced evenly from −1 (left / top edge pixel) to +1 (right / bottom edge pixel)."""
    gen = torch.Generator().manual_seed(int(np.random.default_rng().integers(2**31)))
    for n, k, h, w in ((2, 3, 5, 7), (1, 4, 6, 6), (3, 2, 9, 4)):
        maps = 3.0 * torch.randn(n, k, h, w, generator=gen, dtype=torch.float64)
        want = _library_keypoints(maps)
        got = _as_tensor(call(spatial_softmax, maps.clone())).double()
        case = f"maps of shape {(n, k, h, w)}"
        if tuple(got.shape) != (n, k, 2):
            return failed(f"for {case} you returned shape {tuple(got.shape)}",
                          f"Return one (x, y) per map: shape (N, K, 2) = {(n, k, 2)}.")
        if close(got, want, rtol=1e-5, atol=1e-6):
            continue
        if close(got.flip(-1), want, rtol=1e-5, atol=1e-6):
            return failed(f"for {case} your keypoints are (y, x)", "x runs along the width (the last axis), y "
                          "along the height: return (x, y).")
        pixels = (want + 1) / 2 * torch.tensor([w - 1, h - 1], dtype=torch.float64)
        if close(got, pixels, rtol=1e-6, atol=1e-6):
            return failed(f"for {case} your keypoints are in pixel units",
                          "Map pixel indices to [−1, 1]: the first pixel is −1, the last +1.")
        if close(got.flip(-1), pixels, rtol=1e-6, atol=1e-6):
            return failed(f"for {case} your keypoints are (row, column) pixel indices",
                          "Return (x, y) in [−1, 1]: x along the width, the first pixel −1, the last +1.")
        u = torch.linspace(-1.0, 1.0, w, dtype=torch.float64)
        v = torch.linspace(-1.0, 1.0, h, dtype=torch.float64)
        grid = torch.stack(torch.broadcast_tensors(u[None, :], v[:, None]), -1).reshape(h * w, 2)
        joint = torch.softmax(maps.reshape(n, k * h * w), dim=-1).reshape(n, k, h * w)
        if close(got, joint @ grid, rtol=1e-5, atol=1e-6):
            return failed(f"for {case} your softmax runs over all maps at once",
                          "Softmax over the H·W pixels of each map separately: each map is one distribution.")
        return failed(f"for {case} your keypoints are not the expected (x, y) under each map's softmax",
                      "p = softmax of the map flattened to H·W values; x = Σ p·u, y = Σ p·v with "
                      "u = linspace(−1, 1, W) along columns and v = linspace(−1, 1, H) along rows.")
    return passed("Correct! Each map becomes one point: where its activation is, on average.")


# ---------------------------------------------------------------------------------------------
# Exercise: the training and the acting crop
# ---------------------------------------------------------------------------------------------
@checker("the crops")
def check_crops(random_crop: Callable[[torch.Tensor, int], Any],
                center_crop_fn: Callable[[torch.Tensor, int], Any]) -> Result:
    """Check ``random_crop(images, size)``: every image of (N, C, H, W) cut to ``size × size`` at its own
    offset, drawn uniformly from all ``(H − size + 1) × (W − size + 1)`` offsets; and
    ``center_crop_fn(images, size)``: the window at ``((H − size) // 2, (W − size) // 2)``, as
    :func:`dplearn.nets.crop.center_crop`."""
    h, w, size, n = 11, 14, 8, 3000
    # pixel (i, j) of image m holds its own address, so a crop tells where it was cut
    rows = torch.arange(h)[:, None].expand(h, w)
    cols = torch.arange(w)[None, :].expand(h, w)
    images = torch.stack([rows, cols], 0)[None].repeat(n, 1, 1, 1).float()
    images = torch.cat([images, torch.arange(n, dtype=torch.float32)[:, None, None, None].expand(n, 1, h, w)], 1)
    got = _as_tensor(call(random_crop, images.clone(), size))
    if tuple(got.shape) != (n, 3, size, size):
        return failed(f"random_crop returned shape {tuple(got.shape)} for images {tuple(images.shape)} and "
                      f"size {size}", f"Return (N, C, size, size) = {(n, 3, size, size)}.")
    got = got.double()
    if not torch.equal(got[:, 2], images[:, 2, :size, :size].double()):
        return failed("random_crop mixes up the images of the batch", "Crop each image from itself.")
    top, left = got[:, 0, 0, 0].long(), got[:, 1, 0, 0].long()
    window = (torch.arange(size)[None, :, None] + top[:, None, None], torch.arange(size)[None, None, :] + left[:, None, None])
    if not (torch.equal(got[:, 0].long(), window[0].expand(n, size, size))
            and torch.equal(got[:, 1].long(), window[1].expand(n, size, size))):
        return failed("random_crop's outputs are not windows of the images (rows and columns in order)",
                      "Take images[n, :, top:top + size, left:left + size].")
    if len(torch.unique(top * w + left)) == 1:
        return failed("random_crop cuts every image of the batch at the same offset",
                      "Draw one offset per image, so one batch sees many shifts.")
    if int(top.max()) < h - size or int(left.max()) < w - size:
        return failed(f"random_crop never uses the last offsets (top {h - size} or left {w - size}) in {n} crops",
                      "There are H − size + 1 offsets per axis: draw from 0 to H − size inclusive.")
    counts = torch.bincount(top * (w - size + 1) + left, minlength=(h - size + 1) * (w - size + 1)).double()
    expected = n / counts.numel()
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    dof = counts.numel() - 1
    if chi2 > dof + 6 * np.sqrt(2 * dof):  # far beyond a uniform draw's spread
        return failed("random_crop's offsets are not uniform over all offsets",
                      "Draw top and left independently and uniformly.")
    for hh, ww, s in ((96, 96, 84), (h, w, size), (10, 13, 5)):
        x = torch.rand(2, 3, hh, ww)
        got_c = _as_tensor(call(center_crop_fn, x.clone(), s))
        if not close(got_c, center_crop(x, s)):
            return failed(f"center_crop is not the central window for {hh} × {ww} images and size {s}",
                          "The offsets are (H − size) // 2 and (W − size) // 2: for 84 of 96, 6 on each side.")
    return passed("Correct! Random windows while training, the centre one when acting.")


# ---------------------------------------------------------------------------------------------
# Exercise: GroupNorm from scratch
# ---------------------------------------------------------------------------------------------
@checker("GroupNorm")
def check_group_norm(group_norm: Callable[[torch.Tensor, int], Any]) -> Result:
    """Check ``group_norm(x, groups)``: x (N, C, H, W) normalised per image and per group of
    ``C / groups`` channels (mean 0, biased variance 1, ε = 1e-5), no affine parameters, against
    ``torch.nn.functional.group_norm`` in float64."""
    gen = torch.Generator().manual_seed(int(np.random.default_rng().integers(2**31)))
    for n, c, h, w, groups in ((4, 8, 5, 6, 2), (3, 12, 4, 4, 3), (2, 6, 3, 7, 6)):
        x = 2.0 + 3.0 * torch.randn(n, c, h, w, generator=gen, dtype=torch.float64)
        want = F.group_norm(x, groups, eps=1e-5)
        got = _as_tensor(call(group_norm, x.clone(), groups)).double()
        case = f"x of shape {(n, c, h, w)} with {groups} groups"
        if tuple(got.shape) != tuple(x.shape):
            return failed(f"for {case} you returned shape {tuple(got.shape)}", "Return the shape of x.")
        if close(got, want, rtol=1e-6, atol=1e-6):
            # the batch's other images must not matter: change them and check image 0 again
            other = x.clone()
            other[1:] = 10.0 * torch.randn(n - 1, c, h, w, generator=gen, dtype=torch.float64) - 5.0
            again = _as_tensor(call(group_norm, other, groups)).double()
            if not close(again[0], want[0], rtol=1e-6, atol=1e-6):
                return failed("image 0's output changes when the other images of the batch change",
                              "Normalise each image with its own statistics.")
            continue
        variants = {
            "BatchNorm's statistics (per channel, over the batch)": F.batch_norm(x, None, None, training=True,
                                                                                eps=1e-5),
            "one group for all channels (LayerNorm)": F.group_norm(x, 1, eps=1e-5),
            "one group per channel (InstanceNorm)": F.group_norm(x, c, eps=1e-5),
        }
        for name, v in variants.items():
            if close(got, v, rtol=1e-6, atol=1e-6):
                return failed(f"for {case} you normalise with {name}",
                              f"Split the C channels into {groups} groups of C/{groups}; normalise each image's "
                              "group over its channels and pixels.")
        unbiased = x.reshape(n, groups, -1)
        mean, var = unbiased.mean(-1, keepdim=True), unbiased.var(-1, keepdim=True, unbiased=True)
        if close(got, ((unbiased - mean) / torch.sqrt(var + 1e-5)).reshape_as(x), rtol=1e-6, atol=1e-6):
            return failed(f"for {case} you divide by the unbiased variance",
                          "Normalisation layers use the biased variance (divide by the count, not count − 1).")
        return failed(f"for {case} your output is not GroupNorm",
                      "Reshape to (N, groups, C/groups · H · W), subtract the mean and divide by "
                      "sqrt(variance + 1e-5) along the last axis, reshape back.")
    return passed("Correct! Each image is normalised by itself: the same in training and when acting.")
