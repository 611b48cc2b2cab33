"""The toy around-the-obstacle task: geometry, demonstrations, windows and rollouts, and the
failure it exists to show (mode averaging runs into the obstacle, a mixture goes around)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dplearn.data import Demos, load_demos, save_demos
from dplearn.data.toy import ToyDemos, make_toy_demos
from dplearn.envs.toy import AroundObstacle, rollout, segment_hits_disc
from dplearn.policies import make_policy
from dplearn.policy_training import fit_policy
from dplearn.training import TrainConfig


def test_segment_hits_disc_matches_dense_sampling():
    rng = np.random.default_rng(0)
    p, q = rng.uniform(-1, 1, (500, 2)), rng.uniform(-1, 1, (500, 2))
    centre, r = np.array([0.1, -0.2]), 0.3
    u = np.linspace(0, 1, 4001)
    points = p[:, None] + u[None, :, None] * (q - p)[:, None]
    dist = np.linalg.norm(points - centre, axis=-1).min(axis=1)
    clear = np.abs(dist - r) > 1e-3  # skip near-tangent cases that sampling resolves poorly
    assert np.array_equal(segment_hits_disc(p, q, centre, r)[clear], (dist < r)[clear])


def test_step_clips_actions_and_detects_collisions_and_goal():
    task = AroundObstacle()
    s = np.array([[0.0, -1.0], [0.0, 0.95], [0.0, -0.45]])
    a = np.array([[3.0, 4.0], [0.0, 0.01], [0.0, 0.12]])
    nxt, hit, won = task.step(s, a)
    assert np.allclose(nxt[0], [0.0 + 0.12 * 0.6, -1.0 + 0.12 * 0.8])  # norm clipped to max_step
    assert list(hit) == [False, False, True] and list(won) == [False, True, False]


def test_demonstrations_go_around_on_both_sides_and_reach_the_goal():
    task = AroundObstacle()
    demos = make_toy_demos(300, seed=1, task=task)
    assert demos.state.shape == demos.action.shape and demos.episode_ends[-1] == len(demos.state)
    # a binomial(300, 1/2) count of left episodes lies within 4 standard deviations of 150
    assert abs(np.sum(demos.side < 0) - 150) < 4 * np.sqrt(300 / 4)
    for i in range(demos.n_episodes):
        states, actions = demos.episode(i)
        nxt, hit, won = task.step(states, actions)
        assert not hit.any() and won[-1] and not won[:-1].any()
        assert np.allclose(nxt[:-1], states[1:], atol=1e-6)  # the actions replay the states
        # the episode passes the obstacle on its side
        mid = states[np.argmin(np.abs(states[:, 1]))]
        assert np.sign(mid[0]) == demos.side[i]
    assert np.all(make_toy_demos(20, seed=2, p_left=1.0).side == -1)
    with pytest.raises(ValueError, match="p_left"):
        make_toy_demos(5, seed=0, p_left=1.5)


@pytest.mark.parametrize("t_o, t_p, t_a", [(1, 1, 1), (2, 4, 2), (3, 8, 4)])
def test_windows_are_cut_like_the_sequence_dataset(t_o, t_p, t_a):
    """Each window, built here episode by episode from the rule (start t from -(T_o - 1) to
    L - T_p + T_a - 1, frames clip(t + j, 0, L - 1)), in episode order."""
    demos = make_toy_demos(12, seed=3)
    obs, act = demos.windows(t_o, t_p, t_a)
    want_obs, want_act = [], []
    for states, actions in demos.episodes():
        length = len(states)
        for t in range(-(t_o - 1), length - t_p + t_a):
            frames = [min(max(t + j, 0), length - 1) for j in range(t_p)]
            want_obs.append(states[frames[:t_o]])
            want_act.append(actions[frames])
    assert np.array_equal(obs, np.stack(want_obs)) and np.array_equal(act, np.stack(want_act))
    # the first window of an episode repeats its first state T_o times
    assert np.all(obs[0] == demos.state[0])


def test_toy_demos_are_demos_that_survive_a_round_trip(tmp_path):
    demos = make_toy_demos(6, seed=5)
    assert isinstance(demos, Demos) and demos.state.shape[1] == 2
    back = ToyDemos(**vars(load_demos(save_demos(tmp_path / "toy.npz", demos))))
    assert np.array_equal(back.side, demos.side) and np.array_equal(back.state, demos.state)
    with pytest.raises(ValueError, match="side"):
        ToyDemos(demos.state, demos.action, demos.episode_ends, {"side": [1, -1]})


def test_rollout_runs_episodes_side_by_side():
    task = AroundObstacle()
    straight = rollout(lambda h: np.tile([0.0, 0.1], (len(h), 1)), 40, seed=0, task=task)
    assert straight.collision_rate == 1.0 and straight.success_rate == 0.0
    seen = []

    def around(h):  # an oracle that goes right around the obstacle, two actions at a time
        seen.append(h.copy())
        x, y = h[:, -1, 0], h[:, -1, 1]
        target = np.where((y < 0.2)[:, None], np.stack([np.full_like(x, 0.6), np.clip(y + 0.5, -1, 0.3)], 1),
                          np.array([[0.0, 1.0]]))
        return np.repeat((target - h[:, -1])[:, None], 2, axis=1)

    out = rollout(around, 40, seed=0, obs_horizon=3, task=task)
    assert out.success_rate == 1.0 and out.collision_rate == 0.0
    assert np.all(out.side() == 1) and np.all(out.switches() == 0)
    first = seen[0]  # the history starts as the first observation repeated
    assert first.shape == (40, 3, 2) and np.allclose(first, first[:, :1])
    assert np.allclose(first[:, 0], out.paths[:, 0])
    for i in range(40):  # paths end where the episode ended
        n = out.steps[i]
        assert np.isfinite(out.paths[i, :n + 1]).all() and np.isnan(out.paths[i, n + 1:]).all()


def test_mode_averaging_hits_the_obstacle_and_a_mixture_goes_around():
    """The chapter's headline, small: regression collides far more often than a mixture (MDN)."""
    torch.manual_seed(0)
    demos = make_toy_demos(200, seed=0)
    data = demos.windows(1, 1)
    cfg = TrainConfig(steps=1000, batch_size=128, lr=3e-3, warmup_steps=50, progress=False)
    rates = {}
    for name, extra in (("regression", {}), ("mixture", {"n_components": 5})):
        policy = make_policy(name, obs_dim=2, obs_horizon=1, pred_horizon=1, hidden=64, n_layers=2, **extra)
        trained, _ = fit_policy(policy, data, cfg)
        g = torch.Generator().manual_seed(0)
        rates[name] = rollout(lambda h, p=trained, g=g: p.act(h, g), 200, seed=1).collision_rate
    assert rates["regression"] > 0.5 and rates["mixture"] < 0.25, rates


def test_demonstrations_as_rollouts_replay_their_states_and_never_switch_sides():
    demos = make_toy_demos(30, seed=5)
    runs = demos.as_rollouts()
    for i in range(demos.n_episodes):
        states, actions = demos.episode(i)
        assert np.allclose(runs.paths[i, :len(states)], states)
        assert np.allclose(runs.paths[i, len(states)], states[-1] + actions[-1])
    assert np.array_equal(runs.side(), demos.side)
    assert runs.success_rate == 1.0 and runs.collision_rate == 0.0
    assert np.all(runs.switches() == 0)
