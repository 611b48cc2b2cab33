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

Two cameras look at the same scene (chapter 9):

- ``"top"`` (:func:`render_state`): the benchmark's fixed top-down view of the whole 512 × 512
  workspace, ``s = size / 512`` (96 px: 0.1875 px per unit, 5.3 units per pixel);
- ``"wrist"`` (:func:`render_wrist`): a camera that travels with the pusher and looks straight down
  on its neighbourhood, a :data:`WRIST_FIELD` = 128-unit square around the pusher drawn on the same
  number of pixels, so at 4× the top view's resolution (96 px: 0.75 px per unit). It sees the
  pusher at the centre, the part of the block (and goal, and walls) within ±64 units, and white
  beyond the workspace. The camera does not rotate (the pusher is a disc), and its window snaps to
  its own pixel grid (see :func:`wrist_window`): the picture is exactly a crop of a top-down render
  at the wrist's resolution, and the pusher is drawn within half a pixel of the image centre at its
  true position, so nothing about the scene is lost to the snapping.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from dplearn import validate
from dplearn.envs.benchmark import GOAL_POSE, WORKSPACE_SIZE
from dplearn.envs.geometry import T_VERTICES

__all__ = [
    "render_state",
    "render_states",
    "render_wrist",
    "render_camera",
    "render_cameras",
    "wrist_window",
    "CAMERAS",
    "WRIST_FIELD",
    "BACKGROUND_COLOR",
    "WALL_COLOR",
    "GOAL_COLOR",
    "BLOCK_COLOR",
    "BLOCK_OUTLINE_COLOR",
    "AGENT_COLOR",
    "AGENT_OUTLINE_COLOR",
    "ACTION_COLOR",
]

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

#: The cameras :func:`render_camera` knows: the benchmark's top-down view and the pusher-centred one.
CAMERAS = ("top", "wrist")
#: Side, in workspace units, of the square the wrist camera sees around the pusher.
WRIST_FIELD = 128.0


class _Canvas:
    """A float32 RGB image, stored planar ``(3, H, W)`` (compositing then runs over whole rows of
    pixels, not over triples of channels): pixel (i, j) has its centre at world
    ``(x0 + (j + ½) / scale, y0 + (i + ½) / scale)``. By default the image covers the 512 × 512
    workspace (``x0 = y0 = 0``, ``scale = size / 512``)."""

    def __init__(self, img: np.ndarray, origin: tuple[float, float] = (0.0, 0.0), scale: float | None = None):
        self.img = img
        self.size = img.shape[1]
        self.scale = self.size / WORKSPACE_SIZE if scale is None else float(scale)
        self.x0, self.y0 = float(origin[0]), float(origin[1])
        self.xs = self.x0 + _centres(img.shape[2], self.scale)
        self.ys = self.y0 + _centres(img.shape[1], self.scale)

    def window(self, lo_x: float, hi_x: float, lo_y: float, hi_y: float):
        """Pixel index ranges whose centres may be touched by a shape in this world bbox."""
        s = self.scale
        j0 = max(int(math.floor((lo_x - self.x0) * s - 1.0)), 0)
        j1 = min(int(math.ceil((hi_x - self.x0) * s + 1.0)), self.img.shape[2])
        i0 = max(int(math.floor((lo_y - self.y0) * s - 1.0)), 0)
        i1 = min(int(math.ceil((hi_y - self.y0) * s + 1.0)), self.img.shape[1])
        if j0 >= j1 or i0 >= i1:
            return None
        return i0, i1, j0, j1

    def paint(self, win, alpha: np.ndarray, color: Sequence[float]) -> None:
        i0, i1, j0, j1 = win
        region = self.img[:, i0:i1, j0:j1]
        region += alpha * (_planar(color) - region)

    def coverage(self, d: np.ndarray, offset: float = 0.0) -> np.ndarray:
        """α = clip((d + offset) · s + ½, 0, 1) as float32 (``d`` is overwritten)."""
        d *= self.scale
        d += 0.5 + offset * self.scale
        np.maximum(d, 0.0, out=d)
        np.minimum(d, 1.0, out=d)
        return d.astype(np.float32)

    # -- signed distances on a window (positive inside) ------------------------------------
    def polygon_distance(self, poly: np.ndarray, win) -> np.ndarray:
        """min over edges of the inward distance to the edge's line (exact inside a convex polygon).

        Edge k runs from vertex k − 1 to vertex k; its left normal ``n`` points inside for
        counter-clockwise vertices, and the distance is ``(p − a) · n``, all edges at once."""
        i0, i1, j0, j1 = win
        a = poly[_previous(len(poly))]
        e = (poly - a) / np.sqrt(((poly - a) ** 2).sum(axis=1, keepdims=True))
        dx = (self.xs[j0:j1] - a[:, 0:1]) * -e[:, 1:2]  # (K, w): normal (-e_y, e_x)
        dy = (self.ys[i0:i1] - a[:, 1:2]) * e[:, 0:1]  # (K, h)
        return (dy[:, :, None] + dx[:, None, :]).min(axis=0)

    def disc_distance(self, cx: float, cy: float, r: float, win) -> np.ndarray:
        i0, i1, j0, j1 = win
        xs = self.xs[j0:j1][None, :] - cx
        ys = self.ys[i0:i1][:, None] - cy
        return r - np.sqrt(xs * xs + ys * ys)

    def capsule_distance(self, a, b, r: float, win) -> np.ndarray:
        i0, i1, j0, j1 = win
        xs = self.xs[j0:j1][None, :] - a[0]
        ys = self.ys[i0:i1][:, None] - a[1]
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
            self.paint(win, self.coverage(self.polygon_distance(poly, win), grow), color)

    def outlined_polygon(self, poly: np.ndarray, fill, outline, half_width: float) -> None:
        """Outline band ``d ∈ [-w, w]`` around the edges, ``fill`` inside ``d > w``."""
        w = half_width
        win = self.window(
            poly[:, 0].min() - w, poly[:, 0].max() + w, poly[:, 1].min() - w, poly[:, 1].max() + w
        )
        if win is None:
            return
        d = self.polygon_distance(poly, win)
        self.paint(win, self.coverage(d.copy(), w), outline)
        self.paint(win, self.coverage(d, -w), fill)

    def disc(self, cx: float, cy: float, r: float, color) -> None:
        win = self.window(cx - r, cx + r, cy - r, cy + r)
        if win is not None:
            self.paint(win, self.coverage(self.disc_distance(cx, cy, r, win)), color)

    def composite(self, win, alphas: np.ndarray, colors: np.ndarray) -> None:
        """Paint K layers at once, in order: ``alphas`` (K, h, w) float32 coverages, ``colors`` (K, 3).

        The same as K calls of :meth:`paint`: after layer k the image is ``img (1 − α_k) + α_k c_k``,
        so in the end ``img Π_j (1 − α_j) + Σ_k α_k c_k Π_{j>k} (1 − α_j)`` — one product, one matrix
        product, instead of K passes over the three channels."""
        i0, i1, j0, j1 = win
        region = self.img[:, i0:i1, j0:j1]
        keep = 1.0 - alphas
        weights = alphas.copy()
        through = keep[-1].copy()  # Π_{j > k} (1 − α_j), from the top layer down
        for k in range(len(alphas) - 2, -1, -1):
            weights[k] *= through
            through *= keep[k]
        region *= through
        region += (colors.T @ weights.reshape(len(alphas), -1)).reshape(region.shape)

    def ring_disc(self, cx: float, cy: float, r: float, ring: float, outline, fill) -> None:
        """A disc of radius ``r`` in ``outline`` colour, then one of radius ``r − ring`` in ``fill``
        over it (one distance computation for both)."""
        win = self.window(cx - r, cx + r, cy - r, cy + r)
        if win is not None:
            d = self.disc_distance(cx, cy, r, win)
            alphas = d[None] * self.scale + np.array([0.5, 0.5 - ring * self.scale])[:, None, None]
            self.composite(win, _clip01(alphas), _colors((outline, fill)))

    def outlined_boxes(self, pose: Sequence[float], fill, outline, half_width: float) -> None:
        """The T block at ``pose`` = (x, y, θ): each of its boxes (the bar, then the stem) outlined like
        :meth:`outlined_polygon`, all with one window and one :meth:`composite`.

        The boxes' edge normals and offsets are fixed in the body frame (:data:`_T_EDGES`); the pose
        only rotates them: an edge with inward normal ``n`` through ``a`` (body frame) has, in the
        world, normal ``R n`` and offset ``n · a + (R n) · p``, so ``d(q) = (R n) · q − offset``."""
        x, y, angle = (float(v) for v in pose)
        c, sn = math.cos(angle), math.sin(angle)
        nb, ob = _T_EDGES
        nx, ny = c * nb[..., 0] - sn * nb[..., 1], sn * nb[..., 0] + c * nb[..., 1]  # (P, V) world normals
        off = ob + nx * x + ny * y
        lo_x = lo_y = math.inf
        hi_x = hi_y = -math.inf
        for (bx, by), (hx, hy) in _T_BOXES:  # each box's rotated extent: the block's bounding box
            cx, cy = x + c * bx - sn * by, y + sn * bx + c * by
            ex, ey = hx * abs(c) + hy * abs(sn) + half_width, hx * abs(sn) + hy * abs(c) + half_width
            lo_x, hi_x, lo_y, hi_y = min(lo_x, cx - ex), max(hi_x, cx + ex), min(lo_y, cy - ey), max(hi_y, cy + ey)
        win = self.window(lo_x, hi_x, lo_y, hi_y)
        if win is None:
            return
        i0, i1, j0, j1 = win
        s, w = self.scale, half_width
        # signed distances in pixels, float32 for the big arrays (the small ones are placed in float64)
        dx = (np.multiply.outer(nx * s, self.xs[j0:j1]) - (off * s)[..., None]).astype(np.float32)  # (P, V, w)
        dy = np.multiply.outer(ny * s, self.ys[i0:i1]).astype(np.float32)  # (P, V, h)
        d = (dy[..., :, None] + dx[..., None, :]).min(axis=1)  # (P, h, w)
        alphas = d[:, None] + np.array([0.5 + w * s, 0.5 - w * s], dtype=np.float32)[None, :, None, None]
        self.composite(win, _clip01(alphas.reshape(-1, *d.shape[1:])), _colors((outline, fill) * len(d)))

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


_PLANAR: dict[tuple, np.ndarray] = {}
_CENTRES: dict[tuple, np.ndarray] = {}
_PREVIOUS: dict[int, np.ndarray] = {}


_COLORS: dict[tuple, np.ndarray] = {}


def _colors(colors: tuple) -> np.ndarray:
    """``colors`` as a float32 (K, 3) array (cached)."""
    out = _COLORS.get(colors)
    if out is None:
        out = _COLORS[colors] = np.asarray(colors, dtype=np.float32).reshape(-1, 3)
    return out


def _clip01(x: np.ndarray) -> np.ndarray:
    """``clip(x, 0, 1)`` as float32, in place where it can."""
    np.maximum(x, 0.0, out=x)
    np.minimum(x, 1.0, out=x)
    return x if x.dtype == np.float32 else x.astype(np.float32)


def _centres(n: int, scale: float) -> np.ndarray:
    """``(k + ½) / scale`` for k = 0..n−1: pixel centres from the canvas origin (cached, read-only)."""
    out = _CENTRES.get((n, scale))
    if out is None:
        out = (np.arange(n, dtype=np.float64) + 0.5) / scale
        out.setflags(write=False)
        if len(_CENTRES) > 64:
            _CENTRES.clear()
        _CENTRES[(n, scale)] = out
    return out


def _previous(k: int) -> np.ndarray:
    """Index of the vertex before each of ``k`` vertices: [k−1, 0, 1, ..., k−2]."""
    out = _PREVIOUS.get(k)
    if out is None:
        out = _PREVIOUS[k] = np.arange(-1, k - 1)
    return out


def _planar(color: Sequence[float]) -> np.ndarray:
    """``color`` as a float32 (3, 1, 1) array, to composite over a planar (3, h, w) region."""
    key = tuple(color)
    out = _PLANAR.get(key)
    if out is None:
        out = _PLANAR[key] = np.asarray(key, dtype=np.float32).reshape(3, 1, 1)
    return out


def _t_world(pose: Sequence[float]) -> np.ndarray:
    x, y, angle = (float(v) for v in pose)
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    return T_VERTICES @ rot.T + np.array([x, y])


def _t_edges() -> tuple[np.ndarray, np.ndarray]:
    """Inward unit normals (P, V, 2) and offsets ``n · a`` (P, V) of the T's box edges, body frame
    (edge k of a box runs from vertex k − 1 to vertex k, counter-clockwise)."""
    a = T_VERTICES[:, _previous(T_VERTICES.shape[1])]
    e = T_VERTICES - a
    e = e / np.sqrt((e ** 2).sum(axis=-1, keepdims=True))
    n = np.stack([-e[..., 1], e[..., 0]], axis=-1)
    return n, (n * a).sum(axis=-1)


_T_EDGES = _t_edges()
#: Each box of the T as ((centre x, centre y), (half width, half height)) in the body frame.
_T_BOXES = tuple(((float(b[:, 0].mean()), float(b[:, 1].mean())),
                  (float(np.ptp(b[:, 0]) / 2), float(np.ptp(b[:, 1]) / 2))) for b in T_VERTICES)


_BACKGROUNDS: OrderedDict[tuple, np.ndarray] = OrderedDict()


def _draw_background(canvas: _Canvas, goal_pose: Sequence[float]) -> None:
    """White, the goal T and the walls, on ``canvas`` (whatever part of the world it shows)."""
    canvas.img[...] = _planar(BACKGROUND_COLOR)
    for box in _t_world(goal_pose):
        canvas.fill_polygon(box, GOAL_COLOR)
    for a, b in _WALLS:
        canvas.capsule(a, b, _WALL_RADIUS, WALL_COLOR)


def _cached(key: tuple, make) -> np.ndarray:
    img = _BACKGROUNDS.get(key)
    if img is None:
        img = make()
        img.setflags(write=False)
        _BACKGROUNDS[key] = img
        if len(_BACKGROUNDS) > 16:
            _BACKGROUNDS.popitem(last=False)
    return img


def _background(size: int, goal_pose: tuple[float, float, float]) -> np.ndarray:
    """White canvas with the goal T and the walls (cached per size and goal)."""

    def make() -> np.ndarray:
        canvas = _Canvas(np.empty((3, size, size), dtype=np.float32))
        _draw_background(canvas, goal_pose)
        return canvas.img

    return _cached((size, goal_pose), make)


def _check_size(size) -> int:
    """An image side in pixels: an integer >= 8."""
    return validate.integer("size", size, low=8)


def _check_state(state) -> np.ndarray:
    st = np.asarray(state, dtype=np.float64)
    if st.shape != (5,) or not np.isfinite(st).all():
        raise ValueError(
            "state must be 5 finite numbers (agent x, agent y, block x, block y, block angle), "
            f"got shape {st.shape}"
        )
    return st


def _check_goal(goal_pose) -> tuple[float, float, float]:
    if isinstance(goal_pose, tuple) and goal_pose in _GOOD_GOALS:
        return goal_pose
    goal = np.asarray(goal_pose, dtype=np.float64)
    if goal.shape != (3,) or not np.isfinite(goal).all():
        raise ValueError(f"goal_pose must be a finite (x, y, angle) triple, got {goal_pose!r}")
    return tuple(float(v) for v in goal)


_GOOD_GOALS = {tuple(float(v) for v in GOAL_POSE)}


def _draw_bodies(canvas: _Canvas, st: np.ndarray, action=None, marker_scale: float = 1.0) -> np.ndarray:
    """The agent, then the block (the reference draws shapes in the order they were added), and the
    action's red cross; returns the finished uint8 image."""
    ax, ay = float(st[0]), float(st[1])
    canvas.ring_disc(ax, ay, _AGENT_RADIUS, _AGENT_RING, AGENT_OUTLINE_COLOR, AGENT_COLOR)
    canvas.outlined_boxes(st[2:5], BLOCK_COLOR, BLOCK_OUTLINE_COLOR, _OUTLINE)  # the bar, then the stem
    if action is not None:
        act = np.asarray(action, dtype=np.float64)
        if act.shape != (2,) or not np.all(np.isfinite(act)):
            raise ValueError(f"action must be a finite (x, y) target, got {action!r}")
        half_length = max(4.0 * marker_scale, 1.0)
        half_width = max(0.5 * marker_scale, 0.5)
        canvas.cross(float(act[0]), float(act[1]), half_length, half_width, ACTION_COLOR)
    planar = np.rint(canvas.img, out=canvas.img)
    out = np.empty(planar.shape[1:] + (3,), dtype=np.uint8)
    for c in range(3):  # (3, H, W) -> (H, W, 3) uint8, a channel at a time (faster than a transposing copy)
        out[..., c] = planar[c]
    return out


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
    This is the ``"top"`` camera, the benchmark's ``pixels`` observation.
    Introduced in chapter 5.
    """
    size = _check_size(size)
    return _top(_check_state(state), size, _check_goal(goal_pose), action)


def _top(st: np.ndarray, size: int, goal: tuple, action=None) -> np.ndarray:
    canvas = _Canvas(_background(size, goal).copy())
    return _draw_bodies(canvas, st, action, size / 96)


def wrist_window(agent_xy: Sequence[float], size: int = 96, field: float = WRIST_FIELD) -> tuple[int, int]:
    """Where the wrist camera looks: ``(J, I)``, the integer pixel offsets of its window's
    top-left corner on the grid of a top-down render at the wrist's resolution ``s = size / field``
    (pixel (i, j) of that grid has its centre at world ``((j + ½) / s, (i + ½) / s)``).

    The window is the ``size × size`` block of that grid centred as nearly as it can be on the
    pusher: ``J = round(s · x) − size // 2``, ``I = round(s · y) − size // 2``. So the wrist image
    is a crop of ``render_state(state, size=round(512 · s))`` (where the window lies inside the
    workspace), and the pusher's centre is drawn within half a pixel of the image centre.

    Introduced in chapter 9.
    """
    size = _check_size(size)
    s = size / float(field)
    x, y = (float(v) for v in agent_xy)
    return int(round(s * x)) - size // 2, int(round(s * y)) - size // 2


def _wrist_background(size: int, field: float, goal: tuple, J: int, I: int) -> np.ndarray:
    """The wrist window's background: a crop of one cached canvas at the wrist's resolution that
    covers the workspace and a margin of half a field around it, else drawn on the spot."""
    s = size / field
    margin = size // 2 + 2  # pixels around the workspace: a pusher anywhere in [0, 512]² fits
    n = int(math.ceil(WORKSPACE_SIZE * s)) + 2 * margin

    def make() -> np.ndarray:
        canvas = _Canvas(np.empty((3, n, n), dtype=np.float32), origin=(-margin / s, -margin / s), scale=s)
        _draw_background(canvas, goal)
        return canvas.img

    r0, c0 = I + margin, J + margin
    if 0 <= r0 and r0 + size <= n and 0 <= c0 and c0 + size <= n:
        big = _cached(("wrist", size, field, goal), make)
        return big[:, r0:r0 + size, c0:c0 + size].copy()
    canvas = _Canvas(np.empty((3, size, size), dtype=np.float32), origin=(J / s, I / s), scale=s)
    _draw_background(canvas, goal)  # a pusher far outside the workspace: draw this window itself
    return canvas.img


def render_wrist(
    state: Sequence[float] | np.ndarray,
    size: int = 96,
    goal_pose: Sequence[float] = GOAL_POSE,
    action: Sequence[float] | np.ndarray | None = None,
    field: float = WRIST_FIELD,
) -> np.ndarray:
    """The pusher-centred (``"wrist"``) camera: a ``(size, size, 3)`` uint8 image of the
    ``field × field`` square of the workspace around the pusher (default 128 units on 96 pixels:
    0.75 px per unit, 4× the top view's resolution).

    Same scene, same colours and same rasteriser as :func:`render_state`; only the window differs
    (see :func:`wrist_window`): the camera does not rotate, beyond the workspace it sees white, and
    the pusher is drawn at its true position, within half a pixel of the centre. A red cross marks
    ``action`` when given and in view.

    Introduced in chapter 9.
    """
    size = _check_size(size)
    field = validate.positive_float("field", field)  # in workspace units
    return _wrist(_check_state(state), size, _check_goal(goal_pose), action, field)


def _wrist(st: np.ndarray, size: int, goal: tuple, action=None, field: float = WRIST_FIELD) -> np.ndarray:
    J, I = wrist_window(st[:2], size, field)
    s = size / field
    canvas = _Canvas(_wrist_background(size, field, goal, J, I), origin=(J / s, I / s), scale=s)
    return _draw_bodies(canvas, st, action, size / 96)


def render_camera(
    state: Sequence[float] | np.ndarray,
    camera: str = "top",
    size: int = 96,
    goal_pose: Sequence[float] = GOAL_POSE,
) -> np.ndarray:
    """The image camera ``camera`` (``"top"``: :func:`render_state`; ``"wrist"``:
    :func:`render_wrist`) sees in ``state``; ``(size, size, 3)`` uint8. Introduced in chapter 9."""
    return render_cameras(state, (camera,), size, goal_pose)[0]


def render_cameras(
    state: Sequence[float] | np.ndarray,
    cameras: Sequence[str] = CAMERAS,
    size: int = 96,
    goal_pose: Sequence[float] = GOAL_POSE,
) -> tuple[np.ndarray, ...]:
    """The images of several cameras (names from :data:`CAMERAS`) in one ``state``, one
    ``(size, size, 3)`` uint8 array each, in the order asked (the state is checked once for all).
    Introduced in chapter 9."""
    bad = [c for c in cameras if c not in CAMERAS]
    if bad or not len(cameras):
        raise ValueError(f"cameras must name some of {list(CAMERAS)}, got {list(cameras)!r}")
    size = _check_size(size)
    st = _check_state(state)
    goal = _check_goal(goal_pose)
    return tuple(_top(st, size, goal) if c == "top" else _wrist(st, size, goal) for c in cameras)


def render_states(
    states: np.ndarray, size: int = 96, goal_pose: Sequence[float] = GOAL_POSE, camera: str = "top"
) -> np.ndarray:
    """:func:`render_camera` for each row of ``states`` (N, 5); returns (N, size, size, 3) uint8."""
    states = np.asarray(states, dtype=np.float64)
    if states.ndim != 2 or states.shape[1] != 5:
        raise ValueError(f"states must have shape (N, 5), got {states.shape}")
    size = _check_size(size)
    if camera not in CAMERAS:
        raise ValueError(f"camera must be one of {list(CAMERAS)}, got {camera!r}")
    out = np.empty((len(states), size, size, 3), dtype=np.uint8)
    for k, st in enumerate(states):
        out[k] = render_cameras(st, (camera,), size=size, goal_pose=goal_pose)[0]
    return out
