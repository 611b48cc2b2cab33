"""Environment worker processes: Push-T episodes stepped on several CPU cores.

:func:`dplearn.evaluation.evaluate` with ``workers=N`` hands the environments to N processes of an
:class:`EnvWorkers` pool. Two ways of sharing the work, chosen by the policy:

- **environments in the workers, the policy in the caller** (every batched policy, e.g. a neural
  network on a GPU): the caller asks the policy for a batch of action chunks, as in the sequential
  loop, and each worker steps its environments through their chunks and sends back what happened;
- **whole episodes in the workers** (per-step callables such as the scripted expert, which cost more
  than the physics): each worker runs complete episodes with its own copy of the callable.

Either way an episode sees the same reset, the same actions and the same physics as in the
sequential loop, so the per-episode results are identical; only the wall time changes.

The workers import neither torch nor the policy's code beyond what is sent to them (they use the
``spawn`` start method, safe next to CUDA and torch's threads). This module is torch-free.

Introduced in chapter 9.
"""

from __future__ import annotations

import copy
import multiprocessing as mp
import os
import signal
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait
from typing import Any

import numpy as np

from dplearn import validate

__all__ = ["EnvWorkers", "LocalEnvs", "state_of", "default_workers"]


def state_of(env: Any, obs: Any, obs_type: str) -> np.ndarray:
    """(5,) state (agent x, y, block x, y, angle mod 2π) of a PushTEnv, whatever its obs type."""
    if obs_type == "state":
        return np.asarray(obs, dtype=np.float32)
    return np.asarray(env.unwrapped.get_state(), dtype=np.float32)


def default_workers(n_envs: int) -> int:
    """A sensible pool size: one worker per core but one (the policy's), at most one per environment;
    1 (no workers) on machines with fewer than 4 cores, where the policy and the workers would take
    turns on the same cores and the messages cost more than the stepping saves
    (``benchmarks/eval_speed.py`` measures it)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return 1 if cores < 4 else max(1, min(int(n_envs), cores - 1))


# ---------------------------------------------------------------------------------------------
# the worker process
# ---------------------------------------------------------------------------------------------
def _reset(env: Any, seed: int, start_state: Any) -> Any:
    options = None if start_state is None else {"reset_to_state": start_state}
    obs, _ = env.reset(seed=int(seed), options=options)
    return obs


def _run_chunk(env: Any, actions: np.ndarray, remaining: int, obs_type: str, keep: int) -> tuple:
    """Execute ``actions`` (n, 2) until the episode ends (terminated or truncated) or ``remaining`` steps
    are taken."""
    observations, rewards, coverages, states = [], [], [], []
    done = False
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        rewards.append(float(reward))
        coverages.append(float(info["coverage"]))
        states.append(state_of(env, obs, obs_type))
        if terminated or truncated or len(rewards) >= remaining:
            done = True
            break
    return observations[-keep:], rewards, coverages, states, len(rewards), done


def _run_episode(env: Any, fn: Callable[[Any], Any], stateful: bool, seed: int, start_state: Any,
                 obs_type: str, max_steps: int) -> tuple:
    """One whole episode of a per-step callable (T_o = 1, one action per call)."""
    obs = _reset(env, seed, start_state)
    if stateful:
        fn = copy.deepcopy(fn)
        fn.reset(int(seed))
    rewards, coverages, states, actions = [], [], [state_of(env, obs, obs_type)], []
    while True:
        action = np.asarray(fn(obs), dtype=np.float64).reshape(1, 2)[0]
        obs, reward, terminated, truncated, info = env.step(action)
        actions.append(action)
        rewards.append(float(reward))
        coverages.append(float(info["coverage"]))
        states.append(state_of(env, obs, obs_type))
        if terminated or truncated or len(rewards) >= max_steps:
            return rewards, coverages, states, actions


class LocalEnvs:
    """Environments in this process, with :class:`EnvWorkers`' ``configure``/``reset``/``step`` calls.

    :func:`dplearn.evaluation.evaluate` steps these when ``workers=1``, and each worker process of an
    :class:`EnvWorkers` pool answers its requests with one, so both paths run the same code.
    """

    n = 1

    def __init__(self) -> None:
        self.envs: list[Any] = []
        self._spec: tuple | None = None

    def configure(self, make_env: Callable[..., Any], obs_type: str, env_kwargs: dict[str, Any],
                  n_envs: int) -> None:
        """Make sure ``n_envs`` environments exist, built by ``make_env(obs_type=..., **env_kwargs)``."""
        spec = (make_env, obs_type, dict(env_kwargs))
        if spec != self._spec:
            self.envs, self._spec = [], spec
        self.envs += [make_env(obs_type=obs_type, **env_kwargs) for _ in range(int(n_envs) - len(self.envs))]

    @property
    def obs_type(self) -> str:
        if self._spec is None:
            raise RuntimeError("LocalEnvs: call configure() before reset() or step()")
        return self._spec[1]

    def reset(self, requests: Sequence[tuple[int, int, Any]]) -> list[tuple[Any, np.ndarray]]:
        """``[(slot, seed, start_state or None)]`` → ``[(first observation, state (5,))]``, in order."""
        firsts = []
        for slot, seed, start in requests:
            obs = _reset(self.envs[slot], seed, start)
            firsts.append((obs, state_of(self.envs[slot], obs, self.obs_type)))
        return firsts

    def step(self, requests: Sequence[tuple[int, np.ndarray, int]], keep: int) -> list[tuple]:
        """``[(slot, actions (n, 2), steps left)]`` → per request ``(last <= keep observations, rewards,
        coverages, states, steps taken, done)``, in order."""
        return [_run_chunk(self.envs[slot], actions, remaining, self.obs_type, keep)
                for slot, actions, remaining in requests]


def _serve(conn: Any) -> None:
    """The worker's loop: one command in, one reply out, until ``close``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's to handle; it closes the pool
    local = LocalEnvs()
    while True:
        try:
            command, *args = conn.recv()
        except (EOFError, OSError):
            return
        if command == "close":
            conn.close()
            return
        try:
            if command == "envs":
                local.configure(*args)
                reply: Any = len(local.envs)
            elif command == "reset":
                reply = local.reset(*args)
            elif command == "step":
                reply = local.step(*args)
            elif command == "episodes":
                fn, stateful, max_steps, requests = args
                reply = [(index, _run_episode(local.envs[0], fn, stateful, seed, start, local.obs_type, max_steps))
                         for index, seed, start in requests]
            else:
                raise ValueError(f"unknown command {command!r}")
            conn.send(("ok", reply))
        except Exception as exc:  # the caller raises it: bad input as its one line, else the traceback
            conn.send(("error", (traceback.format_exc(), str(exc) if isinstance(exc, ValueError) else None)))


# ---------------------------------------------------------------------------------------------
# the pool
# ---------------------------------------------------------------------------------------------
class EnvWorkers:
    """A pool of ``workers`` processes that own and step environments.

    Pass it to :func:`dplearn.evaluation.evaluate` as ``workers=`` to reuse the same processes over
    several evaluations (e.g. during training); ``workers=N`` makes and closes a pool per call.
    Use it as a context manager, or call :meth:`close`.

    Environment slot ``b`` lives in worker ``b % workers``; ``make_env`` and everything sent to
    the workers must be picklable (a class or a module-level function, not a lambda).
    """

    def __init__(self, workers: int, start_method: str = "spawn"):
        self.n = validate.positive_int("workers", workers)
        ctx = mp.get_context(start_method)
        self._conns, self._procs = [], []
        try:
            for _ in range(self.n):
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_serve, args=(child,), daemon=True)
                proc.start()
                child.close()
                self._conns.append(parent)
                self._procs.append(proc)
        except BaseException:
            self.close()
            raise
        self._spec: tuple | None = None
        self._slots = 0

    # ---- plumbing -------------------------------------------------------------------------------
    def _send(self, w: int, *message: Any) -> None:
        try:
            self._conns[w].send(message)
        except (BrokenPipeError, OSError) as exc:
            raise RuntimeError(f"environment worker {w} is gone ({exc})") from None

    def _recv(self, w: int) -> Any:
        try:
            status, reply = self._conns[w].recv()
        except (EOFError, OSError):
            code = self._procs[w].exitcode
            self.close()
            raise RuntimeError(f"environment worker {w} died (exit code {code})") from None
        if status == "error":
            self.close()  # other workers may still owe replies: the pool cannot be used any more
            trace, bad_input = reply
            if bad_input is not None:  # e.g. a NaN action: the env's own message, no traceback
                raise ValueError(f"environment worker {w}: {bad_input}")
            raise RuntimeError(f"environment worker {w} failed:\n{trace}")
        return reply

    def _ask_all(self, messages: dict[int, tuple]) -> dict[int, Any]:
        for w, message in messages.items():
            self._send(w, *message)
        return {w: self._recv(w) for w in messages}

    @property
    def closed(self) -> bool:
        return not self._conns

    # ---- environments -----------------------------------------------------------------------------
    def configure(self, make_env: Callable[..., Any], obs_type: str, env_kwargs: dict[str, Any],
                  n_envs: int) -> None:
        """Make sure ``n_envs`` environment slots exist, built by ``make_env(obs_type=..., **env_kwargs)``."""
        if self.closed:
            raise RuntimeError("this EnvWorkers pool is closed")
        per_worker = -(-int(n_envs) // self.n)
        spec = (make_env, obs_type, dict(env_kwargs))
        if spec == self._spec and self._slots >= per_worker:
            return
        self._ask_all({w: ("envs", make_env, obs_type, dict(env_kwargs), per_worker) for w in range(self.n)})
        self._spec, self._slots = spec, per_worker

    def _scatter(self, requests: Sequence[tuple], command: str, *extra: Any) -> list[Any]:
        """Send each ``(slot, ...)`` request to the worker holding ``slot`` (slot ``s`` lives in worker
        ``s % n`` as its env ``s // n``), all workers at once; the replies come back in request order."""
        by_worker: dict[int, list] = {}
        for slot, *rest in requests:
            by_worker.setdefault(slot % self.n, []).append((slot // self.n, *rest))
        replies = {w: iter(r) for w, r in self._ask_all({w: (command, reqs, *extra)
                                                           for w, reqs in by_worker.items()}).items()}
        return [next(replies[slot % self.n]) for slot, *_ in requests]

    def reset(self, requests: Sequence[tuple[int, int, Any]]) -> list[tuple[Any, np.ndarray]]:
        """``[(slot, seed, start_state or None)]`` → ``[(first observation, state (5,))]``, in order."""
        return self._scatter(requests, "reset")

    def step(self, requests: Sequence[tuple[int, np.ndarray, int]], keep: int) -> list[tuple]:
        """``[(slot, actions (n, 2), steps left)]`` → per request ``(last <= keep observations, rewards,
        coverages, states, steps taken, done)``, in order; all workers step at the same time."""
        return self._scatter(requests, "step", keep)

    def run_episodes(self, fn: Callable[[Any], Any], stateful: bool, requests: Sequence[tuple[int, int, Any]],
                     max_steps: int, on_done: Callable[[int], None] | None = None) -> dict[int, tuple]:
        """Whole episodes of the per-step callable ``fn``: ``[(index, seed, start_state or None)]`` →
        ``{index: (rewards, coverages, states, actions)}``. Episodes go out one at a time to whichever
        worker is free (episodes differ in length); a stateful ``fn`` is deep-copied and reset with
        the episode's seed, as :class:`dplearn.policy_protocol.PerStepPolicy` does."""
        if self._slots < 1:
            raise RuntimeError("configure() the environments before run_episodes()")
        todo = list(requests)[::-1]
        results: dict[int, tuple] = {}
        busy: dict[Any, int] = {}
        for w in range(self.n):
            if todo:
                self._send(w, "episodes", fn, stateful, max_steps, [todo.pop()])
                busy[self._conns[w]] = w
        while busy:
            for conn in wait(list(busy)):
                w = busy.pop(conn)
                for index, episode in self._recv(w):
                    results[index] = episode
                    if on_done is not None:
                        on_done(index)
                if todo:
                    self._send(w, "episodes", fn, stateful, max_steps, [todo.pop()])
                    busy[conn] = w
        return results

    # ---- lifetime ----------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the workers (idempotent)."""
        for conn in self._conns:
            try:
                conn.send(("close",))
            except (BrokenPipeError, OSError):
                pass
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
        for conn in self._conns:
            conn.close()
        self._conns, self._procs = [], []

    def __enter__(self) -> EnvWorkers:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter exit
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"EnvWorkers(workers={self.n}{', closed' if self.closed else ''})"
