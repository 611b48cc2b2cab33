"""Expert demonstrations: the shipped file, exact replay, parallel collection and the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from dplearn.cli import main
from dplearn.collection import EXPERT_SEED_OFFSET, collect_demos, start_state
from dplearn.data import load_demos, load_pusht_demos
from dplearn.data.demos import shipped_demos_path
from dplearn.envs import PushTEnv, coverage


def _replay(states: np.ndarray, actions: np.ndarray):
    """Reset to states[0], apply the actions; the observations before each action and the infos."""
    env = PushTEnv()
    obs, _ = env.reset(options={"reset_to_state": states[0].astype(np.float64)})
    seen, infos = [], []
    for action in actions:
        seen.append(obs)
        obs, _, terminated, _, info = env.step(action.astype(np.float64))
        infos.append((terminated, info))
    return np.array(seen), infos


def _assert_replays(states: np.ndarray, actions: np.ndarray) -> None:
    seen, infos = _replay(states, actions)
    np.testing.assert_array_equal(seen.astype(np.float32), states)
    # success exactly at the last action, not before; checked with the geometry's coverage
    assert not any(t for t, _ in infos[:-1])
    terminated, info = infos[-1]
    assert terminated and info["is_success"]
    assert coverage(info["block_pose"]) > 0.95


# ------------------------------------------------------------------------- the shipped file --
@pytest.fixture(scope="module")
def shipped():
    return load_pusht_demos()


def test_shipped_file_is_small_and_large_enough(shipped):
    assert shipped_demos_path().stat().st_size < 10 * 2**20
    assert shipped.n_episodes >= 200
    lengths = np.diff(np.r_[0, shipped.episode_ends])
    assert lengths.max() <= 300 and lengths.min() >= 1


def test_shipped_meta_records_how_it_was_made(shipped):
    m = shipped.meta
    assert m["command"].startswith("dplearn collect ")
    assert m["expert"]["class"] == "dplearn.experts.PushTExpert"
    assert len(m["seeds"]) == shipped.n_episodes == len(set(m["seeds"]))
    assert m["attempts"] == shipped.n_episodes + len(m["failed_seeds"])
    assert not set(m["seeds"]) & set(m["failed_seeds"])
    assert m["env"]["max_episode_steps"] == 300 and m["env"]["success_threshold"] == 0.95
    lengths = np.diff(np.r_[0, shipped.episode_ends])
    assert m["episode_length"]["mean"] == pytest.approx(lengths.mean())


@pytest.mark.parametrize("which", [0, 1, 57, 123, -1])
def test_shipped_episodes_replay_exactly_and_succeed(shipped, which):
    states, actions = shipped.episode(which % shipped.n_episodes)
    _assert_replays(states, actions)


def test_shipped_episodes_start_from_their_seeds(shipped):
    """Episode i begins where env.reset(seed=meta['seeds'][i]) begins (to float32 precision)."""
    env = PushTEnv()
    for i in (0, 10, shipped.n_episodes - 1):
        obs, _ = env.reset(seed=shipped.meta["seeds"][i])
        np.testing.assert_allclose(shipped.episode(i)[0][0], obs, atol=1e-3)


# -------------------------------------------------------------------------------- collection --
def test_start_state_is_float32_exact_and_settled():
    s = start_state(7)
    np.testing.assert_array_equal(s, s.astype(np.float32).astype(np.float64))
    obs, _ = PushTEnv().reset(options={"reset_to_state": s})
    np.testing.assert_array_equal(np.asarray(obs, dtype=np.float32), s.astype(np.float32))


def test_collect_demos_keeps_successes_in_seed_order_and_they_replay():
    demos = collect_demos(3, seed=40, workers=1, progress=False)
    assert demos.n_episodes == 3
    seeds = demos.meta["seeds"]
    assert seeds == sorted(seeds) and seeds[0] >= 40
    assert demos.meta["expert"]["seed_rule"].endswith(str(EXPERT_SEED_OFFSET))
    for states, actions in demos.episodes():
        _assert_replays(states, actions)


def test_parallel_collection_equals_serial_collection():
    serial = collect_demos(2, seed=300, workers=1, progress=False)
    parallel = collect_demos(2, seed=300, workers=2, progress=False)
    np.testing.assert_array_equal(serial.state, parallel.state)
    np.testing.assert_array_equal(serial.action, parallel.action)
    np.testing.assert_array_equal(serial.episode_ends, parallel.episode_ends)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"n_episodes": 0}, "n_episodes"),
        ({"n_episodes": 2, "seed": -1}, "seed"),
        ({"n_episodes": 2, "workers": 0}, "workers"),
        ({"n_episodes": 2, "max_attempts": 1}, "max_attempts"),
    ],
)
def test_collect_demos_refuses_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        collect_demos(progress=False, **kwargs)


# ----------------------------------------------------------------------------------- the CLI --
def test_cli_collect_writes_a_loadable_file(tmp_path):
    out = tmp_path / "demos.npz"
    status = main(["collect", "--episodes", "2", "--seed", "11", "--workers", "1",
                   "--out", str(out), "--no-progress"])
    assert status == 0
    demos = load_demos(out)
    assert demos.n_episodes == 2
    assert demos.meta["command"].startswith("dplearn collect --episodes 2 --seed 11")
    for states, actions in demos.episodes():
        _assert_replays(states, actions)


@pytest.mark.parametrize(
    "argv",
    [
        ["collect", "--episodes", "0"],
        ["collect", "--seed", "-3"],
        ["collect", "--workers", "two"],
        ["collect", "--out", "demos.txt", "--episodes", "1", "--workers", "1"],
    ],
)
def test_cli_refuses_bad_arguments(argv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as err:
        main(argv)
    assert err.value.code != 0
