"""Chapter 9's checkers accept correct answers written independently here and reject typical mistakes."""

from __future__ import annotations

import numpy as np
import torch

from dplearn.exercises import ch09


# ---- spatial softmax: written with numpy, pixel by pixel ----------------------------------------
def _spatial_softmax(order="xy", units="unit", joint=False):
    def fn(maps):
        m = maps.detach().numpy()
        n, k, h, w = m.shape
        out = np.zeros((n, k, 2))
        for a in range(n):
            z = np.exp(m[a] - m[a].max()) if joint else None
            for b in range(k):
                p = z[b] / z.sum() if joint else np.exp(m[a, b] - m[a, b].max())
                p = p if joint else p / p.sum()
                for i in range(h):
                    for j in range(w):
                        x = j if units == "pixel" else -1 + 2 * j / (w - 1)
                        y = i if units == "pixel" else -1 + 2 * i / (h - 1)
                        out[a, b] += p[i, j] * (np.array([x, y]) if order == "xy" else np.array([y, x]))
        return out
    return fn


def test_spatial_softmax_accepts_a_pixel_loop():
    assert ch09.check_spatial_softmax(_spatial_softmax())


def test_spatial_softmax_names_the_mistakes():
    assert "(y, x)" in ch09.check_spatial_softmax(_spatial_softmax(order="yx")).message
    assert "pixel units" in ch09.check_spatial_softmax(_spatial_softmax(units="pixel")).message
    assert "all maps at once" in ch09.check_spatial_softmax(_spatial_softmax(joint=True)).message
    assert "Not attempted" in ch09.check_spatial_softmax(lambda maps: ...).message
    res = ch09.check_spatial_softmax(lambda maps: maps.mean((-1, -2)))
    assert not res and "shape" in res.message


# ---- crops: a loop over images with numpy's generator --------------------------------------------
def _random_crop(same_offset=False, exclusive=False, skewed=False, seed=0):
    rng = np.random.default_rng(seed)

    def fn(images, size):
        n, _, h, w = images.shape
        hi_t, hi_l = (h - size, w - size) if exclusive else (h - size + 1, w - size + 1)
        tops, lefts = rng.integers(0, max(hi_t, 1), n), rng.integers(0, max(hi_l, 1), n)
        if skewed:  # every offset possible, the larger ones more often
            tops = np.maximum(tops, rng.integers(0, hi_t, n))
        if same_offset:
            tops[:], lefts[:] = tops[0], lefts[0]
        return torch.stack([images[m, :, t:t + size, l_:l_ + size] for m, (t, l_) in enumerate(zip(tops, lefts, strict=True))])
    return fn


def _center_crop(off_by_one=False):
    def fn(images, size):
        h, w = images.shape[-2:]
        top, left = (h - size + off_by_one) // 2, (w - size + off_by_one) // 2
        return images[..., top:top + size, left:left + size]
    return fn


def test_crops_accept_a_loop_over_images():
    assert ch09.check_crops(_random_crop(), _center_crop())


def test_crops_name_the_mistakes():
    assert "same offset" in ch09.check_crops(_random_crop(same_offset=True), _center_crop()).message
    assert "last offsets" in ch09.check_crops(_random_crop(exclusive=True), _center_crop()).message
    assert "central window" in ch09.check_crops(_random_crop(), _center_crop(off_by_one=True)).message
    transposed = ch09.check_crops(lambda x, s: _random_crop()(x, s).transpose(-1, -2), _center_crop())
    assert not transposed and "windows" in transposed.message
    biased = ch09.check_crops(_random_crop(skewed=True), _center_crop())
    assert not biased and "uniform" in biased.message


# ---- GroupNorm: per image, per group, in numpy float64 -------------------------------------------
def _group_norm(stats="group", ddof=0):
    def fn(x, groups):
        a = x.detach().numpy()
        n, c, h, w = a.shape
        if stats == "batch":
            mean, var = a.mean((0, 2, 3), keepdims=True), a.var((0, 2, 3), keepdims=True)
            return (a - mean) / np.sqrt(var + 1e-5)
        g = 1 if stats == "layer" else groups
        out = np.empty_like(a)
        for m in range(n):
            for j in range(g):
                block = a[m, j * c // g:(j + 1) * c // g]
                out[m, j * c // g:(j + 1) * c // g] = (block - block.mean()) / np.sqrt(block.var(ddof=ddof) + 1e-5)
        return out
    return fn


def test_group_norm_accepts_a_numpy_loop():
    assert ch09.check_group_norm(_group_norm())


def test_group_norm_names_the_mistakes():
    assert "BatchNorm" in ch09.check_group_norm(_group_norm(stats="batch")).message
    assert "LayerNorm" in ch09.check_group_norm(_group_norm(stats="layer")).message
    assert "unbiased" in ch09.check_group_norm(_group_norm(ddof=1)).message
    assert "changes" in ch09.check_group_norm(_batch_dependent_group_norm()).message


def _batch_dependent_group_norm():
    """Right for the first batch of each shape, then image 0 leans on the batch's other images."""
    seen = set()

    def fn(x, groups):
        out = torch.nn.functional.group_norm(x, groups, eps=1e-5)
        if x.shape in seen:
            out[0] = out[0] + 1e-2 * x[1:].mean()
        seen.add(x.shape)
        return out
    return fn
