"""The two cameras of Push-T (chapter 9): the wrist view checked against a top-down render of the same
scene at the wrist's resolution, cropped around the pusher, and against geometry done by hand (where
the pusher and the block must appear, given their poses)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dplearn.envs import PushTEnv, render
from dplearn.envs.geometry import GOAL_POSE

SIZE, FIELD = 96, 128.0
SCALE = SIZE / FIELD  # wrist pixels per workspace unit
BIG = round(512 * SCALE)  # side of the top-down render at the wrist's resolution (384)


BOXES = (((0.0, 15.0), (60.0, 15.0)), ((0.0, 75.0), (15.0, 45.0)))  # the T's boxes: body-frame centre, half sizes


def t_distances(points: np.ndarray, pose) -> tuple[np.ndarray, np.ndarray]:
    """By hand, for points (..., 2) and a T at ``pose``: (how far outside the T, 0 inside; depth inside
    the T, 0 outside), from body-frame coordinates R(-θ)(q - p) and the two boxes. "Outside" is measured
    as the renderer grows a box by its outline (mitered corners): the larger of the two axis overhangs."""
    x, y, a = pose
    c, s = math.cos(a), math.sin(a)
    dx, dy = points[..., 0] - x, points[..., 1] - y
    bx, by = c * dx + s * dy, -s * dx + c * dy
    outside, depth = np.full(bx.shape, np.inf), np.zeros(bx.shape)
    for (cx, cy), (hx, hy) in BOXES:
        ex, ey = np.abs(bx - cx) - hx, np.abs(by - cy) - hy
        outside = np.minimum(outside, np.maximum(np.maximum(ex, ey), 0))
        depth = np.maximum(depth, np.maximum(-np.maximum(ex, ey), 0))
    return outside, depth


def wrist_pixel_centres(agent_xy):
    """World (x, y) of every wrist pixel centre, from the window rule written out here: the window's
    corner is the pusher's position rounded to the wrist grid, minus half the image."""
    j0 = round(SCALE * agent_xy[0]) - SIZE // 2
    i0 = round(SCALE * agent_xy[1]) - SIZE // 2
    xs = (j0 + np.arange(SIZE) + 0.5) / SCALE
    ys = (i0 + np.arange(SIZE) + 0.5) / SCALE
    return np.meshgrid(xs, ys)  # X[i, j], Y[i, j]


STATES = [
    [200.0, 150.0, 230.0, 200.0, 0.3],  # pusher beside the block
    [230.3, 330.9, 256.0, 256.0, math.pi / 4],  # block on the goal, pusher 5 units from it
    [120.4, 400.9, 160.0, 330.0, 2.5],
    [256.0, 256.0, 300.0, 300.0, 5.9],
]


@pytest.mark.parametrize("state", STATES)
def test_wrist_view_is_the_high_resolution_top_view_cropped_around_the_pusher(state):
    wrist = render.render_wrist(state).astype(int)
    top = render.render_state(state, size=BIG).astype(int)  # the same scene, 0.75 px per unit
    j0 = round(SCALE * state[0]) - SIZE // 2
    i0 = round(SCALE * state[1]) - SIZE // 2
    assert 0 <= i0 and i0 + SIZE <= BIG and 0 <= j0 and j0 + SIZE <= BIG
    crop = top[i0:i0 + SIZE, j0:j0 + SIZE]
    diff = np.abs(wrist - crop)
    # the same pixel centres computed two ways differ by ~1e-13: at most a rounding tie flips
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


@pytest.mark.parametrize("state", STATES)
def test_wrist_view_shows_the_pusher_at_the_centre_and_the_block_where_its_pose_says(state):
    img = render.render_wrist(state).astype(int)
    assert img.shape == (SIZE, SIZE, 3)
    X, Y = wrist_pixel_centres(state)
    # pusher: its disc (radius 15) around its true position, which is within half a pixel of the centre
    ax, ay = state[0], state[1]
    u, v = SCALE * ax - (round(SCALE * ax) - SIZE // 2), SCALE * ay - (round(SCALE * ay) - SIZE // 2)
    assert abs(u - SIZE / 2) <= 0.5 and abs(v - SIZE / 2) <= 0.5  # pixel coordinates of the pusher
    r = np.hypot(X - ax, Y - ay)
    assert t_distances(np.array([state[:2]]), state[2:5])[0][0] > 15, "the pusher should be clear of the block"
    blue = np.all(img == render.AGENT_COLOR, axis=-1)
    assert blue[r < 15 - 4 - 1 / SCALE].all()  # the inner disc, away from its anti-aliased edge
    rows, cols = np.nonzero(blue)
    centroid = np.array([cols.mean() + 0.5, rows.mean() + 0.5])  # of the inner disc's pixels
    np.testing.assert_allclose(centroid, [u, v], atol=0.3)
    # block: pixels surely inside the T (deeper than its outline and a pixel) are block-coloured,
    # pixels surely outside (and off the pusher, the goal and the walls) are white
    pose = state[2:5]
    margin = 2.0 + 1.0 / SCALE
    points = np.stack([X, Y], -1)
    outside, depth = t_distances(points, pose)
    surely_in = (depth > margin) & (r > 15 + margin)
    surely_out = (outside > margin) & (r > 15 + margin) & (t_distances(points, GOAL_POSE)[0] > margin)
    surely_out &= (X > 12) & (X < 500) & (Y > 12) & (Y < 500)
    # each box has its own outline, so the segment where bar and stem meet (body y = 30) is drawn
    c, s = math.cos(pose[2]), math.sin(pose[2])
    bx, by = c * (X - pose[0]) + s * (Y - pose[1]), -s * (X - pose[0]) + c * (Y - pose[1])
    surely_in &= ~((np.abs(by - 30) < margin) & (np.abs(bx) < 15 + margin))
    block_like = np.all(img == render.BLOCK_COLOR, axis=-1)
    white = np.all(img == render.BACKGROUND_COLOR, axis=-1)
    assert surely_in.sum() > 50, "the test state should put part of the block in view"
    assert block_like[surely_in].all()
    assert white[surely_out].all()


def test_wrist_view_beyond_the_workspace_and_far_outside_it():
    # near a corner the view shows the walls and white beyond them; drawn from the cached canvas
    near = render.render_wrist([20.0, 20.0, 300.0, 300.0, 0.0]).astype(int)
    X, Y = wrist_pixel_centres([20.0, 20.0])
    wall = np.all(near == render.WALL_COLOR, axis=-1)
    on_wall = (np.abs(X - 5) < 1) & (Y > 10) & (Y < 60) & (np.hypot(X - 20, Y - 20) > 20)
    assert on_wall.any() and wall[on_wall].all()
    beyond = (X < 2) | (Y < 2)
    assert beyond.any() and np.all(near[beyond] == 255)
    # a pusher far outside the workspace (possible: it is kinematic) gets a window drawn on the spot,
    # which must agree with what the cached canvas gives where both exist
    far = render.render_wrist([-70.0, 256.0, 256.0, 256.0, 0.0]).astype(int)
    Xf, Yf = wrist_pixel_centres([-70.0, 256.0])
    clear = (Xf < 2) & (np.hypot(Xf + 70, Yf - 256) > 16)
    assert far.shape == (SIZE, SIZE, 3) and np.all(far[clear] == 255)
    assert np.all(far[np.hypot(Xf + 70, Yf - 256) < 10] == render.AGENT_COLOR)
    state = [60.0, 256.0, 256.0, 256.0, 0.0]
    j, i = render.wrist_window(state[:2])
    drawn = render._wrist_background(SIZE, FIELD, tuple(GOAL_POSE), j, i)
    render._BACKGROUNDS.clear()
    canvas = render._Canvas(np.empty((3, SIZE, SIZE), np.float32), origin=(j / SCALE, i / SCALE), scale=SCALE)
    render._draw_background(canvas, GOAL_POSE)
    assert np.abs(drawn - canvas.img).max() < 1e-3


def test_two_cameras_observation_and_render_cameras():
    env = PushTEnv(obs_type="two-cameras")
    obs, _ = env.reset(seed=100003)
    assert set(obs) == {"pixels", "wrist_pixels", "agent_pos"}
    assert env.observation_space.contains(obs)
    state = env.get_state()
    np.testing.assert_array_equal(obs["pixels"], render.render_state(state))
    np.testing.assert_array_equal(obs["wrist_pixels"], render.render_wrist(state))
    np.testing.assert_allclose(obs["agent_pos"], state[:2])
    top, wrist = render.render_cameras(state, ("top", "wrist"))
    np.testing.assert_array_equal(top, obs["pixels"])
    np.testing.assert_array_equal(render.render_camera(state, "wrist"), wrist)
    stack = render.render_states(np.stack([state, state]), camera="wrist")
    assert stack.shape == (2, 96, 96, 3) and (stack == wrist).all()
    obs2, *_ = env.step(state[:2] + 30)
    assert not np.array_equal(obs2["wrist_pixels"], obs["wrist_pixels"])
    with pytest.raises(ValueError, match="cameras must name"):
        render.render_cameras(state, ("side",))
    with pytest.raises(ValueError, match="camera must be one of"):
        render.render_states(np.stack([state]), camera="side")
