"""How many CPU threads torch uses: one rule for the whole project.

torch starts with one thread per core. For the small networks of this book that is often slower
than one thread, and on a machine that is busy with something else (a second training run, a
test suite, a browser) several threads contend for the same cores and a step can take many times
longer. So dplearn never relies on the default:

- the command line (``dplearn train``, ``dplearn eval``) and every chapter call
  :func:`set_torch_threads` once: with no argument it uses every core this process may run on; a
  chapter whose networks are small asks for one thread (``set_torch_threads(1)``);
- ``DPLEARN_THREADS=n`` in the environment always wins over both, so whoever runs the book or the
  tests on a shared machine decides (e.g. ``DPLEARN_THREADS=1`` beside a training run).

The rule applies to the CPU only; on a GPU the thread count hardly matters.

Introduced in chapter 8.
"""

from __future__ import annotations

import os

from dplearn import validate

__all__ = ["torch_threads", "set_torch_threads", "THREADS_ENV_VAR"]

THREADS_ENV_VAR = "DPLEARN_THREADS"


def _available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def torch_threads(n: int | None = None) -> int:
    """The thread count the rule gives: ``DPLEARN_THREADS`` when set, else ``n``, else the usable cores."""
    value = os.environ.get(THREADS_ENV_VAR, "").strip()
    if value:
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"{THREADS_ENV_VAR} must be a positive integer, got {value!r}")
        return n
    if n is not None:
        return validate.positive_int("n", n)
    return _available_cores()


def set_torch_threads(n: int | None = None) -> int:
    """Set torch's intra-op thread count by the rule (:func:`torch_threads`); returns the count."""
    import torch

    n = torch_threads(n)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
