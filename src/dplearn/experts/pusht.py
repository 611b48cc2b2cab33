"""A scripted Push-T expert that pushes like a person: continuously, sliding along faces.

Introduced in chapter 5.

The expert reads the ``state`` observation (agent x, y, block x, y, block angle) and returns a
target position for the pusher. It needs no simulator: every step it re-plans from the
quasi-static pushing mechanics of :mod:`dplearn.experts.pushing`.

**What it aims at.** The pose error of the block is measured at its centre of gravity and in the
block's own frame, with rotation weighed like translation at the scale where 95 % coverage is
decided (1 px of shift and 1° of turn each cost about 3 % coverage, so 1 rad ≈ 60 px)::

    e = (R(θ)ᵀ (c − c_goal),  ρ · wrap(θ − θ_goal)),   ρ = 60 px / rad                    (2)

**Which contact.** For each candidate contact ``k`` (≈ 800 points along the faces and around the
convex corners) the twist ``ξ_k`` per unit push is known in closed form (eq. (1) of
:mod:`~dplearn.experts.pushing`). Pushing ``δ`` changes the error to ``e + δ ξ̃_k`` (``ξ̃`` with
its rotation scaled by ρ), which is smallest at ``δ*_k = −eᵀξ̃_k / |ξ̃_k|²``; the push removes the
part ``|e| (1 − sin α_k)`` of the error, ``α_k`` the angle between ``−e`` and ``ξ̃_k``. The expert
divides this gain by the time it costs: travel around the block to reach the contact plus the push
itself. It keeps its current contact while that is at least ``stickiness`` × as good as the best,
so it pushes continuously, and it slides along the face it touches to follow the best lever.

**How it moves.** In contact, the target is the contact shifted by ``δ*`` into the block: the
pusher's PD law is critically damped, so it stops there without overshoot and the block stops
with it — that is what makes the last pixel and degree reachable. Out of contact, the pusher
travels on a closed curve ``clearance`` px away from the block (never touching it), cutting
corners wherever the straight line is free, then comes in along the contact normal.

**Why it is multimodal.** Like a person, it makes random choices where the options are nearly
equal: when it picks a new contact, it draws uniformly among the faces whose best contact is
within ``choice_tolerance`` of the best (``first_choice_tolerance`` for the first contact of an
episode), and it goes round the block either way when the two ways are of similar length. So two
expert seeds from the same start often approach the T from different sides
(:func:`rollout_expert`, :func:`plot_expert_routes`).

Measured by ``benchmarks/expert_success.py`` on starts it was not tuned on: coverage > 0.95
within 300 steps in about 998 of 1000 episodes, after about 88 steps on average (median 82; the
benchmark's human demonstrations take about 125), at well under a millisecond of thinking per step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dplearn.envs.benchmark import GOAL_POSE, MAX_STEPS, WORKSPACE_SIZE
from dplearn.envs.geometry import T_CENTER_OF_GRAVITY, t_polygons
from dplearn.envs.pusht import AGENT_RADIUS, PushTEnv
from dplearn.experts.pushing import (
    T_OUTLINE,
    contact_candidates,
    distance_to_t,
    offset_contour,
)
from dplearn.validate import finite_float, non_negative_int, positive_float, positive_int

__all__ = ["PushTExpert", "rollout_expert", "plot_expert_routes", "ROUTES_START_STATE"]

#: A start from which the expert's routes split visibly: the T sits straight above its goal, turned
#: like the goal, with the pusher below it. It must get behind the block, round the left or the right.
ROUTES_START_STATE: tuple[float, float, float, float, float] = (256.0, 90.0, 256.0, 360.0, np.pi / 4)

_CONTOUR_SAMPLES = 720
_CONTACT_TOUCH = 1.5  # px: the pusher touches the block when its edge is this close
_ARRIVED = 3.0  # px: close enough to a pre-contact point to go in
_DONE = 0.3  # |e| (eq. 2) below which the block is where it should be


def _rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def _wrap(angle: float) -> float:
    return (angle + np.pi) % (2 * np.pi) - np.pi


class PushTExpert:
    """Scripted Push-T expert: ``expert(obs) -> action`` for ``state`` observations.

    Introduced in chapter 5. See the module docstring for how it decides.

    Args:
        seed: seeds the expert's random choices (route, side of approach); ``None`` draws fresh
            entropy. A fixed seed makes the expert deterministic.
        goal_pose: ``(x, y, θ)`` to push the T onto (Push-T's goal by default).
        rotation_scale: ρ of eq. (2), pixels that weigh like one radian of rotation.
        clearance: distance (px) between the pusher's edge and the block while travelling.
        stickiness: keep the current contact while its rate is at least this fraction of the
            best contact's, in (0, 1].
        choice_tolerance: faces whose best contact rates at least this fraction of the best are
            drawn from uniformly when a new contact is chosen, in (0, 1].
        first_choice_tolerance: the same for the first contact of an episode.
        detour_tolerance: go round the block the longer way with probability 1/2 when it is at
            most this many times (plus 20 px) the shorter way, >= 1.
        travel_speed, push_speed: pixels per step the pusher travels and pushes, used to weigh
            the time a contact costs.
        max_push: the farthest (px) the target is put beyond the contact in one step.

    Call ``expert(obs)`` with ``obs`` of shape (5,); it returns an action of shape (2,) in
    [0, 512]². Call :meth:`reset` between episodes.
    """

    def __init__(
        self,
        seed: int | None = None,
        goal_pose: tuple[float, float, float] = GOAL_POSE,
        rotation_scale: float = 60.0,
        clearance: float = 8.0,
        stickiness: float = 0.7,
        choice_tolerance: float = 0.75,
        first_choice_tolerance: float = 0.4,
        detour_tolerance: float = 1.5,
        travel_speed: float = 30.0,
        push_speed: float = 12.0,
        max_push: float = 25.0,
    ):
        goal = np.asarray(goal_pose, dtype=np.float64)
        if goal.shape != (3,) or not np.all(np.isfinite(goal)):
            raise ValueError(f"goal_pose must be a finite (x, y, angle) triple, got {goal_pose!r}")
        if seed is not None:
            non_negative_int("seed", seed)
        for name, value in (
            ("rotation_scale", rotation_scale), ("clearance", clearance),
            ("travel_speed", travel_speed), ("push_speed", push_speed), ("max_push", max_push),
        ):
            positive_float(name, value)
        for name, value in (
            ("stickiness", stickiness), ("choice_tolerance", choice_tolerance),
            ("first_choice_tolerance", first_choice_tolerance),
        ):
            finite_float(name, value, low=0.0, high=1.0, low_open=True)
        finite_float("detour_tolerance", detour_tolerance, low=1.0)

        self.goal_pose = goal
        self.rotation_scale = float(rotation_scale)
        self.clearance = float(clearance)
        self.stickiness = float(stickiness)
        self.choice_tolerance = float(choice_tolerance)
        self.first_choice_tolerance = float(first_choice_tolerance)
        self.detour_tolerance = float(detour_tolerance)
        self.travel_speed = float(travel_speed)
        self.push_speed = float(push_speed)
        self.max_push = float(max_push)

        self._cog = np.asarray(T_CENTER_OF_GRAVITY, dtype=np.float64)
        self._goal_cog = goal[:2] + _rotation(goal[2]) @ self._cog
        c = contact_candidates(AGENT_RADIUS)
        self.contacts = c
        # the twist with its rotation in pixels (eq. 2), and the point from which each contact is
        # approached along its normal; contacts deep in a concave corner cannot be approached
        # that way (only slid to)
        self._twist = c.twist * np.array([1.0, 1.0, self.rotation_scale])
        self._pre = c.pusher - self.clearance * c.normal
        self._approachable = distance_to_t(self._pre)[0] >= AGENT_RADIUS + self.clearance - 0.5
        self._path, self._path_arc = offset_contour(AGENT_RADIUS + self.clearance, _CONTOUR_SAMPLES)
        self._pre_on_path = self._path_index(self._pre)
        self._edges = [np.flatnonzero(c.edge == e) for e in range(len(T_OUTLINE))]
        self.reset(seed)

    # ------------------------------------------------------------------------------ state --
    def reset(self, seed: int | None = None) -> None:
        """Forget the current contact and route; reseed the random choices when ``seed`` is given."""
        if seed is not None:
            non_negative_int("seed", seed)
            self._rng = np.random.default_rng(int(seed))
        elif not hasattr(self, "_rng"):
            self._rng = np.random.default_rng()
        self._current: int | None = None
        self._direction: int | None = None

    # ------------------------------------------------------------------------- the policy --
    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """The target position (2,) for the ``state`` observation ``obs`` (5,)."""
        s = np.asarray(obs, dtype=np.float64)
        if s.shape != (5,) or not np.all(np.isfinite(s)):
            raise ValueError(
                "obs must be a finite state observation of shape (5,) "
                f"(agent x, agent y, block x, block y, block angle), got shape {s.shape}"
            )
        agent, pos, angle = s[:2], s[2:4], float(s[4])
        R = _rotation(angle)
        c = self.contacts

        # pose error, eq. (2), in the block's frame
        error = np.concatenate([
            R.T @ (pos + R @ self._cog - self._goal_cog),
            [self.rotation_scale * _wrap(angle - self.goal_pose[2])],
        ])
        size = float(np.linalg.norm(error))
        if size < _DONE:
            return np.clip(agent, 0.0, WORKSPACE_SIZE)

        # what each contact could do: best push length and the error it removes
        g = self._twist @ error
        norm2 = np.einsum("ij,ij->i", self._twist, self._twist)
        cos = -g / (size * np.sqrt(norm2))
        push = -g / norm2
        gain = np.where(cos > 0, size * (1.0 - np.sqrt(np.clip(1.0 - cos**2, 0.0, 1.0))), 0.0)

        # where the pusher is, and what reaching each contact costs
        a_body = R.T @ (agent - pos)
        touching = distance_to_t(a_body)[0] < AGENT_RADIUS + _CONTACT_TOUCH
        ccw, cw = self._path_lengths(a_body, R, pos)
        j_agent = int(self._path_index(a_body))
        outside = max(0.0, float(np.linalg.norm(a_body - self._cog) -
                                 np.linalg.norm(self._path[j_agent] - self._cog)))
        travel = np.minimum(ccw, cw) + outside + self.clearance
        if touching:
            k_agent = int(np.argmin(np.linalg.norm(c.pusher - a_body, axis=1)))
            slide = np.abs(c.arc - c.arc[k_agent])
            slidable = (c.side == c.side[k_agent]) & (slide < 40.0)
            travel = np.where(slidable, 0.5 * slide,
                              np.where(self._approachable, travel + self.clearance, np.inf))
        else:
            slidable = np.zeros(len(c), dtype=bool)
            travel = np.where(self._approachable, travel, np.inf)
        ends = np.concatenate([self._world(c.pusher, R, pos), self._world(self._pre, R, pos)], axis=1)
        in_reach = np.all((ends > 1.0) & (ends < WORKSPACE_SIZE - 1.0), axis=1)
        time = travel / self.travel_speed + np.maximum(push, 0.0) / self.push_speed + 1.0
        rate = np.where(in_reach, gain / time, 0.0)

        k = self._choose(rate)
        if k is None:  # nothing helps from here (the block is jammed): hold still
            return np.clip(agent, 0.0, WORKSPACE_SIZE)
        target_push = c.pusher[k] + c.normal[k] * float(np.clip(push[k], 0.0, self.max_push))
        if touching and slidable[k]:
            return self._action(target_push, R, pos)

        # come in along the normal when the way to the pre-contact point is free
        pre = self._pre[k]
        if self._free(a_body, pre[None])[0]:
            to_contact = c.pusher[k] - a_body
            dist = float(np.linalg.norm(to_contact))
            if (dist < 1e-9 or (to_contact @ c.normal[k]) / dist > np.cos(np.deg2rad(40.0))
                    or np.linalg.norm(pre - a_body) < _ARRIVED):
                return self._action(target_push, R, pos)
            return self._action(pre, R, pos)

        # otherwise travel round the block on the path, as far ahead as the line of sight allows
        if self._direction is None or not np.isfinite(ccw[k] if self._direction > 0 else cw[k]):
            short, long_ = sorted((ccw[k], cw[k]))
            if np.isfinite(long_) and long_ <= self.detour_tolerance * short + 20.0:
                self._direction = int(self._rng.choice([-1, 1]))
            else:
                self._direction = 1 if ccw[k] <= cw[k] else -1
        length = ccw[k] if self._direction > 0 else cw[k]
        ahead = np.append(np.arange(0.0, length, 3.0), length)
        total = self._path_arc[-1]
        along = (self._path_arc[j_agent] + self._direction * ahead) % total
        points = self._path[np.searchsorted(self._path_arc, along) % _CONTOUR_SAMPLES]
        visible = self._free(a_body, points)
        if not visible[0]:
            return self._action(self._path[j_agent], R, pos)  # step out onto the path first
        last = len(visible) - 1 if visible.all() else int(np.argmin(visible)) - 1
        return self._action(points[last], R, pos)

    # ----------------------------------------------------------------------------- helpers --
    def _choose(self, rate: np.ndarray) -> int | None:
        """Keep the current contact if it is good enough, else draw among the near-best faces."""
        best = int(np.argmax(rate))
        if rate[best] <= 0.0:
            self._current = None
            return None
        cur = self._current
        if cur is not None and rate[cur] >= self.stickiness * rate[best]:
            return cur
        tol = self.choice_tolerance if cur is not None else self.first_choice_tolerance
        options = []
        for members in self._edges:
            k_edge = int(members[np.argmax(rate[members])])
            if rate[k_edge] > 0.0 and rate[k_edge] >= tol * rate[best]:
                options.append(k_edge)
        k = int(options[self._rng.integers(len(options))])
        if k != cur:
            self._direction = None
        self._current = k
        return k

    def _path_index(self, body_points: np.ndarray) -> np.ndarray:
        """Index of the travel path's ray through each body-frame point, shape (...,)."""
        v = np.asarray(body_points) - self._cog
        phi = np.arctan2(v[..., 1], v[..., 0])
        return np.round(phi / (2 * np.pi) * _CONTOUR_SAMPLES).astype(int) % _CONTOUR_SAMPLES

    def _path_lengths(self, a_body: np.ndarray, R: np.ndarray, pos: np.ndarray):
        """Path length from the pusher to every pre-contact point, counter-clockwise and clockwise.

        A way that leaves the workspace (where the pusher cannot go) has infinite length.
        """
        n, arc = _CONTOUR_SAMPLES, self._path_arc
        j0, j1 = int(self._path_index(a_body)), self._pre_on_path
        ccw = (arc[j1] - arc[j0]) % arc[-1]
        cw = arc[-1] - ccw
        world = self._world(self._path, R, pos)
        blocked = np.any((world < 1.0) | (world > WORKSPACE_SIZE - 1.0), axis=1).astype(int)
        count = np.concatenate([[0], np.cumsum(np.concatenate([blocked, blocked]))])
        j1_ccw = np.where(j1 >= j0, j1, j1 + n)
        j1_cw = np.where(j1 <= j0, j1, j1 - n) + n
        ccw = np.where(count[j1_ccw + 1] - count[j0] > 0, np.inf, ccw)
        cw = np.where(count[j0 + n + 1] - count[j1_cw] > 0, np.inf, cw)
        return ccw, cw

    @staticmethod
    def _free(start: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Whether the straight moves ``start → ends[i]`` keep the pusher off the block, (M,)."""
        t = np.linspace(0.0, 1.0, 25)[None, :, None]
        segments = start + t * (ends[:, None, :] - start)
        return np.all(distance_to_t(segments)[0] > AGENT_RADIUS + 1.0, axis=1)

    @staticmethod
    def _world(body_points: np.ndarray, R: np.ndarray, pos: np.ndarray) -> np.ndarray:
        return body_points @ R.T + pos

    @staticmethod
    def _action(body_point: np.ndarray, R: np.ndarray, pos: np.ndarray) -> np.ndarray:
        return np.clip(R @ body_point + pos, 0.0, WORKSPACE_SIZE)


# ----------------------------------------------------------------------------------------------
# Rollouts and the figure of the expert's routes
# ----------------------------------------------------------------------------------------------
def rollout_expert(
    start_state,
    expert_seed: int = 0,
    max_steps: int = MAX_STEPS,
    expert: PushTExpert | None = None,
    env: PushTEnv | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Run the expert for one episode from ``start_state`` until success or ``max_steps``.

    Introduced in chapter 5.

    Args:
        start_state: (5,) agent x, y, block x, y, block angle, passed to
            ``env.reset(options={"reset_to_state": start_state})``.
        expert_seed: seeds the expert's random choices (two seeds, two routes).
        max_steps: the time limit (300 in the benchmark).
        expert: an expert to use (reset with ``expert_seed``); a default one otherwise.
        env: a ``state`` :class:`~dplearn.envs.PushTEnv` to use; a new one otherwise.

    Returns:
        ``(states (T, 5), actions (T, 2), info)``: ``actions[t]`` was taken after observing
        ``states[t]``; the actions are rounded to float32 before they are applied (the precision in
        which demonstrations are stored), so a stored episode replays exactly. ``info`` holds
        ``is_success``, ``coverage`` (final), ``n_steps`` (= T), ``final_state`` (5,) and
        ``max_coverage``.
    """
    start = np.asarray(start_state, dtype=np.float64)
    if start.shape != (5,) or not np.all(np.isfinite(start)):
        raise ValueError(f"start_state must be 5 finite numbers, got {start_state!r}")
    positive_int("max_steps", max_steps)
    if env is None:
        env = PushTEnv(obs_type="state")
    elif getattr(env, "obs_type", "state") != "state":
        raise ValueError(f"env must give state observations, got obs_type={env.obs_type!r}")
    if expert is None:
        expert = PushTExpert(seed=expert_seed)
    else:
        expert.reset(expert_seed)
    obs, info = env.reset(options={"reset_to_state": start})
    states, actions = [], []
    max_cov = float(info["coverage"])
    success = False
    for _ in range(int(max_steps)):
        action = expert(obs).astype(np.float32).astype(np.float64)
        states.append(obs)
        actions.append(action)
        obs, _, terminated, truncated, info = env.step(action)
        max_cov = max(max_cov, float(info["coverage"]))
        if terminated or truncated:
            success = bool(info["is_success"])
            break
    out = {
        "is_success": success or bool(info["is_success"]),
        "coverage": float(info["coverage"]),
        "max_coverage": max_cov,
        "n_steps": len(actions),
        "final_state": np.asarray(obs, dtype=np.float64),
    }
    return np.array(states), np.array(actions), out


def plot_expert_routes(
    start_state=ROUTES_START_STATE,
    expert_seeds=(0, 1, 2, 8),
    axes=None,
    max_steps: int = MAX_STEPS,
    n_poses: int = 6,
):
    """Runs of several expert seeds from one start, one panel each: the expert's route modes.

    Introduced in chapter 5. Each panel shows the goal (light green), the block at the start
    (grey) and at ``n_poses`` moments of the run (outlines, darker later), and the pusher's path
    (blue, from the black dot). The axes follow the rendered images (y points down).

    Returns:
        ``(fig, results)``: the figure and, per seed, the :func:`rollout_expert` output
        ``(states, actions, info)``.
    """
    from dplearn.viz import COLORS, small_multiples

    seeds = list(expert_seeds)
    if not seeds:
        raise ValueError("expert_seeds must hold at least one seed")
    if axes is None:
        fig, axes = small_multiples(len(seeds), ncols=4, size=3.0)
    else:
        axes = np.atleast_1d(axes).ravel()
        if len(axes) < len(seeds):
            raise ValueError(f"axes must hold one panel per seed ({len(seeds)}), got {len(axes)}")
        fig = axes[0].figure
    start = np.asarray(start_state, dtype=np.float64)
    env = PushTEnv(obs_type="state")
    expert = PushTExpert(seed=0)
    results = []
    for ax, seed in zip(axes, seeds, strict=False):
        states, actions, info = rollout_expert(start, seed, max_steps, expert=expert, env=env)
        results.append((states, actions, info))
        for box in t_polygons(GOAL_POSE):
            ax.fill(box[:, 0], box[:, 1], color="#b5e5b5", zorder=0)
        for box in t_polygons(start[2:]):
            ax.fill(box[:, 0], box[:, 1], color="#9a9a9a", alpha=0.5, zorder=1)
        poses = np.vstack([states[:, 2:], info["final_state"][None, 2:]])
        for j, t in enumerate(np.linspace(0, len(poses) - 1, n_poses + 1).round().astype(int)[1:]):
            shade = 0.75 - 0.6 * (j + 1) / n_poses
            for box in t_polygons(poses[t]):
                closed = np.vstack([box, box[:1]])
                ax.plot(closed[:, 0], closed[:, 1], color=str(shade), lw=0.8, zorder=2)
        path = np.vstack([states[:, :2], info["final_state"][None, :2]])
        ax.plot(path[:, 0], path[:, 1], color=COLORS["data"], lw=1.0, zorder=3)
        ax.plot(*path[0], "o", color="black", ms=4, zorder=4)
        ax.set_title(f"expert seed {seed}: {info['n_steps']} steps"
                     + ("" if info["is_success"] else " (failed)"), fontsize=9)
    # one window for all panels: everything that moved, with a margin, inside the workspace
    seen = [np.asarray(t_polygons(GOAL_POSE)).reshape(-1, 2)]
    for states, _, _ in results:
        seen.append(states[:, :2])
        seen += [np.asarray(t_polygons(p)).reshape(-1, 2) for p in states[:, 2:]]
    seen = np.vstack(seen)
    lo = np.maximum(seen.min(axis=0) - 25.0, 0.0)
    hi = np.minimum(seen.max(axis=0) + 25.0, WORKSPACE_SIZE)
    half = 0.5 * float(np.max(hi - lo))
    mid = 0.5 * (lo + hi)
    for ax in axes[: len(seeds)]:
        ax.set_xlim(mid[0] - half, mid[0] + half)
        ax.set_ylim(mid[1] + half, mid[1] - half)  # y points down, as in the rendered images
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, results
