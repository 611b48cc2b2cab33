"""Training glue, the `dplearn train` / `dplearn eval` commands and the shipped Part II checkpoints."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from dplearn.cli import main
from dplearn.data import Normalizer, SequenceDataset, load_pusht_demos, save_demos, window_indices
from dplearn.envs import PushTEnv
from dplearn.evaluation import evaluate
from dplearn.policies import load_policy, make_policy, shipped_checkpoint_path
from dplearn.policy_training import (
    PUSHT_RECIPES,
    _normalized_loss,
    demos_fingerprint,
    fit_normalizers,
    fit_policy,
    recipe_for,
    train_pusht_policy,
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
    assert np.allclose(obs_n.data_min.numpy(), obs.reshape(-1, 5).min(0))
    assert np.allclose(act_n.data_max.numpy(), act.reshape(-1, 2).max(0))
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
    # no --obs: the benchmark's keypoints, with the recipe's quick settings
    assert policy.name == "mixture" and policy.obs_type == "keypoints" and policy.config.to_dict() == {
        **policy.config.to_dict(), **PUSHT_RECIPES[("mixture", "keypoints")].policy_config("quick")}
    assert policy.meta["command"].startswith("dplearn train --policy mixture --obs keypoints") and policy.meta[
        "train_steps"] == 3
    capsys.readouterr()
    for seed in (7, 100_003):
        assert main(["eval", "--checkpoint", str(out), "--episodes", "3", "--seed", str(seed), "--no-progress"]) == 0
        last = capsys.readouterr().out.strip().splitlines()[-1]
        assert last.startswith("policy=mixture obs=keypoints") and "episodes=3" in last and f"seed={seed}" in last
        # the printed numbers are those of the saved checkpoint on these starts: evaluate it here
        # (the mixture samples, so this also checks that the command seeds the draws with --seed)
        printed = re.search(r"score=([0-9.]+)±([0-9.]+) success_rate=([0-9.]+)", last)
        assert printed, last
        here = evaluate(load_policy(out), n_episodes=3, seed=seed, progress=False)
        rewards = np.array([max(e.rewards) for e in here.episodes])  # the score's definition
        sem = rewards.std(ddof=1) / np.sqrt(3)
        assert float(printed.group(1)) == pytest.approx(rewards.mean(), abs=5e-4)
        assert float(printed.group(2)) == pytest.approx(sem, abs=5e-4)
        assert float(printed.group(3)) == pytest.approx(np.mean([max(e.coverages) > 0.95 for e in here.episodes]),
                                                        abs=5e-4)
    with pytest.raises(SystemExit, match="must be one of the policies with a Push-T recipe"):
        main(["train", "--policy", "bet", "--out", str(tmp_path / "x.pt")])
    with pytest.raises(SystemExit, match="no Push-T recipe for policy 'mixture' on observation 'pixels'"):
        main(["train", "--policy", "mixture", "--obs", "pixels", "--out", str(tmp_path / "x.pt")])
    with pytest.raises(SystemExit, match="no such file|not a file"):
        main(["eval", "--checkpoint", str(tmp_path / "absent.pt")])


def test_obs_horizon_option_trains_a_policy_that_reads_that_many_observations(tmp_path, demos):
    """chapter 10's T_o ablation: --obs-horizon replaces the recipe's T_o, is recorded in the command
    and the file name, and the saved policy reads exactly that many observations."""
    small = tmp_path / "small.npz"
    save_demos(small, demos.subset(range(4)))
    assert main(["train", "--policy", "diffusion-cnn", "--obs", "keypoints", "--budget", "quick", "--steps", "2",
                 "--demos", str(small), "--obs-horizon", "1", "--no-progress", "--device", "cpu"]) == 0
    policy = load_policy(tmp_path / "small-diffusion-cnn-keypoints-obs1.pt")
    recipe = PUSHT_RECIPES[("diffusion-cnn", "keypoints")].config
    assert recipe["obs_horizon"] != 1 and policy.config.obs_horizon == 1
    assert (policy.config.pred_horizon, policy.config.action_horizon) == (recipe["pred_horizon"],
                                                                          recipe["action_horizon"])
    assert " --obs-horizon 1 " in policy.meta["command"]
    # one observation in, T_a actions out: the first T_a rows of the chunk (row T_o - 1 = 0 is "now")
    obs = PushTEnv(obs_type="keypoints").reset(seed=100_000)[0][None].astype(np.float32)  # (T_o=1, 20)
    chunk = policy.predict_chunk(obs[None], generator=torch.Generator().manual_seed(0))
    actions = policy.act(obs, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(actions, chunk[0, :recipe["action_horizon"]].numpy(), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match=r"obs_history must have shape \(1, 20\)"):
        policy.act(np.zeros((2, 20), np.float32))
    with pytest.raises(SystemExit, match=r"pred_horizon must be >= obs_horizon - 1 \+ action_horizon"):
        main(["train", "--policy", "diffusion-cnn", "--obs", "keypoints", "--budget", "quick", "--steps", "2",
              "--demos", str(small), "--obs-horizon", "20", "--no-progress", "--device", "cpu",
              "--out", str(tmp_path / "x.pt")])


def test_diffusion_policy_trains_resumes_and_evaluates_from_the_command_line(tmp_path, demos, capsys):
    """The keypoints recipe end to end in the quick tier: the checkpoint carries its observation type
    (eval needs nothing else), and a run interrupted and resumed equals one that never stopped."""
    small = tmp_path / "small.npz"
    save_demos(small, demos.subset(range(6)))
    common = ["train", "--policy", "diffusion-cnn", "--budget", "quick", "--demos", str(small), "--no-progress",
              "--device", "cpu"]
    assert main([*common, "--steps", "20", "--out", str(tmp_path / "straight.pt")]) == 0
    straight = load_policy(tmp_path / "straight.pt")
    assert straight.name == "diffusion-cnn" and straight.obs_type == "keypoints" and straight.config.obs_dim == 20
    assert straight.meta["command"].startswith("dplearn train --policy diffusion-cnn --obs keypoints")
    # the same run in two halves: a SIGTERM at step 11 (as a job scheduler sends) stops the run at
    # that step boundary and saves the training state there (the regular saves come every 2 steps)
    state = tmp_path / "run.state"
    import os
    import signal

    import dplearn.policy_training as pt
    import dplearn.training as training

    original = training.train

    def terminated_at_11(*args, **kwargs):
        def callback(step, loss):
            if step == 11:
                os.kill(os.getpid(), signal.SIGTERM)

        return original(*args, **kwargs, callback=callback)

    pt.train = terminated_at_11
    try:
        assert main([*common, "--steps", "20", "--resume", str(state), "--out", str(tmp_path / "resumed.pt")]) == 130
    finally:
        pt.train = original
    assert "stopped at step 11 of 20" in capsys.readouterr().err
    assert not (tmp_path / "resumed.pt").exists()
    assert training.read_train_state(state)["step"] == 11
    assert main([*common, "--steps", "20", "--resume", str(state), "--out", str(tmp_path / "resumed.pt")]) == 0
    resumed = load_policy(tmp_path / "resumed.pt")
    for k, v in straight.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
    # resuming with another config or other data is refused, in one line naming the difference
    with pytest.raises(SystemExit, match="training config differs.*steps: saved 20, now 30"):
        main([*common, "--steps", "30", "--resume", str(state), "--out", str(tmp_path / "x.pt")])
    other = tmp_path / "other.npz"
    save_demos(other, demos.subset(range(1, 7)))
    with pytest.raises(SystemExit, match="made for another run.*windows_sha256"):
        main([*common[:6], str(other), *common[7:], "--steps", "20", "--resume", str(state),
              "--out", str(tmp_path / "x.pt")])
    with pytest.raises(SystemExit, match="--resume must be a different file from --out"):
        main([*common, "--steps", "20", "--resume", str(tmp_path / "same.pt"), "--out", str(tmp_path / "same.pt")])
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(tmp_path / "resumed.pt"), "--episodes", "2", "--no-progress",
                 "--sampler", "ddim", "--inference-steps", "4"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "policy=diffusion-cnn obs=keypoints" in last and "sampler=ddim-4" in last and "seed=100000" in last


def _torch_bytes(obj) -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("content, message", [
    (b"", "not a readable dplearn"),
    (b"PK\x03\x04 truncated zip", "not a readable dplearn"),
    (_torch_bytes({"weights": torch.zeros(3)}), "not a dplearn"),  # a foreign torch file
])
def test_bad_files_give_one_line_errors_naming_the_file(tmp_path, demos, content, message):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    with pytest.raises(SystemExit, match=f"dplearn eval: '.*bad.pt' is {message}") as info:
        main(["eval", "--checkpoint", str(bad), "--no-progress"])
    assert "\n" not in str(info.value) and "weights_only=False" not in str(info.value)
    small = tmp_path / "small.npz"
    save_demos(small, demos.subset(range(2)))
    with pytest.raises(SystemExit, match=f"dplearn train: '.*bad.pt' is {message}"):
        main(["train", "--policy", "diffusion-cnn", "--budget", "quick", "--demos", str(small), "--steps", "2",
              "--resume", str(bad), "--out", str(tmp_path / "x.pt"), "--no-progress", "--device", "cpu"])


def test_command_line_refuses_bad_devices_and_demonstrations(tmp_path):
    with pytest.raises(SystemExit, match="--device must be auto, cpu, cuda or cuda:N, got 'gpu0'"):
        main(["train", "--policy", "regression", "--device", "gpu0", "--out", str(tmp_path / "x.pt")])
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match="no CUDA GPU is available"):
            main(["eval", "--policy", "regression", "--device", "cuda"])
    (tmp_path / "demos.npz").write_bytes(b"not a zip")
    with pytest.raises(SystemExit, match="dplearn train: --demos: "):
        main(["train", "--policy", "regression", "--demos", str(tmp_path / "demos.npz"), "--device", "cpu",
              "--out", str(tmp_path / "x.pt")])


@pytest.mark.parametrize("name", ["regression", "categorical", "mixture", "lstm-gmm", "ibc"])
def test_shipped_part_ii_keypoint_checkpoints_are_their_recipe_on_the_shipped_demonstrations(name):
    """Chapters 6 and 7's policies (chapter 10's baselines): the keypoint recipe of the tier each names —
    the full one for the explicit policies and LSTM-GMM; for IBC the IBC paper's 256 counter-examples per
    example in any tier but quick — trained on the demonstrations that ship now, with normalisers spanning
    those demonstrations' keypoints and actions."""
    path = shipped_checkpoint_path(name, "keypoints")
    assert path.stat().st_size < 25e6
    policy = load_policy(path)
    tier = policy.meta["tier"]
    _, recipe = recipe_for(name, "keypoints")
    if name == "ibc":
        assert tier in ("book", "full") and policy.config.n_negatives == 256
    else:
        assert tier == "full" and policy.meta["train_steps"] == recipe.steps["full"]
    assert policy.config.obs_type == "keypoints"
    assert {k: policy.config.to_dict()[k] for k in recipe.policy_config(tier)} == {
        k: (tuple(v) if isinstance(v, list) else v) for k, v in recipe.policy_config(tier).items()}
    assert policy.meta["command"].startswith(f"dplearn train --policy {name} --obs keypoints --budget {tier}")
    demos = load_pusht_demos()
    assert policy.meta["demos_sha256"] == demos_fingerprint(demos)
    kp = SequenceDataset(demos, 1, 1, 1, obs_type="keypoints").vector_obs()
    assert np.allclose(policy.obs_normalizer.data_min.numpy(), kp.min(0), atol=1e-3)
    assert np.allclose(policy.obs_normalizer.data_max.numpy(), kp.max(0), atol=1e-3)
    assert np.allclose(policy.action_normalizer.data_min.numpy(), demos.action.min(0), atol=1e-4)
    assert np.allclose(policy.action_normalizer.data_max.numpy(), demos.action.max(0), atol=1e-4)


def test_shipped_diffusion_policy_is_a_small_run_of_its_recipe_on_the_shipped_demonstrations():
    path = shipped_checkpoint_path("diffusion-cnn", "keypoints")
    assert path.stat().st_size < 25e6
    policy = load_policy(path)
    tier = policy.meta["tier"]
    _, recipe = recipe_for("diffusion-cnn", "keypoints")
    assert {k: policy.config.to_dict()[k] for k in recipe.policy_config(tier)} == {
        k: (tuple(v) if isinstance(v, list) else v) for k, v in recipe.policy_config(tier).items()}
    assert policy.meta["command"].startswith("dplearn train --policy diffusion-cnn --obs keypoints")
    demos = load_pusht_demos()
    assert policy.meta["demos_sha256"] == demos_fingerprint(demos)
    # the normalisers are the ranges of the demonstrations' keypoints and actions
    assert np.allclose(policy.action_normalizer.data_min.numpy(), demos.action.min(0), atol=1e-4)
    assert np.allclose(policy.action_normalizer.data_max.numpy(), demos.action.max(0), atol=1e-4)
    ds = SequenceDataset(demos, 2, 16, 8, obs_type="keypoints")
    kp = ds.vector_obs()
    assert np.allclose(policy.obs_normalizer.data_min.numpy(), kp.min(0), atol=1e-3)


def test_demos_fingerprint_identifies_the_data(demos):
    same = demos.subset(range(demos.n_episodes))
    assert demos_fingerprint(same) == demos_fingerprint(demos)
    changed = demos.subset(range(demos.n_episodes))
    changed.action[5, 0] += 1.0
    assert demos_fingerprint(changed) != demos_fingerprint(demos)
    assert demos_fingerprint(demos.subset(range(1, demos.n_episodes))) != demos_fingerprint(demos)


PART_II = sorted(name for name, obs in PUSHT_RECIPES if obs == "state")


@pytest.mark.parametrize("name", PART_II)
def test_part_ii_keypoints_recipes_learn_the_benchmarks_low_dim_observation(name, demos):
    """Each Part II policy has a keypoints recipe (chapter 10's comparison) with the same network as
    its state recipe in the full tier; its quick run reads 20 numbers per observation and lowers the
    training loss on the demonstrations."""
    obs_type, recipe = recipe_for(name, "keypoints")
    _, state_recipe = recipe_for(name, "state")
    assert obs_type == "keypoints" and recipe.config["obs_dim"] == 20
    assert recipe_for(name) == (obs_type, recipe)  # the benchmark's observation is the default
    same = {k: v for k, v in recipe.policy_config("full").items() if k not in ("obs_dim", "obs_type")}
    state_side = {k: state_recipe.policy_config("full").get(k) for k in same}
    if name == "ibc":  # the IBC paper's counter-examples and DFO, not the small CPU settings of Part II
        assert (same["n_negatives"], same["dfo_samples"], same["dfo_iterations"]) == (256, 16_384, 3)
        assert same["energy_actions"] == "executed"  # the Diffusion Policy paper's IBC: a_t only
        same = {k: v for k, v in same.items()
                if not k.startswith(("n_neg", "dfo", "hidden", "n_layers", "energy_actions"))}
        state_side = {k: state_side[k] for k in same}
    assert same == state_side
    policy, result = train_pusht_policy(name, tier="quick", steps=40, seed=0, device="cpu",
                                        demos=demos.subset(range(6)), progress=False, obs_type="keypoints")
    assert policy.obs_type == "keypoints" and policy.config.obs_dim == 20
    losses = np.asarray(result.losses)
    assert losses[-10:].mean() < losses[:10].mean()


def test_training_on_own_demonstrations_never_replaces_a_shipped_checkpoint(tmp_path, demos, monkeypatch):
    """`dplearn train --demos D.npz` without --out writes D-POLICY-OBS.pt beside the demonstrations,
    and the recorded command names the demonstrations (so it reproduces the run)."""
    own = tmp_path / "my_demos.npz"
    save_demos(own, demos.subset(range(3)))
    monkeypatch.chdir(tmp_path)  # a checkpoints/ folder here would be where a default --out lands
    assert main(["train", "--policy", "regression", "--budget", "quick", "--steps", "2", "--demos", str(own),
                 "--no-progress", "--device", "cpu"]) == 0
    assert not (tmp_path / "checkpoints").exists()
    written = tmp_path / "my_demos-regression-keypoints.pt"
    assert f"--demos {own}" in load_policy(written).meta["command"]
