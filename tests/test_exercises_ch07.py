"""Chapter 7 checkers accept correct answers and reject typical mistakes (and stubs) with a hint."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from dplearn.exercises import ch07


# --------------------------------------------------------------------------- InfoNCE with a proposal
def nce_good(e_pos, e_neg, r_pos, r_neg):
    # cross-entropy with logits -E - log r, the positive as label 0
    logits = -torch.cat([e_pos[:, None], e_neg], 1) - torch.cat([r_pos[:, None], r_neg], 1)
    return F.cross_entropy(logits, torch.zeros(len(e_pos), dtype=torch.long))


def nce_naive(e_pos, e_neg, r_pos, r_neg):
    num = torch.exp(-e_pos - r_pos)
    return (-torch.log(num / (num + torch.exp(-e_neg - r_neg).sum(1)))).mean()


def test_info_nce_proposal_reference_passes():
    assert ch07.check_info_nce_proposal(nce_good)


def test_info_nce_proposal_mistakes_fail_with_hint():
    cases = [
        (lambda p, n, rp, rn: nce_good(p, n, 0 * rp, 0 * rn), "ignored"),
        (lambda p, n, rp, rn: nce_good(p, n, 0 * rp, rn), "only the counter-examples"),
        (lambda p, n, rp, rn: nce_good(p, n, -rp, -rn), "wrong sign"),
        (lambda p, n, rp, rn: len(p) * nce_good(p, n, rp, rn), "summed"),
        (lambda p, n, rp, rn: nce_good(p, n, rp, rn) + 0.5, "wrong value"),
        (lambda p, n, rp, rn: nce_good(p, n, rp, rn)[None].repeat(2), "shape"),
        (nce_naive, "large energies"),
    ]
    for fn, words in cases:
        res = ch07.check_info_nce_proposal(fn)
        assert not res and words in res.message and res.hint, (words, res)


def test_info_nce_proposal_must_reduce_to_the_uniform_loss():
    # right on the random inputs, but a constant log r does not cancel: caught by the uniform check
    def leaky(p, n, rp, rn):
        constant = bool(torch.all(rp == rp.flatten()[0])) and bool(torch.all(rn == rp.flatten()[0]))
        return nce_good(p, n, rp, rn) + (1.0 if constant else 0.0)

    res = ch07.check_info_nce_proposal(leaky)
    assert not res and "uniform" in res.message


def test_info_nce_proposal_stub():
    assert "Not attempted" in ch07.check_info_nce_proposal(lambda *a: None).message


# --------------------------------------------------------------------------- DFO
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


# --------------------------------------------------------------------------- Gaussian counter-examples
def near_good(dim, r, sigma):
    # chi-squared CDF, written independently of the checker: for even dim a finite sum, else a series
    x = (r / sigma) ** 2 / 2
    if dim % 2 == 0:
        return 1 - math.exp(-x) * sum(x**k / math.factorial(k) for k in range(dim // 2))
    a = dim / 2  # lower regularised incomplete gamma by its power series
    term = total = 1 / a
    for k in range(1, 500):
        term *= x / (a + k)
        total += term
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def near_torch(dim, r, sigma):
    return torch.special.gammainc(torch.tensor(dim / 2), torch.tensor((r / sigma) ** 2 / 2))


def near_monte_carlo(dim, r, sigma):
    u = np.random.default_rng(0).normal(0, sigma, (200_000, dim))
    return float(np.mean(np.linalg.norm(u, axis=1) < r))


def test_gaussian_near_fraction_reference_passes():
    assert ch07.check_gaussian_near_fraction(near_good)
    assert ch07.check_gaussian_near_fraction(lambda d, r, s: near_torch(d, r, s).double())


def test_gaussian_near_fraction_mistakes_fail_with_hint():
    cases = [
        (lambda d, r, s: near_good(d, r * math.sqrt(2), s), "1/2"),
        (lambda d, r, s: float(torch.special.gammainc(torch.tensor(d / 2, dtype=torch.float64),
                                                      torch.tensor(r / s, dtype=torch.float64))),
         "not squared"),
        (lambda d, r, s: 1 - near_good(d, r, s), "farther"),
        (near_monte_carlo, "Monte Carlo"),
        (lambda d, r, s: math.pi ** (d / 2) / math.gamma(d / 2 + 1) * r**d / 2**d, "wrong value"),
        (lambda d, r, s: np.array([near_good(d, r, s)] * 2), "shape"),
    ]
    for fn, words in cases:
        res = ch07.check_gaussian_near_fraction(fn)
        assert not res and words in res.message and res.hint, (words, res)


def test_gaussian_near_fraction_stub():
    assert "Not attempted" in ch07.check_gaussian_near_fraction(lambda *a: ...).message
