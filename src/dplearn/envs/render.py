"""A small numpy rasteriser for Push-T: top-down images of the walls, goal, block and agent.

Introduced in chapter 5.

Every shape is convex (boxes, discs, capsules), so each one is drawn from a signed distance
``d(p)`` (positive inside, in workspace units) evaluated at pixel centres: the pixel's coverage is
``α = clip(d · s + ½, 0, 1)`` with ``s = size / 512`` pixels per unit, which is the exact area
fraction for a straight edge crossing the pixel and anti-aliases the image without
supersampling. A shape is composited over the image as ``img ← img + α (colour − img)``, only
inside its bounding box.

The picture follows the benchmark's look: white background, light-grey walls, the goal T in light
green, the block in light slate grey with a darker 4-unit outline, the agent as a royal-blue disc
with a lighter centre. Image row ``i`` is workspace ``y ≈ (i + ½) / s`` and column ``j`` is
``x ≈ (j + ½) / s`` (y points down the image, as in the reference renderer).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from dplearn.envs.geometry import GOAL_POSE, T_VERTICES

__all__ = [
    "render_state",
    "render_states",
    "BACKGROUND_COLOR",
    "WALL_COLOR",
    "GOAL_COLOR",
    "BLOCK_COLOR",
    "BLOCK_OUTLINE_COLOR",
    "AGENT_COLOR",
    "AGENT_OUTLINE_COLOR",
    "ACTION_COLOR",
]

WORKSPACE = 512.0
BACKGROUND_COLOR = (255, 255, 255)
WALL_COLOR = (211, 211, 211)  # LightGray
GOAL_COLOR = (144, 238, 144)  # LightGreen
BLOCK_OUTLINE_COLOR = (119, 136, 153)  # LightSlateGray
BLOCK_COLOR = (142, 163, 183)  # LightSlateGray lightened by 1.2
AGENT_OUTLINE_COLOR = (65, 105, 225)  # RoyalBlue
AGENT_COLOR = (78, 126, 255)  # RoyalBlue lightened by 1.2
ACTION_COLOR = (255, 0, 0)

_WALLS = (
    ((5.0, 506.0), (5.0, 5.0)),
    ((5.0, 5.0), (506.0, 5.0)),
    ((506.0, 5.0), (506.0, 506.0)),
    ((5.0, 506.0), (506.0, 506.0)),
)
_WALL_RADIUS = 2.0
_AGENT_RADIUS = 15.0
_AGENT_RING = 4.0  # width of the darker rim of the agent disc
_OUTLINE = 2.0  # half-width of the block's outline: the outline band is d ∈ [-2, 2]


class _Canvas:
    """A float32 RGB image of side ``size`` covering the 512 × 512 workspace."""

    def __init__(self, img: np.ndarray):
        self.img = img
        self.size = img.shape[0]
        self.scale = self.size / WORKSPACE
        self.centres = (np.arange(self.size, dtype=np.float64) + 0.5) / self.scale

    def window(self, lo_x: float, hi_x: float, lo_y: float, hi_y: float):
        """Pixel index ranges whose centres may be touched by a shape in this world bbox."""
        s, n = self.scale, self.size
        j0 = max(int(math.floor(lo_x * s - 1.0)), 0)
        j1 = min(int(math.ceil(hi_x * s + 1.0)), n)
        i0 = max(int(math.floor(lo_y * s - 1.0)), 0)
        i1 = min(int(math.ceil(hi_y * s + 1.0)), n)
        if j0 >= j1 or i0 >= i1:
            return None
        return i0, i1, j0, j1

    def paint(self, win, alpha: np.ndarray, color: Sequence[float]) -> None:
        i0, i1, j0, j1 = win
        region = self.img[i0:i1, j0:j1]
        region += alpha[..., None] * (np.asarray(color, dtype=np.float32) - region)

    def coverage(self, d: np.ndarray) -> np.ndarray:
        return np.clip(d * self.scale + 0.5, 0.0, 1.0).astype(np.float32)

    # -- signed distances on a window (positive inside) ------------------------------------
    def polygon_distance(self, poly: np.ndarray, win) -> np.ndarray:
        """min over edges of the inward distance to the edge's line (exact inside a convex polygon)."""
        i0, i1, j0, j1 = win
        xs = self.centres[j0:j1][None, :]
        ys = self.centres[i0:i1][:, None]
        d = None
        for k in range(len(poly)):
            ax, ay = poly[k - 1]
            bx, by = poly[k]
            ex, ey = bx - ax, by - ay
            norm = math.hypot(ex, ey)
            nx, ny = -ey / norm, ex / norm  # left normal: inward for counter-clockwise vertices
            dk = (xs - ax) * nx + (ys - ay) * ny
            d = dk if d is None else np.minimum(d, dk)
        return d

    def disc_distance(self, cx: float, cy: float, r: float, win) -> np.ndarray:
        i0, i1, j0, j1 = win
        xs = self.centres[j0:j1][None, :] - cx
        ys = self.centres[i0:i1][:, None] - cy
        return r - np.sqrt(xs * xs + ys * ys)

    def capsule_distance(self, a, b, r: float, win) -> np.ndarray:
        i0, i1, j0, j1 = win
        xs = self.centres[j0:j1][None, :] - a[0]
        ys = self.centres[i0:i1][:, None] - a[1]
        ex, ey = b[0] - a[0], b[1] - a[1]
        t = np.clip((xs * ex + ys * ey) / (ex * ex + ey * ey), 0.0, 1.0)
        dx, dy = xs - t * ex, ys - t * ey
        return r - np.sqrt(dx * dx + dy * dy)

    # -- shapes ---------------------------------------------------------------------------
    def fill_polygon(self, poly: np.ndarray, color, grow: float = 0.0) -> None:
        win = self.window(
            poly[:, 0].min() - grow,
            poly[:, 0].max() + grow,
            poly[:, 1].min() - grow,
            poly[:, 1].max() + grow,
        )
        if win is not None:
            self.paint(win, self.coverage(self.polygon_distance(poly, win) + grow), color)

    def outlined_polygon(self, poly: np.ndarray, fill, outline, half_width: float) -> None:
        """Outline band ``d ∈ [-w, w]`` around the edges, ``fill`` inside ``d > w``."""
        w = half_width
        win = self.window(
            poly[:, 0].min() - w, poly[:, 0].max() + w, poly[:, 1].min() - w, poly[:, 1].max() + w
        )
        if win is None:
            return
        d = self.polygon_distance(poly, win)
        self.paint(win, self.coverage(d + w), outline)
        self.paint(win, self.coverage(d - w), fill)

    def disc(self, cx: float, cy: float, r: float, color) -> None:
        win = self.window(cx - r, cx + r, cy - r, cy + r)
        if win is not None:
            self.paint(win, self.coverage(self.disc_distance(cx, cy, r, win)), color)

    def capsule(self, a, b, r: float, color) -> None:
        win = self.window(
            min(a[0], b[0]) - r, max(a[0], b[0]) + r, min(a[1], b[1]) - r, max(a[1], b[1]) + r
        )
        if win is not None:
            self.paint(win, self.coverage(self.capsule_distance(a, b, r, win)), color)

    def cross(
        self, cx: float, cy: float, half_length_px: float, half_width_px: float, color
    ) -> None:
        """An axis-aligned '+' marker, sized in pixels."""
        L, W = half_length_px / self.scale, half_width_px / self.scale
        for hx, hy in ((L, W), (W, L)):
            box = np.array(
                [[cx - hx, cy - hy], [cx + hx, cy - hy], [cx + hx, cy + hy], [cx - hx, cy + hy]]
            )
            self.fill_polygon(box, color)


def _t_world(pose: Sequence[float]) -> np.ndarray:
    x, y, angle = (float(v) for v in pose)
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    return T_VERTICES @ rot.T + np.array([x, y])


_BACKGROUNDS: OrderedDict[tuple, np.ndarray] = OrderedDict()


def _background(size: int, goal_pose: tuple[float, float, float]) -> np.ndarray:
    """White canvas with the goal T and the walls (cached per size and goal)."""
    key = (size, goal_pose)
    img = _BACKGROUNDS.get(key)
    if img is None:
        canvas = _Canvas(np.empty((size, size, 3), dtype=np.float32))
        canvas.img[...] = BACKGROUND_COLOR
        for box in _t_world(goal_pose):
            canvas.fill_polygon(box, GOAL_COLOR)
        for a, b in _WALLS:
            canvas.capsule(a, b, _WALL_RADIUS, WALL_COLOR)
        img = canvas.img
        img.setflags(write=False)
        _BACKGROUNDS[key] = img
        if len(_BACKGROUNDS) > 16:
            _BACKGROUNDS.popitem(last=False)
    return img


def _check_size(size) -> int:
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 8:
        raise ValueError(f"size must be an integer of at least 8 pixels, got {size!r}")
    return int(size)


def render_state(
    state: Sequence[float] | np.ndarray,
    size: int = 96,
    goal_pose: Sequence[float] = GOAL_POSE,
    action: Sequence[float] | np.ndarray | None = None,
) -> np.ndarray:
    """Top-down image of Push-T in ``state = (agent x, agent y, block x, block y, block angle)``.

    Returns a ``(size, size, 3)`` uint8 RGB array: the goal T at ``goal_pose`` in light green, the
    walls, the agent disc (radius 15) and the block. If ``action`` (a target ``(x, y)``) is given,
    a red cross marks it, as in the reference's rendered videos (observations carry no marker).
    Introduced in chapter 5.
    """
    size = _check_size(size)
    st = np.asarray(state, dtype=np.float64)
    if st.shape != (5,) or not np.all(np.isfinite(st)):
        raise ValueError(
            "state must be 5 finite numbers (agent x, agent y, block x, block y, block angle), "
            f"got shape {st.shape}"
        )
    goal = np.asarray(goal_pose, dtype=np.float64)
    if goal.shape != (3,) or not np.all(np.isfinite(goal)):
        raise ValueError(f"goal_pose must be a finite (x, y, angle) triple, got {goal_pose!r}")
    canvas = _Canvas(_background(size, tuple(float(v) for v in goal)).copy())
    ax, ay = float(st[0]), float(st[1])
    # Agent first, then block: the reference draws shapes in the order they were added.
    canvas.disc(ax, ay, _AGENT_RADIUS, AGENT_OUTLINE_COLOR)
    canvas.disc(ax, ay, _AGENT_RADIUS - _AGENT_RING, AGENT_COLOR)
    for box in _t_world(st[2:5]):
        canvas.outlined_polygon(box, BLOCK_COLOR, BLOCK_OUTLINE_COLOR, _OUTLINE)
    if action is not None:
        act = np.asarray(action, dtype=np.float64)
        if act.shape != (2,) or not np.all(np.isfinite(act)):
            raise ValueError(f"action must be a finite (x, y) target, got {action!r}")
        half_length = max(4.0 / 96 * size, 1.0)
        half_width = max(0.5 / 96 * size, 0.5)
        canvas.cross(float(act[0]), float(act[1]), half_length, half_width, ACTION_COLOR)
    return np.rint(canvas.img).astype(np.uint8)


def render_states(
    states: np.ndarray, size: int = 96, goal_pose: Sequence[float] = GOAL_POSE
) -> np.ndarray:
    """:func:`render_state` for each row of ``states`` (N, 5); returns (N, size, size, 3) uint8."""
    states = np.asarray(states, dtype=np.float64)
    if states.ndim != 2 or states.shape[1] != 5:
        raise ValueError(f"states must have shape (N, 5), got {states.shape}")
    size = _check_size(size)
    out = np.empty((len(states), size, size, 3), dtype=np.uint8)
    for k, st in enumerate(states):
        out[k] = render_state(st, size=size, goal_pose=goal_pose)
    return out
