"""Training glue, the `dplearn train` / `dplearn eval` commands and the shipped Part II checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dplearn.cli import main
from dplearn.data import Normalizer, SequenceDataset, load_pusht_demos, save_demos, window_indices
from dplearn.policies import POLICIES, load_policy, make_policy, shipped_checkpoint_path
from dplearn.policy_training import (
    PUSHT_RECIPES,
    _normalized_loss,
    demos_fingerprint,
    fit_normalizers,
    fit_policy,
    windows_as_tensors,
)
from dplearn.training import TrainConfig


@pytest.fixture(scope="module")
def demos():
    return load_pusht_demos()


def test_windows_as_tensors_match_the_dataset_items(demos):
    ds = SequenceDataset(demos.subset(range(3)), obs_horizon=2, pred_horizon=5, action_horizon=3)
    obs, act = windows_as_tensors(ds)
    assert obs.shape == (len(ds), 2, 5) and act.shape == (len(ds), 5, 2)
    for i in (0, 1, len(ds) // 2, len(ds) - 1):
        item = ds[i]
        assert torch.equal(obs[i], item["obs"]) and torch.equal(act[i], item["action"])
    index = window_indices(ds.demos.episode_ends, 5, pad_before=1, pad_after=2)
    assert np.array_equal(act.numpy(), ds.demos.action[index])


def test_normalised_training_loss_equals_the_policy_loss_on_raw_batches():
    rng = np.random.default_rng(0)
    obs = rng.uniform(0, 512, (16, 2, 5)).astype(np.float32)
    act = rng.uniform(0, 512, (16, 2, 2)).astype(np.float32)
    obs_n, act_n = fit_normalizers(obs, act)
    assert np.allclose(obs_n.data_min, obs.reshape(-1, 5).min(0)) and np.allclose(act_n.data_max, act.reshape(-1, 2).max(0))
    for name in ("regression", "mixture", "categorical"):
        policy = make_policy(name, hidden=16, n_layers=1, obs_normalizer=obs_n, action_normalizer=act_n)
        batch = (torch.as_tensor(obs_n.normalize(obs)).float(), torch.as_tensor(act_n.normalize(act)).float())
        assert _normalized_loss(policy, batch).item() == pytest.approx(policy.loss((obs, act)).item(), rel=1e-5)


def test_fit_policy_rejects_windows_that_do_not_fit_the_config():
    policy = make_policy("regression", obs_dim=2, obs_horizon=2, pred_horizon=3, hidden=8, n_layers=1)
    with pytest.raises(ValueError, match=r"data obs must have shape \(M, 2, 2\)"):
        fit_policy(policy, (np.zeros((4, 1, 2)), np.zeros((4, 3, 2))), TrainConfig(steps=1, progress=False))
    with pytest.raises(ValueError, match="data action must have shape"):
        fit_policy(policy, (np.zeros((4, 2, 2)), np.zeros((4, 2, 2))), TrainConfig(steps=1, progress=False))
    with pytest.raises(ValueError, match="SequenceDataset or a pair"):
        fit_policy(policy, np.zeros((4, 2, 2)), TrainConfig(steps=1, progress=False))


def test_fit_policy_learns_and_returns_the_ema_copy():
    rng = np.random.default_rng(1)
    obs = rng.uniform(-1, 1, (512, 1, 2)).astype(np.float32)
    act = (2 * obs[:, :, ::-1]).astype(np.float32)  # a = 2 (o_y, o_x): a smooth map to learn
    policy = make_policy("regression", obs_dim=2, obs_horizon=1, pred_horizon=1, hidden=32, n_layers=2)
    trained, result = fit_policy(policy, (obs, act), TrainConfig(steps=300, batch_size=64, lr=3e-3, progress=False,
                                                                 ema_decay=0.9))
    assert trained is result.ema_model and trained is not policy
    assert result.losses[-20:].mean() < 0.1 * result.losses[:20].mean()
    test = rng.uniform(-0.8, 0.8, (64, 1, 2)).astype(np.float32)
    assert np.abs(trained.act(test)[:, 0] - 2 * test[:, 0, ::-1]).max() < 0.3
    assert isinstance(trained.obs_normalizer, Normalizer) and trained.meta["train_steps"] == 300


def test_train_and_eval_commands(tmp_path, demos, capsys):
    small = tmp_path / "small.npz"
    save_demos(small, demos.subset(range(4)))
    out = tmp_path / "mixture.pt"
    assert main(["train", "--policy", "mixture", "--budget", "quick", "--steps", "3", "--demos", str(small),
                 "--out", str(out), "--no-progress", "--device", "cpu"]) == 0
    policy = load_policy(out)
    assert policy.name == "mixture" and policy.config.to_dict() == {
        **policy.config.to_dict(), **PUSHT_RECIPES["mixture"].config}
    assert policy.meta["command"].startswith("dplearn train --policy mixture") and policy.meta["train_steps"] == 3
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(out), "--episodes", "2", "--seed", "7", "--no-progress"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("policy=mixture") and "episodes=2" in last and "seed=7" in last
    assert "score=" in last and "success_rate=" in last
    with pytest.raises(SystemExit, match="must be one of"):
        main(["train", "--policy", "bet", "--out", str(tmp_path / "x.pt")])
    with pytest.raises(SystemExit, match="not a file"):
        main(["eval", "--checkpoint", str(tmp_path / "absent.pt")])


@pytest.mark.parametrize("name", sorted(PUSHT_RECIPES))
def test_shipped_checkpoints_are_small_full_runs_of_the_recipes(name):
    assert set(PUSHT_RECIPES) == set(POLICIES)
    path = shipped_checkpoint_path(name)
    assert path.stat().st_size < 25e6
    policy = load_policy(path)
    recipe = PUSHT_RECIPES[name]
    assert {k: policy.config.to_dict()[k] for k in recipe.config} == dict(recipe.config)
    assert policy.meta["tier"] == "full" and policy.meta["task"] == "pusht-state"
    assert policy.meta["command"].startswith(f"dplearn train --policy {name} --budget full")
    assert policy.meta["train_steps"] <= recipe.steps["full"]
    # made from the shipped demonstrations (retrain with the command above when they change) ...
    demos = load_pusht_demos()
    assert policy.meta["demos_sha256"] == demos_fingerprint(demos), (
        f"{name}.pt was trained on other demonstrations; retrain it with: {policy.meta['command']}")
    # ... and the normalisers are their ranges
    assert np.allclose(policy.action_normalizer.data_min, demos.action.min(0), atol=1e-4)
    assert np.allclose(policy.action_normalizer.data_max, demos.action.max(0), atol=1e-4)


def test_demos_fingerprint_identifies_the_data(demos):
    same = demos.subset(range(demos.n_episodes))
    assert demos_fingerprint(same) == demos_fingerprint(demos)
    changed = demos.subset(range(demos.n_episodes))
    changed.action[5, 0] += 1.0
    assert demos_fingerprint(changed) != demos_fingerprint(demos)
    assert demos_fingerprint(demos.subset(range(1, demos.n_episodes))) != demos_fingerprint(demos)
