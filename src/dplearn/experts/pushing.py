"""Pushing the T with a disc: where the pusher can touch the block, and how the block then moves.

Introduced in chapter 5.

Push-T's block lies on a floor without friction, and ``space.damping = 0`` removes its velocity at
every physics step; the pusher is a frictionless disc of radius ``r = 15``. So the block moves only
while it is pushed, and then by the smallest motion that keeps the disc out of it: pushing is
*quasi-static*. A push at a contact point ``p`` (body frame) with inward unit normal ``n`` (pointing
into the block) applies the unit wrench

    w = (n_x, n_y, τ),   τ = (p − c) × n = (p − c)_x n_y − (p − c)_y n_x

about the centre of gravity ``c = (0, 45)``. The contact impulse ``j`` gives the block the velocity
``ξ = j M⁻¹ w`` with ``M = diag(m, m, I)`` (mass 1, moment of inertia 3000), and ``j`` is just
large enough that the contact point keeps up with the pusher: ``wᵀ ξ = u`` where ``u`` is the
pusher's speed along ``n``. Per unit of pusher motion along ``n`` the block therefore moves by the
*twist*

    ξ = M⁻¹ w / (wᵀ M⁻¹ w)        (body-frame translation of c, then rotation)       (1)

and pusher motion along the face only slides. Three facts follow that the expert relies on:

- a push through the centre of gravity (``τ = 0``) translates the block along ``n`` without
  turning it; an off-centre push turns it as well, the more the longer the lever ``τ``;
- the translation is always along ``n``: one push never turns the block in place, pure rotation
  takes two pushes;
- at a convex corner the disc can push along any normal between the two faces' normals, so
  corners give the diagonal directions the faces lack.

This module lists the candidate contacts (:func:`contact_candidates`), their twists
(:func:`push_twist`), the distance from a point to the T (:func:`distance_to_t`), and a closed path
around the block at a given clearance (:func:`offset_contour`) along which the pusher travels
between contacts without touching the block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dplearn.envs.geometry import T_CENTER_OF_GRAVITY, T_VERTICES
from dplearn.envs.pusht import AGENT_RADIUS, BLOCK_MASS, BLOCK_MOMENT

__all__ = [
    "T_OUTLINE",
    "Contacts",
    "contact_candidates",
    "distance_to_t",
    "offset_contour",
    "push_twist",
]

#: The outline of the T (union of bar and stem) in the body frame, counter-clockwise, shape (8, 2):
#: the bar's top edge, its right end, the right underside, the stem's right side, its end, its left
#: side, the left underside and the bar's left end. Vertices 3 and 6 are the two concave corners.
T_OUTLINE: np.ndarray = np.array(
    [
        T_VERTICES[0, 0], T_VERTICES[0, 1], T_VERTICES[0, 2], T_VERTICES[1, 1],
        T_VERTICES[1, 2], T_VERTICES[1, 3], T_VERTICES[1, 0], T_VERTICES[0, 3],
    ],
    dtype=np.float64,
)
T_OUTLINE.setflags(write=False)

_BOXES = [
    (float(b[:, 0].min()), float(b[:, 0].max()), float(b[:, 1].min()), float(b[:, 1].max()))
    for b in T_VERTICES
]


def distance_to_t(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance from body-frame ``points`` (..., 2) to the T, and the nearest T points.

    Returns ``(distance (...,), nearest (..., 2))``; the distance is 0 inside the block. The T is
    the union of two axis-aligned boxes in its body frame, so the distance is the smaller of the
    two point-to-box distances, each ``|q − clip(q, box)|``. Introduced in chapter 5.
    """
    q = np.asarray(points, dtype=np.float64)
    if q.ndim < 1 or q.shape[-1] != 2:
        raise ValueError(f"points must have shape (..., 2), got {q.shape}")
    best = nearest = None
    for x0, x1, y0, y1 in _BOXES:
        p = np.stack([np.clip(q[..., 0], x0, x1), np.clip(q[..., 1], y0, y1)], axis=-1)
        d = np.linalg.norm(q - p, axis=-1)
        if best is None:
            best, nearest = d, p
        else:
            closer = d < best
            best = np.where(closer, d, best)
            nearest = np.where(closer[..., None], p, nearest)
    return best, nearest


def push_twist(
    points: np.ndarray,
    normals: np.ndarray,
    center_of_gravity: tuple[float, float] = T_CENTER_OF_GRAVITY,
    mass: float = BLOCK_MASS,
    moment: float = BLOCK_MOMENT,
) -> np.ndarray:
    """The block's body-frame twist per unit of pusher motion along the contact normal, eq. (1).

    Args:
        points: contact points on the block, body frame, shape (K, 2).
        normals: inward unit normals at those points (pointing into the block), shape (K, 2).
        center_of_gravity, mass, moment: the block's (Push-T's by default).

    Returns:
        (K, 3): ``(v_x, v_y, ω)``, the displacement of the centre of gravity (body frame) and the
        rotation (radians) while the pusher advances by 1 along ``n``. Introduced in chapter 5.
    """
    p = np.asarray(points, dtype=np.float64)
    n = np.asarray(normals, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"points must have shape (K, 2), got {p.shape}")
    if n.shape != p.shape:
        raise ValueError(f"normals must have the shape of points {p.shape}, got {n.shape}")
    if not np.allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-6):
        raise ValueError("normals must be unit vectors")
    if mass <= 0 or moment <= 0:
        raise ValueError(f"mass and moment must be positive, got {mass} and {moment}")
    r = p - np.asarray(center_of_gravity, dtype=np.float64)
    tau = r[:, 0] * n[:, 1] - r[:, 1] * n[:, 0]
    mobility = np.column_stack([n[:, 0] / mass, n[:, 1] / mass, tau / moment])  # M⁻¹ w
    w_m_w = 1.0 / mass + tau**2 / moment  # wᵀ M⁻¹ w
    return mobility / w_m_w[:, None]


@dataclass(frozen=True)
class Contacts:
    """Candidate contacts of the pusher disc with the T, in order along the outline.

    All arrays are in the body frame and share their first axis ``K``.

    Attributes:
        point: (K, 2) contact point on the block.
        normal: (K, 2) inward unit normal (the direction the pusher pushes).
        pusher: (K, 2) the disc's centre when it touches there, ``point − r · normal``.
        edge: (K,) index ``e`` of the outline edge ``T_OUTLINE[e] → T_OUTLINE[e+1]`` the contact
            belongs to (a corner belongs to the edge before it).
        side: (K,) which stretch between the two concave corners the contact lies on: the disc
            can slide from one contact to another while touching the block only within a stretch.
        arc: (K,) the distance the disc's centre travels along the outline to get there.
        twist: (K, 3) :func:`push_twist` of each contact.
    """

    point: np.ndarray
    normal: np.ndarray
    pusher: np.ndarray
    edge: np.ndarray
    side: np.ndarray
    arc: np.ndarray
    twist: np.ndarray

    def __len__(self) -> int:
        return len(self.point)


def contact_candidates(
    radius: float = AGENT_RADIUS, spacing: float = 1.0, corner_step_deg: float = 3.0
) -> Contacts:
    """Contacts of a disc of ``radius`` with the T: along every face and around every convex corner.

    Face contacts are spaced ``spacing`` apart; where the disc would also cut into the other box
    (near the two concave corners) the contact is left out. At a convex corner the normal sweeps
    from one face's normal to the next in steps of ``corner_step_deg``. Introduced in chapter 5.
    """
    if radius <= 0 or spacing <= 0 or corner_step_deg <= 0:
        raise ValueError(
            "radius, spacing and corner_step_deg must be positive, got "
            f"{radius}, {spacing}, {corner_step_deg}"
        )
    outline = T_OUTLINE
    n_vertices = len(outline)

    def outward(i: int) -> np.ndarray:
        d = outline[(i + 1) % n_vertices] - outline[i % n_vertices]
        d = d / np.linalg.norm(d)
        return np.array([d[1], -d[0]])  # right of the direction of travel: outside (CCW outline)

    points, normals, edges, sides = [], [], [], []
    side = 0
    step = np.deg2rad(corner_step_deg)
    for i in range(n_vertices):
        a, b = outline[i], outline[(i + 1) % n_vertices]
        n_out = outward(i)
        length = float(np.linalg.norm(b - a))
        for t in np.arange(0.0, length + 1e-9, spacing) / length:
            p = a + t * (b - a)
            if distance_to_t(p + radius * n_out)[0] >= radius - 1e-6:
                points.append(p)
                normals.append(-n_out)
                edges.append(i)
                sides.append(side)
        n_next = outward(i + 1)
        if n_out[0] * n_next[1] - n_out[1] * n_next[0] > 0:  # convex corner: the normal turns CCW
            a0 = np.arctan2(n_out[1], n_out[0])
            a1 = a0 + np.arccos(np.clip(n_out @ n_next, -1.0, 1.0))
            for angle in np.arange(a0 + step, a1 - 1e-9, step):
                points.append(b.copy())
                normals.append(-np.array([np.cos(angle), np.sin(angle)]))
                edges.append(i)
                sides.append(side)
        else:  # concave corner: the disc cannot slide past it
            side += 1
    point = np.array(points)
    normal = np.array(normals)
    side_arr = np.array(sides)
    side_arr[side_arr == side] = 0  # the last stretch continues the first one
    pusher = point - radius * normal
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pusher, axis=0), axis=1))])
    return Contacts(
        point=point, normal=normal, pusher=pusher, edge=np.array(edges), side=side_arr,
        arc=arc, twist=push_twist(point, normal),
    )


def offset_contour(clearance: float, n: int = 720) -> tuple[np.ndarray, np.ndarray]:
    """The closed curve of points at distance ``clearance`` from the T, body frame.

    For ``clearance`` at least 15 both boxes, grown by ``clearance``, contain the centre of
    gravity, so their union is star-shaped about it and each ray from it leaves the curve once;
    the curve is sampled on ``n`` rays at angles ``2πk/n`` (bisection along each ray).

    Returns:
        ``(points (n, 2), arc (n + 1,))``: the points, counter-clockwise, and the cumulative arc
        length along the closed curve (``arc[n]`` is its length). Introduced in chapter 5.
    """
    if clearance < 15.0:
        raise ValueError(f"clearance must be at least 15 (the T's half stem width), got {clearance}")
    if n < 8:
        raise ValueError(f"n must be at least 8, got {n}")
    center = np.asarray(T_CENTER_OF_GRAVITY, dtype=np.float64)
    phi = np.arange(n) * 2 * np.pi / n
    u = np.stack([np.cos(phi), np.sin(phi)], axis=-1)
    lo, hi = np.zeros(n), np.full(n, 400.0)
    for _ in range(45):
        mid = 0.5 * (lo + hi)
        outside = distance_to_t(center + mid[:, None] * u)[0] > clearance
        hi = np.where(outside, mid, hi)
        lo = np.where(outside, lo, mid)
    points = center + hi[:, None] * u
    closed = np.vstack([points, points[:1]])
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(closed, axis=0), axis=1))])
    return points, arc
