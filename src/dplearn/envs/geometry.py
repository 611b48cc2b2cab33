"""The T block's shape, its poses, and exact coverage of the goal by polygon clipping.

Introduced in chapter 5.

The T is the union of two boxes that meet along a segment and do not overlap (body frame, units of
the 512 × 512 workspace; the body origin is the middle of the bar's long edge)::

    bar  : (-60, 0), (60, 0), (60, 30), (-60, 30)        area 120 × 30 = 3600
    stem : (-15, 30), (15, 30), (15, 120), (-15, 120)    area  30 × 90 = 2700

A pose ``(x, y, θ)`` places the body frame in the world: a body point ``v`` lands at
``R(θ) v + (x, y)`` with ``R(θ) = [[cos θ, -sin θ], [sin θ, cos θ]]``.

Coverage of the goal by the block is ``area(block ∩ goal) / area(goal)``. Since the two boxes of a
T do not overlap, ``area(block ∩ goal) = Σ_{i,j} area(B_i ∩ G_j)`` over the block's boxes ``B_i``
and the goal's boxes ``G_j``; each term is the area of the intersection of two convex
quadrilaterals, which Sutherland–Hodgman clipping computes exactly (up to floating point).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from dplearn.envs.benchmark import GOAL_POSE
from dplearn.validate import integer

__all__ = [
    "T_VERTICES",
    "T_AREA",
    "T_CENTER_OF_GRAVITY",
    "T_RADIUS",
    "GOAL_POSE",
    "t_polygons",
    "T_KEYPOINTS",
    "t_keypoints",
    "t_keypoints_batch",
    "farthest_point_keypoints",
    "polygon_area",
    "clip_convex",
    "convex_intersection_area",
    "coverage",
]

#: Body-frame vertices of the T's two boxes, shape (2, 4, 2): ``[bar, stem]``, each
#: counter-clockwise in a y-up frame (positive shoelace area).
T_VERTICES: np.ndarray = np.array(
    [
        [[-60.0, 0.0], [60.0, 0.0], [60.0, 30.0], [-60.0, 30.0]],
        [[-15.0, 30.0], [15.0, 30.0], [15.0, 120.0], [-15.0, 120.0]],
    ]
)
T_VERTICES.setflags(write=False)

#: Area of the T: 120 × 30 + 30 × 90.
T_AREA: float = 6300.0

#: The block's centre of gravity in its body frame: the mean of the two boxes' centroids
#: ``((0, 15) + (0, 75)) / 2`` (the benchmark's convention, not the area-weighted centroid).
T_CENTER_OF_GRAVITY: tuple[float, float] = (0.0, 45.0)

#: The 9 block keypoints of the ``keypoints`` observation, body frame, shape (9, 2): spread over
#: the T by farthest-point sampling, the method the benchmark uses for its 9 (see
#: :func:`farthest_point_keypoints`, which recomputes them). The benchmark starts its sampling
#: from a random pixel and adds a small random shift, so its points differ from these: the
#: observation has the same meaning and size (20 numbers), not the same numbers. Chapter 5
#: draws them.
T_KEYPOINTS: np.ndarray = np.array(
    [[-14.5, 119.5], [59.5, 0.5], [-59.5, 8.5], [2.5, 47.5], [-10.5, 0.5],
     [14.5, 88.5], [24.5, 15.5], [-30.5, 29.5], [-14.5, 74.5]]
)
T_KEYPOINTS.setflags(write=False)

#: Largest distance from the body origin to a point of the T: |(15, 120)|.
T_RADIUS: float = math.hypot(15.0, 120.0)

_Pose = Sequence[float] | np.ndarray
_Poly = list[tuple[float, float]]


def _check_pose(pose: _Pose, name: str) -> tuple[float, float, float]:
    if type(pose) is tuple and len(pose) == 3 and all(type(v) is float for v in pose):
        if math.isfinite(pose[0] + pose[1] + pose[2]):  # fast path for the environment's own poses
            return pose
    try:
        arr = np.asarray(pose, dtype=np.float64)
    except (TypeError, ValueError):
        arr = np.full(1, np.nan)
    if arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be a finite (x, y, angle) triple, got {pose!r}")
    return float(arr[0]), float(arr[1]), float(arr[2])


def _world_boxes(x: float, y: float, angle: float) -> list[_Poly]:
    """The T's two boxes in the world frame as lists of (x, y) tuples (pure Python: fast)."""
    c, s = math.cos(angle), math.sin(angle)
    return [[(c * vx - s * vy + x, s * vx + c * vy + y) for vx, vy in box] for box in _T_LISTS]


_T_LISTS: list[_Poly] = [[(float(vx), float(vy)) for vx, vy in box] for box in T_VERTICES]


def t_polygons(pose: _Pose) -> np.ndarray:
    """World-frame vertices of the T's two boxes at ``pose = (x, y, θ)``.

    Returns an array of shape (2, 4, 2): ``[bar, stem]``, vertex ``k`` of box ``i`` at
    ``R(θ) T_VERTICES[i, k] + (x, y)``. Introduced in chapter 5.
    """
    x, y, angle = _check_pose(pose, "pose")
    return np.array(_world_boxes(x, y, angle))


def t_keypoints(pose: _Pose) -> np.ndarray:
    """The 9 block keypoints :data:`T_KEYPOINTS` at ``pose = (x, y, θ)`` in world coordinates, (9, 2).

    Point ``k`` is ``R(θ) T_KEYPOINTS[k] + (x, y)``. With the agent position they make the
    benchmark's 20-number ``keypoints`` observation. Introduced in chapter 5.
    """
    x, y, angle = _check_pose(pose, "pose")
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    return T_KEYPOINTS @ rot.T + np.array([x, y])


def t_keypoints_batch(poses: np.ndarray) -> np.ndarray:
    """:func:`t_keypoints` of many poses at once: (N, 3) → (N, 9, 2). Introduced in chapter 5."""
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 2 or poses.shape[1] != 3 or not np.all(np.isfinite(poses)):
        raise ValueError(f"poses must be a finite array of shape (N, 3), got shape {poses.shape}")
    c, s = np.cos(poses[:, 2]), np.sin(poses[:, 2])
    kx, ky = T_KEYPOINTS[:, 0], T_KEYPOINTS[:, 1]
    wx = c[:, None] * kx - s[:, None] * ky + poses[:, :1]
    wy = s[:, None] * kx + c[:, None] * ky + poses[:, 1:2]
    return np.stack([wx, wy], axis=-1)


def farthest_point_keypoints(n: int = 9) -> np.ndarray:
    """``n`` keypoints spread over the T by farthest-point sampling, (n, 2) in the body frame.

    The benchmark chooses its block keypoints this way: among the centres of the 1 × 1 cells that
    tile the T (6300 points), start with the one farthest from the centre of gravity (the first
    in row order on a tie), then repeatedly add the point whose distance to the nearest chosen
    point is largest. ``farthest_point_keypoints(9)`` is :data:`T_KEYPOINTS`. Introduced in
    chapter 5.
    """
    n = integer("n", n, low=1, high=6300)
    xs, ys = np.meshgrid(np.arange(-60, 60) + 0.5, np.arange(0, 120) + 0.5, indexing="xy")
    pts = np.stack([xs.ravel(), ys.ravel()], axis=1)
    in_bar = (np.abs(pts[:, 0]) < 60) & (pts[:, 1] < 30)
    in_stem = (np.abs(pts[:, 0]) < 15) & (pts[:, 1] >= 30)
    pts = pts[in_bar | in_stem]
    first = int(np.argmax(np.linalg.norm(pts - np.array(T_CENTER_OF_GRAVITY), axis=1)))
    chosen = [first]
    dist = np.linalg.norm(pts - pts[first], axis=1)
    for _ in range(int(n) - 1):
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(pts - pts[nxt], axis=1))
    return pts[chosen]


def polygon_area(vertices: np.ndarray | Sequence[Sequence[float]]) -> float:
    """Signed shoelace area ``½ Σ_k (x_k y_{k+1} − x_{k+1} y_k)`` of a polygon given as (N, 2).

    Positive for counter-clockwise vertices in a y-up frame. Introduced in chapter 5.
    """
    pts = [(float(p[0]), float(p[1])) for p in vertices]
    return _area(pts)


def _area(pts: _Poly) -> float:
    n = len(pts)
    if n < 3:
        return 0.0
    total = 0.0
    x0, y0 = pts[-1]
    for x1, y1 in pts:
        total += x0 * y1 - x1 * y0
        x0, y0 = x1, y1
    return 0.5 * total


def _clip(subject: _Poly, clip: _Poly) -> _Poly:
    """Sutherland–Hodgman: ``subject ∩ clip`` for a convex counter-clockwise ``clip``."""
    output = subject
    cx0, cy0 = clip[-1]
    for cx1, cy1 in clip:
        if not output:
            return output
        ex, ey = cx1 - cx0, cy1 - cy0
        inp = output
        output = []
        px, py = inp[-1]
        # side > 0: strictly inside the half-plane left of the edge (cx0, cy0) → (cx1, cy1)
        ps = ex * (py - cy0) - ey * (px - cx0)
        for qx, qy in inp:
            qs = ex * (qy - cy0) - ey * (qx - cx0)
            if qs >= 0.0:
                if ps < 0.0:
                    t = ps / (ps - qs)
                    output.append((px + t * (qx - px), py + t * (qy - py)))
                output.append((qx, qy))
            elif ps >= 0.0:
                t = ps / (ps - qs)
                output.append((px + t * (qx - px), py + t * (qy - py)))
            px, py, ps = qx, qy, qs
        cx0, cy0 = cx1, cy1
    return output


def clip_convex(subject: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """Intersection of polygon ``subject`` (N, 2) with convex counter-clockwise ``clip`` (M, 2).

    Sutherland–Hodgman clipping: keep the part of ``subject`` on the inner side of each edge of
    ``clip`` in turn. Returns the vertices of the intersection, shape (K, 2) (K = 0 when empty).
    Introduced in chapter 5.
    """
    subject = np.asarray(subject, dtype=np.float64)
    clip = np.asarray(clip, dtype=np.float64)
    for name, poly in (("subject", subject), ("clip", clip)):
        if poly.ndim != 2 or poly.shape[1] != 2 or poly.shape[0] < 3:
            raise ValueError(f"{name} must have shape (N, 2) with N >= 3, got {poly.shape}")
    if _area([tuple(p) for p in clip]) <= 0.0:
        raise ValueError("clip must be a convex polygon with counter-clockwise vertices")
    out = _clip([tuple(p) for p in subject], [tuple(p) for p in clip])
    return np.array(out, dtype=np.float64).reshape(-1, 2)


def convex_intersection_area(a: np.ndarray, b: np.ndarray) -> float:
    """Area of the intersection of two convex counter-clockwise polygons, each (N, 2)."""
    return max(_area([tuple(p) for p in clip_convex(a, b)]), 0.0)


# Bounding circles of the boxes (body frame): centre and radius, for a cheap rejection test.
_BOX_CIRCLES = [
    (
        (float(box[:, 0].mean()), float(box[:, 1].mean())),
        float(np.max(np.hypot(box[:, 0] - box[:, 0].mean(), box[:, 1] - box[:, 1].mean()))),
    )
    for box in T_VERTICES
]


def _intersection_area(
    block: tuple[float, float, float], goal: tuple[float, float, float]
) -> float:
    """area(T at ``block`` ∩ T at ``goal``) = Σ_{i,j} area(B_i ∩ G_j)."""
    bx, by, ba = block
    gx, gy, ga = goal
    bc, bs = math.cos(ba), math.sin(ba)
    gc, gs = math.cos(ga), math.sin(ga)
    centres_b = [(bc * cx - bs * cy + bx, bs * cx + bc * cy + by) for (cx, cy), _ in _BOX_CIRCLES]
    centres_g = [(gc * cx - gs * cy + gx, gs * cx + gc * cy + gy) for (cx, cy), _ in _BOX_CIRCLES]
    radii = [r for _, r in _BOX_CIRCLES]
    boxes_b = boxes_g = None
    total = 0.0
    for i in range(2):
        for j in range(2):
            dx = centres_b[i][0] - centres_g[j][0]
            dy = centres_b[i][1] - centres_g[j][1]
            if dx * dx + dy * dy >= (radii[i] + radii[j]) ** 2:
                continue  # bounding circles apart: the boxes cannot overlap
            if boxes_b is None:
                boxes_b = _world_boxes(bx, by, ba)
                boxes_g = _world_boxes(gx, gy, ga)
            total += _area(_clip(boxes_b[i], boxes_g[j]))
    return total


def coverage(block_pose: _Pose, goal_pose: _Pose = GOAL_POSE) -> float:
    """Fraction of the goal T covered by the block T: ``area(block ∩ goal) / area(goal)`` ∈ [0, 1].

    ``block_pose`` and ``goal_pose`` are ``(x, y, θ)`` body poses. The intersection area is exact
    polygon geometry: ``Σ_{i,j} area(B_i ∩ G_j)`` over the boxes of the two T's, each term by
    convex clipping. Equals 1 when the poses coincide and 0 when the T's are apart.
    Introduced in chapter 5.
    """
    block = _check_pose(block_pose, "block_pose")
    goal = _check_pose(goal_pose, "goal_pose")
    return min(max(_intersection_area(block, goal) / T_AREA, 0.0), 1.0)
