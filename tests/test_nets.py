"""Networks: the step embedding is the transformer's sin/cos formula, FiLM is an exact per-channel
affine map that starts as the identity, and the MLP denoiser treats examples independently."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dplearn.nets import FiLM, MLPDenoiser, SinusoidalTimeEmbedding


# --------------------------------------------------------------------------- time embedding
@pytest.mark.parametrize("dim", [4, 16, 64])
def test_time_embedding_matches_formula(dim):
    t = np.array([0, 1, 7, 99, 500, 999], dtype=np.float64)
    half = dim // 2
    freqs = 10000.0 ** (-np.arange(half) / (half - 1))   # from 1 down to 1/10000
    expected = np.concatenate([np.sin(t[:, None] * freqs), np.cos(t[:, None] * freqs)], axis=1)
    got = SinusoidalTimeEmbedding(dim)(torch.tensor(t)).double().numpy()
    assert got.shape == (len(t), dim)
    np.testing.assert_allclose(got, expected, atol=2e-4)  # float32 sin of arguments up to ~1000


def test_time_embedding_inner_product_depends_only_on_distance():
    # the property that makes it a *positional* code: <e(t), e(s)> = sum_k cos(w_k (t - s))
    emb = SinusoidalTimeEmbedding(32)
    t = torch.tensor([3.0, 10.0, 40.0])
    s = torch.tensor([5.0, 12.0, 42.0])  # all pairs 2 apart
    dots = (emb(t) * emb(s)).sum(1)
    torch.testing.assert_close(dots, dots[0].expand(3), atol=1e-4, rtol=0)
    freqs = 10000.0 ** (-np.arange(16) / 15)
    assert dots[0].item() == pytest.approx(np.cos(freqs * 2.0).sum(), abs=1e-4)


@pytest.mark.parametrize("dim", [0, 2, 5, 7, 2.0, True])
def test_time_embedding_rejects_bad_dim(dim):
    with pytest.raises(ValueError, match="dim"):
        SinusoidalTimeEmbedding(dim)


def test_time_embedding_rejects_bad_t():
    with pytest.raises(ValueError, match="t must"):
        SinusoidalTimeEmbedding(8)(torch.zeros(3, 1))


# --------------------------------------------------------------------------- FiLM
@pytest.mark.parametrize("shape", [(5, 6), (5, 6, 9), (5, 6, 3, 4)])
def test_film_is_identity_at_init(shape):
    film = FiLM(cond_dim=3, channels=6)
    h = torch.randn(shape)
    c = torch.randn(shape[0], 3)
    assert torch.equal(film(h, c), h)


@pytest.mark.parametrize("shape", [(4, 5), (4, 5, 7)])
def test_film_is_the_affine_map_gamma_h_plus_beta(shape):
    torch.manual_seed(0)
    film = FiLM(cond_dim=3, channels=5)
    with torch.no_grad():
        film.proj.weight.normal_()
        film.proj.bias.normal_()
    h = torch.randn(shape, dtype=torch.float64)
    c = torch.randn(shape[0], 3, dtype=torch.float64)
    W = film.proj.weight.detach().double().numpy()
    b = film.proj.bias.detach().double().numpy()
    gb = c.numpy() @ W.T + b                     # (B, 2C): first C are gamma, then beta
    gamma, beta = gb[:, :5], gb[:, 5:]
    hn = h.numpy()
    expected = np.empty_like(hn)
    for i in range(shape[0]):                    # explicit loops: channel by channel, position by position
        for ch in range(5):
            expected[i, ch] = gamma[i, ch] * hn[i, ch] + beta[i, ch]
    film = film.double()
    np.testing.assert_allclose(film(h, c).detach().numpy(), expected, rtol=1e-12, atol=1e-12)


def test_film_rejects_bad_shapes():
    film = FiLM(3, 6)
    with pytest.raises(ValueError, match="h must"):
        film(torch.randn(2, 5), torch.randn(2, 3))
    with pytest.raises(ValueError, match="c must"):
        film(torch.randn(2, 6), torch.randn(2, 4))
    with pytest.raises(ValueError, match="channels"):
        FiLM(3, 0)


# --------------------------------------------------------------------------- MLP denoiser
def _perturbed(model: torch.nn.Module) -> torch.nn.Module:
    # FiLM starts as the identity, which hides the time/condition pathway; wake it up
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, FiLM):
                m.proj.weight.normal_(std=0.5)
    return model


def test_mlp_denoiser_shapes_and_time_dependence():
    torch.manual_seed(0)
    model = _perturbed(MLPDenoiser(2, hidden=32, n_layers=2, time_dim=16))
    x = torch.randn(7, 2)
    out0 = model(x, torch.zeros(7, dtype=torch.long))
    out1 = model(x, torch.full((7,), 500, dtype=torch.long))
    assert out0.shape == (7, 2)
    assert not torch.allclose(out0, out1)
    # an int step means the same step for every example
    torch.testing.assert_close(model(x, 500), out1)
    torch.testing.assert_close(model(x, torch.tensor(500)), out1)


def test_mlp_denoiser_treats_examples_independently():
    torch.manual_seed(1)
    model = _perturbed(MLPDenoiser(3, hidden=16, n_layers=2, time_dim=8, cond_dim=4))
    x, t, c = torch.randn(6, 3), torch.randint(0, 100, (6,)), torch.randn(6, 4)
    batch = model(x, t, c)
    rows = torch.cat([model(x[i:i + 1], t[i:i + 1], c[i:i + 1]) for i in range(6)])
    torch.testing.assert_close(batch, rows)


def test_mlp_denoiser_condition_changes_output_and_is_checked():
    torch.manual_seed(2)
    model = _perturbed(MLPDenoiser(2, hidden=16, n_layers=1, time_dim=8, cond_dim=2))
    x, t = torch.randn(4, 2), torch.randint(0, 10, (4,))
    assert not torch.allclose(model(x, t, torch.zeros(4, 2)), model(x, t, torch.ones(4, 2)))
    with pytest.raises(ValueError, match="cond is required"):
        model(x, t)
    with pytest.raises(ValueError, match="cond must have shape"):
        model(x, t, torch.zeros(4, 3))
    with pytest.raises(ValueError, match="cond must be None"):
        MLPDenoiser(2, hidden=8, n_layers=1, time_dim=8)(x, t, torch.zeros(4, 2))


@pytest.mark.parametrize("kwargs, name", [({"x_dim": 0}, "x_dim"), ({"hidden": 0}, "hidden"),
                                          ({"n_layers": 0}, "n_layers"), ({"cond_dim": -1}, "cond_dim"),
                                          ({"time_dim": 3}, "dim")])
def test_mlp_denoiser_rejects_bad_arguments(kwargs, name):
    args = {"x_dim": 2, **kwargs}
    with pytest.raises(ValueError, match=name):
        MLPDenoiser(**args)


def test_mlp_denoiser_rejects_bad_inputs():
    model = MLPDenoiser(2, hidden=8, n_layers=1, time_dim=8)
    with pytest.raises(ValueError, match="x must"):
        model(torch.randn(4, 3), 0)
    with pytest.raises(ValueError, match="t must"):
        model(torch.randn(4, 2), torch.zeros(3))
    assert math.isfinite(model(torch.randn(4, 2), 0.5).sum().item())  # real-valued times are fine


def test_mlp_is_linear_maps_with_mish_between():
    """``mlp`` against the same map written out in float64: h <- mish(W h + b) per hidden layer,
    then a last linear map (none when ``out_dim`` is None)."""
    from dplearn.nets import mlp

    torch.manual_seed(0)
    x = torch.randn(7, 3, dtype=torch.float64)
    for out_dim in (2, None):
        net = mlp(3, 5, 2, out_dim).double()
        linears = [m for m in net if isinstance(m, torch.nn.Linear)]
        assert len(linears) == (3 if out_dim else 2)
        h = x.numpy()
        for k, lin in enumerate(linears):
            h = h @ lin.weight.detach().numpy().T + lin.bias.detach().numpy()
            if k < 2:
                h = h * np.tanh(np.log1p(np.exp(h)))  # Mish
        assert np.allclose(net(x).detach().numpy(), h, atol=1e-12)
        assert net(x).shape == (7, out_dim or 5)
