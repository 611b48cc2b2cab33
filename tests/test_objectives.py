"""The DDPM objectives: the simplified loss re-derived in float64, every term of the variational
bound against Ho et al.'s weighted-ε form, and the whole bound above the true NLL (and close) for
Gaussian data with the exact denoiser."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from dplearn.diffusion import NoiseSchedule
from dplearn.objectives import diffusion_loss, vlb_terms


@pytest.fixture(autouse=True)
def _one_thread():
    # thousands of tiny tensor ops: one CPU thread is much faster than several on a busy machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class _RandomEps(nn.Module):
    """A fixed random function of (x_t, t) in float64, standing in for a trained network."""

    def __init__(self, d: int, T: int):
        super().__init__()
        g = torch.Generator().manual_seed(7)
        self.W = nn.Parameter(torch.randn(d, d, generator=g, dtype=torch.float64) * 0.3)
        self.b = nn.Parameter(torch.randn(T, d, generator=g, dtype=torch.float64) * 0.2)

    def forward(self, x, t):
        return x @ self.W + self.b[t]


def test_diffusion_loss_matches_float64_rederivation():
    T, B, d = 50, 16, 3
    schedule = NoiseSchedule.linear(T, 1e-3, 0.1)
    model = _RandomEps(d, T)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(B, d, generator=g, dtype=torch.float64)
    t = torch.randint(0, T, (B,), generator=g)
    noise = torch.randn(B, d, generator=g, dtype=torch.float64)
    abar = np.cumprod(1 - np.linspace(1e-3, 0.1, T))[t.numpy()][:, None]
    xt = np.sqrt(abar) * x0.numpy() + np.sqrt(1 - abar) * noise.numpy()
    eps_hat = xt @ model.W.detach().numpy() + model.b.detach().numpy()[t.numpy()]
    expected = np.mean((eps_hat - noise.numpy()) ** 2)
    got = diffusion_loss(model, schedule, x0, t=t, noise=noise)
    assert got.item() == pytest.approx(expected, rel=1e-10)
    # random t and noise: differentiable scalar
    loss = diffusion_loss(model, schedule, x0, generator=g)
    loss.backward()
    assert loss.ndim == 0 and model.W.grad is not None


@pytest.mark.parametrize("reverse_variance, n_draws", [("posterior", 1), ("beta", 1), ("beta", 3)])
def test_vlb_terms_match_weighted_eps_form(reverse_variance, n_draws):
    # Ho et al. (2020), eq. 12: L_{t-1} = sum_i [ 1/2 (log s2/bt + bt/s2 - 1) ] + beta^2 / (2 s2 alpha (1-abar)) |eps - eps_hat|^2
    T, B, d = 20, 64, 2
    betas = np.linspace(1e-3, 0.3, T)
    schedule = NoiseSchedule(betas)
    model = _RandomEps(d, T)
    x0 = torch.randn(B, d, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    terms = vlb_terms(model, schedule, x0, generator=torch.Generator().manual_seed(2),
                      reverse_variance=reverse_variance, n_draws=n_draws).numpy()
    assert terms.shape == (B, T + 1)

    alphas = 1 - betas
    abar = np.cumprod(alphas)
    g = torch.Generator().manual_seed(2)  # replay the draws: one (n_draws * B, d) float64 normal per step
    x = np.tile(x0.numpy(), (n_draws, 1))
    for k in range(T):
        eps = torch.randn(n_draws * B, d, generator=g, dtype=torch.float64).numpy()
        xt = np.sqrt(abar[k]) * x + np.sqrt(1 - abar[k]) * eps
        eps_hat = model(torch.tensor(xt), torch.full((n_draws * B,), k)).detach().numpy()
        sq = ((eps - eps_hat) ** 2).sum(1)
        if k == 0:  # decoder: -log N(x0; x0_hat, beta_1)
            s2 = betas[0]
            expected = 0.5 * d * np.log(2 * np.pi * s2) + (1 - abar[0]) / abar[0] * sq / (2 * s2)
        else:
            bt = (1 - abar[k - 1]) / (1 - abar[k]) * betas[k]
            s2 = bt if reverse_variance == "posterior" else betas[k]
            expected = (0.5 * d * (np.log(s2 / bt) + bt / s2 - 1)
                        + betas[k] ** 2 / (2 * s2 * alphas[k] * (1 - abar[k])) * sq)
        expected = expected.reshape(n_draws, B).mean(0)        # the average over the draws
        np.testing.assert_allclose(terms[:, k], expected, rtol=1e-8, atol=1e-10)
    x = x0.numpy()
    prior = 0.5 * (abar[-1] * x**2 + (1 - abar[-1]) - 1 - np.log(1 - abar[-1])).sum(1)
    np.testing.assert_allclose(terms[:, T], prior, rtol=1e-10)


class _ExactGaussianEps(nn.Module):
    """The optimal denoiser E[eps | x_t] for data x0 ~ N(m, s^2 I) (linear in x_t)."""

    def __init__(self, schedule, m, s):
        super().__init__()
        self.abar = schedule.float64("alphas_cumprod")
        self.m, self.s = m, s
        self.dummy = nn.Parameter(torch.zeros(1, dtype=torch.float64))

    def forward(self, x, t):
        a = self.abar[t][:, None]
        return (1 - a).sqrt() * (x - a.sqrt() * self.m) / (a * self.s**2 + 1 - a)


@pytest.mark.parametrize("reverse_variance, max_gap", [("beta", 0.1), ("posterior", 1.5)])
def test_bound_sits_above_the_true_nll(reverse_variance, max_gap):
    schedule = NoiseSchedule.linear(1000)
    m, s = torch.tensor([0.5, -0.3], dtype=torch.float64), 0.2
    x0 = m + s * torch.randn(6000, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    nll = (0.5 * ((x0 - m) ** 2).sum(1) / s**2 + math.log(2 * math.pi * s**2)).numpy()
    bound = vlb_terms(_ExactGaussianEps(schedule, m, s), schedule, x0,
                      generator=torch.Generator().manual_seed(4), reverse_variance=reverse_variance)
    gap = bound.sum(1).numpy() - nll
    se = gap.std() / np.sqrt(len(gap))
    assert gap.mean() > -3 * se, f"bound below the true NLL: gap {gap.mean():.4f} ± {se:.4f}"
    assert gap.mean() < max_gap


def test_objectives_reject_bad_input():
    schedule = NoiseSchedule.linear(10, 1e-3, 0.1)
    model = _RandomEps(2, 10)
    with pytest.raises(ValueError, match="x0"):
        diffusion_loss(model, schedule, torch.zeros(3))
    with pytest.raises(ValueError, match="reverse_variance"):
        vlb_terms(model, schedule, torch.zeros(3, 2, dtype=torch.float64), reverse_variance="learned")
    with pytest.raises(ValueError, match="n_draws"):
        vlb_terms(model, schedule, torch.zeros(3, 2, dtype=torch.float64), n_draws=[1, 2])
    with pytest.raises(ValueError, match="n_draws"):
        vlb_terms(model, schedule, torch.zeros(3, 2, dtype=torch.float64), n_draws=0)
    with pytest.raises(ValueError, match="decoder_variance"):
        vlb_terms(model, schedule, torch.zeros(3, 2, dtype=torch.float64), decoder_variance="x")
    with pytest.raises(ValueError, match="model returned"):
        diffusion_loss(lambda x, t: x[:, :1], schedule, torch.zeros(3, 2))
