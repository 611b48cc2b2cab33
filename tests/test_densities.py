"""Gaussian mixtures: density against scipy, score against finite differences, the noised mixture
against a numerical convolution; sample-quality measures against brute force and scipy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from dplearn.densities import GaussianMixture
from dplearn.sample_quality import energy_distance, mode_coverage


def _mixture():
    means = np.array([[0.0, 0.0], [2.0, -1.0], [-1.5, 1.0]])
    return GaussianMixture(means, stds=[0.3, 0.5, 0.8], weights=[1.0, 2.0, 1.0]), means


def test_log_prob_matches_scipy():
    gm, means = _mixture()
    x = np.random.default_rng(0).normal(size=(50, 2)) * 2
    w = np.array([0.25, 0.5, 0.25])
    dens = sum(w[k] * stats.multivariate_normal(means[k], s**2 * np.eye(2)).pdf(x)
               for k, s in enumerate([0.3, 0.5, 0.8]))
    np.testing.assert_allclose(gm.log_prob(x).numpy(), np.log(dens), rtol=1e-10)


def test_score_matches_finite_differences():
    gm, _ = _mixture()
    x = torch.tensor(np.random.default_rng(1).normal(size=(20, 2)))
    h = 1e-5
    fd = torch.stack([(gm.log_prob(x + h * e) - gm.log_prob(x - h * e)) / (2 * h) for e in torch.eye(2, dtype=x.dtype)], 1)
    np.testing.assert_allclose(gm.score(x).numpy(), fd.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("alpha_bar", [0.9, 0.3, 0.0])
def test_noised_mixture_is_the_convolution(alpha_bar):
    # 1-D: q_t(x) = int p(x0) N(x; sqrt(a) x0, 1 - a) dx0, by numerical integration
    gm = GaussianMixture([[-1.0], [0.5]], stds=[0.2, 0.4], weights=[0.3, 0.7])
    noised = gm.noised(alpha_bar)
    for x in [-1.3, 0.0, 0.7, 2.0]:
        def integrand(x0, x=x):
            p0 = float(gm.log_prob(np.array([[x0]]))[0].exp())
            return p0 * stats.norm(np.sqrt(alpha_bar) * x0, np.sqrt(1 - alpha_bar)).pdf(x)
        expected, _ = integrate.quad(integrand, -6, 6, points=[-1.0, 0.5], limit=200)
        assert float(noised.log_prob(np.array([[x]]))[0].exp()) == pytest.approx(expected, rel=1e-6)


def test_sample_frequencies_and_moments():
    gm, means = _mixture()
    x, labels = gm.sample(40000, generator=torch.Generator().manual_seed(0), return_labels=True)
    freq = np.bincount(labels.numpy(), minlength=3) / 40000
    np.testing.assert_allclose(freq, [0.25, 0.5, 0.25], atol=0.01)
    for k, s in enumerate([0.3, 0.5, 0.8]):
        xk = x[labels == k].double().numpy()
        np.testing.assert_allclose(xk.mean(0), means[k], atol=0.03)
        np.testing.assert_allclose(xk.std(0), [s, s], rtol=0.03)


def test_ring_geometry():
    gm = GaussianMixture.ring(8, radius=2.0, std=0.1)
    np.testing.assert_allclose(np.linalg.norm(gm.means.numpy(), axis=1), 2.0)
    angles = np.sort(np.mod(torch.atan2(gm.means[:, 1], gm.means[:, 0]).numpy(), 2 * np.pi))
    np.testing.assert_allclose(np.diff(angles), np.pi / 4, atol=1e-12)


def test_mixture_rejects_bad_input():
    with pytest.raises(ValueError, match="means"):
        GaussianMixture(np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="stds"):
        GaussianMixture(np.zeros((2, 2)), [1.0, -1.0])
    with pytest.raises(ValueError, match="weights"):
        GaussianMixture(np.zeros((2, 2)), 1.0, weights=[1.0])
    with pytest.raises(ValueError, match="alpha_bar"):
        GaussianMixture(np.zeros((2, 2)), 1.0).noised(1.5)
    with pytest.raises(ValueError, match="x must"):
        GaussianMixture(np.zeros((2, 2)), 1.0).log_prob(np.zeros((4, 3)))


# --------------------------------------------------------------------------- sample quality
def test_energy_distance_matches_scipy_in_1d():
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=300), rng.normal(0.5, 2.0, size=200)
    assert np.sqrt(energy_distance(u, v)) == pytest.approx(stats.energy_distance(u, v), rel=1e-10)


def test_energy_distance_matches_brute_force_in_2d():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 2)), rng.normal(1.0, 1.0, size=(30, 2))

    def mean_dist(a, b):
        return np.mean([np.linalg.norm(p - q) for p in a for q in b])

    expected = 2 * mean_dist(x, y) - mean_dist(x, x) - mean_dist(y, y)
    assert energy_distance(torch.tensor(x), y) == pytest.approx(expected, rel=1e-10)
    assert energy_distance(x, x) == pytest.approx(0.0, abs=1e-12)


def test_mode_coverage_matches_brute_force():
    rng = np.random.default_rng(2)
    means = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    x = rng.normal(size=(500, 2)) * 1.5 + 1.0
    radius = np.array([0.5, 1.0, 1.5])
    per_mode, off = mode_coverage(x, means, radius)
    counts = np.zeros(3)
    for p in x:
        d = np.linalg.norm(means - p, axis=1)
        k = int(np.argmin(d))
        if d[k] <= radius[k]:
            counts[k] += 1
    np.testing.assert_allclose(per_mode, counts / 500)
    assert off == pytest.approx(1 - counts.sum() / 500)


def test_sample_quality_rejects_bad_input():
    with pytest.raises(ValueError, match="same dimension"):
        energy_distance(np.zeros((3, 2)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="radius"):
        mode_coverage(np.zeros((3, 2)), np.zeros((2, 2)), [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="finite"):
        energy_distance(np.array([[np.nan, 0.0]]), np.zeros((3, 2)))


def test_t_shape_fills_the_t():
    gm = GaussianMixture.t_shape(std=0.05, spacing=0.1)
    mu = gm.means.numpy()
    # back to block coordinates (bar at y in [0, 0.3], stem below it after the flip)
    y_block = 0.45 - mu[:, 1]
    in_bar = (np.abs(mu[:, 0]) < 0.6) & (y_block > 0) & (y_block < 0.3)
    in_stem = (np.abs(mu[:, 0]) < 0.15) & (y_block > 0.3) & (y_block < 1.2)
    assert np.all(in_bar | in_stem)
    assert in_bar.sum() == 12 * 3 and in_stem.sum() == 3 * 9   # the grid fills both boxes
    # equal weights on an even grid: the mass is proportional to area (bar 0.36, stem 0.27)
    assert gm.weights[in_bar].sum().item() == pytest.approx(0.36 / 0.63)
    # the origin is Push-T's centre of gravity, (0, 45)/100 in block coordinates (the mean of the two
    # boxes' centroids), so the area centroid (0.15*0.36 + 0.75*0.27)/0.63 sits a little above it
    np.testing.assert_allclose(mu[in_bar].mean(0)[1] * 0.36 / 0.63 + mu[in_stem].mean(0)[1] * 0.27 / 0.63,
                               0.45 - (0.15 * 0.36 + 0.75 * 0.27) / 0.63, atol=1e-12)


def test_rotated_density_is_the_rotated_density():
    gm = GaussianMixture.t_shape()
    angle = 0.7
    rot = gm.rotated(angle)
    R = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    x = np.random.default_rng(3).normal(size=(100, 2)) * 0.5
    np.testing.assert_allclose(rot.log_prob(x @ R.T).numpy(), gm.log_prob(x).numpy(), rtol=1e-10)
    with pytest.raises(ValueError, match="2-D"):
        GaussianMixture(np.zeros((2, 3)), 1.0).rotated(0.1)
