"""The exercise machinery: stubs are 'not attempted', errors in the reader's code become a failed result,
and results are truthy exactly when passed."""

from __future__ import annotations

import numpy as np

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
