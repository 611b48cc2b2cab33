"""The evaluation protocol: scores from reward traces, the rollout loop (termination, time limit,
action chunks, observation histories), seeding, and real Push-T rollouts."""

from __future__ import annotations

import numpy as np
import pytest

from dplearn.evaluation import EvalResult, ExpertPolicy, PerStepPolicy, RandomPolicy, evaluate


# ---- scores from hand-made traces -----------------------------------------------------------
def test_score_and_success_from_traces_by_hand():
    coverages = [[0.1, 0.5, 0.3], [0.2, 0.97], [0.95, 0.2], [0.0]]
    rewards = [[min(c / 0.95, 1.0) for c in trace] for trace in coverages]
    r = EvalResult.from_traces(rewards, coverages, seeds=[10, 11, 12, 13])
    # per-episode max rewards: 0.5/0.95, 1, 1 (coverage exactly 0.95 gives reward 1 but no success), 0
    assert r.score == pytest.approx((0.5 / 0.95 + 1 + 1 + 0) / 4)
    assert r.success_rate == pytest.approx(1 / 4)
    assert r.successes.tolist() == [False, True, False, False]
    assert r.steps.tolist() == [3, 2, 2, 1]
    assert r.seeds.tolist() == [10, 11, 12, 13]
    assert r.max_coverages.tolist() == [0.5, 0.97, 0.95, 0.0]


def test_from_traces_rejects_mismatched_input():
    with pytest.raises(ValueError, match="same number of episodes"):
        EvalResult.from_traces([[0.1]], [[0.1], [0.2]])
    with pytest.raises(ValueError, match="equal length"):
        EvalResult.from_traces([[0.1, 0.2]], [[0.1]])


# ---- the rollout loop on a scripted environment ---------------------------------------------
TRACES = {  # coverage after each step; the last value repeats forever
    0: [0.1, 0.3, 0.2],
    1: [0.5, 0.96, 0.0],
    2: [0.94],
}


class ScriptedEnv:
    """A stand-in for PushTEnv whose coverage follows TRACES[seed]; obs = (t, seed, last x, last y, 0)."""

    def __init__(self, obs_type="state"):
        self.unwrapped = self

    def reset(self, seed=None, options=None):
        self.seed, self.t, self.last = seed, 0, (0.0, 0.0)
        return self._obs(), {"coverage": 0.0}

    def _obs(self):
        return np.array([self.t, self.seed, *self.last, 0.0])

    def step(self, action):
        self.t += 1
        self.last = tuple(action)
        trace = TRACES[self.seed]
        c = trace[min(self.t, len(trace)) - 1]
        return self._obs(), min(c / 0.95, 1.0), c > 0.95, False, {"coverage": c}


class ChunkRecorder:
    """A chunk policy (T_o = 2) returning n actions per call; records the histories it saw."""

    obs_horizon = 2

    def __init__(self, n):
        self.n, self.seen, self.reset_seeds = n, [], []

    def reset(self, seeds):
        self.reset_seeds.append(list(seeds))

    def __call__(self, obs):
        self.seen.append(np.array(obs))
        b = obs.shape[0]
        return np.tile(np.arange(self.n, dtype=float)[None, :, None], (b, 1, 2))


def test_rollout_loop_scores_terminates_and_truncates():
    policy = ChunkRecorder(n=4)
    r = evaluate(policy, n_episodes=3, seed=0, max_steps=10, n_envs=3, make_env=ScriptedEnv,
                 progress=False)
    assert r.steps.tolist() == [10, 2, 10]  # time limit, success mid-chunk, time limit
    assert r.score == pytest.approx((0.3 / 0.95 + 1.0 + 0.94 / 0.95) / 3)
    assert r.success_rate == pytest.approx(1 / 3)
    assert policy.reset_seeds == [[0, 1, 2]]
    # 10 steps in chunks of 4 -> 3 calls; the first history is the first obs repeated
    assert len(policy.seen) == 3
    first = policy.seen[0]
    assert first.shape == (3, 2, 5)
    np.testing.assert_array_equal(first[:, 0], first[:, 1])
    assert first[0, :, 0].tolist() == [0, 0]
    # second call: the last two observations, oldest first (steps 3 and 4; last action = chunk[2], chunk[3])
    second = policy.seen[1][0]
    assert second[:, 0].tolist() == [3, 4]
    assert second[:, 2].tolist() == [2, 3]


def test_episode_i_uses_seed_plus_i_and_batching_does_not_matter():
    a = evaluate(ChunkRecorder(1), n_episodes=3, seed=0, max_steps=6, n_envs=1,
                 make_env=ScriptedEnv, progress=False)
    b = evaluate(ChunkRecorder(1), n_episodes=3, seed=0, max_steps=6, n_envs=2,
                 make_env=ScriptedEnv, progress=False)
    c = evaluate(ChunkRecorder(1), n_episodes=1, seed=1, max_steps=6, make_env=ScriptedEnv,
                 progress=False)
    assert a.table() == b.table()
    assert a.table()[1] == c.table()[0]


def test_per_step_callables_get_their_own_copies():
    class Counter:
        def __init__(self):
            self.k = 0

        def reset(self, seed):
            self.k = seed * 100

        def __call__(self, obs):
            self.k += 1
            return np.array([self.k, 0.0])

    counter = Counter()
    r = evaluate(counter, n_episodes=2, seed=0, max_steps=5, n_envs=2, make_env=ScriptedEnv,
                 progress=False)
    assert counter.k == 0  # the original is untouched
    # each episode's copy counted its own steps: the last action of episode 0 is 5, of episode 1 102
    assert r.episodes[0].states[-1][2] == 5
    assert r.episodes[1].states[-1][2] == 102


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_episodes=0), "n_episodes"), (dict(obs_type="rgb"), "obs_type"),
    (dict(max_steps=0), "max_steps"), (dict(n_envs=0), "n_envs"), (dict(seed=-1), "seed"),
    (dict(start_states=np.zeros((2, 4))), "start_states"),
])
def test_evaluate_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        evaluate(RandomPolicy(), **{"n_episodes": 2, "progress": False, **kwargs})


def test_bad_policy_output_is_reported():
    class Wrong:
        obs_horizon = 1

        def __call__(self, obs):
            return np.zeros((len(obs), 3))

    with pytest.raises(ValueError, match="shape"):
        evaluate(Wrong(), n_episodes=1, make_env=ScriptedEnv, progress=False)
    with pytest.raises(ValueError, match="policy must be"):
        evaluate(42, n_episodes=1, make_env=ScriptedEnv, progress=False)


# ---- real Push-T rollouts -------------------------------------------------------------------
def straight_push_demo(distance=40.0):
    """A start 40 px short of the goal along the bar's face normal through the centre of gravity,
    and the actions of a straight push: by the quasi-static contact rule it translates the block
    onto the goal without turning it."""
    theta = np.pi / 4
    normal = np.array([-np.sin(theta), np.cos(theta)])  # body +y in the world
    block = np.array([256.0, 256.0]) - distance * normal
    agent = block - 30.0 * normal  # touching distance from the bar's long face is 15
    start = np.array([*agent, *block, theta])
    actions = np.array([agent + normal * min(4.0 * (k + 1), distance + 20.0) for k in range(60)])
    return start, actions


class Replay:
    """Chunk policy that returns a whole recorded action sequence at once."""

    obs_horizon = 1

    def __init__(self, actions):
        self.actions = np.asarray(actions)

    def __call__(self, obs):
        return np.repeat(self.actions[None], len(obs), axis=0)


def test_replaying_a_demo_from_its_start_succeeds():
    start, actions = straight_push_demo()
    r = evaluate(Replay(actions), n_episodes=2, seed=3, start_states=np.stack([start, start]),
                 progress=False)
    assert r.success_rate == 1.0 and r.score == 1.0
    assert all(e.steps < 60 for e in r.episodes)  # the env terminated on success
    np.testing.assert_allclose(r.episodes[0].states[0], start, atol=0.5)
    # an agent that stays put does not push the block there
    still = evaluate(Replay(np.repeat(start[None, :2], 30, axis=0)), n_episodes=1,
                     start_states=start[None], max_steps=30, progress=False)
    assert still.success_rate == 0.0 and still.score < 0.5


def test_seeded_evaluation_is_deterministic():
    a = evaluate(RandomPolicy(seed=1), n_episodes=3, seed=7, max_steps=40, progress=False)
    b = evaluate(RandomPolicy(seed=1), n_episodes=3, seed=7, max_steps=40, n_envs=1, progress=False)
    assert a.table() == b.table()
    np.testing.assert_array_equal(a.episodes[2].states, b.episodes[2].states)
    c = evaluate(RandomPolicy(seed=1), n_episodes=1, seed=9, max_steps=40, progress=False)
    np.testing.assert_array_equal(a.episodes[2].states, c.episodes[0].states)
    # different seeds give different starts
    assert not np.allclose(a.episodes[0].states[0], a.episodes[1].states[0])


def test_scores_agree_with_env_coverage():
    from dplearn.envs import coverage

    r = evaluate(RandomPolicy(), n_episodes=2, seed=0, max_steps=25, progress=False)
    for e in r.episodes:
        # coverage recomputed independently from the recorded states
        cov = np.array([coverage(s[2:5], (256.0, 256.0, np.pi / 4)) for s in e.states[1:]])
        np.testing.assert_allclose(cov, e.coverages, atol=1e-4)
        assert e.max_reward == pytest.approx(min(cov.max() / 0.95, 1.0), abs=1e-4)


def test_record_renders_frames():
    r = evaluate(RandomPolicy(), n_episodes=2, seed=0, max_steps=5, record=1, record_size=64,
                 progress=False)
    assert r.episodes[0].frames.shape == (6, 64, 64, 3) and r.episodes[0].frames.dtype == np.uint8
    assert r.episodes[1].frames is None


def test_per_step_policy_wrapper_validates():
    with pytest.raises(ValueError, match="callable"):
        PerStepPolicy(3)


def test_replaying_shipped_demos_from_their_starts_succeeds():
    from dplearn.data import load_pusht_demos
    from dplearn.data.demos import shipped_demos_path

    try:
        shipped_demos_path()
    except FileNotFoundError:
        pytest.skip("data/pusht_demos.npz not made yet")
    demos = load_pusht_demos()
    picks = [0, demos.n_episodes // 2, demos.n_episodes - 1]
    for e in picks:
        states, actions = demos.episode(e)
        r = evaluate(Replay(actions), n_episodes=1, start_states=states[:1], progress=False)
        assert r.success_rate == 1.0, f"episode {e} did not succeed when replayed"
        assert r.episodes[0].steps == len(actions)  # success exactly at the demo's last action
        np.testing.assert_allclose(r.episodes[0].states[:-1], states, atol=1e-3)


def test_expert_policy_solves_held_out_starts():
    r = evaluate(ExpertPolicy(), n_episodes=3, seed=100_000, progress=False)
    assert r.success_rate >= 2 / 3 and r.score > 0.9


def test_registered_env_with_time_limit_truncates():
    import gymnasium as gym

    import dplearn.envs  # noqa: F401  (registers dplearn/PushT-v0)

    def make(obs_type):
        return gym.make("dplearn/PushT-v0", obs_type=obs_type, max_episode_steps=12)

    r = evaluate(RandomPolicy(), n_episodes=2, seed=0, make_env=make, progress=False)
    assert r.steps.tolist() == [12, 12]
    k = evaluate(RandomPolicy(), n_episodes=1, seed=0, obs_type="keypoints", make_env=make,
                 progress=False)
    # states recorded from the physics match the state-observation run (same seed, same actions)
    np.testing.assert_allclose(k.episodes[0].states, r.episodes[0].states, atol=1e-3)


class _Deterministic:
    """A chunk policy whose action depends only on each row's own history: aim at the block."""

    obs_horizon = 1

    def __init__(self, batch_independent: bool):
        self.batch_independent = batch_independent
        self.batch_sizes: list[int] = []

    def __call__(self, obs):
        self.batch_sizes.append(len(obs))
        return np.repeat(obs[:, -1, 2:4][:, None, :] + 5.0, 3, axis=1)


def test_independent_policies_are_asked_only_for_running_episodes():
    from dplearn.evaluation import evaluate

    runs = {}
    for flag in (False, True):
        policy = _Deterministic(flag)
        starts = np.array([[100, 100, 300, 300, 0.0], [200, 200, 300, 300, 1.0], [400, 100, 200, 300, 2.0],
                           [50, 50, 256, 256, np.pi / 4]])  # the last one starts solved: it ends at once
        runs[flag] = (evaluate(policy, n_episodes=4, seed=100_000, max_steps=30, progress=False,
                               start_states=starts), policy.batch_sizes)
    (full, sizes_full), (subset, sizes_subset) = runs[False], runs[True]
    # the same episodes either way ...
    for a, b in zip(full.episodes, subset.episodes, strict=True):
        np.testing.assert_array_equal(a.rewards, b.rewards)
        np.testing.assert_array_equal(a.states, b.states)
    # ... but once an episode has ended (the last start is solved at once) it is no longer planned for
    assert set(sizes_full) == {4} and sizes_subset[0] == 4 and min(sizes_subset) < 4


def test_stochastic_policies_are_evaluated_reproducibly():
    from dplearn.evaluation import evaluate
    from dplearn.policies import make_policy

    policy = make_policy("diffusion-cnn", obs_dim=5, obs_type="state", down_dims=(8, 16), step_embed_dim=8,
                         pred_horizon=8, action_horizon=4, num_diffusion_steps=10, inference_steps=10)
    runs = [evaluate(policy, n_episodes=3, seed=100_000, max_steps=12, progress=False) for _ in range(2)]
    other = evaluate(policy, n_episodes=3, seed=100_001, max_steps=12, progress=False)
    for a, b in zip(runs[0].episodes, runs[1].episodes, strict=True):
        np.testing.assert_array_equal(a.actions, b.actions)
    assert not np.array_equal(runs[0].episodes[1].actions, other.episodes[0].actions)  # same start, other draws
