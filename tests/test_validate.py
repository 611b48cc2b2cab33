"""dplearn.validate: each rule accepts what it promises and refuses the rest with a message that
names the argument."""

import math

import numpy as np
import pytest

from dplearn import validate as v


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.int32(1), np.uint8(200)])
def test_positive_int_accepts_python_and_numpy_integers(value):
    out = v.positive_int("n", value)
    assert type(out) is int and out == int(value)


@pytest.mark.parametrize("value", [0, -1, 2.0, 1.5, True, "3", None, np.float64(2.0), [1]])
def test_positive_int_refuses_with_the_name(value):
    with pytest.raises(ValueError, match=r"^n must be an integer >= 1, got "):
        v.positive_int("n", value)


def test_integer_bounds_inclusive_on_both_sides():
    assert v.integer("k", 5, low=5, high=9) == 5 and v.integer("k", 9, low=5, high=9) == 9
    with pytest.raises(ValueError, match=r"k must be an integer in \[5, 9\], got 10"):
        v.integer("k", 10, low=5, high=9)
    with pytest.raises(ValueError, match=r"seed must be an integer >= 0, got -1"):
        v.non_negative_int("seed", -1)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float32("nan"), True, "0.1",
                                   None])
def test_finite_float_refuses_nan_inf_bool_and_strings(value):
    with pytest.raises(ValueError, match=r"^eta must be a finite number"):
        v.finite_float("eta", value, low=0.0)


def test_finite_float_open_and_closed_bounds():
    assert v.finite_float("x", 0.0, low=0.0) == 0.0
    with pytest.raises(ValueError, match=r"x must be a finite number > 0.0, got 0.0"):
        v.positive_float("x", 0.0)
    assert v.probability("p", np.float32(1.0)) == 1.0
    with pytest.raises(ValueError, match=r"p must be a finite number in \[0.0, 1.0\]"):
        v.probability("p", 1.0000001)
    out = v.finite_float("x", np.int64(2))
    assert type(out) is float and out == 2.0


def test_choice_lists_the_options():
    assert v.choice("obs", "state", ("state", "keypoints")) == "state"
    with pytest.raises(ValueError, match=r"obs must be one of 'state', 'keypoints'; got 'stat'"):
        v.choice("obs", "stat", ("state", "keypoints"))
    with pytest.raises(ValueError, match=r"obs must be one of"):
        v.choice("obs", ["unhashable"], ("state",))


def test_boolean_accepts_python_and_numpy_flags_only():
    assert v.boolean("clip_sample", True) is True and v.boolean("clip_sample", np.bool_(False)) is False
    for bad in (0, 1, "yes", None, 1.0):
        with pytest.raises(ValueError, match=f"clip_sample must be True or False, got {bad!r}"):
            v.boolean("clip_sample", bad)
