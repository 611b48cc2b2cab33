"""Argument checks shared by the whole library: one rule, one message for each kind of bad input.

Every public function that takes a count, an index, a seed or a float parameter checks it here, so
that a bad value is refused the same way everywhere, with a message that names the argument, says
what was expected and shows what was given::

    >>> positive_int("num_steps", 0)
    Traceback (most recent call last):
    ...
    ValueError: num_steps must be an integer >= 1, got 0

The rules:

- integers: Python ``int`` and NumPy integers are accepted (and returned as ``int``); ``bool``,
  floats (even ``3.0``) and strings are refused;
- floats: Python and NumPy numbers (``bool`` excluded) are accepted and returned as ``float``;
  NaN and ±inf are always refused, then the bounds are checked;
- flags: ``True`` or ``False`` (NumPy's ``bool_`` too), never ``0``, ``1`` or a string;
- choices: the value must be one of a fixed tuple.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["integer", "positive_int", "non_negative_int", "finite_float", "positive_float",
           "probability", "boolean", "choice"]


def _describe_range(low: float | None, high: float | None, low_open: bool = False,
                    high_open: bool = False) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high}"
    return ""


def integer(name: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an ``int`` if it is an integer (Python or NumPy) in ``[low, high]``.

    ``None`` for a bound means unbounded on that side. Raises ``ValueError`` naming ``name``.
    """
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok:
        v = int(value)
        ok = (low is None or v >= low) and (high is None or v <= high)
    if not ok:
        what = " ".join(filter(None, ["an integer", _describe_range(low, high)]))
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return v


def positive_int(name: str, value: Any) -> int:
    """``value`` as an ``int`` ≥ 1 (a count or a size)."""
    return integer(name, value, low=1)


def non_negative_int(name: str, value: Any) -> int:
    """``value`` as an ``int`` ≥ 0 (a seed or an index)."""
    return integer(name, value, low=0)


def finite_float(name: str, value: Any, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite ``float`` in the given range (open or closed on each side).

    Accepts Python and NumPy numbers (integers too); refuses ``bool``, NaN, ±inf and anything else.
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = (math.isfinite(v)
              and (low is None or (v > low if low_open else v >= low))
              and (high is None or (v < high if high_open else v <= high)))
    if not ok:
        what = " ".join(filter(None, ["a finite number", _describe_range(low, high, low_open,
                                                                          high_open)]))
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return v


def positive_float(name: str, value: Any) -> float:
    """``value`` as a finite ``float`` > 0 (a learning rate, a temperature, a step size)."""
    return finite_float(name, value, low=0.0, low_open=True)


def probability(name: str, value: Any) -> float:
    """``value`` as a ``float`` in [0, 1]."""
    return finite_float(name, value, low=0.0, high=1.0)


def boolean(name: str, value: Any) -> bool:
    """``value`` as a ``bool`` if it is ``True`` or ``False`` (Python or NumPy); ``0``, ``1``, ``None``
    and strings are refused."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"{name} must be True or False, got {value!r}")


def choice(name: str, value: Any, options: Iterable[Any]) -> Any:
    """``value`` itself if it is one of ``options``; otherwise a ``ValueError`` listing them."""
    options = tuple(options)
    try:
        ok = value in options
    except TypeError:  # unhashable or incomparable values are simply not among the options
        ok = False
    if not ok:
        listed = ", ".join(repr(o) for o in options)
        raise ValueError(f"{name} must be one of {listed}; got {value!r}")
    return value
