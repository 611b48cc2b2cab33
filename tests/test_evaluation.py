"""The evaluation protocol: scores from reward traces, the rollout loop (termination, time limit,
action chunks, observation histories), seeding, and real Push-T rollouts."""

from __future__ import annotations

import numpy as np
import pytest

from dplearn.evaluation import EvalResult, evaluate
from dplearn.policy_protocol import ExpertPolicy, PerStepPolicy, RandomPolicy


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
    # the policy is random: another policy seed, from the same starts, acts otherwise (so the
    # equalities above are not those of a policy that ignores its seeds)
    d = evaluate(RandomPolicy(seed=2), n_episodes=3, seed=7, max_steps=40, progress=False)
    np.testing.assert_array_equal(a.episodes[0].states[0], d.episodes[0].states[0])
    assert not np.allclose(a.episodes[0].actions, d.episodes[0].actions[: a.episodes[0].steps])


# ---- an independent coverage: the two T's clipped against each other in float64 ------------------
# The benchmark's T in its body frame: a 120 x 30 bar on y in [0, 30] and a 30 x 90 stem on top of
# it; a pose (x, y, theta) rotates it about the body origin, then moves the origin to (x, y).
T_BOXES = [[(-60, 0), (60, 0), (60, 30), (-60, 30)], [(-15, 30), (15, 30), (15, 120), (-15, 120)]]


def _boxes_at(pose):
    x, y, theta = (float(v) for v in pose)
    c, s = np.cos(theta), np.sin(theta)
    return [[(x + c * u - s * v, y + s * u + c * v) for u, v in box] for box in T_BOXES]


def _shoelace(poly):
    edges = zip(poly, poly[1:] + poly[:1], strict=True)
    return 0.5 * abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in edges))


def _clip(subject, clipper):
    """Sutherland-Hodgman: the part of convex ``subject`` inside convex counter-clockwise ``clipper``."""
    out = list(subject)
    for (ax, ay), (bx, by) in zip(clipper, clipper[1:] + clipper[:1], strict=True):
        def side(p, ax=ax, ay=ay, bx=bx, by=by):
            return (bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax)

        points, out = out, []
        for p, q in zip(points, points[1:] + points[:1], strict=True):
            sp, sq = side(p), side(q)
            if sp >= 0:
                out.append(p)
            if (sp >= 0) != (sq >= 0):
                t = sp / (sp - sq)
                out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
        if not out:
            return []
    return out


def independent_coverage(block_pose, goal_pose=(256.0, 256.0, np.pi / 4)):
    """area(block T ∩ goal T) / area(goal T); the boxes of one T overlap only on an edge."""
    inter = sum(_shoelace(part) for a in _boxes_at(block_pose) for g in _boxes_at(goal_pose)
                if len(part := _clip(a, g)) >= 3)
    return inter / (120 * 30 + 30 * 90)


def test_independent_coverage_is_right_on_known_poses():
    assert independent_coverage((256, 256, np.pi / 4)) == pytest.approx(1.0, abs=1e-12)
    assert independent_coverage((0, 0, 0), (0, 30, np.pi)) == pytest.approx(3600 / 6300)  # the bar only
    assert independent_coverage((0, 0, 0), (10, 0, 0)) == pytest.approx((110 * 30 + 20 * 90) / 6300)
    assert independent_coverage((0, 0, 0), (0, 0, np.pi)) == pytest.approx(0.0, abs=1e-12)  # edge to edge
    assert independent_coverage((50, 50, 0), (400, 400, 0)) == 0.0


def test_scores_agree_with_an_independent_coverage():
    r = evaluate(RandomPolicy(hold=3), n_episodes=2, seed=0, max_steps=40, progress=False)
    cov = np.concatenate([[independent_coverage(s[2:5]) for s in e.states[1:]] for e in r.episodes])
    assert cov.max() > 0.05  # the random pushes moved the block over the goal: a real check
    for e in r.episodes:
        expected = np.array([independent_coverage(s[2:5]) for s in e.states[1:]])
        # the recorded states are float32: a 1e-5 relative pose error moves coverage by < 1e-4
        np.testing.assert_allclose(e.coverages, expected, atol=1e-4)
        np.testing.assert_allclose(e.rewards, np.clip(expected / 0.95, 0, 1), atol=1e-4)
        assert e.max_reward == pytest.approx(min(expected.max() / 0.95, 1.0), abs=1e-4)


def _centre_of(frame, colour, scale):
    """World (x, y) of the mean centre of the pixels of exactly ``colour``; pixel (i, j) is
    centred at ((j + 1/2) / scale, (i + 1/2) / scale)."""
    i, j = np.nonzero(np.all(frame == np.array(colour, dtype=np.uint8), axis=-1))
    assert i.size > 0
    return np.array([(j.mean() + 0.5) / scale, (i.mean() + 0.5) / scale])


def test_recorded_frames_show_the_recorded_states_and_actions():
    from dplearn.envs.render import ACTION_COLOR, AGENT_COLOR, BLOCK_COLOR

    size = 256
    scale = size / 512
    r = evaluate(RandomPolicy(hold=2), n_episodes=2, seed=3, max_steps=8, record=1, record_size=size,
                 progress=False)
    e = r.episodes[0]
    assert e.frames.shape == (e.steps + 1, size, size, 3) and e.frames.dtype == np.uint8
    assert r.episodes[1].frames is None
    # the block's fill (the T less its 2-unit outline) has the T's area centroid, body frame
    # (0, (3600 * 15 + 2700 * 75) / 6300)
    cy = (3600 * 15 + 2700 * 75) / 6300
    for t, (frame, state) in enumerate(zip(e.frames, e.states, strict=True)):
        ax, ay, bx, by, theta = (float(v) for v in state)
        # frame t shows state t: the pusher's disc is centred on the agent ...
        np.testing.assert_allclose(_centre_of(frame, AGENT_COLOR, scale), (ax, ay), atol=1.0)
        # ... the block sits at its pose (a wrong angle or origin moves this centroid by tens of units)
        block = np.array([bx - np.sin(theta) * cy, by + np.cos(theta) * cy])
        np.testing.assert_allclose(_centre_of(frame, BLOCK_COLOR, scale), block, atol=3.0)
        # ... and action t, the target commanded next, is marked by the red cross
        if t < e.steps:
            np.testing.assert_allclose(_centre_of(frame, ACTION_COLOR, scale), e.actions[t], atol=2.0)
        else:
            assert not np.all(frame == np.array(ACTION_COLOR, dtype=np.uint8), axis=-1).any()


def test_per_step_policy_wrapper_validates():
    with pytest.raises(ValueError, match="callable"):
        PerStepPolicy(3)


def test_random_policy_holds_uniform_targets_per_episode():
    policy = RandomPolicy(hold=3, seed=5)
    policy.reset(range(4000))
    chunks = policy(np.zeros((4000, 1, 5)))
    assert chunks.shape == (4000, 3, 2)
    assert np.all(chunks == chunks[:, :1])  # one target held for `hold` steps
    targets = chunks[:, 0]
    assert targets.min() >= 0 and targets.max() <= 512
    # uniform on [0, 512]: mean 256 and variance 512^2 / 12, within 5 standard errors
    n = len(targets)
    assert np.all(np.abs(targets.mean(0) - 256) < 5 * 512 / np.sqrt(12 * n))
    assert np.all(np.abs(targets.var(0) / (512**2 / 12) - 1) < 5 * np.sqrt(0.8 / n))
    with pytest.raises(ValueError, match="hold must be an integer >= 1"):
        RandomPolicy(hold=0)
    with pytest.raises(ValueError, match="high must be a finite number > 10"):
        RandomPolicy(low=10.0, high=10.0)


def test_expert_policy_is_a_per_step_policy_around_the_expert():
    from dplearn.experts import PushTExpert

    policy = ExpertPolicy(push_speed=10.0)
    assert isinstance(policy, PerStepPolicy) and isinstance(policy.fn, PushTExpert)
    assert policy.fn.push_speed == 10.0 and policy.stateful and policy.obs_type == "state"


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
