"""dplearn's Push-T against recorded gym-pusht rollouts: same starts, same trajectories.

``tests/data/gym_pusht_reference.npz`` was written by ``benchmarks/record_gym_pusht_reference.py``
inside a virtual environment with Hugging Face's gym-pusht 0.1.8 (pymunk 6); these tests need
neither. They check that

- ``PushTEnv().reset(seed=s)`` is the benchmark's start for the paper's 50 test seeds, as gym-pusht's
  physics places it (legacy ``RandomState`` draw, angle set before position, one settling step);
- replaying each recorded action sequence open-loop from ``reset(seed=s)`` gives gym-pusht's
  states, rewards, coverage and contact counts, step for step, over 20 contact-rich 300-step
  rollouts;
- what gym-pusht's own ``reset(seed=s)`` does (gymnasium's ``np_random``, position before angle),
  which is not the benchmark's start, so that nobody mistakes one for the other.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from dplearn.envs import PushTEnv, benchmark_start
from dplearn.envs.geometry import T_VERTICES

DATA = Path(__file__).parent / "data" / "gym_pusht_reference.npz"
STATE_ATOL = 1e-6  # px and rad; the recorded rollouts replay bit for bit today
REWARD_ATOL = 1e-9  # our exact polygon clipping against gym-pusht's shapely
COG = np.array([0.0, 45.0])  # the block's centre of gravity, body frame


@pytest.fixture(scope="module")
def ref() -> dict:
    with np.load(DATA) as f:
        return {k: f[k] for k in f.files}


def physics_state(env: PushTEnv) -> np.ndarray:
    """Agent x, y, block x, y and the block's unwrapped angle, read from the bodies."""
    return np.array(
        [*env.agent_body.position, *env.block_body.position, env.block_body.angle],
        dtype=np.float64,
    )


def test_reference_file_is_small_and_says_where_it_came_from(ref):
    assert DATA.stat().st_size < 1_000_000
    meta = json.loads(str(ref["meta"]))
    assert meta["gym_pusht"] == "0.1.8"
    assert int(meta["pymunk"].split(".")[0]) < 7  # the reference ran on its own pymunk
    assert meta["command"].startswith("python benchmarks/record_gym_pusht_reference.py")
    np.testing.assert_array_equal(ref["seeds_test"], np.arange(100000, 100050))
    n = len(ref["seeds"])
    assert n == 20 and len(set(ref["seeds"].tolist())) == n
    assert set(range(100000, 100010)) <= set(ref["seeds"].tolist())
    assert ref["actions"].shape == (n, 300, 2) and ref["states"].shape == (n, 301, 5)
    assert ref["states"].dtype == np.float64 and ref["reward"].dtype == np.float64


def test_seeded_resets_are_the_recorded_benchmark_starts(ref):
    env = PushTEnv()
    for k, seed in enumerate(ref["seeds_test"].tolist()):
        # the legacy RandomState draw, made by the reference's NumPy
        np.testing.assert_array_equal(benchmark_start(seed), ref["benchmark_starts"][k])
        obs, _ = env.reset(seed=seed)
        want = ref["starts"][k]  # placed by gym-pusht's physics, after the settling step
        np.testing.assert_allclose(physics_state(env), want, rtol=0, atol=STATE_ATOL)
        np.testing.assert_allclose(obs[:4], want[:4], rtol=0, atol=STATE_ATOL)
        assert math.isclose(obs[4], want[4] % (2 * np.pi), abs_tol=STATE_ATOL)
    # the settling step leaves these starts where they were drawn (angle before position)
    np.testing.assert_allclose(ref["starts"], ref["benchmark_starts"], rtol=0, atol=1e-9)


def test_gym_pushts_own_seeded_reset_is_not_the_benchmarks_start(ref):
    # gym-pusht 0.1.8 draws from gymnasium's np_random (what our start="uniform" draws) and sets
    # the block's position before its angle, which turns the block about its centre of gravity.
    draws, obs, pose = ref["gym_reset_draws"], ref["gym_reset_obs"], ref["gym_reset_block_pose"]
    np.testing.assert_array_equal(obs[:, :2], draws[:, :2])
    np.testing.assert_allclose(pose[:, 2], draws[:, 4], rtol=0, atol=1e-12)
    c, s = np.cos(draws[:, 4]), np.sin(draws[:, 4])
    turned_cog = np.stack([c * COG[0] - s * COG[1], s * COG[0] + c * COG[1]], axis=1)
    np.testing.assert_allclose(pose[:, :2], draws[:, 2:4] + COG - turned_cog, rtol=0, atol=1e-9)
    assert not np.allclose(draws, ref["benchmark_starts"])

    env = PushTEnv(start="uniform")
    for k, seed in enumerate(ref["seeds_test"].tolist()):
        env.reset(seed=seed)
        np.testing.assert_allclose(physics_state(env), draws[k], rtol=0, atol=1e-9)


@pytest.mark.parametrize("k", range(20))
def test_replayed_rollout_matches_gym_pusht(ref, k):
    seed = int(ref["seeds"][k])
    env = PushTEnv()
    obs, _ = env.reset(seed=seed)
    states, obs_angle, rewards, cover, contacts = [physics_state(env)], [obs[4]], [], [], []
    for action in ref["actions"][k]:
        obs, reward, _, _, info = env.step(action)  # open loop: termination is ignored
        states.append(physics_state(env))
        obs_angle.append(obs[4])
        rewards.append(reward)
        cover.append(info["coverage"])
        contacts.append(info["n_contacts"])

    states = np.array(states)
    err = np.abs(states - ref["states"][k]).max(axis=1)
    first = int(np.argmax(err > STATE_ATOL))
    assert err.max() <= STATE_ATOL, (
        f"seed {seed}: error {err.max():.3g} first above tolerance at step {first}"
    )
    np.testing.assert_allclose(obs_angle, ref["obs_angle"][k], rtol=0, atol=STATE_ATOL)
    np.testing.assert_allclose(rewards, ref["reward"][k], rtol=0, atol=REWARD_ATOL)
    np.testing.assert_allclose(cover, ref["coverage"][k], rtol=0, atol=REWARD_ATOL)
    # contact points per physics step, rounded up: Diffusion Policy's n_contacts
    np.testing.assert_array_equal(contacts, np.ceil(ref["contact_points"][k] / 10).astype(int))

    # The check is about contact-rich rollouts: the pusher touches the block in most steps, with
    # deep overlaps, and the block travels and turns.
    touching = np.array(contacts) > 0
    assert touching.mean() > 0.9
    assert ref["contact_points"][k].max() >= 30
    angle = states[:, 4]
    cog = states[:, 2:4] + np.stack([-COG[1] * np.sin(angle), COG[1] * np.cos(angle)], axis=1)
    travelled = np.hypot(*np.diff(cog, axis=0).T).sum()
    turned = np.abs(np.diff(angle)).sum()
    assert travelled > 100.0 and turned > math.radians(40)


def test_rollouts_press_the_block_against_the_walls_too(ref):
    # Block-wall contacts: a corner of the T reaches a wall's inner face (x or y = 7 or 505),
    # and the pusher squeezes it past the face, in most rollouts.
    corners = T_VERTICES.reshape(-1, 2)
    x, y, angle = (ref["states"][:, :, i, None] for i in (2, 3, 4))
    wx = np.cos(angle) * corners[:, 0] - np.sin(angle) * corners[:, 1] + x
    wy = np.sin(angle) * corners[:, 0] + np.cos(angle) * corners[:, 1] + y
    depth = np.maximum.reduce([7 - wx.min(-1), wx.max(-1) - 505, 7 - wy.min(-1), wy.max(-1) - 505])
    assert ((depth > 0).sum(axis=1) >= 10).sum() >= 15
    assert depth.max() > 30
