"""Chapter 5 checkers: a correct answer passes, typical mistakes fail with a hint, stubs are 'not attempted'.

The reference answers here are written independently of the library (plain NumPy)."""

from __future__ import annotations

import numpy as np
import pytest

from dplearn.exercises import ch05


# ---- normalisation --------------------------------------------------------------------------
def normalize_ok(x, x_min, x_max):
    span = x_max - x_min
    safe = np.where(span > 1e-8, span, 1.0)
    return np.where(span > 1e-8, 2 * (x - x_min) / safe - 1, 0.0)


def normalize_01(x, x_min, x_max):
    span = np.where(x_max - x_min > 1e-8, x_max - x_min, 1.0)
    return np.where(x_max - x_min > 1e-8, (x - x_min) / span, 0.5)


def normalize_global(x, x_min, x_max):
    return 2 * (x - x_min.min()) / (x_max.max() - x_min.min()) - 1


def normalize_no_constant(x, x_min, x_max):
    return 2 * (x - x_min) / (x_max - x_min) - 1


def test_normalize_reference_passes_repeatedly():
    for _ in range(5):
        r = ch05.check_normalize(normalize_ok)
        assert r, str(r)


@pytest.mark.parametrize("wrong, hint_word", [
    (normalize_01, "-1"),
    (normalize_global, "own"),
    (normalize_no_constant, "zero"),
    (lambda x, lo, hi: -normalize_ok(x, lo, hi), "-1"),
])
def test_normalize_mistakes_fail_with_hint(wrong, hint_word):
    r = ch05.check_normalize(wrong)
    assert not r and r.hint and hint_word in r.hint, str(r)


def test_normalize_stub_not_attempted():
    def normalize(x, x_min, x_max):
        ...  # YOUR CODE HERE

    r = ch05.check_normalize(normalize)
    assert not r and "Not attempted" in r.message


# ---- the windows of an episode --------------------------------------------------------------
def windows_with(x, before, after, length, fill="edge"):
    """Plain-loop windows of one episode: starts -before .. L - length + after."""
    n = len(x)
    out = []
    for s in range(-before, n - length + after + 1):
        frames = []
        for j in range(length):
            k = s + j
            if fill == "edge":
                frames.append(x[min(max(k, 0), n - 1)])
            elif fill == "zero":
                frames.append(x[k] if 0 <= k < n else np.zeros_like(x[0]))
            else:  # wrap
                frames.append(x[k % n])
        out.append(np.stack(frames))
    return np.stack(out) if out else np.zeros((0, length, x.shape[1]))


def windows_ok(x, t_o, t_p, t_a):
    return windows_with(x, t_o - 1, t_a - 1, t_p)


@pytest.mark.parametrize("wrong, hint_word", [
    (lambda x, o, p, a: windows_with(x, a - 1, o - 1, p), "Before the episode"),
    (lambda x, o, p, a: windows_with(x, 0, 0, p), "history"),
    (lambda x, o, p, a: windows_with(x, p - 1, p - 1, p), "only T_a - 1"),
    (lambda x, o, p, a: windows_with(x, o - 1, a - 1, p, fill="zero"), "Repeat"),
    (lambda x, o, p, a: windows_with(x, o - 1, a - 1, p, fill="wrap"), "Clip"),
    (lambda x, o, p, a: windows_with(x, o - 1, a - 1, p)[:, ::-1], "clip"),
])
def test_windows_mistakes_fail_with_hint(wrong, hint_word):
    r = ch05.check_episode_windows(wrong)
    assert not r and r.hint and hint_word in r.hint, str(r)


def test_windows_reference_passes_repeatedly():
    for _ in range(5):
        r = ch05.check_episode_windows(windows_ok)
        assert r, str(r)


def test_windows_stub_not_attempted():
    def windows(x, t_o, t_p, t_a):
        ...  # YOUR CODE HERE

    assert "Not attempted" in ch05.check_episode_windows(windows).message


# ---- score ----------------------------------------------------------------------------------
def score_ok(rewards, coverages):
    score = np.mean([max(r) for r in rewards])
    success = np.mean([max(c) > 0.95 for c in coverages])
    return score, success


def score_last(rewards, coverages):
    return np.mean([r[-1] for r in rewards]), score_ok(rewards, coverages)[1]


def score_pooled(rewards, coverages):
    return np.mean(np.concatenate(rewards)), score_ok(rewards, coverages)[1]


def score_bad_success(rewards, coverages):
    return score_ok(rewards, coverages)[0], np.mean([np.mean(c) > 0.95 for c in coverages])


def test_score_reference_passes_repeatedly():
    for _ in range(5):
        r = ch05.check_score(score_ok)
        assert r, str(r)


@pytest.mark.parametrize("wrong, hint_word", [
    (score_last, "maximum"), (score_pooled, "First"), (score_bad_success, "success rate"),
])
def test_score_mistakes_fail_with_hint(wrong, hint_word):
    r = ch05.check_score(wrong)
    assert not r and r.hint and hint_word in r.hint, str(r)


def test_score_stub_and_bad_return():
    def score(rewards, coverages):
        ...  # YOUR CODE HERE

    assert "Not attempted" in ch05.check_score(score).message
    r = ch05.check_score(lambda r, c: 0.5)
    assert not r and "pair" in r.message


def test_checkers_never_raise_on_crashing_code():
    def boom(*args):
        raise RuntimeError("oops")

    for check in (ch05.check_normalize, ch05.check_episode_windows, ch05.check_score):
        r = check(boom)
        assert not r and "RuntimeError" in r.message
