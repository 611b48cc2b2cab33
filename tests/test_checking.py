"""The exercise machinery: stubs are 'not attempted', errors in the reader's code become a failed result,
and results are truthy exactly when passed."""

from __future__ import annotations

import re

import numpy as np
import pytest

from dplearn.exercises.checking import Result, call, checker, close, failed, passed


@checker("square a number")
def check_square(fn):
    x = np.random.default_rng(0).normal(size=5)
    got = call(fn, x)
    if not close(got, x**2):
        return failed("wrong values", "square each entry")
    return passed()


def test_stub_is_not_attempted():
    def stub(x):
        ...

    r = check_square(stub)
    assert not r and "Not attempted" in r.message


def test_not_implemented_is_not_attempted():
    def stub(x):
        raise NotImplementedError

    assert "Not attempted" in check_square(stub).message


def test_correct_answer_passes_and_wrong_fails_with_hint():
    assert check_square(lambda x: x * x)
    r = check_square(lambda x: 2 * x)
    assert not r and r.hint == "square each entry" and "Hint" in str(r)


def test_exception_in_reader_code_is_reported_not_raised():
    r = check_square(lambda x: x.nonexistent)
    assert not r and "AttributeError" in r.message


def test_result_display_never_shows_hint_on_success():
    r = Result(True, "ok", hint="secret")
    assert "secret" not in str(r) and "secret" not in r._repr_html_()


def test_close_requires_same_shape():
    assert not close(np.zeros(3), np.zeros((3, 1)))
    assert close(np.ones(3), np.ones(3) + 1e-9)


# ---------------------------------------------------------------------------------------------
# Multiple choice: the key is a salted hash
# ---------------------------------------------------------------------------------------------
def _multiple_choice_questions():
    """Every MultipleChoice of the chapter checkers, with its module."""
    import importlib
    import pkgutil

    import dplearn.exercises as package
    from dplearn.exercises.checking import MultipleChoice

    found = []
    for info in pkgutil.iter_modules(package.__path__):
        if re.fullmatch(r"ch\d\d", info.name):
            module = importlib.import_module(f"dplearn.exercises.{info.name}")
            found += [(module, q) for q in vars(module).values() if isinstance(q, MultipleChoice)]
    return found


def test_multiple_choice_keys_are_not_in_the_source():
    import inspect

    from dplearn.exercises.checking import choice_digest

    questions = _multiple_choice_questions()
    assert len(questions) >= 4
    for module, q in questions:
        source = inspect.getsource(module)
        right = next(o for o in q.options if choice_digest(q.question, o) == q.key)
        assert re.fullmatch(r"[0-9a-f]{16}", q.key) and q.key in source
        # no comparison with the right option, hints keyed by digests, not by options
        assert not re.search(rf"==\s*[\"']{re.escape(right)}[\"']", source), module.__name__
        assert all(re.fullmatch(r"[0-9a-f]{16}", h) for h in q.hints), q.question
        assert right not in q.correct.lower().split(), "the success message names the answer"


def test_a_multiple_choice_question_accepts_exactly_its_key():
    from dplearn.exercises.checking import MultipleChoice, choice_digest

    q = MultipleChoice("test.q", ("a", "b", "c"), key=choice_digest("test.q", "c"),
                       hints={choice_digest("test.q", "a"): "think again"})
    assert q.check(" (C) ") and q.check("c.")
    assert not q.check("a") and q.check("a").hint == "think again"
    assert not q.check("b") and q.check("b").hint
    assert not q.check("z") and not q.check(3)
    assert choice_digest("other.q", "c") != choice_digest("test.q", "c")  # the salt matters
    with pytest.raises(AssertionError):
        MultipleChoice("test.q", ("a", "b"), key=choice_digest("test.q", "c"), hints={})


def test_each_question_has_one_right_option():
    for _module, q in _multiple_choice_questions():
        right = [o for o in q.options if q.check(o)]
        assert len(right) == 1, f"{q.question}: options passing: {right}"
        for wrong in set(q.options) - set(right):
            assert q.check(wrong).hint, f"{q.question}: option {wrong!r} fails without a hint"


def test_mode_seeking_key_matches_a_computation():
    """ch01: fit one Gaussian to two modes on a grid; the objective whose fit is narrow (one mode)
    is the one the checker accepts."""
    from dplearn.exercises import ch01

    x = np.linspace(-8, 8, 4001)
    dx = x[1] - x[0]

    def normal(m, s):
        return np.exp(-0.5 * ((x - m) / s) ** 2) / (s * np.sqrt(2 * np.pi))

    p = 0.5 * normal(-2, 0.5) + 0.5 * normal(2, 0.5)
    grid = [(m, s) for m in np.linspace(-3, 3, 61) for s in np.linspace(0.3, 3, 55)]

    def kl(a, b):
        mask = a > 1e-300
        return np.sum(a[mask] * np.log(a[mask] / np.maximum(b[mask], 1e-300))) * dx

    widths = {
        "forward": min(grid, key=lambda ms: kl(p, normal(*ms)))[1],
        "reverse": min(grid, key=lambda ms: kl(normal(*ms), p))[1],
    }
    narrow = min(widths, key=widths.get)
    assert widths[narrow] < 0.8 < max(widths.values())
    assert ch01.check_mode_seeking(narrow)
    assert not ch01.check_mode_seeking(max(widths, key=widths.get))
