"""Demonstrations of the toy around-the-obstacle task (:mod:`dplearn.envs.toy`).

Introduced in chapter 6.

They are ordinary :class:`~dplearn.data.Demos` (the flat replay-buffer layout, here with state and
action both of width 2) that also remember on which side of the obstacle each episode went
(``meta["side"]``, −1 left, +1 right). Their (observation history, action chunk) windows are cut by
:func:`~dplearn.data.window_indices`, the same function that cuts Push-T's
:class:`~dplearn.data.SequenceDataset`, so a toy policy sees exactly the windows a Push-T policy
would.
"""

from __future__ import annotations

import numpy as np

from dplearn.data.demos import Demos
from dplearn.data.sequence import window_indices
from dplearn.envs.toy import AroundObstacle, ToyRollouts
from dplearn.validate import finite_float, non_negative_int, positive_int, probability

__all__ = ["ToyDemos", "make_toy_demos"]


class ToyDemos(Demos):
    """:class:`~dplearn.data.Demos` of the toy task: ``state`` (N, 2) positions, ``action`` (N, 2)
    displacements, ``episode_ends`` (E,), and ``meta["side"]`` (E entries of −1 or +1).

    Introduced in chapter 6.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        side = np.asarray(self.meta.get("side", []))
        if side.shape != (self.n_episodes,) or not np.all(np.abs(side) == 1):
            raise ValueError(f"meta['side'] must list -1 or +1 for each of the {self.n_episodes} "
                             f"episodes, got {self.meta.get('side')!r}")

    @property
    def side(self) -> np.ndarray:
        """(E,) int64: −1 for episodes that went left of the obstacle, +1 for right."""
        return np.asarray(self.meta["side"], dtype=np.int64)

    def windows(self, obs_horizon: int, pred_horizon: int,
                action_horizon: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Every (observation history, action chunk) window, cut as :class:`dplearn.data.SequenceDataset`
        cuts them (:func:`~dplearn.data.window_indices` with ``pad_before = T_o − 1``,
        ``pad_after = T_a − 1``).

        A window starting at step t holds frames clip(t + j, 0, L − 1), j < T_p, of its episode
        (length L), for t from −(T_o − 1) to L − T_p + (T_a − 1) (both pads at most T_p − 1): the
        first/last frame is repeated at the edges. Returns ``obs (M, T_o, 2)`` (the first T_o
        frames' states) and ``action (M, T_p, 2)``, float32.
        """
        obs_horizon = positive_int("obs_horizon", obs_horizon)
        pred_horizon = positive_int("pred_horizon", pred_horizon)
        action_horizon = positive_int("action_horizon", action_horizon)
        if pred_horizon < obs_horizon - 1 + action_horizon:
            raise ValueError(f"pred_horizon must be >= obs_horizon - 1 + action_horizon, got {pred_horizon}")
        index = window_indices(self.episode_ends, pred_horizon, pad_before=obs_horizon - 1,
                               pad_after=action_horizon - 1)
        return self.state[index[:, :obs_horizon]], self.action[index]

    def as_rollouts(self) -> ToyRollouts:
        """The demonstrations as :class:`~dplearn.envs.toy.ToyRollouts` (positions including the
        final one), so their statistics (:meth:`~dplearn.envs.toy.ToyRollouts.switches`,
        :meth:`~dplearn.envs.toy.ToyRollouts.side`) compare with a policy's."""
        lengths = self.episode_lengths
        paths = np.full((self.n_episodes, int(lengths.max()) + 1, 2), np.nan)
        for i, (states, actions) in enumerate(self.episodes()):
            paths[i, :len(states)] = states
            paths[i, len(states)] = states[-1] + actions[-1]
        n = self.n_episodes
        return ToyRollouts(paths, np.zeros(n, dtype=bool), np.ones(n, dtype=bool), lengths)


def make_toy_demos(n_episodes: int, seed: int, task: AroundObstacle | None = None,
                   p_left: float = 0.5, speed: float = 0.1, waypoint_x: float = 0.55,
                   waypoint_noise: float = 0.06, action_noise: float = 0.005) -> ToyDemos:
    """Scripted demonstrations: each episode picks a side, then follows two waypoints to the goal.

    Episode i goes left with probability ``p_left`` (else right), i.e. via the waypoints
    (σ w, −0.2) and (σ w, 0.2) with σ = ∓1 and w ~ ``waypoint_x`` + N(0, ``waypoint_noise``²) (at
    least the obstacle's radius + 0.1), moving ``speed`` per step towards the current waypoint (the
    last one is the goal) plus N(0, ``action_noise``²) per coordinate. Every demonstration reaches
    the goal without collision.

    Introduced in chapter 6.
    """
    task = AroundObstacle() if task is None else task
    n_episodes = positive_int("n_episodes", n_episodes)
    seed = non_negative_int("seed", seed)
    p_left = probability("p_left", p_left)
    speed = finite_float("speed", speed, low=0.0, high=task.max_step, low_open=True)
    rng = np.random.default_rng(seed)
    episodes, sides = [], []
    for _ in range(n_episodes):
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
        episodes.append((np.array(ep_s), np.array(ep_a)))
        sides.append(side)
    meta = {"task": "around-obstacle", "n_episodes": n_episodes, "seed": seed,
            "p_left": p_left, "speed": speed, "side": sides}
    return ToyDemos.from_episodes(episodes, meta=meta)
