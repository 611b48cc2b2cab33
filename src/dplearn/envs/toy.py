"""A toy multimodal task: a point in the plane must get around an obstacle, left or right.

The point starts below a round obstacle and must reach a goal straight above it. Every
demonstration goes around the obstacle, half of them on the left and half on the right, so at the
start the demonstrated action has two modes that mirror each other::

    goal            (0, +1)
    obstacle        disc of radius 0.35 around (0, 0)
    start           (0, -1) plus a little noise

    state   s_t = (x, y)                    the point's position
    action  a_t = (dx, dy)                  the displacement of one step, its norm clipped to ``max_step``
    s_{t+1} = s_t + clip(a_t)

An episode ends when the point comes within ``goal_radius`` of the goal (success), when the segment
from s_t to s_{t+1} touches the obstacle (collision) or after ``max_steps`` steps. A policy that
averages the two modes heads straight into the obstacle, which is the failure chapter 6 measures.

Everything here is NumPy and vectorised over episodes: :func:`rollout` runs many episodes at once
and calls the policy with a batch of observation histories. The scripted demonstrations of the
task are :func:`dplearn.data.toy.make_toy_demos`.

Introduced in chapter 6.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dplearn.validate import finite_float, positive_float, positive_int

__all__ = ["AroundObstacle", "ToyRollouts", "rollout", "segment_hits_disc"]


# ---------------------------------------------------------------------------------------------
# the task
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AroundObstacle:
    """The geometry and dynamics of the toy task (all lengths in workspace units).

    ================  =====================================================================
    start             mean start position (x, y)
    start_noise       standard deviation of the start position around ``start``
    goal              goal position; success when within ``goal_radius`` of it
    obstacle          centre of the round obstacle
    obstacle_radius   radius of the obstacle; touching it ends the episode (collision)
    max_step          the largest displacement of one step (actions are clipped to this norm)
    max_steps         time limit of an episode
    bounds            the workspace is the square [-bounds, bounds]²; positions are clipped to it
    ================  =====================================================================

    Introduced in chapter 6.
    """

    start: tuple[float, float] = (0.0, -1.0)
    start_noise: float = 0.01
    goal: tuple[float, float] = (0.0, 1.0)
    goal_radius: float = 0.1
    obstacle: tuple[float, float] = (0.0, 0.0)
    obstacle_radius: float = 0.35
    max_step: float = 0.12
    max_steps: int = 60
    bounds: float = 1.5

    def __post_init__(self) -> None:
        for name in ("start", "goal", "obstacle"):
            value = getattr(self, name)
            if len(value) != 2 or not np.all(np.isfinite(value)):
                raise ValueError(f"{name} must be a finite (x, y) pair, got {value!r}")
        for name in ("goal_radius", "obstacle_radius", "max_step", "bounds"):
            positive_float(name, getattr(self, name))
        finite_float("start_noise", self.start_noise, low=0.0)
        positive_int("max_steps", self.max_steps)

    def reset(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` start positions, shape (n, 2)."""
        return np.asarray(self.start) + self.start_noise * rng.standard_normal((n, 2))

    def clip_action(self, action: np.ndarray) -> np.ndarray:
        """Scale actions of shape (..., 2) down to norm at most ``max_step``."""
        action = np.asarray(action, dtype=np.float64)
        norm = np.linalg.norm(action, axis=-1, keepdims=True)
        return action * np.minimum(1.0, self.max_step / np.maximum(norm, 1e-12))

    def step(self, state: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One step for a batch: ``(next_state (n, 2), collided (n,), reached (n,))``.

        ``next_state = clip_to_bounds(state + clip_action(action))``; ``collided`` when the segment
        between the two positions touches the obstacle; ``reached`` when the new position is within
        ``goal_radius`` of the goal (and there was no collision).
        """
        state = np.asarray(state, dtype=np.float64)
        nxt = np.clip(state + self.clip_action(action), -self.bounds, self.bounds)
        collided = segment_hits_disc(state, nxt, np.asarray(self.obstacle), self.obstacle_radius)
        reached = (np.linalg.norm(nxt - np.asarray(self.goal), axis=-1) < self.goal_radius) & ~collided
        return nxt, collided, reached


def segment_hits_disc(p: np.ndarray, q: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """Whether the segments from ``p`` to ``q`` (each (n, 2)) come within ``radius`` of ``centre``.

    The closest point of the segment to c is p + u (q − p) with u = clip(⟨c − p, q − p⟩ / |q − p|², 0, 1).

    Introduced in chapter 6.
    """
    p, q = np.atleast_2d(p), np.atleast_2d(q)
    d = q - p
    dd = np.sum(d * d, axis=-1)
    u = np.clip(np.sum((centre - p) * d, axis=-1) / np.maximum(dd, 1e-12), 0.0, 1.0)
    closest = p + u[:, None] * d
    return np.linalg.norm(closest - centre, axis=-1) < radius


# ---------------------------------------------------------------------------------------------
# rollouts
# ---------------------------------------------------------------------------------------------
@dataclass
class ToyRollouts:
    """Many episodes of the toy task.

    ``paths`` (n, max_steps + 1, 2) positions, NaN after an episode ended; ``collided``,
    ``reached`` (n,) bool; ``steps`` (n,) int, the number of steps taken.

    Introduced in chapter 6.
    """

    paths: np.ndarray
    collided: np.ndarray
    reached: np.ndarray
    steps: np.ndarray

    @property
    def collision_rate(self) -> float:
        return float(self.collided.mean())

    @property
    def success_rate(self) -> float:
        return float(self.reached.mean())

    def side(self) -> np.ndarray:
        """(n,) −1 / +1: on which side of the obstacle each path passed its centre height (0 if never)."""
        out = np.zeros(len(self.paths), dtype=np.int64)
        for i, path in enumerate(self.paths):
            y = path[:, 1]
            j = np.nonzero(np.nan_to_num(y, nan=-np.inf) >= 0.0)[0]
            if j.size:
                out[i] = int(np.sign(path[j[0], 0]) or 1)
        return out

    def switches(self, below: float = 0.0, min_dx: float = 0.02) -> np.ndarray:
        """(n,) how often the horizontal direction changed while the point was below ``below``: sign
        changes of dx among the steps that move sideways by more than ``min_dx``."""
        dx = np.diff(self.paths[:, :, 0], axis=1)
        y = self.paths[:, :-1, 1]
        with np.errstate(invalid="ignore"):
            moving = np.isfinite(dx) & (y < below) & (np.abs(dx) > min_dx)
        sign = np.where(moving, np.sign(np.nan_to_num(dx)), 0.0)
        out = np.zeros(len(sign), dtype=np.int64)
        for i, row in enumerate(sign):
            row = row[row != 0]
            out[i] = int(np.sum(row[1:] != row[:-1]))
        return out


def rollout(act: Callable[[np.ndarray], np.ndarray], n_episodes: int, seed: int,
            obs_horizon: int = 1, task: AroundObstacle | None = None) -> ToyRollouts:
    """Run ``n_episodes`` episodes at once with the policy ``act``.

    ``act(obs_history)`` receives an array ``(n, T_o, 2)`` (the last ``obs_horizon`` positions of
    each running episode, the first one repeated before the start) and returns actions ``(n, T_a,
    2)`` or ``(n, 2)``; all T_a are executed (receding horizon) before the policy is asked again.

    Introduced in chapter 6.
    """
    task = AroundObstacle() if task is None else task
    n = positive_int("n_episodes", n_episodes)
    obs_horizon = positive_int("obs_horizon", obs_horizon)
    rng = np.random.default_rng(seed)
    horizon = task.max_steps
    paths = np.full((n, horizon + 1, 2), np.nan)
    paths[:, 0] = task.reset(n, rng)
    history = np.repeat(paths[:, :1], obs_horizon, axis=1)
    alive = np.ones(n, dtype=bool)
    collided = np.zeros(n, dtype=bool)
    reached = np.zeros(n, dtype=bool)
    steps = np.zeros(n, dtype=np.int64)
    t = 0
    while t < horizon and alive.any():
        idx = np.nonzero(alive)[0]
        actions = np.asarray(act(history[idx].astype(np.float32)), dtype=np.float64)
        if actions.ndim == 2:
            actions = actions[:, None]
        if actions.ndim != 3 or actions.shape[0] != len(idx) or actions.shape[2] != 2:
            raise ValueError(f"act must return actions of shape ({len(idx)}, T_a, 2) or ({len(idx)}, 2), "
                             f"got {actions.shape}")
        for k in range(actions.shape[1]):
            if t >= horizon or idx.size == 0:
                break
            nxt, hit, won = task.step(paths[idx, t], actions[:, k])
            paths[idx, t + 1] = nxt
            steps[idx] += 1
            collided[idx] |= hit
            reached[idx] |= won
            history[idx] = np.concatenate([history[idx, 1:], nxt[:, None]], axis=1)
            done = hit | won
            alive[idx[done]] = False
            keep = ~done
            idx, actions = idx[keep], actions[keep]
            t += 1
        # episodes that were alive keep their position at t for the next query
    return ToyRollouts(paths, collided, reached, steps)
