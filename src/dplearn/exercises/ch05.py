"""Checkers for the exercises of chapter 5 (Push-T: demonstrations, datasets, evaluation).

Each checker tests the reader's answer against the library (:class:`dplearn.data.Normalizer`,
:func:`dplearn.data.window_indices`, :class:`dplearn.evaluation.EvalResult`) on fresh random
inputs and returns a :class:`~dplearn.exercises.checking.Result`; none prints the reference answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dplearn.data import Normalizer, window_indices
from dplearn.envs.benchmark import SUCCESS_THRESHOLD
from dplearn.evaluation import EvalResult
from dplearn.exercises.checking import (
    Result,
    as_numpy,
    call,
    checker,
    close,
    failed,
    passed,
    quiet_call,
)

__all__ = ["check_normalize", "check_episode_windows", "check_score"]




# ---------------------------------------------------------------------------------------------
# Exercise: min-max normalisation
# ---------------------------------------------------------------------------------------------
@checker("min-max normalisation")
def check_normalize(fn: Callable[[np.ndarray, np.ndarray, np.ndarray], Any]) -> Result:
    """Check ``fn(x, x_min, x_max)``: per-dimension map of [x_min, x_max] onto [-1, 1]; a constant
    dimension (x_max == x_min) maps to 0."""
    rng = np.random.default_rng()
    d = int(rng.integers(2, 6))
    data = rng.normal(size=(40, d)) * rng.uniform(1, 200, size=d) + rng.uniform(-100, 300, size=d)
    x_min, x_max = data.min(0), data.max(0)
    x = data[rng.choice(40, size=7, replace=False)]
    ref = Normalizer(x_min, x_max)
    out = quiet_call(fn, x.copy(), x_min.copy(), x_max.copy())
    if out.shape != x.shape:
        return failed(f"for x of shape {x.shape} your function returned shape {out.shape}",
                      "Normalise each entry; keep the shape (..., D).")
    expected = ref.normalize(x)
    if not close(out, expected):
        if close(out, (expected + 1) / 2):
            return failed("your values land in [0, 1], not [-1, 1]",
                          "Map x_min to -1 and x_max to +1: 2 (x - x_min) / (x_max - x_min) - 1.")
        if close(out, (x - x.min()) / (x.max() - x.min()) * 2 - 1) or \
                close(out, (x - x_min.min()) / (x_max.max() - x_min.min()) * 2 - 1):
            return failed("you used one range for all dimensions",
                          "Each dimension (column) has its own x_min[d] and x_max[d].")
        if close(out, -expected):
            return failed("your map is flipped (x_min goes to +1)", "x_min must map to -1.")
        return failed("wrong values", "y = 2 (x - x_min) / (x_max - x_min) - 1 per dimension.")
    # endpoints map exactly
    ends = quiet_call(fn, np.stack([x_min, x_max]), x_min.copy(), x_max.copy())
    if not close(ends, np.stack([-np.ones(d), np.ones(d)])):
        return failed("x_min and x_max should map to exactly -1 and +1", None)
    # a constant dimension
    x_min_c, x_max_c = x_min.copy(), x_max.copy()
    k = int(rng.integers(d))
    x_min_c[k] = x_max_c[k] = 7.5
    xc = x.copy()
    xc[:, k] = 7.5
    out = quiet_call(fn, xc, x_min_c, x_max_c)
    expected = Normalizer(x_min_c, x_max_c).normalize(xc)
    if out.shape != xc.shape or not np.all(np.isfinite(out)):
        return failed("a constant dimension (x_max == x_min) gives NaN or inf",
                      "Where x_max - x_min is (nearly) zero, output 0 instead of dividing by zero.")
    if not close(out, expected):
        return failed("a constant dimension should map to 0 (and the others stay as before)",
                      "Handle the zero range separately, e.g. with np.where.")
    return passed("Correct! Every dimension lands in [-1, 1], and constant ones at 0.")


# ---------------------------------------------------------------------------------------------
# Exercise: all the windows of an episode
# ---------------------------------------------------------------------------------------------
def _windows(x: np.ndarray, t_o: int, t_p: int, t_a: int, before: int, after: int) -> np.ndarray:
    """Windows of one episode with the given padding, via the library's index rule."""
    return x[window_indices(np.array([len(x)]), t_p, pad_before=before, pad_after=after)]


@checker("the windows of an episode")
def check_episode_windows(fn: Callable[[np.ndarray, int, int, int], Any]) -> Result:
    """Check ``fn(x, T_o, T_p, T_a) -> (M, T_p, D)``: every training window of the episode ``x``
    (L, D), padded by repeating edge frames, T_o - 1 steps before and T_a - 1 after."""
    rng = np.random.default_rng()
    for trial in range(8):
        t_o = int(rng.integers(1, 4))
        t_a = int(rng.integers(1, 5))
        t_p = t_o + t_a - 1 + int(rng.integers(0, 6))
        shortest = max(1, t_p - t_o - t_a + 2)  # still at least one window
        n = int(rng.integers(t_p, t_p + 15)) if trial % 4 else int(rng.integers(shortest, t_p + 1))
        d = int(rng.integers(1, 4))
        x = rng.normal(size=(n, d))
        expected = _windows(x, t_o, t_p, t_a, t_o - 1, t_a - 1)
        out = quiet_call(fn, x.copy(), t_o, t_p, t_a)
        if out.shape == expected.shape and close(out, expected):
            continue
        case = f"L={n}, T_o={t_o}, T_p={t_p}, T_a={t_a}"
        for before, after, what, hint in [
            (t_a - 1, t_o - 1, "the two paddings swapped",
             "Before the episode the padding is T_o - 1 (the history), after it T_a - 1."),
            (0, 0, "no padding at all",
             "Pad T_o - 1 steps before the episode so that its first step has a history."),
            (t_p - 1, t_p - 1, "padding of T_p - 1 on both sides",
             "Pad T_o - 1 before and only T_a - 1 after: executed actions must be real."),
        ]:
            wrong = _windows(x, t_o, t_p, t_a, before, after)
            if (before, after) != (t_o - 1, t_a - 1) and out.shape == wrong.shape and close(out, wrong):
                return failed(f"for {case} your windows are those of {what}", hint)
        if out.shape != expected.shape:
            return failed(f"for {case} your result has shape {out.shape}; expected {expected.shape}",
                          "Window starts run from -(T_o - 1) to L - T_p + T_a - 1, each window T_p long.")
        starts = np.arange(-(t_o - 1), n - t_p + t_a)
        idx = starts[:, None] + np.arange(t_p)[None, :]
        inside = ((idx >= 0) & (idx < n))[..., None]
        if close(out, np.where(inside, x[np.clip(idx, 0, n - 1)], 0.0)):
            return failed("your windows pad with zeros",
                          "Repeat the first (or last) frame: the pusher stood still, it was not at 0.")
        if close(out, x[idx % n]):
            return failed("your windows wrap around the episode",
                          "Clip the step index into [0, L-1]; never take frames from the other end.")
        return failed(f"wrong frames for {case}",
                      "Window m starts at s = m - (T_o - 1); its frame j is x[clip(s + j, 0, L - 1)].")
    return passed("Correct! These are exactly the windows SequenceDataset trains on.")


# ---------------------------------------------------------------------------------------------
# Exercise: score and success rate from reward traces
# ---------------------------------------------------------------------------------------------
def _random_traces(rng: np.random.Generator, n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rewards, coverages = [], []
    for i in range(n):
        steps = int(rng.integers(5, 40))
        coverage = np.clip(np.cumsum(rng.normal(0.01, 0.06, size=steps)) + rng.uniform(0, 0.4), 0, 1)
        if i % 3 == 0:  # a success: coverage passes 0.95 at the last step (the env terminates)
            coverage[-1] = rng.uniform(0.951, 1.0)
        elif i % 3 == 1:  # a near miss that later falls back
            coverage[steps // 2] = rng.uniform(0.90, 0.949)
            coverage[-1] = rng.uniform(0.0, 0.3)
        rewards.append(np.clip(coverage / SUCCESS_THRESHOLD, 0, 1))
        coverages.append(coverage)
    return rewards, coverages


@checker("score and success rate")
def check_score(fn: Callable[[list, list], Any]) -> Result:
    """Check ``fn(rewards, coverages) -> (score, success_rate)`` for lists of per-episode traces."""
    rng = np.random.default_rng()
    rewards, coverages = _random_traces(rng, int(rng.integers(6, 12)))
    ref = EvalResult.from_traces(rewards, coverages)
    out = call(fn, [r.copy() for r in rewards], [c.copy() for c in coverages])
    try:
        score, success_rate = (float(as_numpy(v)) for v in out)
    except (TypeError, ValueError):
        return failed("return a pair (score, success_rate) of two numbers", None)
    if not close(score, ref.score):
        if close(score, np.mean([r[-1] for r in rewards])):
            return failed("your score uses the last reward of each episode",
                          "An episode scores its *maximum* reward: coverage can drop after a good moment.")
        if close(score, np.mean(np.concatenate(rewards))):
            return failed("your score averages over all steps",
                          "First take each episode's maximum reward, then average over episodes.")
        if close(score, np.max(np.concatenate(rewards))):
            return failed("your score is the best reward over all episodes",
                          "Average the per-episode maxima over episodes.")
        return failed("wrong score", "score = mean over episodes of max_t reward_t.")
    if not close(success_rate, ref.success_rate):
        return failed("wrong success rate",
                      "success rate = fraction of episodes whose coverage exceeded 0.95 at some step.")
    return passed("Correct! That is the benchmark's protocol.")
