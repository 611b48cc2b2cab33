"""Seeding and the one rule for random generators (see :mod:`dplearn.seeding`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dplearn import seeding
from dplearn.diffusion import DDIMSampler, DDPMSampler, NoiseSchedule
from dplearn.nets.crop import random_crop
from dplearn.policies import make_policy

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class _GeneratorOn(torch.Generator):
    """A CPU generator that reports another device (no such generator can be made without that device)."""

    def __new__(cls, device: str):
        self = super().__new__(cls)  # a CPU generator
        self._where = torch.device(device)
        return self

    def __init__(self, device: str):
        super().__init__()

    @property
    def device(self) -> torch.device:
        return self._where


def test_seed_everything_accepts_numpy_integers_and_refuses_bad_seeds():
    seeding.seed_everything(np.int64(3))
    a = torch.rand(2)
    seeding.seed_everything(3)
    assert torch.equal(a, torch.rand(2))
    for bad in (-1, 1.0, True, "3"):
        with pytest.raises(ValueError, match=f"seed must be an integer >= 0, got {bad!r}"):
            seeding.seed_everything(bad)


def test_draws_with_a_cpu_generator_are_torch_s_cpu_draws():
    g = torch.Generator().manual_seed(5)
    x = seeding.randn((3, 2), torch.Generator().manual_seed(5), device="cpu", dtype=torch.float64)
    assert torch.equal(x, torch.randn(3, 2, generator=g, dtype=torch.float64))
    i = seeding.randint(0, 7, (50,), torch.Generator().manual_seed(1))
    assert torch.equal(i, torch.randint(0, 7, (50,), generator=torch.Generator().manual_seed(1)))
    p = torch.tensor([[0.2, 0.8], [0.9, 0.1]])
    k = seeding.multinomial(p, 3, replacement=True, generator=torch.Generator().manual_seed(2))
    assert torch.equal(k, torch.multinomial(p, 3, replacement=True, generator=torch.Generator().manual_seed(2)))


@pytest.mark.parametrize("bad", [0, np.random.default_rng(0), "cpu"])
def test_anything_but_a_torch_generator_is_refused(bad):
    what = type(bad).__name__
    with pytest.raises(ValueError, match=f"generator must be a torch.Generator or None, got {what}"):
        seeding.randn((2,), bad)
    with pytest.raises(ValueError, match=f"generator must be a torch.Generator or None, got {what}"):
        DDIMSampler(NoiseSchedule.linear(10), 5, eta=1.0).sample(lambda x, t: x, (2, 3), generator=bad)


def test_a_generator_on_another_device_is_refused_naming_both():
    with pytest.raises(ValueError, match="generator is on cuda:1 but the tensors are on cpu: pass a generator on "
                                         "the CPU"):
        seeding.draw_device(_GeneratorOn("cuda:1"), "cpu")
    with pytest.raises(ValueError, match="generator is on cuda:1 but the tensors are on cuda:0"):
        seeding.draw_device(_GeneratorOn("cuda:1"), "cuda:0")
    # the CPU, or the tensors' own device, are fine
    assert seeding.draw_device(torch.Generator(), "cuda:0") == torch.device("cpu")
    assert seeding.draw_device(_GeneratorOn("cuda:0"), "cuda:0") == torch.device("cuda:0")
    assert seeding.draw_device(_GeneratorOn("cuda"), "cuda:0") == torch.device("cuda")
    assert seeding.draw_device(None, "cpu") == torch.device("cpu")


def test_every_sampler_and_stochastic_policy_refuses_a_generator_on_another_device():
    wrong = _GeneratorOn("cuda:1")
    schedule = NoiseSchedule.linear(10)
    message = "generator is on cuda:1 but the tensors are on cpu"
    for sampler in (DDPMSampler(schedule), DDIMSampler(schedule, 5, eta=1.0)):
        with pytest.raises(ValueError, match=message):
            sampler.sample(lambda x, t: x, (2, 3), generator=wrong)
    with pytest.raises(ValueError, match=message):
        random_crop(torch.zeros(2, 3, 8, 8), 4, generator=wrong)
    for name, config in [("diffusion-cnn", {"down_dims": (8, 16), "num_diffusion_steps": 4, "inference_steps": 4,
                                            "step_embed_dim": 8, "n_groups": 4, "pred_horizon": 4,
                                            "action_horizon": 2}),
                         ("categorical", {"decode": "sample", "hidden": 8, "n_layers": 1})]:
        policy = make_policy(name, **config)
        obs = np.zeros((2, policy.config.obs_horizon, policy.config.obs_dim), dtype=np.float32)
        with pytest.raises(ValueError, match=message):
            policy.act(obs, wrong)


@CUDA
def test_a_cpu_generator_gives_the_same_noise_on_the_gpu():
    x = seeding.randn((4, 3), torch.Generator().manual_seed(7), device="cuda")
    assert x.device.type == "cuda"
    assert torch.equal(x.cpu(), torch.randn(4, 3, generator=torch.Generator().manual_seed(7)))
    sampler = DDIMSampler(NoiseSchedule.cosine(20), 5, eta=1.0)
    on_cpu = sampler.sample(lambda x, t: 0.1 * x, (8, 2), generator=torch.Generator().manual_seed(3))
    on_gpu = sampler.sample(lambda x, t: 0.1 * x, (8, 2), generator=torch.Generator().manual_seed(3), device="cuda")
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="generator is on cuda:0 but the tensors are on cpu"):
        seeding.randn((2,), torch.Generator(device="cuda:0"), device="cpu")
