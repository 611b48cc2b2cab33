"""The transformer denoiser: its masks follow the rule in words, its outputs respect causality
(checked by perturbing inputs, with the non-causal network as the control that the check can
fail), its size follows the layer-by-layer count, and bad input is refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dplearn.nets.transformer import TransformerDenoiser, causal_masks

A, T_P, C, T_O = 2, 10, 20, 3


def _net(causal: bool = True, **kw) -> TransformerDenoiser:
    torch.manual_seed(0)
    kw = {"n_layer": 2, "n_head": 2, "n_emb": 32, **kw}
    return TransformerDenoiser(A, T_P, C, T_O, causal=causal, **kw).eval()


def _inputs(batch: int = 3):
    g = torch.Generator().manual_seed(1)
    return (torch.randn(batch, T_P, A, generator=g), torch.tensor([0, 17, 99])[:batch],
            torch.randn(batch, T_O, C, generator=g))


def test_masks_follow_the_rule_in_words():
    self_mask, memory_mask = causal_masks(T_P, 1 + T_O)
    for i in range(T_P):
        for j in range(T_P):
            assert bool(self_mask[i, j]) == (j > i)          # no peeking at later actions
        for s in range(1 + T_O):
            visible = s == 0 or s - 1 <= i                   # the step token, then obs 1..i+1
            assert bool(memory_mask[i, s]) == (not visible)


@pytest.mark.parametrize("i", [0, 4, T_P - 2])
def test_an_action_token_ignores_later_action_tokens(i):
    x, k, cond = _inputs()
    later = x.clone()
    later[:, i + 1:] += torch.randn_like(later[:, i + 1:])
    for causal in (True, False):
        net = _net(causal)
        with torch.no_grad():
            diff = (net(x, k, cond) - net(later, k, cond))[:, : i + 1].abs().max().item()
        if causal:
            assert diff < 1e-5
        else:   # the control: without the mask the earlier outputs move
            assert diff > 1e-4


@pytest.mark.parametrize("j", [1, 2])
def test_an_action_token_ignores_newer_observations(j):
    """Observation j (memory position j + 1) is visible to action tokens i >= j only."""
    x, k, cond = _inputs()
    newer = cond.clone()
    newer[:, j] += 1.0
    net = _net()
    with torch.no_grad():
        change = (net(x, k, cond) - net(x, k, newer)).abs().amax(dim=(0, 2))
    assert change[:j].max().item() < 1e-5
    assert change[j:].min().item() > 1e-5


def test_the_diffusion_step_reaches_every_token():
    x, _, cond = _inputs(2)
    net = _net()
    with torch.no_grad():
        change = (net(x, torch.tensor([3, 3]), cond) - net(x, torch.tensor([60, 60]), cond)).abs()
    assert change.amax(dim=(0, 2)).min().item() > 1e-5


def _count(a: int, t_p: int, c: int, t_o: int, layers: int, d: int) -> int:
    """Parameters layer by layer (weights + biases), written out from the architecture."""
    linear = lambda i, o: i * o + o                             # noqa: E731
    attention = 4 * d * d + 4 * d                               # q, k, v and output maps
    layer = 2 * attention + linear(d, 4 * d) + linear(4 * d, d) + 3 * 2 * d
    return (linear(a, d) + t_p * d + linear(c, d) + (1 + t_o) * d
            + linear(d, 4 * d) + linear(4 * d, d) + layers * layer + 2 * d + linear(d, a))


@pytest.mark.parametrize("cfg", [(2, 16, 20, 2, 8, 256), (A, T_P, C, T_O, 2, 32)])
def test_parameter_count_matches_the_architecture(cfg):
    a, t_p, c, t_o, layers, d = cfg
    net = TransformerDenoiser(a, t_p, c, t_o, n_layer=layers, n_head=4, n_emb=d)
    assert sum(p.numel() for p in net.parameters()) == _count(*cfg)


def test_optim_groups_split_every_parameter_once():
    net = _net()
    decay, no_decay = net.optim_groups(0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    ids = [id(p) for p in decay["params"]] + [id(p) for p in no_decay["params"]]
    assert sorted(ids) == sorted(id(p) for p in net.parameters())
    decayed = {id(p) for p in decay["params"]}
    for name, p in net.named_parameters():
        should = p.ndim == 2 and "pos_emb" not in name          # matrices of linear/attention maps
        assert (id(p) in decayed) == should, name


def test_a_training_step_lowers_the_loss_on_a_fixed_batch():
    x, k, cond = _inputs()
    target = torch.randn_like(x)
    net = _net().train()
    opt = torch.optim.AdamW(net.optim_groups(0.0), lr=1e-3)
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.mse_loss(net(x, k, cond), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("kwargs, match", [
    ({"n_emb": 30, "n_head": 4}, "n_emb"),
    ({"n_layer": 0}, "n_layer"),
    ({"p_drop_attn": float("nan")}, "p_drop_attn"),
    ({"p_drop_emb": 1.0}, "p_drop_emb"),
])
def test_bad_settings_are_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TransformerDenoiser(A, T_P, C, T_O, **kwargs)


def test_numpy_integers_are_accepted():
    net = TransformerDenoiser(np.int64(A), np.int64(T_P), C, T_O, n_layer=1, n_emb=16, n_head=2)
    assert net.horizon == T_P and isinstance(net.horizon, int)


def test_bad_shapes_are_refused_by_name():
    x, k, cond = _inputs()
    net = _net()
    with pytest.raises(ValueError, match="sample"):
        net(x[:, :-1], k, cond)
    with pytest.raises(ValueError, match="cond"):
        net(x, k, cond[:, :-1])
    with pytest.raises(ValueError, match="k must"):
        net(x, torch.zeros(2, dtype=torch.long), cond)
