"""KL divergences against independent references: scipy, torch.distributions, quadrature,
Monte Carlo, and the inequalities KL must obey (Gibbs, Pinsker)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from dplearn.divergence import (
    MonteCarloEstimate,
    cross_entropy_categorical,
    entropy_categorical,
    kl_categorical,
    kl_gaussian,
    kl_monte_carlo,
)


# ---------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------
def _normalise(weights):
    w = np.asarray(weights, dtype=np.float64)
    return w / w.sum()


@st.composite
def categorical_pairs(draw, min_k=2, max_k=12, zeros_in_p=False):
    """Two categorical distributions over the same K categories (q strictly positive)."""
    k = draw(st.integers(min_k, max_k))
    weight = st.floats(1e-3, 1.0, allow_nan=False)
    p = draw(st.lists(weight, min_size=k, max_size=k))
    q = draw(st.lists(weight, min_size=k, max_size=k))
    p = np.asarray(p)
    if zeros_in_p:
        mask = draw(st.lists(st.booleans(), min_size=k, max_size=k))
        mask[draw(st.integers(0, k - 1))] = False  # keep at least one category
        p = np.where(mask, 0.0, p)
    return _normalise(p), _normalise(q)


finite = dict(allow_nan=False, allow_infinity=False)
means = st.floats(-5.0, 5.0, **finite)
variances = st.floats(0.05, 5.0, **finite)


# ---------------------------------------------------------------------------------------------
# Categorical
# ---------------------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(categorical_pairs(zeros_in_p=True))
def test_kl_categorical_matches_scipy(pair):
    p, q = pair
    assert kl_categorical(p, q) == pytest.approx(stats.entropy(p, q), rel=1e-10, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(categorical_pairs())
def test_kl_categorical_obeys_gibbs_and_pinsker(pair):
    p, q = pair
    kl = kl_categorical(p, q)
    tv = 0.5 * np.abs(p - q).sum()
    assert kl >= 0.0
    # Pinsker's inequality: KL(p||q) >= 2 TV(p, q)^2, so KL = 0 only if p == q
    assert kl >= 2.0 * tv**2 - 1e-12


@settings(max_examples=100, deadline=None)
@given(categorical_pairs(zeros_in_p=True))
def test_kl_categorical_of_a_distribution_with_itself_is_zero(pair):
    p, _ = pair
    assert kl_categorical(p, p) == pytest.approx(0.0, abs=1e-12)


def test_kl_categorical_is_asymmetric():
    p = np.array([0.8, 0.1, 0.1])
    q = np.array([1 / 3, 1 / 3, 1 / 3])
    forward, reverse = kl_categorical(p, q), kl_categorical(q, p)
    assert forward == pytest.approx(stats.entropy(p, q))
    assert reverse == pytest.approx(stats.entropy(q, p))
    assert abs(forward - reverse) > 0.05


def test_kl_categorical_support_rules():
    p = np.array([0.5, 0.5, 0.0])
    q = np.array([0.25, 0.25, 0.5])
    # 0 log 0 = 0: p's empty category costs nothing
    assert kl_categorical(p, q) == pytest.approx(math.log(2.0))
    # q has zero mass where p has mass: infinite
    assert kl_categorical(q, p) == math.inf
    # both zero in the same category: finite
    assert np.isfinite(kl_categorical(p, np.array([0.4, 0.6, 0.0])))


def test_kl_categorical_batches_over_leading_axes_and_broadcasts():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(5), size=(3, 4))
    q = rng.dirichlet(np.ones(5), size=(3, 4))
    out = kl_categorical(p, q)
    assert out.shape == (3, 4)
    expected = np.array([[stats.entropy(p[i, j], q[i, j]) for j in range(4)] for i in range(3)])
    np.testing.assert_allclose(out, expected, rtol=1e-10)
    q0 = q[0, 0]
    np.testing.assert_allclose(kl_categorical(p, q0), stats.entropy(p, q0[None, None], axis=-1), rtol=1e-10)


def test_entropy_and_cross_entropy_match_scipy():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(6), size=10)
    p[0, :2] = 0.0
    p[0] /= p[0].sum()
    q = rng.dirichlet(np.ones(6), size=10)
    np.testing.assert_allclose(entropy_categorical(p), stats.entropy(p, axis=-1), rtol=1e-10)
    np.testing.assert_allclose(
        cross_entropy_categorical(p, q),
        stats.entropy(p, axis=-1) + stats.entropy(p, q, axis=-1),
        rtol=1e-10,
    )


def test_cross_entropy_in_bits_is_the_expected_code_length():
    # dyadic p: an optimal prefix code has lengths -log2 p = (1, 2, 3, 3) bits
    p = np.array([0.5, 0.25, 0.125, 0.125])
    q = np.full(4, 0.25)  # code built for uniform q: 2 bits per symbol
    assert entropy_categorical(p) / math.log(2) == pytest.approx(1.75)
    assert cross_entropy_categorical(p, q) / math.log(2) == pytest.approx(2.0)
    assert kl_categorical(p, q) / math.log(2) == pytest.approx(0.25)


def test_kl_categorical_torch_agrees_with_numpy_and_keeps_kind():
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(7), size=5)
    q = rng.dirichlet(np.ones(7), size=5)
    p[1, 3] = 0.0
    p[1] /= p[1].sum()
    out_np = kl_categorical(p, q)
    out_t = kl_categorical(torch.from_numpy(p), torch.from_numpy(q))
    assert isinstance(out_np, np.ndarray) and isinstance(out_t, torch.Tensor)
    assert out_t.dtype == torch.float64
    np.testing.assert_allclose(out_t.numpy(), out_np, rtol=1e-12)
    out_32 = kl_categorical(torch.from_numpy(p).float(), q)  # mixed: tensor wins, its dtype kept
    assert out_32.dtype == torch.float32
    np.testing.assert_allclose(out_32.numpy(), out_np, rtol=1e-4, atol=1e-6)


def test_kl_categorical_torch_gradient_is_the_closed_form():
    # d KL / d q_k = -p_k / q_k ; d KL / d p_k = log(p_k / q_k) + 1   (independent of the code)
    rng = np.random.default_rng(3)
    p = torch.tensor(rng.dirichlet(np.ones(4)), requires_grad=True)
    q = torch.tensor(rng.dirichlet(np.ones(4)), requires_grad=True)
    kl_categorical(p, q).backward()
    pn, qn = p.detach().numpy(), q.detach().numpy()
    np.testing.assert_allclose(q.grad.numpy(), -pn / qn, rtol=1e-10)
    np.testing.assert_allclose(p.grad.numpy(), np.log(pn / qn) + 1.0, rtol=1e-10)


def test_kl_categorical_gradient_is_finite_where_both_are_zero():
    p = torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64)
    q = torch.tensor([0.3, 0.7, 0.0], dtype=torch.float64, requires_grad=True)
    kl_categorical(p, q).backward()
    assert torch.isfinite(q.grad).all()


@pytest.mark.parametrize(
    "p, q, name, words",
    [
        ([0.5, 0.6], [0.5, 0.5], "p", "sum to 1"),
        ([0.5, 0.5], [1.2, -0.2], "q", "non-negative"),
        ([0.5, 0.5], [1 / 3, 1 / 3, 1 / 3], "p and q", "same number of categories"),
        ([0.5, np.nan], [0.5, 0.5], "p", "finite"),
        (0.5, [0.5, 0.5], "p", "at least one axis"),
        (np.full((2, 3), 1 / 3), np.full((4, 3), 1 / 3), "shapes", "broadcast"),
    ],
)
def test_kl_categorical_rejects_bad_input(p, q, name, words):
    with pytest.raises(ValueError, match=name) as info:
        kl_categorical(p, q)
    assert words in str(info.value)


def test_probability_tolerance_can_be_relaxed():
    p = np.array([0.5, 0.5 + 1e-4])
    with pytest.raises(ValueError, match="p must sum to 1"):
        kl_categorical(p, [0.5, 0.5])
    assert np.isfinite(kl_categorical(p, [0.5, 0.5], atol=1e-3))


# ---------------------------------------------------------------------------------------------
# Gaussian
# ---------------------------------------------------------------------------------------------
def _kl_by_quadrature(mu_p, var_p, mu_q, var_q) -> float:
    """KL of two 1-D Gaussians by numerical integration of p (log p - log q)."""
    sp, sq = math.sqrt(var_p), math.sqrt(var_q)

    def integrand(x):
        return stats.norm.pdf(x, mu_p, sp) * (stats.norm.logpdf(x, mu_p, sp) - stats.norm.logpdf(x, mu_q, sq))

    value, _ = integrate.quad(integrand, mu_p - 12 * sp, mu_p + 12 * sp, limit=200, epsabs=1e-12)
    return value


@settings(max_examples=40, deadline=None)
@given(means, variances, means, variances)
def test_kl_gaussian_matches_quadrature(mu_p, var_p, mu_q, var_q):
    expected = _kl_by_quadrature(mu_p, var_p, mu_q, var_q)
    assert kl_gaussian(mu_p, var_p, mu_q, var_q) == pytest.approx(expected, rel=1e-6, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(means, variances, means, variances)
def test_kl_gaussian_is_non_negative_and_zero_only_for_equal(mu_p, var_p, mu_q, var_q):
    kl = kl_gaussian(mu_p, var_p, mu_q, var_q)
    assert kl >= -1e-12
    assert kl_gaussian(mu_p, var_p, mu_p, var_p) == pytest.approx(0.0, abs=1e-12)
    if abs(mu_p - mu_q) > 1e-3 or abs(var_p - var_q) > 1e-3:
        assert kl > 0.0


def test_kl_gaussian_is_asymmetric():
    forward = kl_gaussian(0.0, 1.0, 0.0, 4.0)
    reverse = kl_gaussian(0.0, 4.0, 0.0, 1.0)
    assert forward == pytest.approx(_kl_by_quadrature(0.0, 1.0, 0.0, 4.0), rel=1e-8)
    assert reverse == pytest.approx(_kl_by_quadrature(0.0, 4.0, 0.0, 1.0), rel=1e-8)
    assert reverse - forward > 0.4


def test_kl_gaussian_sums_over_the_last_axis_and_matches_torch_distributions():
    rng = np.random.default_rng(4)
    shape = (6, 3)
    mu_p, mu_q = rng.normal(size=shape), rng.normal(size=shape)
    var_p, var_q = rng.uniform(0.1, 3.0, size=shape), rng.uniform(0.1, 3.0, size=shape)
    out = kl_gaussian(mu_p, var_p, mu_q, var_q)
    assert out.shape == (6,)
    P = torch.distributions.Normal(torch.from_numpy(mu_p), torch.from_numpy(np.sqrt(var_p)))
    Q = torch.distributions.Normal(torch.from_numpy(mu_q), torch.from_numpy(np.sqrt(var_q)))
    expected = torch.distributions.kl_divergence(P, Q).sum(-1).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-10)
    # torch in, torch out, same numbers
    out_t = kl_gaussian(*(torch.from_numpy(a) for a in (mu_p, var_p, mu_q, var_q)))
    assert isinstance(out_t, torch.Tensor)
    np.testing.assert_allclose(out_t.numpy(), expected, rtol=1e-10)


def test_kl_gaussian_broadcasts_scalars():
    mu_p = np.array([0.0, 1.0, -2.0])
    out = kl_gaussian(mu_p, 1.0, 0.0, 2.0)
    expected = sum(_kl_by_quadrature(m, 1.0, 0.0, 2.0) for m in mu_p)
    assert np.ndim(out) == 0
    assert out == pytest.approx(expected, rel=1e-7)


def test_kl_gaussian_gradient_flows():
    mu = torch.tensor([0.3], requires_grad=True)
    log_var = torch.tensor([0.2], requires_grad=True)
    kl = kl_gaussian(mu, log_var.exp(), torch.zeros(1), torch.ones(1))
    kl.backward()
    # d/dmu of 1/2 [ -log v + v + mu^2 - 1 ] = mu ; d/dlog v = 1/2 (v - 1)
    assert mu.grad.item() == pytest.approx(0.3, rel=1e-5)
    assert log_var.grad.item() == pytest.approx(0.5 * (math.exp(0.2) - 1.0), rel=1e-5)


@pytest.mark.parametrize(
    "args, name",
    [
        ((0.0, 0.0, 0.0, 1.0), "var_p"),
        ((0.0, 1.0, 0.0, -1.0), "var_q"),
        ((np.nan, 1.0, 0.0, 1.0), "mu_p"),
        ((0.0, 1.0, np.inf, 1.0), "mu_q"),
        ((np.zeros(3), 1.0, np.zeros(2), 1.0), "mu_p"),
    ],
)
def test_kl_gaussian_rejects_bad_input(args, name):
    with pytest.raises(ValueError, match=name):
        kl_gaussian(*args)


# ---------------------------------------------------------------------------------------------
# Monte Carlo
# ---------------------------------------------------------------------------------------------
def test_monte_carlo_matches_gaussian_closed_form_within_standard_errors():
    rng = np.random.default_rng(5)
    mu_p, sd_p, mu_q, sd_q = 0.5, 1.3, -0.4, 0.8
    x = rng.normal(mu_p, sd_p, size=50_000)
    est = kl_monte_carlo(x, lambda x: stats.norm.logpdf(x, mu_p, sd_p), lambda x: stats.norm.logpdf(x, mu_q, sd_q))
    assert isinstance(est, MonteCarloEstimate) and est.n == x.size
    truth = kl_gaussian(mu_p, sd_p**2, mu_q, sd_q**2)
    assert abs(est.estimate - truth) < 4 * est.stderr
    lo, hi = est.interval(4.0)
    assert lo < truth < hi


def test_monte_carlo_matches_categorical_closed_form_with_torch_samples():
    gen = torch.Generator().manual_seed(6)
    p = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    q = torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=torch.float64)
    x = torch.multinomial(p, 40_000, replacement=True, generator=gen)
    est = kl_monte_carlo(x, lambda i: p[i].log(), lambda i: q[i].log())
    truth = stats.entropy(p.numpy(), q.numpy())
    assert abs(est.estimate - truth) < 4 * est.stderr


def test_monte_carlo_standard_error_is_calibrated_and_estimate_unbiased():
    # the spread of many independent estimates matches the reported standard error,
    # and their mean is the true KL (the estimator is unbiased even at small N)
    rng = np.random.default_rng(7)
    logp = lambda x: stats.norm.logpdf(x, 0.0, 1.0)  # noqa: E731
    logq = lambda x: stats.norm.logpdf(x, 1.0, 2.0)  # noqa: E731
    truth = kl_gaussian(0.0, 1.0, 1.0, 4.0)
    estimates = [kl_monte_carlo(rng.normal(size=20), logp, logq) for _ in range(4000)]
    values = np.array([e.estimate for e in estimates])
    reported = np.sqrt(np.mean([e.stderr**2 for e in estimates]))
    assert values.std() == pytest.approx(reported, rel=0.05)
    assert abs(values.mean() - truth) < 4 * values.std() / np.sqrt(values.size)


def test_monte_carlo_is_infinite_when_q_misses_support():
    x = np.array([0, 1, 2, 2])
    p, q = np.array([0.25, 0.25, 0.5]), np.array([0.5, 0.5, 0.0])
    with np.errstate(divide="ignore"):
        est = kl_monte_carlo(x, lambda i: np.log(p[i]), lambda i: np.log(q[i]))
    assert est.estimate == math.inf


@pytest.mark.parametrize(
    "samples, log_p, log_q, name",
    [
        (np.zeros(1), np.negative, np.negative, "samples"),
        (np.zeros(5), "not callable", np.negative, "log_p"),
        (np.zeros(5), np.negative, None, "log_q"),
        (np.zeros(5), lambda x: np.zeros(4), np.negative, "log_p"),
        (np.zeros(5), np.negative, lambda x: np.full(5, np.nan), "log_q"),
    ],
)
def test_kl_monte_carlo_rejects_bad_input(samples, log_p, log_q, name):
    with pytest.raises(ValueError, match=name):
        kl_monte_carlo(samples, log_p, log_q)
