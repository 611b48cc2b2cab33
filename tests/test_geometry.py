"""The T's geometry and exact coverage, checked against hand formulas and a fine grid estimate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dplearn.envs import geometry as G


def in_t(points: np.ndarray, pose) -> np.ndarray:
    """Point-in-T by hand: map world points to the body frame and test the two boxes."""
    x, y, a = pose
    c, s = math.cos(a), math.sin(a)
    dx, dy = points[..., 0] - x, points[..., 1] - y
    bx, by = c * dx + s * dy, -s * dx + c * dy  # R(-a) (q - p)
    bar = (np.abs(bx) <= 60) & (by >= 0) & (by <= 30)
    stem = (np.abs(bx) <= 15) & (by >= 30) & (by <= 120)
    return bar | stem


def grid_coverage(block_pose, goal_pose, h: float = 0.25, seed: int = 0) -> float:
    """Fraction of the goal T covered by the block T, by jittered-grid sampling of the goal T."""
    rng = np.random.default_rng(seed)
    samples = []
    for (x0, x1), (y0, y1) in (((-60, 60), (0, 30)), ((-15, 15), (30, 120))):
        xs = np.arange(x0, x1, h)
        ys = np.arange(y0, y1, h)
        X, Y = np.meshgrid(xs, ys)
        P = np.stack([X.ravel(), Y.ravel()], axis=1) + rng.uniform(0, h, (X.size, 2))
        samples.append(P)
    body = np.concatenate(samples)  # equal cell areas: uniform over the goal T
    gx, gy, ga = goal_pose
    c, s = math.cos(ga), math.sin(ga)
    world = body @ np.array([[c, s], [-s, c]]) + np.array([gx, gy])
    return float(in_t(world, block_pose).mean())


def test_t_vertices_and_area_by_hand():
    assert G.T_VERTICES.shape == (2, 4, 2)
    assert G.polygon_area(G.T_VERTICES[0]) == pytest.approx(120 * 30)
    assert G.polygon_area(G.T_VERTICES[1]) == pytest.approx(30 * 90)
    assert G.T_AREA == pytest.approx(120 * 30 + 30 * 90)
    bar_centroid = G.T_VERTICES[0].mean(axis=0)
    stem_centroid = G.T_VERTICES[1].mean(axis=0)
    assert tuple((bar_centroid + stem_centroid) / 2) == pytest.approx(G.T_CENTER_OF_GRAVITY)
    assert G.T_CENTER_OF_GRAVITY == (0.0, 45.0)
    assert G.GOAL_POSE == pytest.approx((256.0, 256.0, math.pi / 4))


def test_t_polygons_rotate_then_translate():
    pose = (100.0, 50.0, math.pi / 2)
    polys = G.t_polygons(pose)
    # R(π/2) (x, y) = (-y, x)
    expected = np.stack([-G.T_VERTICES[..., 1], G.T_VERTICES[..., 0]], axis=-1) + [100.0, 50.0]
    np.testing.assert_allclose(polys, expected, atol=1e-12)
    kp = np.stack([-G.T_KEYPOINTS[:, 1], G.T_KEYPOINTS[:, 0]], axis=-1) + [100.0, 50.0]
    np.testing.assert_allclose(G.t_keypoints(pose), kp, atol=1e-12)
    poses = np.array([pose, (3.0, -4.0, 0.3), (250.0, 260.0, -2.0)])
    batch = G.t_keypoints_batch(poses)
    for p, b in zip(poses, batch, strict=True):
        np.testing.assert_allclose(b, G.t_keypoints(p), atol=1e-12)


def test_clip_convex_closed_forms():
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=float)
    moved = square + [0.3, 0.6]
    assert G.convex_intersection_area(square, moved) == pytest.approx(0.7 * 0.4)
    # a unit square and its 45° rotation about its centre meet in a regular octagon
    c, s = math.cos(math.pi / 4), math.sin(math.pi / 4)
    rotated = (square - 0.5) @ np.array([[c, s], [-s, c]]) + 0.5
    assert G.convex_intersection_area(square, rotated) == pytest.approx(2 * (math.sqrt(2) - 1))
    far = square + [5.0, 0.0]
    assert G.convex_intersection_area(square, far) == 0.0


def test_coverage_is_one_at_goal_and_zero_far_away():
    assert G.coverage(G.GOAL_POSE, G.GOAL_POSE) == pytest.approx(1.0, abs=1e-12)
    assert G.coverage((100.0, 80.0, 0.3), (100.0, 80.0, 0.3)) == pytest.approx(1.0, abs=1e-12)
    assert G.coverage((60.0, 60.0, 0.0)) == 0.0
    assert G.coverage((256.0, 256.0 + 400.0, math.pi / 4)) == 0.0
    # a full turn is the same pose
    assert G.coverage((256.0, 256.0, math.pi / 4 + 2 * math.pi)) == pytest.approx(1.0, abs=1e-12)


def test_coverage_matches_fine_grid_estimate_on_random_poses():
    rng = np.random.default_rng(0)
    for k in range(12):
        pose = (256 + rng.normal(0, 25), 256 + rng.normal(0, 25), math.pi / 4 + rng.normal(0, 0.6))
        exact = G.coverage(pose, G.GOAL_POSE)
        estimate = grid_coverage(pose, G.GOAL_POSE, seed=k)
        assert exact == pytest.approx(estimate, abs=3e-3), (pose, exact, estimate)
    # and for a goal elsewhere
    goal = (150.0, 300.0, -1.0)
    pose = (160.0, 290.0, -0.7)
    assert G.coverage(pose, goal) == pytest.approx(grid_coverage(pose, goal), abs=3e-3)


def test_coverage_is_symmetric_between_equal_shapes():
    rng = np.random.default_rng(1)
    for _ in range(20):
        a = (256 + rng.normal(0, 20), 256 + rng.normal(0, 20), rng.uniform(-np.pi, np.pi))
        b = (256 + rng.normal(0, 20), 256 + rng.normal(0, 20), rng.uniform(-np.pi, np.pi))
        assert G.coverage(a, b) == pytest.approx(G.coverage(b, a), abs=1e-12)


def test_one_pixel_shift_costs_boundary_length_over_two():
    # Shifting a shape by δ along u loses δ/2 ∮|n·u| ds of its area (first order). The T's
    # boundary has 240 units of edges along each body axis; at 45° every edge has |n·x| = cos 45°.
    loss = 1.0 * (480 * math.cos(math.pi / 4)) / 2 / G.T_AREA
    shifted = (257.0, 256.0, math.pi / 4)
    assert 1 - G.coverage(shifted) == pytest.approx(loss, rel=0.02)
    assert 1 - G.coverage(shifted) == pytest.approx(0.027, abs=0.001)


@pytest.mark.parametrize("bad", [(1.0, 2.0), (1.0, 2.0, float("nan")), "abc", np.zeros((2, 3))])
def test_coverage_rejects_bad_poses(bad):
    with pytest.raises(ValueError, match="block_pose"):
        G.coverage(bad, G.GOAL_POSE)
    with pytest.raises(ValueError, match="goal_pose"):
        G.coverage(G.GOAL_POSE, bad)


def test_clip_convex_rejects_bad_polygons():
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=float)
    with pytest.raises(ValueError, match="subject"):
        G.clip_convex(np.zeros((2, 2)), square)
    with pytest.raises(ValueError, match="counter-clockwise"):
        G.clip_convex(square, square[::-1])
