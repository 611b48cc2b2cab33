"""Checkers for the exercises of chapter 10 (design choices and the comparison table).

The exercises:

- :func:`check_seed_summary` — the paper's statistic: per training seed the best and the mean score of
  the last checkpoints, then mean and sample standard deviation over seeds
  (:func:`dplearn.envs.benchmark.summarize_seeds`);
- :func:`check_velocity_actions` — position actions to displacements and back
  (:func:`dplearn.data.velocity_actions`);
- :func:`check_executed_rows` — which rows of a chunk run with a latency of k steps
  (:class:`dplearn.policy_protocol.RecedingHorizon`).

Each checker tests the reader's function against the library on fresh random inputs and returns a
:class:`~dplearn.exercises.checking.Result`; none of them prints the reference answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dplearn.data import Demos, velocity_actions
from dplearn.envs.benchmark import summarize_seeds
from dplearn.exercises.checking import Result, as_numpy, call, checker, close, failed, passed
from dplearn.policy_protocol import RecedingHorizon

__all__ = ["check_seed_summary", "check_velocity_actions", "check_executed_rows"]


# ---------------------------------------------------------------------------------------------
# Exercise: the paper's statistic
# ---------------------------------------------------------------------------------------------
@checker("the paper's max / avg statistic")
def check_seed_summary(seed_summary: Callable[[list[list[float]]], Any]) -> Result:
    """Check ``seed_summary(scores)`` → ``(max_mean, max_sd, avg_mean, avg_sd)``.

    ``scores[i]`` lists the checkpoint scores of training seed ``i`` (lengths may differ).
    """
    rng = np.random.default_rng()
    cases = [[list(rng.uniform(0.5, 1.0, size=int(rng.integers(1, 6)))) for _ in range(n)]
             for n in (3, 3, 5, 2)]
    cases.append([list(rng.uniform(0.5, 1.0, size=4))])  # one seed: no spread
    for scores in cases:
        out = call(seed_summary, [list(s) for s in scores])
        got = as_numpy(out).astype(np.float64).reshape(-1)
        ref = summarize_seeds(scores)
        want = np.array([ref.max, ref.max_sd, ref.avg, ref.avg_sd])
        case = f"{len(scores)} seeds with {[len(s) for s in scores]} checkpoints"
        if got.shape != (4,):
            return failed(f"for {case} you returned {got.size} numbers",
                          "Return the four numbers (max_mean, max_sd, avg_mean, avg_sd).")
        if close(got, want, rtol=1e-9, atol=1e-12):
            continue
        if len(scores) == 1 and close(got[[0, 2]], want[[0, 2]]):
            return failed("for a single seed the spread must be 0",
                          "One seed has no spread: return 0 (not nan).")
        flat = np.concatenate([np.asarray(s) for s in scores])
        if np.isclose(got[0], flat.max()) and np.isclose(got[2], flat.mean()):
            return failed(f"for {case} your statistic pools all checkpoints of all seeds",
                          "Reduce each seed's list first (its best, its mean), then average over seeds.")
        if len(scores) > 1 and close(got[[0, 2]], want[[0, 2]]):
            best = np.array([max(s) for s in scores])
            if np.isclose(got[1], best.std(ddof=0)):
                return failed(f"for {case} the means are right but the spreads are population standard "
                              "deviations", "Use the sample standard deviation over seeds (ddof=1).")
            return failed(f"for {case} the means are right but the spreads are not",
                          "The spread is the sample standard deviation over seeds of the per-seed numbers.")
        return failed(f"for {case} your numbers are not the statistic",
                      "max: the mean over seeds of each seed's best score; avg: the mean over seeds of "
                      "each seed's mean score.")
    return passed("Correct! You compute the paper's max / avg over seeds.")


# ---------------------------------------------------------------------------------------------
# Exercise: position actions to displacements and back
# ---------------------------------------------------------------------------------------------
@checker("the velocity actions")
def check_velocity_actions(to_velocity: Callable[[np.ndarray, np.ndarray], Any],
                           to_position: Callable[[np.ndarray, np.ndarray], Any]) -> Result:
    """Check ``to_velocity(state, action)`` (N, 5), (N, 2) → (N, 2) displacements ``action − state[:, :2]``
    against :func:`dplearn.data.velocity_actions`, and ``to_position(state, delta)`` as its inverse."""
    rng = np.random.default_rng()
    for n in (1, 7, int(rng.integers(20, 60))):
        state = np.concatenate([rng.uniform(0, 512, size=(n, 4)), rng.uniform(0, 2 * np.pi, size=(n, 1))], 1)
        action = rng.uniform(0, 512, size=(n, 2))
        demos = Demos(state.astype(np.float32), action.astype(np.float32), np.array([n]), {})
        want = velocity_actions(demos).action.astype(np.float64)
        f32 = (demos.state.astype(np.float64), demos.action.astype(np.float64))
        got = as_numpy(call(to_velocity, f32[0].copy(), f32[1].copy())).astype(np.float64)
        if got.shape != (n, 2):
            return failed(f"to_velocity returned shape {got.shape} for {n} steps", "Return an array (N, 2).")
        if not close(got, want, rtol=1e-5, atol=1e-3):
            if close(got, -want, rtol=1e-5, atol=1e-3):
                return failed("to_velocity has the wrong sign", "d = a − p: the target minus the position.")
            if close(got, f32[1] - f32[0][:, 2:4], rtol=1e-5, atol=1e-3):
                return failed("to_velocity subtracts the block's position",
                              "The pusher's position is state[:, :2]; the block's is state[:, 2:4].")
            return failed("to_velocity does not give the displacements from the pusher's position",
                          "d_t = a_t − p_t with p_t = state[t, :2].")
        back = as_numpy(call(to_position, f32[0].copy(), got.copy())).astype(np.float64)
        if back.shape != (n, 2) or not close(back, f32[1], rtol=1e-9, atol=1e-6):
            return failed("to_position does not give the targets back from to_velocity's displacements",
                          "a_t = p_t + d_t.")
    return passed("Correct! Targets and displacements are two ways to write the same demonstrations.")


# ---------------------------------------------------------------------------------------------
# Exercise: which rows of a chunk run, with latency
# ---------------------------------------------------------------------------------------------
@dataclass
class _Config:
    obs_horizon: int
    pred_horizon: int
    action_horizon: int


class _IndexPolicy:
    """A chunk policy whose chunk row ``i`` is the action ``(i, i)``."""

    obs_type = "state"

    def __init__(self, t_o: int, t_p: int, t_a: int):
        self.config = _Config(t_o, t_p, t_a)

    def predict_chunk(self, obs: Any, generator: Any = None) -> torch.Tensor:
        rows = torch.arange(self.config.pred_horizon, dtype=torch.float32)
        return rows[None, :, None].expand(len(obs), -1, 2)


def _library_rows(t_o: int, t_p: int, t_a: int, k: int) -> list[int] | None:
    try:
        wrapper = RecedingHorizon(_IndexPolicy(t_o, t_p, t_a), action_horizon=t_a, latency=k)
    except ValueError:
        return None
    out = wrapper(np.zeros((1, t_o + k, 5)))
    return [int(i) for i in out[0, :, 0]]


@checker("the executed rows with latency")
def check_executed_rows(executed_rows: Callable[[int, int, int, int], Any]) -> Result:
    """Check ``executed_rows(T_o, T_p, T_a, k)`` → the chunk rows executed with latency ``k``, in order,
    and ``ValueError`` when ``T_o − 1 + k + T_a > T_p``."""
    rng = np.random.default_rng()
    cases = [(2, 16, 8, 0), (2, 16, 8, 3), (1, 10, 4, 2), (3, 12, 4, 5), (2, 16, 8, 7), (2, 16, 8, 8),
             (2, 16, 16, 0), (int(rng.integers(1, 4)), int(rng.integers(8, 20)), int(rng.integers(1, 6)),
                                int(rng.integers(0, 6)))]
    for t_o, t_p, t_a, k in cases:
        want = _library_rows(t_o, t_p, t_a, k)
        case = f"T_o={t_o}, T_p={t_p}, T_a={t_a}, k={k}"
        if want is None:
            try:
                got = call(executed_rows, t_o, t_p, t_a, k)
            except ValueError:
                continue
            return failed(f"for {case} the chunk is too short, but your function returned {got!r}",
                          "Raise ValueError when the last executed row would be past the chunk's end.")
        got = [int(i) for i in as_numpy(call(executed_rows, t_o, t_p, t_a, k)).reshape(-1)]
        if got == want:
            continue
        if k and got == [i - k for i in want]:
            return failed(f"for {case} you ignore the latency",
                          "The plan's newest observation is k steps old: skip k more rows.")
        if got == [i - (t_o - 1) for i in want]:
            return failed(f"for {case} you start at row k",
                          "Row T_o − 1 is the action for the step of the newest observation.")
        return failed(f"for {case} your rows are {got}",
                      "T_a consecutive rows, starting at T_o − 1 + k.")
    return passed("Correct! These are the rows RecedingHorizon executes.")
