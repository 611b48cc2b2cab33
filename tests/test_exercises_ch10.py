"""Chapter 10's checkers accept correct answers written independently here and reject typical mistakes."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from dplearn.exercises import ch10


# ---- the paper's statistic ------------------------------------------------------------------
def _seed_summary(pool=False, ddof=1, single_sd=0.0):
    def fn(scores):
        if pool:
            flat = [x for s in scores for x in s]
            return max(flat), 0.0, statistics.fmean(flat), 0.0
        best = [max(s) for s in scores]
        mean = [statistics.fmean(s) for s in scores]
        if len(scores) == 1:
            return best[0], single_sd, mean[0], single_sd
        sd = statistics.stdev if ddof == 1 else statistics.pstdev
        return statistics.fmean(best), sd(best), statistics.fmean(mean), sd(mean)
    return fn


def test_seed_summary_accepts_the_statistic_written_with_the_statistics_module():
    assert ch10.check_seed_summary(_seed_summary())


@pytest.mark.parametrize("wrong, words", [
    (dict(pool=True), "pools all checkpoints"),
    (dict(ddof=0), "population standard"),
    (dict(single_sd=float("nan")), "single seed"),
])
def test_seed_summary_names_the_mistake(wrong, words):
    res = ch10.check_seed_summary(_seed_summary(**wrong))
    assert not res and words in res.message


def test_seed_summary_stub_and_wrong_length():
    assert "Not attempted" in ch10.check_seed_summary(lambda scores: ...).message
    res = ch10.check_seed_summary(lambda scores: (0.5, 0.1))
    assert not res and "four numbers" in res.hint


# ---- velocity actions -------------------------------------------------------------------------
def _to_velocity(state, action):
    return np.asarray(action, dtype=np.float64) - np.asarray(state, dtype=np.float64)[:, :2]


def _to_position(state, delta):
    return np.asarray(delta, dtype=np.float64) + np.asarray(state, dtype=np.float64)[:, :2]


def test_velocity_accepts_subtraction_and_addition():
    assert ch10.check_velocity_actions(_to_velocity, _to_position)


@pytest.mark.parametrize("to_velocity, to_position, words", [
    (lambda s, a: -_to_velocity(s, a), _to_position, "wrong sign"),
    (lambda s, a: np.asarray(a) - np.asarray(s)[:, 2:4], _to_position, "block's position"),
    (_to_velocity, lambda s, d: np.asarray(d) - np.asarray(s)[:, :2], "to_position"),
    (lambda s, a: np.asarray(a), _to_position, "displacements"),
])
def test_velocity_names_the_mistake(to_velocity, to_position, words):
    res = ch10.check_velocity_actions(to_velocity, to_position)
    assert not res and words in res.message


# ---- executed rows with latency -----------------------------------------------------------------
def _rows(T_o, T_p, T_a, k):
    # the timeline, step by step: the plan's newest observation is row T_o - 1 at time t - k;
    # execution starts at time t, k rows later
    rows, row = [], T_o - 1
    for _ in range(k):
        row += 1
    for _ in range(T_a):
        if row >= T_p:
            raise ValueError("chunk too short")
        rows.append(row)
        row += 1
    return rows


def test_executed_rows_accepts_the_timeline():
    assert ch10.check_executed_rows(_rows)


def test_executed_rows_names_the_mistakes():
    res = ch10.check_executed_rows(lambda T_o, T_p, T_a, k: _rows(T_o, T_p + k, T_a, 0))
    assert not res and "ignore the latency" in res.message
    res = ch10.check_executed_rows(lambda T_o, T_p, T_a, k: list(range(k, k + T_a)))
    assert not res and "start at row k" in res.message
    res = ch10.check_executed_rows(lambda T_o, T_p, T_a, k: list(range(T_o - 1 + k, T_o - 1 + k + T_a)))
    assert not res and "too short" in res.message
