"""Velocity (delta) control, chapter 10's "position vs velocity control" ablation: the environment's
``control="velocity"``, :func:`dplearn.data.velocity_actions`, training and evaluating a velocity policy.

Every expectation is computed independently of the code under test: a position-control rollout of the
scripted expert, NumPy arithmetic on the shipped demonstrations, the benchmark's start states, or a
hand-written rollout loop.
"""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest
import torch

import dplearn.envs  # noqa: F401  (registers dplearn/PushT-v0)
from dplearn.cli import main
from dplearn.data import load_pusht_demos, save_demos, velocity_actions
from dplearn.envs import PUSHT_ID, WORKSPACE_SIZE, PushTEnv, benchmark_start
from dplearn.envs.parallel import EnvWorkers
from dplearn.evaluation import evaluate
from dplearn.experts import PushTExpert
from dplearn.policies import PolicyConfig, load_policy, make_policy
from dplearn.policy_protocol import RecedingHorizon
from dplearn.policy_training import demos_for_control, train_pusht_policy

SEEDS = (100_000, 100_001, 100_002)
STEPS = 100
# p + (a − p) can differ from a by an ulp of 512 (~1e-13 px); in these rollouts the replay is in fact
# bit-for-bit identical, and 1e-9 px leaves room for rounding while catching any real difference
REPLAY_TOL = 1e-9


@pytest.fixture(scope="module")
def demos():
    return load_pusht_demos()


def _expert_rollout(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """States (STEPS + 1, 5) and target actions (STEPS, 2) of the expert under position control."""
    env = PushTEnv(obs_type="state")
    obs, _ = env.reset(seed=seed)
    expert = PushTExpert(seed=0)
    expert.reset(seed)
    states, actions = [obs], []
    for _ in range(STEPS):
        action = np.asarray(expert(obs), dtype=np.float64)
        obs, *_ = env.step(action)
        states.append(obs)
        actions.append(action)
    return np.array(states), np.array(actions)


# ------------------------------------------------------------------------------ environment --
@pytest.mark.parametrize("seed", SEEDS)
def test_velocity_replay_of_position_rollout_gives_the_same_states(seed):
    states, targets = _expert_rollout(seed)
    assert np.abs(states[-1, :2] - states[0, :2]).max() > 20.0  # the pusher really moved
    # the displacement from the observed pusher position to each target, in a velocity-control env
    # built through gymnasium's registry (the way evaluations may build it)
    env = gym.make(PUSHT_ID, obs_type="state", control="velocity")
    obs, _ = env.reset(seed=seed)
    replay = [obs]
    for t in range(STEPS):
        obs, *_ = env.step(targets[t] - replay[t][:2])
        replay.append(obs)
    np.testing.assert_allclose(np.array(replay), states, rtol=0, atol=REPLAY_TOL)
    # and the two modes do differ: the targets themselves, read as displacements, go elsewhere
    env.reset(seed=seed)
    for t in range(5):
        obs, *_ = env.step(targets[t])
    assert np.abs(obs[:2] - states[5, :2]).max() > 10.0


def test_action_space_is_a_symmetric_box_for_displacements():
    position, velocity = PushTEnv(), PushTEnv(control="velocity")
    assert position.control == "position" and velocity.control == "velocity"
    assert np.all(position.action_space.low == 0.0) and np.all(position.action_space.high == WORKSPACE_SIZE)
    assert np.all(velocity.action_space.low == -WORKSPACE_SIZE) and np.all(velocity.action_space.high == WORKSPACE_SIZE)


def test_bad_control_is_refused_by_name():
    with pytest.raises(ValueError, match=r"control must be one of 'position', 'velocity'; got 'speed'"):
        PushTEnv(control="speed")
    with pytest.raises(ValueError, match=r"PolicyConfig.control must be one of 'position', 'velocity'"):
        PolicyConfig(control="speed")
    with pytest.raises(ValueError, match=r"control must be one of 'position', 'velocity'; got 'speed'"):
        train_pusht_policy("regression", tier="quick", steps=1, control="speed")
    with pytest.raises(ValueError, match=r"control must be one of"):
        evaluate(lambda obs: np.zeros(2), n_episodes=1, max_steps=1, progress=False, control="speed")
    env = PushTEnv(control="velocity")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"displacement"):
        env.step([1.0, 2.0, 3.0])


def test_cli_refuses_an_unknown_control(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--policy", "regression", "--control", "speed"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--control" in err and "invalid choice: 'speed'" in err and "'velocity'" in err


# ------------------------------------------------------------------------------------- data --
def test_velocity_actions_subtract_the_observed_pusher_position(demos):
    before = demos.action.copy()
    vel = velocity_actions(demos)
    expected = (demos.action.astype(np.float64) - demos.state[:, :2].astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(vel.action, expected)
    np.testing.assert_array_equal(vel.state, demos.state)
    np.testing.assert_array_equal(vel.episode_ends, demos.episode_ends)
    assert vel.meta["control"] == "velocity" and "control" not in demos.meta
    np.testing.assert_array_equal(demos.action, before)  # the input is left alone
    assert vel.fingerprint() != demos.fingerprint()
    with pytest.raises(ValueError, match="already hold velocity actions"):
        velocity_actions(vel)
    assert demos_for_control(vel, "velocity") is vel and demos_for_control(demos, "position") is demos
    with pytest.raises(ValueError, match=r"hold velocity actions .* but the policy's control is 'position'"):
        demos_for_control(vel, "position")


# --------------------------------------------------------------------------------- training --
def test_quick_velocity_training_fits_the_displacements_and_saves_control(tmp_path, demos):
    small = demos.subset(range(8))
    delta = small.action.astype(np.float64) - small.state[:, :2].astype(np.float64)
    state = tmp_path / "run.state"
    policy, _ = train_pusht_policy("regression", tier="quick", steps=2, obs_type="keypoints", demos=small,
                                   progress=False, device="cpu", control="velocity", checkpoint_path=state)
    path = policy.save(tmp_path / "v.pt", meta=policy.meta)
    loaded = load_policy(path)
    assert loaded.control == "velocity" and loaded.config.control == "velocity" and loaded.meta["control"] == "velocity"
    norm = loaded.action_normalizer
    np.testing.assert_allclose(norm.data_min.numpy(), delta.min(0), rtol=0, atol=1e-4)
    np.testing.assert_allclose(norm.data_max.numpy(), delta.max(0), rtol=0, atol=1e-4)
    assert norm.data_min.numpy().min() < 0.0  # displacements, not positions in [0, 512]
    # the training state of a velocity run does not resume as a position run
    with pytest.raises(ValueError, match="config|windows"):
        train_pusht_policy("regression", tier="quick", steps=2, obs_type="keypoints", demos=small,
                           progress=False, device="cpu", control="position", checkpoint_path=state)


def test_checkpoints_without_control_load_as_position(tmp_path):
    policy = make_policy("regression", hidden=8, n_layers=1)
    state = policy.checkpoint()
    del state["config"]["control"]  # a file written before chapter 10
    assert type(policy).from_checkpoint(state).control == "position"
    torch.save(state, tmp_path / "old.pt")
    assert load_policy(tmp_path / "old.pt").control == "position"


def _manual_rollout(policy, seed: int, control: str, max_steps: int = 300) -> tuple[np.ndarray, float]:
    """States (steps + 1, 5) and score of one episode of a keypoint policy rolled out by hand in a
    ``control`` env (history padded with the first observation, as the benchmark does)."""
    env = PushTEnv(obs_type="keypoints", control=control)
    obs, _ = env.reset(seed=seed)
    history = [obs] * policy.config.obs_horizon
    states, best = [env.get_state()], 0.0
    while len(states) <= max_steps:
        window = np.array(history[-policy.config.obs_horizon:], dtype=np.float32)
        for action in policy.act(window):
            obs, reward, terminated, _, _ = env.step(action)
            history.append(obs)
            states.append(env.get_state())
            best = max(best, reward)
            if terminated or len(states) > max_steps:
                return np.array(states), best
    return np.array(states), best


def test_train_and_eval_commands_with_velocity_control(tmp_path, demos, capsys, monkeypatch):
    small = tmp_path / "small.npz"
    save_demos(small, demos.subset(range(4)))
    assert main(["train", "--policy", "regression", "--obs", "keypoints", "--budget", "quick", "--steps", "2",
                 "--demos", str(small), "--control", "velocity", "--no-progress", "--device", "cpu"]) == 0
    out = tmp_path / "small-regression-keypoints-velocity.pt"  # the default name, beside the demos
    policy = load_policy(out)
    assert policy.control == "velocity" and "--control velocity" in policy.meta["command"]
    import dplearn.evaluation

    results = []

    def spy(*args, **kwargs):
        results.append(evaluate(*args, **kwargs))
        return results[-1]

    monkeypatch.setattr(dplearn.evaluation, "evaluate", spy)
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(out), "--episodes", "2", "--workers", "1", "--no-progress"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "control=velocity" in last
    printed = float(re.search(r"score=([0-9.]+)", last).group(1))
    scores = []
    for i, episode in enumerate(results[0].episodes):
        states, score = _manual_rollout(policy, 100_000 + i, "velocity")
        np.testing.assert_allclose(episode.states, states, rtol=0, atol=1e-3)  # stored as float32
        scores.append(score)
        # the check tells the modes apart: the same policy under position control goes elsewhere
        elsewhere, _ = _manual_rollout(policy, 100_000 + i, "position", max_steps=20)
        assert np.abs(elsewhere[:, :2] - states[:21, :2]).max() > 10.0
    assert printed == pytest.approx(np.mean(scores), abs=5e-4)


# ------------------------------------------------------------------------------- evaluation --
class _Still:
    """A chunk policy that always commands the displacement (0, 0)."""

    obs_horizon = 1
    batch_independent = True
    control = "velocity"

    def __call__(self, obs):
        return np.zeros((len(obs), 1, 2))


def _zero_displacement(obs):
    return np.zeros(2)


def _assert_pusher_stayed(result, seed: int) -> None:
    for i, ep in enumerate(result.episodes):
        start = benchmark_start(seed + i)[:2]  # the benchmark's integer start: exact in float32
        assert ep.steps > 0
        np.testing.assert_array_equal(ep.states[:, :2], np.broadcast_to(start, ep.states[:, :2].shape))


def test_evaluate_builds_velocity_envs_for_a_velocity_policy():
    result = evaluate(_Still(), n_episodes=2, seed=7, max_steps=6, progress=False, record=1, record_size=32)
    _assert_pusher_stayed(result, 7)
    # the same zero action read as a target position drives the pusher towards the corner (0, 0)
    moved = evaluate(_Still(), n_episodes=2, seed=7, max_steps=6, progress=False, control="position")
    for i, ep in enumerate(moved.episodes):
        start = benchmark_start(7 + i)[:2]
        assert np.linalg.norm(ep.states[-1, :2]) < np.linalg.norm(start) - 10.0
    with pytest.raises(ValueError, match="contradicts env_kwargs"):
        evaluate(_Still(), n_episodes=1, max_steps=1, progress=False, control="velocity",
                 env_kwargs={"control": "position"})


def test_a_trained_velocity_policy_and_its_wrappers_evaluate_under_velocity_control():
    policy = make_policy("regression", obs_dim=20, obs_type="keypoints", hidden=8, n_layers=1, control="velocity")
    with torch.no_grad():
        for p in policy.parameters():
            p.zero_()  # predicts 0 in normalised units = displacement 0 with the identity normaliser
    assert np.all(policy.act(np.zeros((2, 20), dtype=np.float32)) == 0.0)
    for candidate in (policy, RecedingHorizon(policy)):
        _assert_pusher_stayed(evaluate(candidate, n_episodes=2, seed=3, max_steps=4, progress=False), 3)


def test_worker_processes_build_velocity_envs_too():
    with EnvWorkers(2) as pool:
        _assert_pusher_stayed(evaluate(_Still(), n_episodes=2, seed=11, max_steps=4, progress=False,
                                       workers=pool), 11)
        # a per-step callable runs whole episodes in the workers; control given explicitly
        _assert_pusher_stayed(evaluate(_zero_displacement, n_episodes=2, seed=11, max_steps=4, progress=False,
                                       workers=pool, control="velocity"), 11)
