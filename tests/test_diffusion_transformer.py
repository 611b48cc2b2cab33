"""The transformer variant of Diffusion Policy: the same loss and samplers as the CNN policy around a
different denoiser, its observation tokens are the normalised history itself, AdamW decays only its
weight matrices, it learns a two-mode task, and it saves, loads and trains from the CLI recipe."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dplearn.data import Normalizer
from dplearn.nets import TransformerDenoiser
from dplearn.policies import TransformerDiffusionPolicy, load_policy, make_policy
from dplearn.policy_training import PUSHT_RECIPES, fit_policy, recipe_for
from dplearn.training import TrainConfig, _param_groups
from test_diffusion_policy import cosine_abar, two_mode_demos


def tiny(**kw) -> TransformerDiffusionPolicy:
    config = dict(obs_dim=3, obs_horizon=2, pred_horizon=8, action_horizon=4, obs_type="state",
                  n_layer=2, n_head=2, n_emb=32, num_diffusion_steps=100)
    config.update(kw)
    return make_policy("diffusion-transformer", config)


def test_the_denoiser_is_the_transformer_and_the_config_has_no_unet_fields():
    policy = tiny()
    assert isinstance(policy.model, TransformerDenoiser)
    saved = policy.config.to_dict()
    assert not {"down_dims", "kernel_size", "n_groups", "step_embed_dim"} & set(saved)
    assert saved["n_layer"] == 2 and saved["n_emb"] == 32
    assert sum(p.numel() for p in policy.parameters()) == sum(p.numel() for p in policy.model.parameters())


def test_observation_tokens_are_the_normalised_history():
    policy = tiny()
    obs = torch.randn(5, 2, 3)
    assert torch.equal(policy.condition(obs), obs)      # (B, T_o, obs_dim): one token per step


def test_loss_is_the_mse_between_the_noise_and_its_prediction():
    policy = tiny().eval()          # dropout off, so the prediction below is the same function
    obs, action = torch.randn(6, 2, 3), torch.rand(6, 8, 2) * 2 - 1
    torch.manual_seed(5)
    loss = policy.compute_loss(obs, action)
    torch.manual_seed(5)
    eps = torch.randn_like(action)
    k = torch.randint(0, 100, (6,))
    abar = torch.as_tensor(cosine_abar(100))[k][:, None, None]
    noisy = (abar.sqrt() * action.double() + (1 - abar).sqrt() * eps.double()).float()
    pred = policy.model(noisy, k, obs)
    torch.testing.assert_close(loss, ((pred - eps) ** 2).mean(), rtol=1e-5, atol=1e-6)


def test_adamw_decays_only_the_weight_matrices():
    policy = tiny()
    groups = _param_groups(policy, 0.1)
    decayed = {id(p) for g in groups if g["weight_decay"] == 0.1 for p in g["params"]}
    for name, p in policy.named_parameters():
        assert (id(p) in decayed) == (p.ndim == 2), name
    # a network without its own split gets one group
    cnn = make_policy("diffusion-cnn", dict(obs_dim=3, obs_horizon=2, pred_horizon=8, action_horizon=4,
                                            obs_type="state", down_dims=(8, 16), step_embed_dim=8))
    (only,) = _param_groups(cnn, 0.1)
    assert only["weight_decay"] == 0.1 and len(only["params"]) == len(list(cnn.parameters()))


@pytest.mark.parametrize("bad, match", [({"n_emb": 30, "n_head": 4}, "n_emb"), ({"p_drop_attn": 1.5}, "p_drop_attn"),
                                        ({"causal": 1}, "causal"), ({"down_dims": (8,)}, "down_dims")])
def test_bad_settings_are_refused_by_name(bad, match):
    with pytest.raises(ValueError, match=match):
        tiny(**bad)


def test_half_precision_checkpoint_round_trips(tmp_path):
    policy = tiny().eval()
    path = policy.save(tmp_path / "t.pt", dtype=torch.float16)
    loaded = load_policy(path)
    assert isinstance(loaded, TransformerDiffusionPolicy) and loaded.config == policy.config
    for k, v in policy.state_dict().items():
        if v.dtype == torch.float32:
            torch.testing.assert_close(loaded.state_dict()[k], v.half().float(), rtol=0, atol=0)


def test_it_learns_both_modes():
    """Half the demonstrations go left (−0.6), half right (+0.6): DDPM samples chunks that commit to
    one side, both sides about equally, and almost never the average of the two (a chunk near 0).
    (The small network is less precise within a chunk than the U-Net of the CNN policy's test, so
    this checks the commitment, not the precision.)"""
    rng, obs, action = two_mode_demos()
    torch.manual_seed(0)
    unit = (Normalizer(-np.ones(3), np.ones(3)), Normalizer(-np.ones(2), np.ones(2)))
    trained, _ = fit_policy(tiny(), (obs, action), TrainConfig(
        steps=1000, batch_size=128, lr=1e-3, warmup_steps=50, ema_decay=0.99, progress=False,
        weight_decay=0.1, betas=(0.9, 0.95)), normalizers=unit)
    out = trained.act(rng.uniform(-1, 1, (400, 2, 3)), torch.Generator().manual_seed(0))[:, :, 0]
    committed = (np.sign(out) == np.sign(out[:, :1])).all(1)
    left, right = (committed & (out[:, 0] < 0)).mean(), (committed & (out[:, 0] > 0)).mean()
    averaged = (np.abs(out.mean(1)) < 0.15).mean()
    assert 0.3 < left < 0.7 and 0.3 < right < 0.7 and left + right > 0.9, (left, right)
    assert averaged < 0.05, averaged
    # the first action of a chunk lands on a mode
    assert (np.abs(np.abs(out[:, 0]) - 0.6) < 0.1).mean() > 0.9


def test_the_recipe_is_the_papers_in_the_full_tier():
    obs_type, recipe = recipe_for("diffusion-transformer")
    assert obs_type == "keypoints" and ("diffusion-transformer", "keypoints") in PUSHT_RECIPES
    cfg, train = recipe.policy_config("full"), recipe.train_fields("full")
    assert (cfg["n_layer"], cfg["n_head"], cfg["n_emb"], cfg["p_drop_attn"]) == (8, 4, 256, 0.01)
    assert (train["lr"], train["weight_decay"], train["betas"], train["warmup_steps"]) == (1e-4, 0.1, (0.9, 0.95), 1000)
