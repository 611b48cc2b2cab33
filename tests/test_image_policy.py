"""Diffusion Policy on images (chapter 9): the frame cache, the training windows, the condition built by
hand, one encoder per camera or a shared one, checkpoints, resumed training, and ``dplearn train`` /
``dplearn eval`` end to end at the quick tier."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from dplearn.cli import main
from dplearn.data import Demos, SequenceDataset, demo_frames, load_pusht_demos, save_demos
from dplearn.data import frames as frames_module
from dplearn.envs.render import render_states
from dplearn.evaluation import evaluate
from dplearn.policies import load_policy, make_policy
from dplearn.policy_training import PUSHT_RECIPES, image_windows, recipe_for, train_pusht_policy

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """Rendered frames go to a fresh folder, not the user's cache."""
    monkeypatch.setenv("DPLEARN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def demos() -> Demos:
    return load_pusht_demos().subset([0, 1])


def tiny(obs_type: str, **kw):
    config = dict(obs_dim=2, obs_type=obs_type, obs_horizon=2, pred_horizon=8, action_horizon=4,
                  down_dims=(8, 16), step_embed_dim=8, encoder_width=4, num_keypoints=3, image_feature_dim=5,
                  sampler="ddim", inference_steps=3)
    config.update(kw)
    return make_policy("diffusion-cnn", config)


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------
def test_demo_frames_render_every_frame_once_and_come_back_from_the_cache(demos, cache, monkeypatch):
    for camera in ("top", "wrist"):
        frames = demo_frames(demos, camera)
        assert frames.shape == (demos.n_steps, 96, 96, 3) and frames.dtype == np.uint8
        picks = [0, demos.n_steps // 2, demos.n_steps - 1]
        np.testing.assert_array_equal(frames[picks], render_states(demos.state[picks], camera=camera))
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 2 and all(demos.fingerprint()[:20] in f for f in files)

    def refuse(*args, **kwargs):
        raise AssertionError("rendered again instead of reading the cache")

    monkeypatch.setattr(frames_module, "render_frames", refuse)
    np.testing.assert_array_equal(demo_frames(demos, "top")[picks], frames_module.np.load(
        frames_module.frames_cache_path(demos, "top"))[picks])
    other = demos.subset([1])  # other demonstrations: another key, so rendered (refused here)
    with pytest.raises(AssertionError, match="rendered again"):
        demo_frames(other, "top")


@pytest.mark.parametrize("obs_type", ["pixels", "two-cameras"])
def test_training_windows_index_the_same_images_as_the_dataset(demos, cache, obs_type):
    ds = SequenceDataset(demos, 2, 8, 4, obs_type=obs_type)
    win = image_windows(ds)
    assert set(win.frames) == ({"image"} if obs_type == "pixels" else {"image", "wrist_image"})
    assert win.obs_frames.shape == (len(ds), 2) and win.action.shape == (len(ds), 8, 2)
    for m in [0, 1, len(ds) // 2, len(ds) - 1]:  # the padded first and last windows included
        item = ds[m]
        for key, frames in win.frames.items():
            images = frames[win.obs_frames[m]].float() / 255  # (T_o, 3, H, W)
            torch.testing.assert_close(images, item["obs"][key], rtol=0, atol=1e-6)
        torch.testing.assert_close(win.agent_pos[m], torch.as_tensor(demos.state[ds.obs_frames[m], :2]))
        torch.testing.assert_close(win.action[m], item["action"])


# ---------------------------------------------------------------------------------------------
# the policy
# ---------------------------------------------------------------------------------------------
def test_condition_is_each_cameras_features_and_the_agent_position_per_step():
    torch.manual_seed(0)
    policy = tiny("two-cameras").eval()
    obs = {"image": torch.rand(3, 2, 3, 96, 96), "wrist_image": torch.rand(3, 2, 3, 96, 96),
           "agent_pos": torch.randn(3, 2, 2)}
    cond = policy.condition(obs)
    assert cond.shape == (3, policy.config.cond_dim) == (3, 2 * (5 + 5 + 2))
    by_hand = []
    for t in range(2):  # step by step, camera by camera, each image alone
        for b in range(3):
            top = policy.encoders["image"](obs["image"][b, t][None])[0]
            wrist = policy.encoders["wrist_image"](obs["wrist_image"][b, t][None])[0]
            by_hand.append(torch.cat([top, wrist, obs["agent_pos"][b, t]]))
    by_hand = torch.stack(by_hand).view(2, 3, -1).transpose(0, 1).reshape(3, -1)
    torch.testing.assert_close(cond, by_hand, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="missing"):
        policy.condition({"image": obs["image"], "agent_pos": obs["agent_pos"]})
    assert tiny("pixels").config.cond_dim == 2 * 5
    with pytest.raises(ValueError, match="obs_dim must be 2"):
        make_policy("diffusion-cnn", obs_type="pixels")


def test_one_encoder_per_camera_or_one_shared():
    own, shared = tiny("two-cameras"), tiny("two-cameras", shared_encoder=True)
    one = sum(p.numel() for p in own.encoders["image"].parameters())
    assert list(own.encoders) == ["image", "wrist_image"] and list(shared.encoders) == ["shared"]
    assert sum(p.numel() for p in own.encoders.parameters()) == 2 * one
    assert sum(p.numel() for p in shared.encoders.parameters()) == one
    # a shared encoder sees both cameras: the same picture in both gives the same features twice
    shared.eval()
    img = torch.rand(2, 2, 3, 96, 96)
    cond = shared.condition({"image": img, "wrist_image": img, "agent_pos": torch.zeros(2, 2, 2)}).view(2, 2, -1)
    torch.testing.assert_close(cond[..., :5], cond[..., 5:10])


def test_image_checkpoints_load_with_weights_only_and_act_the_same(tmp_path):
    torch.manual_seed(3)
    policy = tiny("pixels_agent_pos").eval()
    obs = {"image": np.random.default_rng(0).random((2, 2, 3, 96, 96), dtype=np.float32),
           "agent_pos": np.random.default_rng(1).uniform(0, 512, (2, 2, 2)).astype(np.float32)}
    path = policy.save(tmp_path / "p.pt")
    state = torch.load(path, weights_only=True)
    assert state["config"]["obs_type"] == "pixels_agent_pos"
    loaded = load_policy(path)
    a = policy.act(obs, torch.Generator().manual_seed(0))
    b = loaded.act(obs, torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("obs_type", ["pixels", "two-cameras"])
def test_full_tier_image_checkpoint_fits_in_25_mb_in_float16(tmp_path, obs_type):
    _, recipe = recipe_for("diffusion-cnn", obs_type)
    assert set(recipe.steps) == {"quick", "book", "full"}
    policy = make_policy("diffusion-cnn", recipe.policy_config("full"))
    assert policy.config.encoder_width == 32 and recipe.save_dtype == "float16"
    path = policy.save(tmp_path / "full.pt", dtype=torch.float16)
    n = sum(p.numel() for p in policy.parameters())
    assert path.stat().st_size <= 25e6
    assert abs(path.stat().st_size - 2 * n) < 0.05 * 2 * n  # two bytes a parameter, little else
    assert load_policy(path).config.to_dict() == policy.config.to_dict()


# ---------------------------------------------------------------------------------------------
# training, resuming, the command line
# ---------------------------------------------------------------------------------------------
def test_resumed_image_training_continues_exactly(demos, cache, tmp_path):
    kw = dict(tier="quick", steps=6, seed=1, device="cpu", demos=demos, progress=False, obs_type="two-cameras")
    straight, _ = train_pusht_policy("diffusion-cnn", **kw)
    state = tmp_path / "run.state"
    calls = []
    with pytest.raises(KeyboardInterrupt):
        train_pusht_policy("diffusion-cnn", checkpoint_path=state, stop=lambda: calls.append(1) or len(calls) >= 3,
                           **kw)
    resumed, result = train_pusht_policy("diffusion-cnn", checkpoint_path=state, **kw)
    assert result.step == 6
    for (k, v), w in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(v, w, rtol=0, atol=0, msg=k)


def test_cli_trains_and_evaluates_an_image_policy(demos, cache, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DPLEARN_THREADS", "1")
    demo_file = save_demos(tmp_path / "demos.npz", demos)
    out = tmp_path / "pixels.pt"
    assert main(["train", "--policy", "diffusion-cnn", "--obs", "pixels", "--budget", "quick", "--steps", "3",
                 "--demos", str(demo_file), "--out", str(out), "--no-progress"]) == 0
    policy = load_policy(out)
    assert policy.obs_type == "pixels" and policy.meta["train_steps"] == 3
    assert "--obs pixels" in policy.meta["command"]
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(out), "--episodes", "1", "--no-progress"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    score = float(re.search(r"score=([0-9.]+)", line).group(1))
    direct = evaluate(load_policy(out), n_episodes=1, seed=100_000, n_envs=1, progress=False)
    assert score == pytest.approx(round(direct.score, 3), abs=1e-9)
    shared = tmp_path / "shared.pt"
    assert main(["train", "--policy", "diffusion-cnn", "--obs", "two-cameras", "--budget", "quick", "--steps",
                 "2", "--demos", str(demo_file), "--out", str(shared), "--shared-encoder", "--no-progress"]) == 0
    assert load_policy(shared).config.shared_encoder and "--shared-encoder" in load_policy(shared).meta["command"]


def test_image_recipes_are_registered():
    for obs_type in ("pixels", "pixels_agent_pos", "two-cameras"):
        recipe = PUSHT_RECIPES[("diffusion-cnn", obs_type)]
        for tier in ("quick", "book", "full"):
            config = make_policy("diffusion-cnn", recipe.policy_config(tier)).config
            assert config.obs_type == obs_type and config.crop_size == 84 and config.num_keypoints == 32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_image_policy_trains_on_the_gpu_in_bf16_and_channels_last(demos, cache):
    policy, result = train_pusht_policy("diffusion-cnn", tier="quick", steps=3, device="cuda", demos=demos,
                                        progress=False, obs_type="two-cameras", amp="auto")
    assert np.isfinite(result.losses).all() and result.step == 3
    weight = result.model.encoders["image"].backbone.conv1.weight
    assert weight.is_cuda and weight.is_contiguous(memory_format=torch.channels_last)
    obs = {"image": np.random.default_rng(0).random((2, 2, 3, 96, 96), dtype=np.float32),
           "wrist_image": np.random.default_rng(1).random((2, 2, 3, 96, 96), dtype=np.float32),
           "agent_pos": np.full((2, 2, 2), 200.0, dtype=np.float32)}
    assert policy.act(obs).shape == (2, 8, 2)
