"""Chapter 7 checkers accept correct answers and reject typical mistakes (and stubs) with a hint."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from dplearn.exercises import ch07


def test_info_nce_checker():
    def good(e_pos, e_neg):
        logits = -torch.cat([e_pos[:, None], e_neg], 1)
        return F.cross_entropy(logits, torch.zeros(len(e_pos), dtype=torch.long))

    def naive(e_pos, e_neg):
        return (-torch.log(torch.exp(-e_pos) / (torch.exp(-e_pos) + torch.exp(-e_neg).sum(1)))).mean()

    def flipped(e_pos, e_neg):
        return good(-e_pos, -e_neg)

    assert ch07.check_info_nce(good)
    res = ch07.check_info_nce(naive)
    assert not res and "large energies" in res.message
    res = ch07.check_info_nce(flipped)
    assert not res and "sign of the energies" in res.message
    res = ch07.check_info_nce(lambda p, n: len(p) * good(p, n))
    assert not res and "summed" in res.message
    assert not ch07.check_info_nce(lambda p, n: None)


def _dfo(weights_sign=1.0, noise=True, clip=True):
    def fn(energy_fn, samples, noise_scale, generator):
        w = torch.softmax(-weights_sign * energy_fn(samples), 0)
        idx = torch.multinomial(w, len(samples), replacement=True, generator=generator)
        out = samples[idx]
        if noise:
            out = out + noise_scale * torch.randn(out.shape, generator=generator, dtype=out.dtype)
        return out.clamp(-1, 1) if clip else out
    return fn


def test_dfo_iteration_checker():
    assert ch07.check_dfo_iteration(_dfo())
    res = ch07.check_dfo_iteration(_dfo(weights_sign=-1.0))
    assert not res and "high-energy" in res.message
    res = ch07.check_dfo_iteration(_dfo(noise=False))
    assert not res and "no noise" in res.message
    res = ch07.check_dfo_iteration(_dfo(clip=False))
    assert not res and "bounds" in res.message

    def uniform(energy_fn, samples, noise_scale, generator):
        idx = torch.randint(len(samples), (len(samples),), generator=generator)
        return samples[idx]

    res = ch07.check_dfo_iteration(uniform)
    assert not res and "equally often" in res.message


def test_counter_example_fraction_checker():
    def good(dim, r):
        return math.pi ** (dim / 2) / math.gamma(dim / 2 + 1) * r**dim / 2**dim

    def monte_carlo(dim, r):
        u = np.random.default_rng(0).uniform(-1, 1, (400_000, dim))
        return float(np.mean(np.linalg.norm(u, axis=1) < r))

    assert ch07.check_counter_example_fraction(good)
    assert not ch07.check_counter_example_fraction(monte_carlo)
    assert not ch07.check_counter_example_fraction(lambda dim, r: (r / 2) ** dim)
    assert not ch07.check_counter_example_fraction(lambda dim, r: ...)
