"""Teleoperation logic: recorded episodes follow the demo convention and replay exactly."""

from __future__ import annotations

import numpy as np
import pytest

from dplearn.data import load_demos
from dplearn.envs import PushTEnv
from dplearn.teleop import DIRECTIONS, TeleopSession, teleop_widget


def drive(session, moves):
    for dx, dy in moves:
        session.move(dx, dy, step_px=15)


def test_recorded_steps_replay_in_a_fresh_env():
    s = TeleopSession(seed=11)
    drive(s, [(1, 0)] * 4 + [(0, 1)] * 3 + [(0, 0)] * 2)
    states, actions = np.stack(s.states), np.stack(s.actions)
    assert states.shape == (9, 5) and actions.shape == (9, 2)
    # independent replay: the same seed and actions in a new env observe the same states
    env = PushTEnv()
    obs, _ = env.reset(seed=11)
    for state, action in zip(states, actions, strict=True):
        np.testing.assert_allclose(state, obs, atol=1e-3)  # state[i] observed before action[i]
        obs, *_ = env.step(action)
    np.testing.assert_allclose(s.state, obs, atol=1e-3)
    # the target moved by 15 px per press from the agent's start
    np.testing.assert_allclose(actions[3], states[0][:2] + [60, 0], atol=1e-3)


def test_keep_discard_and_save(tmp_path):
    s = TeleopSession(seed=0)
    drive(s, [(1, 1)] * 3)
    assert s.keep()
    drive(s, [(-1, 0)] * 5)
    s.discard()
    drive(s, [(0, -1)] * 2)
    assert s.keep()
    assert not s.keep()  # nothing recorded in the fresh episode
    demos = s.to_demos()
    assert demos.n_episodes == 2 and demos.episode_lengths.tolist() == [3, 2]
    assert demos.meta["seeds"] == [0, 2]
    loaded = load_demos(s.save(tmp_path / "mine.npz"))
    np.testing.assert_array_equal(loaded.state, demos.state)


def test_time_limit_and_bad_targets():
    s = TeleopSession(seed=1, max_steps=3)
    drive(s, [(0, 0)] * 3)
    assert s.done
    with pytest.raises(ValueError, match="episode is over"):
        s.step([100, 100])
    s.new_episode()
    with pytest.raises(ValueError, match="target"):
        s.step([1.0, np.nan])
    s.step([900.0, -5.0])
    np.testing.assert_array_equal(s.actions[-1], [512.0, 0.0])  # clipped into the workspace
    with pytest.raises(ValueError, match="no episode kept"):
        TeleopSession().to_demos()


def test_up_on_screen_is_minus_y():
    # images put y down the rows, so the "↑" button must decrease y
    assert DIRECTIONS["↑"] == (0, -1) and DIRECTIONS["→"] == (1, 0)
    s = TeleopSession(seed=2)
    frame = s.frame(size=64)
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8


def test_widget_buttons_drive_the_session():
    pytest.importorskip("ipywidgets")
    panel = teleop_widget(TeleopSession(seed=3), size=64)
    s = panel.session
    grid = panel.children[1].children[0]
    right = next(b for b in grid.children if b.description == "→")
    y0 = s.target[1]
    right.click()
    right.click()
    assert s.steps == 2 and s.target[1] == y0
    keep = panel.children[1].children[2].children[0]
    keep.click()
    assert len(s.kept) == 1
