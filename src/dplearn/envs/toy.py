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
and calls the policy with a batch of observation histories.

Introduced in chapter 6.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["AroundObstacle", "ToyDemos", "ToyRollouts", "make_toy_demos", "rollout",
           "segment_hits_disc"]


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
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if not self.start_noise >= 0:
            raise ValueError(f"start_noise must be >= 0, got {self.start_noise!r}")
        if isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int) or self.max_steps < 1:
            raise ValueError(f"max_steps must be a positive integer, got {self.max_steps!r}")

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
# demonstrations
# ---------------------------------------------------------------------------------------------
@dataclass
class ToyDemos:
    """Demonstrations of the toy task in the flat replay-buffer layout of :class:`dplearn.data.Demos`.

    ``state`` (N, 2) and ``action`` (N, 2) float32, ``episode_ends`` (E,) cumulative end indices,
    ``side`` (E,) int: −1 for episodes that went left of the obstacle, +1 for right.

    Introduced in chapter 6.
    """

    state: np.ndarray
    action: np.ndarray
    episode_ends: np.ndarray
    side: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def n_episodes(self) -> int:
        return int(self.episode_ends.shape[0])

    @property
    def episode_starts(self) -> np.ndarray:
        return np.concatenate([[0], self.episode_ends[:-1]]).astype(np.int64)

    def episode(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(states (T_i, 2), actions (T_i, 2))`` of episode ``i``."""
        if not -self.n_episodes <= i < self.n_episodes:
            raise ValueError(f"i must be an episode index in [-{self.n_episodes}, {self.n_episodes}), got {i}")
        i %= self.n_episodes
        start = 0 if i == 0 else int(self.episode_ends[i - 1])
        return self.state[start:self.episode_ends[i]], self.action[start:self.episode_ends[i]]

    def as_rollouts(self) -> ToyRollouts:
        """The demonstrations as :class:`ToyRollouts` (positions including the final one), so their
        statistics (:meth:`ToyRollouts.switches`, :meth:`ToyRollouts.side`) compare with a policy's."""
        lengths = np.diff(np.concatenate([[0], self.episode_ends]))
        paths = np.full((self.n_episodes, int(lengths.max()) + 1, 2), np.nan)
        for i in range(self.n_episodes):
            states, actions = self.episode(i)
            paths[i, :len(states)] = states
            paths[i, len(states)] = states[-1] + actions[-1]
        n = self.n_episodes
        return ToyRollouts(paths, np.zeros(n, dtype=bool), np.ones(n, dtype=bool), lengths.astype(np.int64))

    def windows(self, obs_horizon: int, pred_horizon: int,
                action_horizon: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Every (observation history, action chunk) window, cut as :class:`dplearn.data.SequenceDataset` cuts them.

        A window starting at step t holds frames clip(t + j, 0, L − 1), j < T_p, of its episode
        (length L), for t from −(T_o − 1) to L − T_p + (T_a − 1) (both pads at most T_p − 1): the
        first/last frame is repeated at the edges. Returns ``obs (M, T_o, 2)`` (the first T_o
        frames' states) and ``action (M, T_p, 2)``, float32.
        """
        for name, value in (("obs_horizon", obs_horizon), ("pred_horizon", pred_horizon),
                            ("action_horizon", action_horizon)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if pred_horizon < obs_horizon - 1 + action_horizon:
            raise ValueError(f"pred_horizon must be >= obs_horizon - 1 + action_horizon, got {pred_horizon}")
        before = min(obs_horizon - 1, pred_horizon - 1)
        after = min(action_horizon - 1, pred_horizon - 1)
        rows = []
        for s, e in zip(self.episode_starts, self.episode_ends, strict=True):
            length = int(e - s)
            t = np.arange(-before, length - pred_horizon + after + 1)
            rows.append(s + np.clip(t[:, None] + np.arange(pred_horizon)[None, :], 0, length - 1))
        index = np.concatenate(rows)
        return (self.state[index[:, :obs_horizon]].astype(np.float32),
                self.action[index].astype(np.float32))


def make_toy_demos(n_episodes: int, seed: int, task: AroundObstacle | None = None,
                   p_left: float = 0.5, speed: float = 0.1, waypoint_x: float = 0.55,
                   waypoint_noise: float = 0.06, action_noise: float = 0.005) -> ToyDemos:
    """Scripted demonstrations: each episode picks a side, then follows two waypoints to the goal.

    Episode i goes left with probability ``p_left`` (else right), i.e. via the waypoints
    (σ w, −0.2) and (σ w, 0.2) with σ = ∓1 and w ~ ``waypoint_x`` + N(0, ``waypoint_noise``²) (at least
    the obstacle's radius + 0.1), moving
    ``speed`` per step towards the current waypoint (the last one is the goal) plus N(0,
    ``action_noise``²) per coordinate. Every demonstration reaches the goal without collision.

    Introduced in chapter 6.
    """
    task = AroundObstacle() if task is None else task
    if isinstance(n_episodes, bool) or not isinstance(n_episodes, (int, np.integer)) or n_episodes < 1:
        raise ValueError(f"n_episodes must be a positive integer, got {n_episodes!r}")
    if not 0.0 <= p_left <= 1.0:
        raise ValueError(f"p_left must be a probability in [0, 1], got {p_left!r}")
    if not 0 < speed <= task.max_step:
        raise ValueError(f"speed must be in (0, task.max_step={task.max_step}], got {speed!r}")
    rng = np.random.default_rng(seed)
    states, actions, lengths, sides = [], [], [], []
    for _ in range(int(n_episodes)):
        side = -1 if rng.random() < p_left else 1
        w = side * max(waypoint_x + waypoint_noise * rng.standard_normal(), task.obstacle_radius + 0.1)
        waypoints = [np.array([w, -0.2]), np.array([w, 0.2]), np.asarray(task.goal, dtype=float)]
        s = task.reset(1, rng)[0]
        ep_s, ep_a = [], []
        k = 0
        for _t in range(task.max_steps):
            while k < len(waypoints) - 1 and np.linalg.norm(waypoints[k] - s) < speed:
                k += 1
            delta = waypoints[k] - s
            a = delta * min(1.0, speed / max(np.linalg.norm(delta), 1e-12))
            a = a + action_noise * rng.standard_normal(2)
            nxt, collided, reached = task.step(s[None], a[None])
            ep_s.append(s)
            ep_a.append(task.clip_action(a))
            s = nxt[0]
            if collided[0]:
                raise RuntimeError("a scripted demonstration collided; choose a larger waypoint_x")
            if reached[0]:
                break
        states.append(np.array(ep_s))
        actions.append(np.array(ep_a))
        lengths.append(len(ep_s))
        sides.append(side)
    meta = {"task": "around-obstacle", "n_episodes": int(n_episodes), "seed": int(seed),
            "p_left": p_left, "speed": speed}
    return ToyDemos(np.concatenate(states).astype(np.float32), np.concatenate(actions).astype(np.float32),
                    np.cumsum(lengths).astype(np.int64), np.array(sides, dtype=np.int64), meta)


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
    if isinstance(n_episodes, bool) or not isinstance(n_episodes, (int, np.integer)) or n_episodes < 1:
        raise ValueError(f"n_episodes must be a positive integer, got {n_episodes!r}")
    if isinstance(obs_horizon, bool) or not isinstance(obs_horizon, (int, np.integer)) or obs_horizon < 1:
        raise ValueError(f"obs_horizon must be a positive integer, got {obs_horizon!r}")
    rng = np.random.default_rng(seed)
    n, horizon = int(n_episodes), task.max_steps
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
