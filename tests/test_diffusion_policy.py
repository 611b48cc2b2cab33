"""Diffusion Policy: the temporal U-Net against a hand computation, the ε-loss, sampling with the
exact noise of a known Gaussian policy, both modes of a bimodal task, checkpoints, and a GPU smoke
test (skipped without CUDA)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dplearn.data import Normalizer
from dplearn.diffusion import DDIMSampler, DDPMSampler, NoiseSchedule
from dplearn.nets import ConditionalResidualBlock1D, ConditionalUnet1D
from dplearn.policies import DiffusionConfig, DiffusionPolicy, load_policy, make_policy
from dplearn.policy_training import fit_policy
from dplearn.training import TrainConfig


def tiny_policy(**kw) -> DiffusionPolicy:
    config = dict(obs_dim=3, obs_horizon=2, pred_horizon=8, action_horizon=4, obs_type="state",
                  down_dims=(8, 16), step_embed_dim=8, num_diffusion_steps=100)
    config.update(kw)
    return make_policy("diffusion-cnn", config)


def cosine_abar(K: int, s: float = 0.008) -> np.ndarray:
    """ᾱ_k of the squared-cosine schedule with β capped at 0.999, in float64, written out here."""
    f = np.cos((np.arange(K + 1) / K + s) / (1 + s) * np.pi / 2) ** 2
    betas = np.minimum(1 - f[1:] / f[:-1], 0.999)
    return np.cumprod(1 - betas)


# ---------------------------------------------------------------------------------------------
# the network
# ---------------------------------------------------------------------------------------------
def _mish(x):
    return x * torch.tanh(F.softplus(x))


def _conv_block_by_hand(block, x):
    conv, gn = block[0], block[1]
    h = F.conv1d(x, conv.weight.double(), conv.bias.double(), padding=conv.padding[0])
    b, c, t = h.shape
    g = h.reshape(b, gn.num_groups, -1)
    g = (g - g.mean(-1, keepdim=True)) / torch.sqrt(g.var(-1, unbiased=False, keepdim=True) + gn.eps)
    h = g.reshape(b, c, t) * gn.weight.double()[None, :, None] + gn.bias.double()[None, :, None]
    return _mish(h)


def test_film_residual_block_matches_a_hand_computation():
    torch.manual_seed(0)
    blk = ConditionalResidualBlock1D(3, 8, cond_dim=5, kernel_size=5, n_groups=4)
    with torch.no_grad():  # leave the identity initialisation of FiLM: make the condition matter
        blk.film.proj.weight.normal_(0, 0.5)
        blk.film.proj.bias.normal_(0, 0.5)
        for gn in (blk.block1[1], blk.block2[1]):
            gn.weight.normal_(1, 0.2)
            gn.bias.normal_(0, 0.2)
    x, c = torch.randn(4, 3, 16), torch.randn(4, 5)
    h = _conv_block_by_hand(blk.block1, x.double())
    gb = _mish(c.double()) @ blk.film.proj.weight.double().T + blk.film.proj.bias.double()
    gamma, beta = gb[:, :8], gb[:, 8:]
    h = gamma[:, :, None] * h + beta[:, :, None]
    h = _conv_block_by_hand(blk.block2, h)
    res = F.conv1d(x.double(), blk.residual.weight.double(), blk.residual.bias.double())
    torch.testing.assert_close(blk(x, c).double(), h + res, rtol=1e-4, atol=1e-5)


def test_unet_shapes_errors_and_the_papers_size():
    net = ConditionalUnet1D(2, global_cond_dim=40, down_dims=(16, 32, 64), step_embed_dim=16)
    out = net(torch.randn(5, 16, 2), torch.randint(0, 100, (5,)), torch.randn(5, 40))
    assert out.shape == (5, 16, 2)
    with pytest.raises(ValueError, match="multiple of 4"):
        net(torch.randn(5, 10, 2), torch.zeros(5, dtype=torch.long), torch.randn(5, 40))
    with pytest.raises(ValueError, match=r"global_cond must have shape \(B, 40\)"):
        net(torch.randn(5, 16, 2), torch.zeros(5, dtype=torch.long), torch.randn(5, 39))
    with pytest.raises(ValueError, match="divisible by n_groups"):
        ConditionalUnet1D(2, 40, down_dims=(12, 24), n_groups=8)
    # the paper's state network (down_dims 256/512/1024, step embedding 256, T_o = 2 keypoint
    # observations of 20 numbers) has "about 65 M" parameters
    paper = ConditionalUnet1D(2, 40, (256, 512, 1024), 5, 8, 256)
    assert 60e6 < sum(p.numel() for p in paper.parameters()) < 70e6


def test_the_observation_enters_only_through_film():
    torch.manual_seed(1)
    net = ConditionalUnet1D(2, global_cond_dim=6, down_dims=(8, 16), step_embed_dim=8)
    x, k = torch.randn(3, 8, 2), torch.tensor([3, 50, 99])
    o1, o2 = torch.randn(3, 6), torch.randn(3, 6)
    # FiLM starts as the identity: a fresh network ignores the condition entirely
    torch.testing.assert_close(net(x, k, o1), net(x, k, o2), rtol=0, atol=0)
    with torch.no_grad():
        for m in net.modules():
            if hasattr(m, "proj") and m.__class__.__name__ == "FiLM":
                m.proj.weight.normal_(0, 0.3)
    assert not torch.allclose(net(x, k, o1), net(x, k, o2))


# ---------------------------------------------------------------------------------------------
# the loss and the samplers
# ---------------------------------------------------------------------------------------------
def test_loss_is_the_mse_between_the_noise_and_its_prediction():
    policy = tiny_policy()
    obs, action = torch.randn(6, 2, 3), torch.rand(6, 8, 2) * 2 - 1
    torch.manual_seed(5)
    loss = policy.compute_loss(obs, action)
    torch.manual_seed(5)  # the same draws, in the same order: ε, then k
    eps = torch.randn_like(action)
    k = torch.randint(0, 100, (6,))
    abar = torch.as_tensor(cosine_abar(100))[k][:, None, None]
    noisy = abar.sqrt() * action.double() + (1 - abar).sqrt() * eps.double()
    pred = policy.denoise(noisy.float(), k, obs.flatten(1))
    torch.testing.assert_close(loss, ((pred - eps) ** 2).mean(), rtol=1e-5, atol=1e-6)


def chain_moments(m: np.ndarray, s: float, sampler: str, steps: int, spacing: str | None = None
                  ) -> tuple[np.ndarray, float]:
    """Exact mean and variance of what a DDPM (posterior variance β̃) or DDIM (η = 0) chain outputs
    when its noise prediction is the true E[ε | x_k] of data N(m, s²): every step is then an affine
    map of x_k plus Gaussian noise, so the moments follow a recursion. Float64, formulas of Ho et
    al. (2020, eqs. 6-7) and Song et al. (2021, eq. 12), independent of the library."""
    abar = cosine_abar(100)
    betas = 1 - abar / np.r_[1.0, abar[:-1]]
    if sampler == "ddpm":
        ks = list(range(99, -1, -1))
    elif spacing == "leading":  # j * (T // steps), j = steps - 1, ..., 0
        ks = [j * (100 // steps) for j in range(steps - 1, -1, -1)]
    else:  # trailing: round(T - j T / steps) - 1, j = 0, ..., steps - 1
        ks = [round(100 - j * 100 / steps) - 1 for j in range(steps)]
    mean, var = np.zeros_like(m), 1.0
    for i, k in enumerate(ks):
        a = abar[k]
        c = np.sqrt(1 - a) / (a * s**2 + 1 - a)  # eps*(x) = c (x - sqrt(a) m)
        gain_x0, shift_x0 = (1 - np.sqrt(1 - a) * c) / np.sqrt(a), np.sqrt(1 - a) * c * m  # x0_hat = g x + h
        if sampler == "ddpm":
            a_prev = abar[k - 1] if k > 0 else 1.0
            c1, c2 = np.sqrt(a_prev) * betas[k] / (1 - a), np.sqrt(1 - betas[k]) * (1 - a_prev) / (1 - a)
            post_var = (1 - a_prev) / (1 - a) * betas[k]
            mean, var = (c1 * gain_x0 + c2) * mean + c1 * shift_x0, (c1 * gain_x0 + c2) ** 2 * var + post_var
        else:
            a_prev = abar[ks[i + 1]] if i + 1 < len(ks) else 1.0
            g = np.sqrt(a_prev) * gain_x0 + np.sqrt(1 - a_prev) * c
            mean = g * mean + np.sqrt(a_prev) * shift_x0 - np.sqrt(1 - a_prev) * c * np.sqrt(a) * m
            var = g**2 * var
    return mean, var


@pytest.mark.parametrize("sampler, steps, spacing", [("ddpm", 100, None), ("ddim", 50, "trailing"),
                                                     ("ddim", 10, "trailing"), ("ddim", 10, "leading")])
def test_sampling_with_the_true_noise_matches_the_exact_chain(sampler, steps, spacing):
    """If a | o ~ N(m(o), s² I) in normalised units, E[ε | A^k, o] is known in closed form; with it in
    place of the network the sampler's output is Gaussian with moments computed exactly by a
    recursion. The policy's samples must have them, and act() must return those actions
    un-normalised, from the current step on."""
    policy = tiny_policy(sampler=sampler, inference_steps=steps, ddim_spacing=spacing or "trailing")
    lo, hi = np.array([10.0, 100.0]), np.array([500.0, 300.0])
    policy.set_normalizers(Normalizer(-np.ones(3), np.ones(3)), Normalizer(lo, hi))
    abar = torch.as_tensor(cosine_abar(100), dtype=torch.float32)
    s = 0.1

    def mean_of(cond):  # m(o): depends on the newest observation, different along time and per axis
        t = torch.linspace(-0.3, 0.3, 8)[None, :, None]
        return 0.5 * torch.tanh(cond[:, -3:-2])[:, :, None] + t * torch.tensor([1.0, -1.0])

    def true_eps(x, k, cond):
        a = abar[k][:, None, None]
        return (1 - a).sqrt() * (x - a.sqrt() * mean_of(cond)) / (a * s**2 + 1 - a)

    policy.denoise = true_eps
    obs = torch.randn(1, 2, 3).repeat(4000, 1, 1)
    chunk = policy.sample(obs, torch.Generator().manual_seed(0))
    m = mean_of(obs.flatten(1))[0].double().numpy()
    exact_mean, exact_var = chain_moments(m, s, sampler, steps, spacing)
    np.testing.assert_allclose(chunk.mean(0).numpy(), exact_mean, atol=4 * np.sqrt(exact_var / 4000) + 1e-4)
    np.testing.assert_allclose(chunk.std(0).numpy(), np.sqrt(exact_var), rtol=0.05)
    if sampler == "ddpm":  # DDPM with the exact noise lands close to the data distribution itself
        assert abs(np.sqrt(exact_var) / s - 1) < 0.2 and np.abs(exact_mean - m).max() < 0.01
    # act: the T_a actions from the current step (index T_o - 1), in raw units
    raw = policy.act(obs[:1].numpy(), torch.Generator().manual_seed(1))[0]
    expected = lo + (exact_mean[1:5] + 1) / 2 * (hi - lo)
    assert np.abs(raw - expected).max() < 4 * np.sqrt(exact_var) / 2 * (hi - lo).max()


@pytest.mark.parametrize("make", [lambda s: DDPMSampler(s), lambda s: DDIMSampler(s, 10),
                                  lambda s: DDIMSampler(s, 10, eta=0.5)])
def test_one_index_for_the_batch_steps_like_a_tensor_of_indices(make):
    sampler = make(NoiseSchedule.cosine(100))
    x, eps, noise = torch.randn(4, 8, 2), torch.randn(4, 8, 2), torch.randn(4, 8, 2)
    for t in sampler.timesteps.tolist()[:3] + [0]:
        a = sampler.step(eps, t, x, noise=noise)
        b = sampler.step(eps, torch.full((4,), t), x, noise=noise)
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_set_sampler_switches_between_ddpm_and_ddim():
    policy = tiny_policy()
    assert policy.num_inference_steps == 100
    policy.set_sampler("ddim", 10)
    assert isinstance(policy.sampler, DDIMSampler) and policy.num_inference_steps == 10
    assert policy.config.sampler == "ddim" and policy.config.inference_steps == 10
    with pytest.raises(ValueError, match="steps must be num_diffusion_steps=100"):
        policy.set_sampler("ddpm", 10)
    with pytest.raises(ValueError, match="sampler must be one of"):
        policy.set_sampler("euler")
    with pytest.raises(ValueError, match="pred_horizon must be a multiple of 4"):
        DiffusionConfig(pred_horizon=10, down_dims=(8, 16, 32))


# ---------------------------------------------------------------------------------------------
# learning a bimodal task
# ---------------------------------------------------------------------------------------------
def two_mode_demos(n: int = 2048):
    """(rng, obs (n, 2, 3), action (n, 8, 2)): half the chunks at x = −0.6, half at +0.6, whatever
    the observation; ``rng`` continues the stream that drew them."""
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (n, 2, 3)).astype(np.float32)
    side = np.where(rng.random(n) < 0.5, -0.6, 0.6)
    action = np.repeat(np.stack([side, 0.2 * side], -1)[:, None, :], 8, axis=1).astype(np.float32)
    return rng, obs, action


def test_diffusion_policy_learns_both_modes_where_regression_averages():
    """Half the demonstrations go left (−0.6), half right (+0.6), whatever the observation: the
    diffusion policy samples both, and almost never the average in between."""
    rng, obs, action = two_mode_demos()
    torch.manual_seed(0)
    policy = tiny_policy(down_dims=(16, 32), step_embed_dim=16)
    unit = (Normalizer(-np.ones(3), np.ones(3)), Normalizer(-np.ones(2), np.ones(2)))
    trained, _ = fit_policy(policy, (obs, action), TrainConfig(
        steps=600, batch_size=128, lr=2e-3, warmup_steps=50, ema_decay=0.99, progress=False), normalizers=unit)
    out = trained.act(rng.uniform(-1, 1, (400, 2, 3)), torch.Generator().manual_seed(0))[:, :, 0]  # DDPM
    left, right = (np.abs(out + 0.6) < 0.2).all(1).mean(), (np.abs(out - 0.6) < 0.2).all(1).mean()
    between = (np.abs(out) < 0.3).any(1).mean()
    assert 0.3 < left < 0.7 and 0.3 < right < 0.7 and left + right > 0.85, (left, right)
    assert between < 0.05


# ---------------------------------------------------------------------------------------------
# devices and checkpoints
# ---------------------------------------------------------------------------------------------
def test_schedule_and_normalisers_are_buffers_that_move_with_the_policy():
    policy = tiny_policy()
    buffers = dict(policy.named_buffers())
    for name in ("schedule.alphas_cumprod", "schedule._f64_alphas_cumprod", "obs_normalizer.scale32",
                 "action_normalizer.offset32"):
        assert name in buffers
    policy.to(torch.float64)
    assert policy.schedule.float64("betas").dtype == torch.float64
    # the schedule is not saved (the config rebuilds it); the normalisers are
    keys = set(policy.state_dict())
    assert not any(k.startswith("schedule.") for k in keys) and "action_normalizer.data_min" in keys


def test_half_precision_checkpoint_loads_back_as_float32(tmp_path):
    policy = tiny_policy()
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    full, half = policy.save(tmp_path / "full.pt"), policy.save(tmp_path / "half.pt", dtype=torch.float16)
    assert half.stat().st_size < 0.7 * full.stat().st_size
    loaded = load_policy(half)
    for k, v in policy.state_dict().items():
        w = loaded.state_dict()[k]
        assert w.dtype == v.dtype
        if v.dtype == torch.float32:
            torch.testing.assert_close(w, v.half().float(), rtol=0, atol=0)
        else:
            assert torch.equal(w, v)


def test_checkpoints_with_nan_weights_are_refused(tmp_path):
    policy = tiny_policy()
    state = policy.checkpoint()
    name = next(k for k, v in state["state_dict"].items() if v.is_floating_point() and v.numel() > 1)
    state["state_dict"][name][0] = math.nan
    torch.save(state, tmp_path / "nan.pt")
    with pytest.raises(ValueError, match="NaN or infinite"):
        load_policy(tmp_path / "nan.pt")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_and_sampling_run_without_host_syncs():
    """On a GPU: bf16/fp16 training steps and a whole DDPM chunk run without reading a value back
    from the device (torch's sync debug mode turns any synchronisation into an error)."""
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (512, 2, 3)).astype(np.float32)
    action = rng.uniform(-1, 1, (512, 8, 2)).astype(np.float32)
    policy = tiny_policy().cuda()
    trained, result = fit_policy(policy, (obs, action), TrainConfig(
        steps=30, batch_size=64, warmup_steps=5, ema_decay=0.99, ema_power=0.75, device="cuda", amp="auto",
        log_every=1000, progress=False))
    assert np.isfinite(result.losses).all()
    o = torch.as_tensor(obs[:16], device="cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        chunk = trained.sample(trained.normalize_obs(o))
        trained.set_sampler("ddim", 10)
        chunk_ddim = trained.sample(trained.normalize_obs(o))
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert chunk.shape == chunk_ddim.shape == (16, 8, 2) and bool(torch.isfinite(chunk).all())


def test_ddim_spacing_follows_the_config_and_trailing_starts_at_the_last_step():
    policy = tiny_policy().set_sampler("ddim", 10)
    assert policy.sampler.timesteps.tolist() == [99, 89, 79, 69, 59, 49, 39, 29, 19, 9]
    policy.set_sampler("ddim", 10, spacing="leading")
    assert policy.sampler.timesteps.tolist() == [90, 80, 70, 60, 50, 40, 30, 20, 10, 0]
    assert DDIMSampler(NoiseSchedule.cosine(100), np.int64(5)).num_steps == 5  # NumPy integers are integers
    with pytest.raises(ValueError, match="ddim_spacing must be one of"):
        DiffusionConfig(ddim_spacing="uniform")
