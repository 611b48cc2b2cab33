"""Push-T: physics, rewards, observations and exact save/restore, checked independently.

Each test compares the environment with a computation that does not go through it: box moments
and centroids by hand, the PD law integrated in numpy, a point-in-T test by hand, replays.
"""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pymunk
import pytest
from gymnasium.utils.env_checker import check_env

import dplearn.envs  # noqa: F401  (registers dplearn/PushT-v0)
from dplearn.envs import PushTEnv, benchmark_start, render
from dplearn.envs.geometry import GOAL_POSE, T_KEYPOINTS, farthest_point_keypoints

ENV_ID = "dplearn/PushT-v0"
OBS_TYPES = ["state", "keypoints", "pixels", "pixels_agent_pos", "two-cameras"]
# gymnasium recommends actions in [-1, 1]; Push-T's actions are positions in [0, 512]² by design.
ACTION_SCALE_WARNING = "symmetric and normalized space"


def in_t(points: np.ndarray, pose) -> np.ndarray:
    """Point-in-T by hand: body-frame coordinates R(-θ)(q - p) tested against the two boxes."""
    x, y, a = pose
    c, s = math.cos(a), math.sin(a)
    dx, dy = points[..., 0] - x, points[..., 1] - y
    bx, by = c * dx + s * dy, -s * dx + c * dy
    return ((np.abs(bx) <= 60) & (by >= 0) & (by <= 30)) | (
        (np.abs(bx) <= 15) & (by >= 30) & (by <= 120)
    )


def reset_to(env: PushTEnv, state) -> tuple:
    return env.reset(options={"reset_to_state": list(map(float, state))})


def pushing_actions(rng, block_xy, n):
    return [np.clip(block_xy + rng.normal(0, 40, 2), 0, 512) for _ in range(n)]


# ------------------------------------------------------------------------------- physics ------
def test_world_matches_the_benchmark_numbers():
    env = PushTEnv()
    env.reset(seed=0)
    space = env.space
    assert tuple(space.gravity) == (0.0, 0.0)
    assert space.damping == 0.0
    walls = [s for s in space.shapes if isinstance(s, pymunk.Segment)]
    expected = {
        ((5, 506), (5, 5)),
        ((5, 5), (506, 5)),
        ((506, 5), (506, 506)),
        ((5, 506), (506, 506)),
    }
    assert {(tuple(w.a), tuple(w.b)) for w in walls} == expected
    assert all(w.radius == 2 and w.body.body_type == pymunk.Body.STATIC for w in walls)
    assert all(s.friction == 0 and s.elasticity == 0 for s in space.shapes)

    agent = env.agent_body
    assert agent.body_type == pymunk.Body.KINEMATIC
    (circle,) = agent.shapes
    assert isinstance(circle, pymunk.Circle) and circle.radius == 15

    block = env.block_body
    assert block.mass == 1.0
    # moment of a box of mass m, sides w × h, about a point at distance d from its centroid:
    # m (w² + h²) / 12 + m d²; the bar is 120 × 30 with centroid (0, 15), counted twice.
    bar_moment = 1.0 * (120**2 + 30**2) / 12 + 1.0 * 15**2
    assert block.moment == pytest.approx(2 * bar_moment, rel=1e-12)
    # centre of gravity: mean of the boxes' centroids (0, 15) and (0, 75)
    assert tuple(block.center_of_gravity) == pytest.approx((0.0, 45.0))
    boxes = sorted((sorted(map(tuple, s.get_vertices())) for s in block.shapes), key=len)
    assert sorted(boxes) == sorted(
        [
            sorted([(-60.0, 0.0), (60.0, 0.0), (60.0, 30.0), (-60.0, 30.0)]),
            sorted([(-15.0, 30.0), (15.0, 30.0), (15.0, 120.0), (-15.0, 120.0)]),
        ]
    )


def test_agent_follows_the_pd_law_integrated_by_hand():
    env = PushTEnv()
    reset_to(env, [100, 400, 400, 100, 0.0])  # block far from the agent's path
    p = np.array([100.0, 400.0])
    v = np.zeros(2)
    targets = [(150.0, 380.0), (150.0, 380.0), (60.0, 450.0), (200.0, 300.0), (200.0, 300.0)]
    for target in targets:
        obs, *_ = env.step(np.array(target))
        for _ in range(10):  # 100 Hz physics inside one 10 Hz control step
            v = v + (100.0 * (np.array(target) - p) + 20.0 * (0.0 - v)) * 0.01
            p = p + v * 0.01
        np.testing.assert_allclose(obs[:2], p, rtol=0, atol=1e-9)
        np.testing.assert_allclose(tuple(env.agent_body.velocity), v, rtol=0, atol=1e-9)
    np.testing.assert_allclose(obs[2:], [400.0, 100.0, 0.0], atol=1e-9)  # untouched block at rest


def _push(env, start, agent_from, agent_to, steps=8):
    reset_to(env, [*agent_from, *start])
    for k in range(1, steps + 1):
        target = np.array(agent_from) + (np.array(agent_to) - np.array(agent_from)) * k / steps
        obs, *_ = env.step(target)
    return obs


def test_pushes_through_the_centre_of_gravity_translate_without_turning():
    env = PushTEnv()
    # Bar's long face (body y = 0) pushed along +y at x = 0: through the CoG (0, 45).
    obs = _push(env, [256, 200, 0.0], (256, 170), (256, 240))
    assert obs[3] > 205  # it moved
    assert abs(math.remainder(obs[4], 2 * math.pi)) < 1e-6
    # The stem's side (x = 15) pushed along -x at body height y = 45: through the CoG again.
    obs = _push(env, [256, 200, 0.0], (300, 245), (230, 245))
    assert obs[2] < 250
    assert abs(math.remainder(obs[4], 2 * math.pi)) < 1e-6
    # Off-centre pushes turn the block: at x = 45 on the bar, and at y = 100 on the stem.
    obs = _push(env, [256, 200, 0.0], (301, 170), (301, 240))
    assert abs(math.remainder(obs[4], 2 * math.pi)) > 0.05
    obs = _push(env, [256, 200, 0.0], (300, 300), (230, 300))
    assert abs(math.remainder(obs[4], 2 * math.pi)) > 0.05


def test_walls_stop_the_block():
    env = PushTEnv()
    reset_to(env, [256, 300, 256, 200, 0.0])
    for _ in range(40):  # push the block hard toward the top wall (y = 5, radius 2)
        obs, *_ = env.step(np.array([256.0, 0.0]))
    polys = dplearn.envs.t_polygons((obs[2], obs[3], obs[4]))
    assert polys[..., 1].min() > 7 - 1.0  # at most slight penetration of the wall's surface


# ---------------------------------------------------------------------- reward and reset ------
def test_reward_success_and_termination_follow_coverage():
    env = PushTEnv()
    gx, gy, ga = GOAL_POSE
    _, info = reset_to(env, [60, 60, gx, gy, ga])
    assert info["coverage"] == pytest.approx(1.0, abs=1e-9) and info["is_success"]
    obs, reward, terminated, truncated, info = env.step(np.array([60.0, 60.0]))
    assert reward == 1.0 and terminated and not truncated and info["is_success"]
    # 1 unit off along x: coverage ≈ 1 - 0.027, reward = coverage / 0.95 capped at 1
    reset_to(env, [60, 60, gx + 1.0, gy, ga])
    _, reward, terminated, _, info = env.step(np.array([60.0, 60.0]))
    assert 0.95 < info["coverage"] < 0.98 and reward == 1.0 and terminated
    reset_to(env, [60, 60, gx + 8.0, gy, ga + 0.1])
    _, reward, terminated, _, info = env.step(np.array([60.0, 60.0]))
    assert info["coverage"] < 0.95 and not terminated and not info["is_success"]
    assert reward == pytest.approx(info["coverage"] / 0.95)
    np.testing.assert_allclose(info["goal_pose"], [256, 256, math.pi / 4])
    assert set(info) >= {"coverage", "is_success", "block_pose", "goal_pose", "n_contacts"}


def test_reset_to_state_gives_that_observed_state():
    env = PushTEnv()
    rng = np.random.default_rng(0)
    for _ in range(20):
        state = [
            rng.uniform(30, 80),
            rng.uniform(30, 80),
            rng.uniform(200, 350),
            rng.uniform(200, 350),
            rng.uniform(-7, 7),
        ]
        obs, info = reset_to(env, state)
        np.testing.assert_allclose(obs[:4], state[:4], rtol=0, atol=1e-9)
        assert obs[4] == pytest.approx(state[4] % (2 * math.pi), abs=1e-9)
        np.testing.assert_allclose(info["block_pose"], state[2:], atol=1e-9)


def test_seeded_reset_is_the_benchmarks_legacy_draw():
    # Diffusion Policy's env draws a start with NumPy's legacy RandomState:
    # randint(50, 450) x2, randint(100, 400) x2, randn() * 2pi - pi, in that order.
    env = PushTEnv()
    for seed in (0, 1, 100000, 100049, 2**31 + 5):
        rs = np.random.RandomState(seed)
        ax, ay = rs.randint(50, 450), rs.randint(50, 450)
        bx, by = rs.randint(100, 400), rs.randint(100, 400)
        angle = rs.randn() * 2 * np.pi - np.pi
        np.testing.assert_array_equal(benchmark_start(seed), [ax, ay, bx, by, angle])
        obs, info = env.reset(seed=seed)
        assert tuple(obs[:2]) == (ax, ay)
        if info["n_contacts"] == 0:  # the settling step did not move the block
            np.testing.assert_allclose(info["block_pose"], [bx, by, angle], atol=1e-9)
    with pytest.raises(ValueError, match="seed"):
        benchmark_start(-1)


def test_unseeded_resets_continue_the_seeded_stream():
    a, b = PushTEnv(), PushTEnv()
    a.reset(seed=3)
    b.reset(seed=3)
    for _ in range(3):
        np.testing.assert_array_equal(a.reset()[0], b.reset()[0])


def test_uniform_start_distribution():
    env = PushTEnv(start="uniform")
    agents, blocks, angles = [], [], []
    for seed in range(150):
        obs, info = env.reset(seed=seed)
        agents.append(obs[:2])
        if info["n_contacts"] == 0:  # the settling step did not move the block
            blocks.append(info["block_pose"][:2])
            angles.append(info["block_pose"][2])
    agents, blocks, angles = np.array(agents), np.array(blocks), np.array(angles)
    assert np.all(agents == np.round(agents)) and agents.min() >= 50 and agents.max() < 450
    assert np.allclose(blocks, np.round(blocks), atol=1e-9)
    assert blocks.min() >= 100 and blocks.max() < 400
    assert angles.min() >= -math.pi and angles.max() < math.pi
    assert angles.min() < -2.5 and angles.max() > 2.5 and abs(np.mean(np.cos(angles))) < 0.2
    with pytest.raises(ValueError, match="start"):
        PushTEnv(start="gaussian")


def test_reset_refuses_unknown_options():
    env = PushTEnv()
    with pytest.raises(ValueError, match=r"unknown keys \['reset_to_stat'\]"):
        env.reset(options={"reset_to_stat": [100, 100, 200, 200, 0]})


def test_same_seed_same_episode_and_different_seeds_differ():
    rng = np.random.default_rng(0)
    actions = rng.uniform(0, 512, (30, 2))
    runs = []
    for seed in (7, 7, 8):
        env = PushTEnv()
        obs, _ = env.reset(seed=seed)
        runs.append(np.array([obs] + [env.step(a)[0] for a in actions]))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0][0], runs[2][0])


def test_time_limit_truncates_at_300_steps():
    env = gym.make(ENV_ID)
    env.reset(options={"reset_to_state": [60.0, 60.0, 300.0, 300.0, 0.0]})
    for t in range(300):
        _, _, terminated, truncated, _ = env.step(np.array([60.0, 60.0]))
        assert not terminated
        assert truncated == (t == 299)


def test_contacts_are_counted_only_when_touching():
    env = PushTEnv()
    reset_to(env, [256, 150, 256, 200, 0.0])
    _, _, _, _, info = env.step(np.array([256.0, 150.0]))
    assert info["n_contacts"] == 0
    touched = [env.step(np.array([256.0, 260.0]))[4]["n_contacts"] for _ in range(5)]
    assert max(touched) >= 1


# --------------------------------------------------------------------------- gym API ----------
@pytest.mark.parametrize("obs_type", OBS_TYPES)
def test_check_env_passes_without_warnings(obs_type):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = gym.make(ENV_ID, obs_type=obs_type, render_mode="rgb_array").unwrapped
        check_env(env)
    messages = [str(w.message) for w in caught if ACTION_SCALE_WARNING not in str(w.message)]
    assert messages == []


@pytest.mark.parametrize("obs_type", OBS_TYPES)
def test_observations_stay_in_their_space(obs_type):
    env = PushTEnv(obs_type=obs_type)
    obs, _ = env.reset(seed=5)
    assert env.observation_space.contains(obs)
    rng = np.random.default_rng(5)
    for _ in range(15):
        obs = env.step(rng.uniform(0, 512, 2))[0]
        assert env.observation_space.contains(obs)


def test_keypoints_are_nine_block_points_and_the_agent():
    env = PushTEnv(obs_type="keypoints")
    obs, _ = reset_to(env, [70, 80, 250, 260, 1.0])
    assert obs.shape == (20,)  # the benchmark's pusht_lowdim obs_dim
    c, s = math.cos(1.0), math.sin(1.0)
    expected = [(250 + c * x - s * y, 260 + s * x + c * y) for x, y in T_KEYPOINTS]
    np.testing.assert_allclose(obs[:18].reshape(9, 2), expected, atol=1e-9)
    np.testing.assert_allclose(obs[18:], [70, 80], atol=1e-9)


def test_keypoints_are_spread_by_farthest_point_sampling():
    np.testing.assert_array_equal(farthest_point_keypoints(9), T_KEYPOINTS)
    # each keypoint lies inside the T, and the nine are spread out: no two closer than 20 px
    x, y = T_KEYPOINTS[:, 0], T_KEYPOINTS[:, 1]
    inside = ((np.abs(x) < 60) & (y > 0) & (y < 30)) | ((np.abs(x) < 15) & (y >= 30) & (y < 120))
    assert inside.all()
    d = np.linalg.norm(T_KEYPOINTS[:, None] - T_KEYPOINTS[None], axis=-1)
    assert d[~np.eye(9, dtype=bool)].min() > 20
    # farthest-point sampling by brute force on the same grid: every new point maximises the
    # distance to the chosen ones
    xs, ys = np.meshgrid(np.arange(-60, 60) + 0.5, np.arange(0, 120) + 0.5)
    grid = np.stack([xs.ravel(), ys.ravel()], 1)
    g = grid[((np.abs(grid[:, 0]) < 60) & (grid[:, 1] < 30)) | ((np.abs(grid[:, 0]) < 15) & (grid[:, 1] >= 30))]
    for k in range(1, 9):
        nearest = np.linalg.norm(g[:, None] - T_KEYPOINTS[None, :k], axis=-1).min(axis=1)
        assert nearest.max() == pytest.approx(np.linalg.norm(T_KEYPOINTS[k] - T_KEYPOINTS[:k], axis=1).min())


@pytest.mark.parametrize("vector_cls", [gym.vector.SyncVectorEnv, gym.vector.AsyncVectorEnv])
def test_vector_envs_agree_with_single_envs(vector_cls):
    seeds = [11, 12]
    actions = np.random.default_rng(0).uniform(0, 512, (6, len(seeds), 2))
    venv = vector_cls([lambda: gym.make(ENV_ID) for _ in seeds])
    try:
        obs, _ = venv.reset(seed=seeds)
        batched = [obs] + [venv.step(a)[0] for a in actions]
    finally:
        venv.close()
    for i, seed in enumerate(seeds):
        env = gym.make(ENV_ID)
        obs, _ = env.reset(seed=seed)
        single = [obs] + [env.step(a[i])[0] for a in actions]
        np.testing.assert_array_equal(np.array(batched)[:, i], np.array(single))


@pytest.mark.parametrize(
    "action",
    [np.array([np.nan, 1.0]), np.array([np.inf, 1.0]), np.zeros(3), np.zeros((1, 2)), "ab", None],
)
def test_bad_actions_raise(action):
    env = PushTEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(action)


@pytest.mark.parametrize("action, message", [
    ([np.nan, 1.0], r"action must be finite, got \[nan, 1.0\]"),
    ([1.0, -np.inf], r"action must be finite, got \[1.0, -inf\]"),
    (np.zeros(3), r"action must have shape \(2,\) \(target x, y\), got shape \(3,\)"),
    ("ab", "action must be a target position \\(x, y\\) of 2 numbers, got 'ab'"),
])
def test_bad_actions_are_refused_with_a_message_naming_the_action(action, message):
    env = PushTEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(action)


def test_targets_outside_the_workspace_are_followed_as_in_the_benchmark():
    """Documented in ``PushTEnv.step``: no clipping, and the kinematic pusher passes the walls."""
    env = PushTEnv()
    start, _ = env.reset(options={"reset_to_state": [100.0, 256.0, 300.0, 250.0, 0.0]})
    for _ in range(20):
        obs, *_ = env.step(np.array([-100.0, 256.0]))
    assert obs[0] < 0 and abs(obs[0] + 100.0) < 1.0  # at the target, beyond the wall at x = 5
    np.testing.assert_allclose(obs[2:], start[2:], atol=1e-6)  # the block, far away, was not touched


@pytest.mark.parametrize("options, message", [
    ({"reset_to_stat": [100, 100, 200, 200, 0]},
     r"options has unknown keys \['reset_to_stat'\]; reset accepts \['reset_to_state'\]"),
    ({"seed": 3}, r"options has unknown keys \['seed'\]"),
    ([("reset_to_state", [1, 2, 3, 4, 5])], "options must be a dict or None, got list"),
    ({"reset_to_state": [1, 2, 3]}, r"options\['reset_to_state'\] must be 5 finite numbers"),
    ({"reset_to_state": [1, 2, 3, 4, np.nan]}, r"options\['reset_to_state'\] must be 5 finite numbers"),
])
def test_reset_refuses_unknown_or_bad_options_naming_them(options, message):
    with pytest.raises(ValueError, match=message):
        PushTEnv().reset(options=options)


def test_unknown_obs_type_lists_the_valid_ones():
    with pytest.raises(ValueError) as err:
        PushTEnv(obs_type="rgb")
    for name in OBS_TYPES:
        assert repr(name) in str(err.value)


# --------------------------------------------------------------------------------- pixels -----
def pixel_of(x: float, y: float, size: int) -> tuple[int, int]:
    """(row, column) of the pixel containing world point (x, y)."""
    return int(y * size / 512), int(x * size / 512)


def test_pixels_shape_dtype_and_colours_at_known_points():
    env = PushTEnv(obs_type="pixels_agent_pos")
    obs, _ = reset_to(env, [100, 400, 400, 100, 0.0])
    img = obs["pixels"]
    assert img.shape == (96, 96, 3) and img.dtype == np.uint8
    np.testing.assert_allclose(obs["agent_pos"], [100, 400], atol=1e-9)
    assert tuple(img[pixel_of(100, 400, 96)]) == render.AGENT_COLOR  # agent centre
    assert tuple(img[pixel_of(400, 100 + 15, 96)]) == render.BLOCK_COLOR  # middle of the bar
    assert tuple(img[pixel_of(400, 100 + 90, 96)]) == render.BLOCK_COLOR  # middle of the stem
    gx, gy = 256 - 15 * math.sin(math.pi / 4), 256 + 15 * math.cos(math.pi / 4)
    assert tuple(img[pixel_of(gx, gy, 96)]) == render.GOAL_COLOR  # middle of the goal's bar
    assert tuple(img[pixel_of(256, 470, 96)]) == render.BACKGROUND_COLOR
    big = render.render_state(obs_state := [100, 400, 400, 100, 0.0], size=512)
    assert tuple(big[256, 5]) == render.WALL_COLOR and tuple(big[5, 256]) == render.WALL_COLOR
    assert tuple(big[256, 20]) == render.BACKGROUND_COLOR
    assert obs_state  # the same picture whatever the size: colours at the same world points
    assert tuple(big[pixel_of(400, 115, 512)]) == render.BLOCK_COLOR


def test_rasterised_block_matches_point_in_t_by_hand():
    size = 128
    pose = (300.0, 150.0, 0.7)
    img = render.render_state([60.0, 450.0, *pose], size=size).astype(int)
    centres = (np.arange(size) + 0.5) * 512 / size
    X, Y = np.meshgrid(centres, centres)  # X[i, j] = x of column j, Y[i, j] = y of row i
    margin = 2.0 + 512 / size  # outline half-width plus one pixel
    offsets = [(dx, dy) for dx in (-margin, 0, margin) for dy in (-margin, 0, margin)]
    inside = [in_t(np.stack([X + dx, Y + dy], -1), pose) for dx, dy in offsets]
    surely_in = np.logical_and.reduce(inside)
    surely_out = ~np.logical_or.reduce(inside)
    near_block = (np.hypot(X - pose[0], Y - pose[1]) < 200) & (np.hypot(X - 256, Y - 256) > 150)
    near_block &= (X > 12) & (X < 500) & (Y > 12) & (Y < 500)  # away from the walls
    # each box has its own outline, so the segment where bar and stem meet (body y = 30) is drawn
    c, s = math.cos(pose[2]), math.sin(pose[2])
    bx = c * (X - pose[0]) + s * (Y - pose[1])
    by = -s * (X - pose[0]) + c * (Y - pose[1])
    surely_in &= ~((np.abs(by - 30) < margin * 1.5) & (np.abs(bx) < 15 + margin * 1.5))
    block_like = np.all(img == render.BLOCK_COLOR, axis=-1)
    white = np.all(img == 255, axis=-1)
    assert surely_in.sum() > 100 and (surely_out & near_block).sum() > 100
    assert block_like[surely_in].all()
    assert white[surely_out & near_block].all()


def test_render_mode_rgb_array_at_any_size():
    env = PushTEnv(render_mode="rgb_array", render_size=200)
    env.reset(seed=0)
    env.step(np.array([200.0, 200.0]))
    frame = env.render()
    assert frame.shape == (200, 200, 3) and frame.dtype == np.uint8
    r, c = pixel_of(200, 200, 200)  # the last action is marked by a red cross
    assert (
        tuple(frame[r, c]) == render.ACTION_COLOR
        or tuple(frame[r + 1, c + 1]) == render.ACTION_COLOR
    )
    with pytest.raises(ValueError, match="render_mode"):
        PushTEnv(render_mode="human")
