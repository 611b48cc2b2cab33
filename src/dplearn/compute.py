"""How torch uses the CPU: one rule for the whole project (threads, subnormal numbers).

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

**Subnormal numbers.** float32 numbers below about 1.2e-38 are stored "subnormal", and x86 CPUs
compute with them up to a hundred times slower than with ordinary floats. Training makes them: once an
energy-based policy (chapter 7) separates its demonstrated actions from the counter-examples, the
softmax of InfoNCE gives most counter-examples probabilities that small, and every backward pass
multiplies through them (measured: a step of the keypoint IBC recipe took 2.7 times as long after
1,000 steps as with subnormals flushed to zero). :func:`flushed_denormals` flushes them to zero while
it is active, which changes no number by more than 1.2e-38; :func:`dplearn.training.train` uses it on
the CPU.

Introduced in chapter 8.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from dplearn import validate

__all__ = ["torch_threads", "set_torch_threads", "THREADS_ENV_VAR", "denormals_flushed", "flushed_denormals"]

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


def denormals_flushed() -> bool:
    """Whether torch's CPU arithmetic flushes subnormal float32 numbers to zero now, on the calling
    thread (tested, since torch has no getter: 1e-39 · 1 is 0 exactly when they are flushed)."""
    import torch

    return float((torch.tensor([1e-39]) * 1.0)[0]) == 0.0


def _loaded_libgomp() -> str | None:
    """The path of the GNU OpenMP runtime this process has loaded (torch's thread pool), or None."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1]
                if "libgomp" in os.path.basename(path) and os.path.exists(path):
                    return path
    except OSError:
        pass
    return None


def _on_every_pool_thread(fn: Callable[[], object]) -> bool:
    """Run ``fn()`` once on each of the threads torch's CPU operations run on: the calling thread and
    the workers of torch's OpenMP pool (GNU OpenMP, which torch's Linux builds use). Where that pool
    cannot be reached, only on the calling thread; returns whether the workers were reached."""
    import ctypes

    import torch

    path = _loaded_libgomp()
    if path is None or torch.get_num_threads() < 2:
        fn()
        return False
    lib = ctypes.CDLL(path)  # the already loaded runtime, not a second copy
    callback_type = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
    callback = callback_type(lambda _data: fn())
    lib.GOMP_parallel.argtypes = [callback_type, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
    lib.GOMP_parallel.restype = None
    # a parallel region of torch's thread count: GNU OpenMP runs it on the pool torch's own regions use
    lib.GOMP_parallel(callback, None, torch.get_num_threads(), 0)
    return True


@contextmanager
def flushed_denormals(enabled: bool = True) -> Iterator[bool]:
    """Flush subnormal float32 numbers to zero on the CPU inside the ``with`` block (``enabled=False``:
    change nothing); the setting of the calling thread before the block is restored on exit.

    The flag lives in each thread's floating-point control register, and ``torch.set_flush_denormal``
    sets only the calling thread's, while torch splits large operations across a pool of threads; so it
    is set on every thread of torch's OpenMP pool as well (at its thread count when the block starts).
    Yields whether flushing is on (``False`` also where the CPU cannot flush: it needs SSE3).
    """
    import torch

    before = denormals_flushed()
    if not enabled:
        yield before
        return
    supported = bool(torch.set_flush_denormal(True))
    if supported:
        _on_every_pool_thread(lambda: torch.set_flush_denormal(True))
    try:
        yield supported
    finally:
        if supported and not before:
            _on_every_pool_thread(lambda: torch.set_flush_denormal(False))
