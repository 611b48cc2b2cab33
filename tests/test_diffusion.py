"""dplearn.diffusion against independent computations: float64 NumPy re-derivations, Gaussian
conditioning, Monte Carlo moments of exact Gaussian targets, and a second algorithm."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from dplearn.diffusion import (
    DDIMSampler,
    DDPMSampler,
    NoiseSchedule,
    predict_eps_from_x0,
    predict_x0_from_eps,
    q_posterior,
    q_sample,
    q_step,
)


def np_linear_betas(T, b0=1e-4, b1=0.02):
    return np.array([b0 + (b1 - b0) * i / (T - 1) for i in range(T)]) if T > 1 else np.array([b0])


def np_abar(betas):
    out, prod = [], 1.0
    for b in betas:
        prod *= 1.0 - b
        out.append(prod)
    return np.array(out)


def gen(seed):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# schedules
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("T", [1, 10, 1000])
def test_linear_schedule_matches_numpy(T):
    s = NoiseSchedule.linear(T)
    betas = np_linear_betas(T)
    abar = np_abar(betas)
    assert s.betas.dtype == torch.float32 and s.num_steps == T == s.T == len(s)
    np.testing.assert_allclose(s.float64("betas").numpy(), betas, rtol=1e-12)
    np.testing.assert_allclose(s.float64("alphas").numpy(), 1 - betas, rtol=1e-12)
    np.testing.assert_allclose(s.float64("alphas_cumprod").numpy(), abar, rtol=1e-10)
    np.testing.assert_allclose(s.alphas_cumprod.numpy(), abar, rtol=1e-6)
    abar_prev = np.concatenate([[1.0], abar[:-1]])
    np.testing.assert_allclose(s.float64("alphas_cumprod_prev").numpy(), abar_prev, rtol=1e-10)
    np.testing.assert_allclose(s.float64("snr").numpy(), abar / (1 - abar), rtol=1e-9)
    np.testing.assert_allclose(s.float64("posterior_variance").numpy(),
                               (1 - abar_prev) / (1 - abar) * betas, rtol=1e-9, atol=1e-300)


def test_cosine_schedule_matches_formula():
    T, s_off = 100, 0.008
    s = NoiseSchedule.cosine(T)

    def f(t):
        return math.cos((t / T + s_off) / (1 + s_off) * math.pi / 2) ** 2

    betas = np.array([min(1 - f(t) / f(t - 1), 0.999) for t in range(1, T + 1)])
    np.testing.assert_allclose(s.float64("betas").numpy(), betas, rtol=1e-10)
    # where no beta was capped, the cumulative product is f(t)/f(0) itself
    abar_formula = np.array([f(t) / f(0) for t in range(1, T + 1)])
    capped = np.nonzero(betas >= 0.999)[0]
    first_capped = capped[0] if len(capped) else T
    np.testing.assert_allclose(s.float64("alphas_cumprod").numpy()[:first_capped],
                               abar_formula[:first_capped], rtol=1e-9)
    assert first_capped == T - 1, "only the last step of T=100 should hit the cap"


@pytest.mark.parametrize("schedule", [NoiseSchedule.linear(1000), NoiseSchedule.cosine(100),
                                      NoiseSchedule.cosine(1000), NoiseSchedule.linear(50, 1e-3, 0.3)],
                         ids=["linear1000", "cosine100", "cosine1000", "linear50"])
def test_schedule_properties(schedule):
    b = schedule.float64("betas")
    abar = schedule.float64("alphas_cumprod")
    assert bool(((b > 0) & (b <= 0.999)).all())
    assert bool((torch.diff(b) >= 0).all()), "betas should not decrease"
    assert bool(((abar > 0) & (abar < 1)).all())
    assert bool((torch.diff(abar) < 0).all()), "alphas_cumprod must decrease"
    assert bool((torch.diff(schedule.float64("snr")) < 0).all()), "SNR must decrease"
    assert abar[-1].item() < 1e-3, "x_T must be nearly pure noise"


def test_schedule_from_betas_and_to():
    betas = np.array([0.1, 0.2, 0.3])
    s = NoiseSchedule(betas)
    np.testing.assert_allclose(s.alphas_cumprod.numpy(), [0.9, 0.72, 0.504], rtol=1e-6)
    s64 = s.to(dtype=torch.float64)
    assert s64.alphas_cumprod.dtype == torch.float64 and s64.num_steps == 3
    np.testing.assert_allclose(s64.alphas_cumprod.numpy(), [0.9, 0.9 * 0.8, 0.9 * 0.8 * 0.7], rtol=1e-14)


@pytest.mark.parametrize("make, name", [
    (lambda: NoiseSchedule.linear(0), "T"),
    (lambda: NoiseSchedule.cosine(0), "T"),
    (lambda: NoiseSchedule.linear(-3), "T"),
    (lambda: NoiseSchedule([]), "betas"),
    (lambda: NoiseSchedule([0.1, 0.0, 0.2]), "betas"),
    (lambda: NoiseSchedule([0.1, 1.0]), "betas"),
    (lambda: NoiseSchedule([-0.1]), "betas"),
    (lambda: NoiseSchedule([[0.1, 0.2]]), "betas"),
    (lambda: NoiseSchedule.linear(10, beta_end=1.5), "beta_end"),
    (lambda: NoiseSchedule.cosine(10, max_beta=1.0), "max_beta"),
])
def test_schedule_bad_input(make, name):
    with pytest.raises(ValueError, match=name):
        make()


# ---------------------------------------------------------------------------------------------
# forward process
# ---------------------------------------------------------------------------------------------
def test_q_sample_matches_numpy_float64():
    s = NoiseSchedule.cosine(100)
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(64, 16, 2))
    noise = rng.normal(size=x0.shape)
    t = rng.integers(0, 100, size=64)
    abar = np_abar(s.float64("betas").numpy())
    expected = np.sqrt(abar[t])[:, None, None] * x0 + np.sqrt(1 - abar[t])[:, None, None] * noise
    out64 = q_sample(s, torch.from_numpy(x0), torch.from_numpy(t), torch.from_numpy(noise))
    assert out64.dtype == torch.float64
    np.testing.assert_allclose(out64.numpy(), expected, rtol=1e-10, atol=1e-12)
    out32 = q_sample(s, torch.from_numpy(x0).float(), torch.from_numpy(t), torch.from_numpy(noise).float())
    assert out32.dtype == torch.float32
    np.testing.assert_allclose(out32.numpy(), expected, rtol=1e-5, atol=1e-5)
    # an int t applies to the whole batch
    np.testing.assert_allclose(q_sample(s, torch.from_numpy(x0), 7, torch.from_numpy(noise)).numpy(),
                               np.sqrt(abar[7]) * x0 + np.sqrt(1 - abar[7]) * noise, rtol=1e-10)


def test_closed_form_agrees_with_iterated_steps_in_distribution():
    """x0 ~ N(0.5, 2^2); k steps of q_step vs one q_sample: same mean, variance, covariance with x0."""
    s = NoiseSchedule.linear(1000)
    n = 40_000
    g = gen(1)
    x0 = 0.5 + 2.0 * torch.randn(n, 1, generator=g, dtype=torch.float64)
    abar = np_abar(s.float64("betas").numpy())
    x = x0.clone()
    checkpoints = {10, 100, 300}
    for k in range(1, max(checkpoints) + 1):
        x = q_step(s, x, k - 1, generator=g)
        if k in checkpoints:
            a = abar[k - 1]
            direct = q_sample(s, x0, k - 1, generator=g)
            for sample in (x, direct):
                v = sample[:, 0].numpy()
                mean, var = 0.5 * math.sqrt(a), 4.0 * a + (1 - a)
                assert abs(v.mean() - mean) < 5 * math.sqrt(var / n)
                assert abs(v.var() / var - 1) < 5 * math.sqrt(2 / n)
                cov = np.cov(v, x0[:, 0].numpy())[0, 1]
                assert abs(cov - 4.0 * math.sqrt(a)) < 5 * math.sqrt((var * 4.0 + cov**2) / n)
            # and the two are the same distribution by a two-sample KS test (not only moments)
            assert stats.ks_2samp(x[:, 0].numpy(), direct[:, 0].numpy()).pvalue > 1e-4


def test_q_step_is_one_forward_step():
    s = NoiseSchedule.cosine(100)
    rng = np.random.default_rng(2)
    xp, z = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    t = np.array([0, 4, 50, 98, 99])
    b = s.float64("betas").numpy()[t][:, None]
    out = q_step(s, torch.from_numpy(xp), torch.from_numpy(t), torch.from_numpy(z)).numpy()
    np.testing.assert_allclose(out, np.sqrt(1 - b) * xp + np.sqrt(b) * z, rtol=1e-12)
    # q_step from x0 at index 0 is q_sample at index 0
    np.testing.assert_allclose(out[:1], q_sample(s, torch.from_numpy(xp[:1]), 0, torch.from_numpy(z[:1])).numpy())


def gaussian_posterior(abar_prev, beta, x0, xt):
    """q(x_{t-1} | x_t, x0) by conditioning the joint Gaussian of (x_{t-1}, x_t) given x0."""
    alpha = 1 - beta
    mu_prev, var_prev = np.sqrt(abar_prev) * x0, 1 - abar_prev
    mu_t = np.sqrt(alpha) * mu_prev               # x_t = sqrt(alpha) x_{t-1} + sqrt(beta) eps
    var_t = alpha * var_prev + beta
    cov = np.sqrt(alpha) * var_prev
    mean = mu_prev + cov / var_t * (xt - mu_t)
    var = var_prev - cov**2 / var_t
    return mean, var


@pytest.mark.parametrize("schedule", [NoiseSchedule.linear(1000), NoiseSchedule.cosine(100)], ids=["linear", "cosine"])
def test_q_posterior_matches_gaussian_conditioning(schedule):
    rng = np.random.default_rng(3)
    T = schedule.num_steps
    t = np.concatenate([[0, 1, T - 1], rng.integers(0, T, size=29)])
    x0, xt = rng.normal(size=(32, 4)), rng.normal(size=(32, 4)) * 2
    abar = np_abar(schedule.float64("betas").numpy())
    abar_prev = np.concatenate([[1.0], abar[:-1]])[t][:, None]
    beta = schedule.float64("betas").numpy()[t][:, None]
    mean_ref, var_ref = gaussian_posterior(abar_prev, beta, x0, xt)
    mean, var = q_posterior(schedule, torch.from_numpy(x0), torch.from_numpy(xt), torch.from_numpy(t))
    assert mean.shape == var.shape == (32, 4)
    np.testing.assert_allclose(mean.numpy(), mean_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(var.numpy(), np.broadcast_to(var_ref, (32, 4)), rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(mean.numpy()[0], x0[0], atol=1e-12)  # index 0: the posterior is x0 itself
    assert float(var[0].abs().max()) == 0.0


def test_predict_x0_and_eps_invert_q_sample():
    s = NoiseSchedule.cosine(100)
    g = gen(4)
    x0 = torch.randn(50, 8, dtype=torch.float64, generator=g)
    eps = torch.randn(50, 8, dtype=torch.float64, generator=g)
    t = torch.randint(0, 100, (50,), generator=g)
    xt = q_sample(s, x0, t, eps)
    np.testing.assert_allclose(predict_eps_from_x0(s, xt, t, x0).numpy(), eps.numpy(), rtol=1e-7, atol=1e-7)
    keep = t < 95  # near T, x0 is barely in x_t and recovering it amplifies rounding by 1/sqrt(abar)
    np.testing.assert_allclose(predict_x0_from_eps(s, xt, t, eps)[keep].numpy(), x0[keep].numpy(), atol=1e-8)


@pytest.mark.parametrize("call, name", [
    (lambda s, x: q_sample(s, x, torch.full((4,), 100)), "t"),
    (lambda s, x: q_sample(s, x, torch.full((4,), -1)), "t"),
    (lambda s, x: q_sample(s, x, torch.zeros(3, dtype=torch.long)), "t"),
    (lambda s, x: q_sample(s, x, torch.zeros(4)), "t"),
    (lambda s, x: q_sample(s, x, 0, noise=torch.zeros(4, 3)), "noise"),
    (lambda s, x: q_step(s, x, 100), "t"),
    (lambda s, x: q_posterior(s, x[:, :1], x, 0), "x0"),
    (lambda s, x: predict_x0_from_eps(s, x, 0, x[:2]), "eps"),
    (lambda s, x: DDPMSampler(s).step(x[:, :1], 0, x), "eps"),
])
def test_forward_bad_input(call, name):
    s = NoiseSchedule.cosine(100)
    with pytest.raises(ValueError, match=name):
        call(s, torch.zeros(4, 2))


# ---------------------------------------------------------------------------------------------
# samplers driven by the exact noise of a Gaussian target
# ---------------------------------------------------------------------------------------------
M = torch.tensor([1.5, -0.7], dtype=torch.float64)   # target N(M, diag(S^2)), outside [-1, 1]
S = torch.tensor([0.5, 1.3], dtype=torch.float64)


def true_eps_model(schedule):
    """eps(x_t, t) = -sqrt(1-abar) * score of q(x_t) = N(sqrt(abar) M, abar S^2 + 1 - abar)."""
    abar_all = torch.from_numpy(np_abar(schedule.float64("betas").numpy()))

    def model(x, t):
        abar = abar_all[t].reshape(-1, 1).to(x.dtype)
        var = abar * S.to(x.dtype) ** 2 + 1 - abar
        return torch.sqrt(1 - abar) * (x - torch.sqrt(abar) * M.to(x.dtype)) / var

    return model


def assert_gaussian(x, n_sigma=5.0, extra=0.0):
    n = x.shape[0]
    mean, var = x.mean(0), x.var(0)
    assert torch.all((mean - M).abs() < n_sigma * S / math.sqrt(n) + extra), f"mean {mean} vs {M}"
    assert torch.all((var / S**2 - 1).abs() < n_sigma * math.sqrt(2 / n) + extra), f"var {var} vs {S**2}"


@pytest.mark.parametrize("schedule", [NoiseSchedule.linear(1000), NoiseSchedule.cosine(100)], ids=["linear", "cosine"])
def test_ddpm_sampler_reproduces_gaussian(schedule):
    sampler = DDPMSampler(schedule, clip_sample=False)
    assert sampler.timesteps.tolist() == list(range(schedule.num_steps - 1, -1, -1))
    x = sampler.sample(true_eps_model(schedule), (20_000, 2), generator=gen(5), dtype=torch.float64)
    assert_gaussian(x, extra=0.02)
    assert stats.kstest(((x[:, 0] - M[0]) / S[0]).numpy(), "norm").pvalue > 1e-4


@pytest.mark.parametrize("eta, num_steps", [(0.0, 1000), (1.0, 1000), (1.0, 250)])
def test_ddim_sampler_reproduces_gaussian(eta, num_steps):
    schedule = NoiseSchedule.linear(1000)
    sampler = DDIMSampler(schedule, num_steps, eta=eta, clip_sample=False)
    x = sampler.sample(true_eps_model(schedule), (20_000, 2), generator=gen(6), dtype=torch.float64)
    assert_gaussian(x, extra=0.03)


@pytest.mark.parametrize("num_steps", [5, 20, 100])
def test_ddim_eta0_is_euler_on_the_probability_flow_ode(num_steps):
    """With few steps DDIM is biased; the bias is exactly that of Euler's method on the ODE
    d xbar / d sigma = eps(xbar), xbar = x / sqrt(abar), sigma = sqrt((1 - abar) / abar)
    (Song et al. 2021, eq. 14). For the Gaussian target eps is linear in xbar, so each Euler step
    multiplies xbar - M by 1 + (sigma_p - sigma_t) sigma_t / (S^2 + sigma_t^2)."""
    schedule = NoiseSchedule.linear(1000)
    sampler = DDIMSampler(schedule, num_steps, clip_sample=False)
    abar = np_abar(schedule.float64("betas").numpy())
    ts = sampler.timesteps.numpy()
    sig = [math.sqrt((1 - abar[t]) / abar[t]) for t in ts] + [0.0]
    s2 = S.numpy() ** 2
    gain = np.prod([1 + (sig[i + 1] - sig[i]) * sig[i] / (s2 + sig[i] ** 2) for i in range(len(ts))], axis=0)
    x_T = torch.randn(100, 2, dtype=torch.float64, generator=gen(15))
    expected = M.numpy() + gain * (x_T.numpy() / math.sqrt(abar[ts[0]]) - M.numpy())
    out = sampler.sample(true_eps_model(schedule), x_T.shape, x_T=x_T, dtype=torch.float64)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6, atol=1e-8)


def test_ddpm_step_is_algorithm_2_without_clipping():
    """The posterior-mean form equals Ho et al.'s Algorithm 2 line 4, re-derived in NumPy."""
    s = NoiseSchedule.cosine(100)
    rng = np.random.default_rng(7)
    t = rng.integers(0, 100, size=40)
    xt, eps, z = (rng.normal(size=(40, 3)) for _ in range(3))
    b = s.float64("betas").numpy()[t][:, None]
    abar = np_abar(s.float64("betas").numpy())
    abar_t = abar[t][:, None]
    abar_prev = np.concatenate([[1.0], abar[:-1]])[t][:, None]
    sigma = np.sqrt((1 - abar_prev) / (1 - abar_t) * b) * (t[:, None] > 0)
    expected = (xt - b / np.sqrt(1 - abar_t) * eps) / np.sqrt(1 - b) + sigma * z
    out = DDPMSampler(s, clip_sample=False).step(torch.from_numpy(eps), torch.from_numpy(t),
                                                  torch.from_numpy(xt), noise=torch.from_numpy(z))
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("clip", [False, True])
def test_ddim_eta1_all_steps_equals_ddpm(clip):
    s = NoiseSchedule.cosine(100)
    ddpm = DDPMSampler(s, clip_sample=clip)
    ddim = DDIMSampler(s, 100, eta=1.0, clip_sample=clip)
    assert torch.equal(ddim.timesteps, ddpm.timesteps)
    g = gen(8)
    t = torch.randint(0, 100, (64,), generator=g)
    xt, eps, z = (torch.randn(64, 5, dtype=torch.float64, generator=g) for _ in range(3))
    np.testing.assert_allclose(ddim.step(eps, t, xt, noise=z).numpy(), ddpm.step(eps, t, xt, noise=z).numpy(),
                               rtol=1e-8, atol=1e-10)


def test_ddim_step_matches_eq12_in_numpy():
    s = NoiseSchedule.linear(1000)
    eta = 0.6
    ddim = DDIMSampler(s, 20, eta=eta, clip_sample=False)
    ts = ddim.timesteps.numpy()
    assert list(ts) == [k * 50 for k in range(19, -1, -1)], "leading spacing: k * (T // num_steps)"
    abar = np_abar(s.float64("betas").numpy())
    rng = np.random.default_rng(9)
    for i, t in enumerate(ts):
        xt, eps, z = (rng.normal(size=(3, 2)) for _ in range(3))
        ap = abar[ts[i + 1]] if i + 1 < len(ts) else 1.0
        at = abar[t]
        x0 = (xt - np.sqrt(1 - at) * eps) / np.sqrt(at)
        sigma = eta * np.sqrt((1 - ap) / (1 - at) * (1 - at / ap))
        expected = np.sqrt(ap) * x0 + np.sqrt(1 - ap - sigma**2) * eps + sigma * z
        out = ddim.step(torch.from_numpy(eps), int(t), torch.from_numpy(xt), noise=torch.from_numpy(z))
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(out.numpy(), x0, rtol=1e-8)  # the last step returns x0_hat


def test_ddim_spacings():
    s = NoiseSchedule.cosine(100)
    assert DDIMSampler(s, 10, spacing="trailing").timesteps.tolist() == list(range(99, 0, -10))
    assert DDIMSampler(s, 10, spacing="linspace").timesteps.tolist() == [99, 88, 77, 66, 55, 44, 33, 22, 11, 0]
    assert DDIMSampler(s, 100).timesteps.tolist() == list(range(99, -1, -1))
    assert DDIMSampler(s, 1).timesteps.tolist() == [0]


def test_ddim_eta0_is_deterministic_and_invertible():
    s = NoiseSchedule.linear(1000)
    model = true_eps_model(s)
    ddim = DDIMSampler(s, 1000, eta=0.0, clip_sample=False)
    x_T = torch.randn(500, 2, dtype=torch.float64, generator=gen(10))
    a = ddim.sample(model, x_T.shape, generator=gen(11), x_T=x_T, dtype=torch.float64)
    b = ddim.sample(model, x_T.shape, generator=gen(12), x_T=x_T, dtype=torch.float64)
    assert torch.equal(a, b), "eta = 0 must not depend on the generator"
    x0 = M + S * torch.randn(500, 2, dtype=torch.float64, generator=gen(13))
    latent, traj = ddim.invert(model, x0, return_trajectory=True)
    assert traj.shape == (1001, 500, 2) and torch.equal(traj[0], x0) and torch.equal(traj[-1], latent)
    back = ddim.sample(model, x0.shape, x_T=latent, dtype=torch.float64)
    error = (back - x0).abs().max().item()
    assert error < 2e-2
    # the mismatch is a first-order discretisation error: ten times fewer steps, about ten times larger
    coarse = DDIMSampler(s, 100, eta=0.0, clip_sample=False)
    coarse_error = (coarse.sample(model, x0.shape, x_T=coarse.invert(model, x0), dtype=torch.float64) - x0).abs().max().item()
    assert 5 * error < coarse_error < 20 * error
    # the latent is (close to) standard normal: inversion maps the data distribution to the prior
    assert abs(latent.mean().item()) < 0.1 and abs(latent.std().item() - 1) < 0.1


def test_ddim_inversion_with_a_nonlinear_model():
    """Invertibility does not rely on the Gaussian: a fixed smooth random network as the model."""
    s = NoiseSchedule.linear(1000)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 32), torch.nn.Tanh(), torch.nn.Linear(32, 2)).double()

    def model(x, t):
        return 0.3 * net(torch.cat([x, (t.double() / 1000)[:, None]], dim=1))

    ddim = DDIMSampler(s, 1000, clip_sample=True)   # inversion never clips; decoding clips only |x0_hat| > 5
    ddim.clip_range = 5.0
    x0 = torch.randn(200, 2, dtype=torch.float64, generator=gen(14))
    back = ddim.sample(model, x0.shape, x_T=ddim.invert(model, x0), dtype=torch.float64)
    assert (back - x0).abs().max().item() < 2e-2


def test_sample_with_cond_and_trajectory():
    s = NoiseSchedule.cosine(10)
    seen = []

    def model(x, t, cond):
        seen.append((t.clone(), cond))
        return torch.zeros_like(x)

    cond = torch.ones(4, 3)
    x, traj = DDPMSampler(s).sample(model, (4, 2), generator=gen(0), cond=cond, return_trajectory=True)
    assert traj.shape == (11, 4, 2) and torch.equal(traj[-1], x)
    assert [int(t[0]) for t, _ in seen] == list(range(9, -1, -1)) and all(c is cond for _, c in seen)


@pytest.mark.parametrize("make, name", [
    (lambda s: DDIMSampler(s, 101), "num_steps"),
    (lambda s: DDIMSampler(s, 0), "num_steps"),
    (lambda s: DDIMSampler(s, 10, eta=-1), "eta"),
    (lambda s: DDIMSampler(s, 10, spacing="middle"), "spacing"),
    (lambda s: DDIMSampler(s, 10).step(torch.zeros(2, 1), 5, torch.zeros(2, 1)), "t"),
    (lambda s: DDPMSampler(s).sample(lambda x, t: x, (2, 1), x_T=torch.zeros(3, 1)), "x_T"),
    (lambda s: DDPMSampler(s, clip_range=0), "clip_range"),
])
def test_sampler_bad_input(make, name):
    with pytest.raises(ValueError, match=name):
        make(NoiseSchedule.cosine(100))


@pytest.mark.parametrize("make, message", [
    (lambda s: DDIMSampler(s, 10, eta=math.inf), "eta must be a finite number >= 0.0, got inf"),
    (lambda s: DDIMSampler(s, 10, eta=math.nan), "eta must be a finite number >= 0.0, got nan"),
    (lambda s: DDIMSampler(s, 10, eta="0"), "eta must be a finite number >= 0.0, got '0'"),
    (lambda s: DDIMSampler(s, 10, clip_range=math.inf), "clip_range must be a finite number > 0.0, got inf"),
    (lambda s: DDPMSampler(s, clip_range=math.nan), "clip_range must be a finite number > 0.0, got nan"),
    (lambda s: DDPMSampler(s, clip_sample="no"), "clip_sample must be True or False, got 'no'"),
    (lambda s: DDIMSampler(s, 10.0), r"num_steps must be an integer in \[1, 100\], got 10.0"),
    (lambda s: DDIMSampler(s, np.int64(101)), r"num_steps must be an integer in \[1, 100\], got np.int64\(101\)"),
    (lambda s: DDIMSampler(s, 10, spacing="middle"), "spacing must be one of 'leading', 'trailing', 'linspace'"),
    (lambda s: NoiseSchedule.linear(10, beta_end=math.inf), r"beta_end must be a finite number in \(0.0, 1.0\)"),
    (lambda s: NoiseSchedule.linear(10, beta_start=math.nan), r"beta_start must be a finite number in \(0.0, 1.0\)"),
    (lambda s: NoiseSchedule.cosine(10, s=math.inf), "s must be a finite number >= 0.0, got inf"),
    (lambda s: NoiseSchedule.cosine(10, max_beta=math.nan), "max_beta must be a finite number in"),
    (lambda s: NoiseSchedule.cosine(2.0), "T must be an integer >= 1, got 2.0"),
])
def test_float_arguments_refuse_inf_and_nan_with_a_message_naming_them(make, message):
    with pytest.raises(ValueError, match=message):
        make(NoiseSchedule.cosine(100))


def test_numpy_integers_are_accepted_wherever_python_integers_are():
    s = NoiseSchedule.cosine(np.int64(100))
    assert s.num_steps == 100
    x0, noise = torch.randn(3, 2), torch.randn(3, 2)
    assert torch.equal(q_sample(s, x0, np.int64(7), noise), q_sample(s, x0, 7, noise))
    sampler = DDIMSampler(s, np.int64(10), eta=np.float32(0.5))
    assert sampler.num_steps == 10 and sampler.timesteps.tolist() == DDIMSampler(s, 10).timesteps.tolist()
    assert torch.equal(sampler.step(x0, np.int64(90), noise, noise=x0), sampler.step(x0, 90, noise, noise=x0))
