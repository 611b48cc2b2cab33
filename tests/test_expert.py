"""The scripted Push-T expert: pushing mechanics against the simulator, success, modes, inputs."""

from __future__ import annotations

import numpy as np
import pytest

from dplearn.envs import PushTEnv, t_polygons
from dplearn.experts import (
    ROUTES_START_STATE,
    PushTExpert,
    contact_candidates,
    offset_contour,
    push_twist,
    rollout_expert,
)

# Seeds the expert was never tuned on (benchmarks/expert_success.py measures 10000..10199).
HELD_OUT_SEEDS = [10_000, 10_001, 10_002, 10_003, 10_004, 10_005]


def _polygon_distance(points: np.ndarray, pose=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Distance from points (M, 2) to the T's boundary, from its world-frame edges (brute force)."""
    d = np.full(len(points), np.inf)
    for box in t_polygons(pose):
        for a, b in zip(box, np.roll(box, -1, axis=0), strict=True):
            t = np.clip(((points - a) @ (b - a)) / ((b - a) @ (b - a)), 0.0, 1.0)
            d = np.minimum(d, np.linalg.norm(points - (a + t[:, None] * (b - a)), axis=1))
    return d


# ------------------------------------------------------------------------------- mechanics --
@pytest.mark.parametrize(
    "contact, normal, agent, target",
    [
        # bar's long face (body y = 0), pushed along +y at three levers
        ((40.0, 0.0), (0.0, 1.0), (296.0, 240.0), (296.0, 244.0)),
        ((0.0, 0.0), (0.0, 1.0), (256.0, 240.0), (256.0, 244.0)),
        ((-55.0, 0.0), (0.0, 1.0), (201.0, 240.0), (201.0, 244.0)),
        # stem's right side (body x = 15), pushed along -x
        ((15.0, 60.0), (-1.0, 0.0), (287.0, 316.0), (283.0, 316.0)),
        ((15.0, 100.0), (-1.0, 0.0), (287.0, 356.0), (283.0, 356.0)),
    ],
)
def test_push_twist_matches_the_simulator(contact, normal, agent, target):
    """Eq. (1) predicts the block's motion under a small push in the pymunk simulation."""
    env = PushTEnv()
    block = np.array([256.0, 256.0])  # angle 0: body frame = world frame shifted by `block`
    obs, _ = env.reset(options={"reset_to_state": [*agent, *block, 0.0]})
    for _ in range(15):  # the PD law settles on the target: the pusher advances 3 px past contact
        obs, *_ = env.step(np.array(target))
    np.testing.assert_allclose(obs[:2], target, atol=1e-3)
    angle = (obs[4] + np.pi) % (2 * np.pi) - np.pi
    cog = np.array([0.0, 45.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = obs[2:4] + rot @ cog - (block + cog)

    predicted = 3.0 * push_twist(np.array([contact]), np.array([normal]))[0]
    assert np.all(np.abs(moved - predicted[:2]) <= 0.03 * np.abs(predicted[:2]).max() + 0.05)
    assert abs(angle - predicted[2]) <= 0.03 * abs(predicted[2]) + 2e-4


def test_push_through_the_centre_of_gravity_does_not_turn():
    n = np.array([[0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    p = np.array([[0.0, 0.0], [15.0, 45.0], [0.0, 120.0]])  # faces crossed by lines through (0, 45)
    xi = push_twist(p, n)
    np.testing.assert_allclose(xi[:, 2], 0.0, atol=1e-15)
    np.testing.assert_allclose(xi[:, :2], n, atol=1e-15)  # moves exactly with the pusher


def test_contacts_touch_the_block_and_offset_contour_keeps_its_clearance():
    c = contact_candidates()
    np.testing.assert_allclose(_polygon_distance(c.pusher), 15.0, atol=1e-9)
    # no pusher position cuts into the block: the distance from the T itself (not only its
    # edges) is 15, i.e. the pusher's centre lies outside both boxes
    for box in t_polygons((0.0, 0.0, 0.0)):
        lo, hi = box.min(axis=0), box.max(axis=0)
        assert not np.any(np.all((c.pusher > lo + 1e-9) & (c.pusher < hi - 1e-9), axis=1))
    r = 23.0
    points, arc = offset_contour(r, n=1440)
    np.testing.assert_allclose(_polygon_distance(points), r, atol=1e-6)
    # closed form: the outline (perimeter 480) offset by r gains a quarter circle at each of the
    # 6 convex corners and loses r on both edges at each of the 2 concave corners
    assert arc[-1] == pytest.approx(480.0 + 6 * (np.pi / 2) * r - 2 * 2 * r, rel=2e-3)


# ------------------------------------------------------------------------------ the expert --
def test_expert_succeeds_on_held_out_seeds():
    env = PushTEnv()
    expert = PushTExpert(seed=0)
    for seed in HELD_OUT_SEEDS:
        obs, _ = env.reset(seed=seed)
        expert.reset(seed)
        for _ in range(300):
            obs, _, terminated, _, info = env.step(expert(obs))
            if terminated:
                break
        assert info["is_success"] and info["coverage"] > 0.95, f"seed {seed}: {info['coverage']:.3f}"


def test_two_expert_seeds_take_different_routes_from_one_start():
    """From ROUTES_START_STATE the pusher must get below the block: round its left or its right."""
    sides = set()
    paths = []
    for seed in range(8):
        states, actions, info = rollout_expert(ROUTES_START_STATE, expert_seed=seed)
        assert info["is_success"]
        paths.append(states[:, :2])
        below = np.flatnonzero(states[:, 1] > ROUTES_START_STATE[3])  # past the block's origin
        sides.add("left" if states[below[0], 0] < ROUTES_START_STATE[2] else "right")
    assert sides == {"left", "right"}
    n = min(len(paths[0]), len(paths[2]))
    assert np.abs(paths[0][:n] - paths[2][:n]).max() > 50.0


def test_expert_is_deterministic_for_a_fixed_seed():
    start = [120.0, 400.0, 300.0, 180.0, 2.0]
    s1, a1, i1 = rollout_expert(start, expert_seed=3)
    s2, a2, i2 = rollout_expert(start, expert_seed=3)
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(s1, s2)
    # reset(seed) restores the random choices of a used expert
    expert = PushTExpert(seed=3)
    _, a3, _ = rollout_expert(start, expert_seed=5, expert=expert)
    _, a4, _ = rollout_expert(start, expert_seed=3, expert=expert)
    np.testing.assert_array_equal(a4, a1)


def test_actions_stay_in_the_workspace():
    states, actions, _ = rollout_expert([20.0, 500.0, 110.0, 390.0, 4.0], expert_seed=1)
    assert actions.shape == (len(states), 2)
    assert np.all((actions >= 0.0) & (actions <= 512.0))


# ------------------------------------------------------------------------------ bad inputs --
@pytest.mark.parametrize("obs", [np.zeros(4), np.zeros((1, 5)), [1, 2, 3, 4, np.nan]])
def test_bad_observation_is_refused(obs):
    with pytest.raises(ValueError, match="obs"):
        PushTExpert(seed=0)(obs)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"goal_pose": (1.0, 2.0)}, "goal_pose"),
        ({"rotation_scale": 0.0}, "rotation_scale"),
        ({"stickiness": 1.5}, "stickiness"),
        ({"detour_tolerance": 0.5}, "detour_tolerance"),
    ],
)
def test_bad_parameters_are_refused(kwargs, name):
    with pytest.raises(ValueError, match=name):
        PushTExpert(**kwargs)


def test_bad_rollout_arguments_are_refused():
    with pytest.raises(ValueError, match="start_state"):
        rollout_expert([1.0, 2.0, 3.0], expert_seed=0)
    with pytest.raises(ValueError, match="max_steps"):
        rollout_expert(ROUTES_START_STATE, expert_seed=0, max_steps=0)
    with pytest.raises(ValueError, match="normals"):
        push_twist(np.zeros((2, 2)), np.ones((2, 2)))
