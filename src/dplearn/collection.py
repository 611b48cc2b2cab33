"""Collecting expert demonstrations of Push-T, in parallel over CPU cores.

Introduced in chapter 5.

Episode ``i`` of a collection with seed ``S`` starts from ``env.reset(seed=S + i)`` and is
demonstrated by :class:`~dplearn.experts.PushTExpert` seeded with ``S + i + EXPERT_SEED_OFFSET``;
only successful episodes (coverage > 0.95 within 300 steps) are kept, in the order of their seeds,
until the requested number is reached. The result is a :class:`~dplearn.data.Demos` in the
benchmark's replay-buffer layout: ``state[t]`` is the observation and ``action[t]`` the target the
expert commanded after seeing it; the observation that reached the goal is not stored.

Stored episodes replay exactly. Demonstrations are stored in float32, so each episode starts from a
float32 state: the seeded start is rounded to float32 (:func:`start_state`), the env is reset to it
with ``options={"reset_to_state": ...}``, and the expert's actions are rounded to float32 before
they are applied. Resetting to a stored ``state[0]`` and applying the stored actions therefore
reproduces the stored states bit for bit (up to their float32 rounding) and reaches the goal.

From the command line: ``dplearn collect --episodes 200 --seed 1000000 --workers 4 --out
data/pusht_demos.npz``.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

import dplearn
from dplearn.data import Demos
from dplearn.data.demos import FORMAT_VERSION
from dplearn.envs import PUSHT_ID, PushTEnv
from dplearn.envs import pusht as pusht_env
from dplearn.envs.benchmark import GOAL_POSE, MAX_STEPS, SUCCESS_THRESHOLD
from dplearn.experts import PushTExpert, rollout_expert
from dplearn.validate import integer, non_negative_int, positive_int

__all__ = [
    "EXPERT_SEED_OFFSET",
    "Demonstration",
    "start_state",
    "collect_episode",
    "collect_demos",
]

#: The expert of episode ``s`` is seeded with ``s + EXPERT_SEED_OFFSET`` (its random choices are
#: then unrelated to the env's random start, which is seeded with ``s``).
EXPERT_SEED_OFFSET = 1_000_000_000


@dataclass
class Demonstration:
    """One demonstrated episode: ``states`` (T, 5) and ``actions`` (T, 2) float32, and how it went
    (``is_success``, the final ``coverage``, and the ``seconds`` it took)."""

    env_seed: int
    expert_seed: int
    states: np.ndarray
    actions: np.ndarray
    is_success: bool
    coverage: float
    seconds: float

    @property
    def n_steps(self) -> int:
        return len(self.actions)


def start_state(env_seed: int, env: PushTEnv | None = None) -> np.ndarray:
    """The seeded Push-T start as a float32-exact state that a reset to it reproduces, (5,) float64.

    ``env.reset(seed=env_seed)`` draws the start; it is rounded to float32, and the env is reset to
    the rounded state until the observation, rounded to float32, equals it (the reset runs one
    physics step, which moves the block when the pusher starts inside it).
    """
    non_negative_int("env_seed", env_seed)
    env = PushTEnv(obs_type="state") if env is None else env
    obs, _ = env.reset(seed=int(env_seed))
    state = np.asarray(obs, dtype=np.float32)
    for _ in range(20):
        obs, _ = env.reset(options={"reset_to_state": state.astype(np.float64)})
        again = np.asarray(obs, dtype=np.float32)
        if np.array_equal(again, state):
            return state.astype(np.float64)
        state = again
    raise RuntimeError(f"env_seed={env_seed}: the start state does not settle under reset")


def collect_episode(
    env_seed: int,
    expert_seed: int | None = None,
    max_steps: int = MAX_STEPS,
    expert: PushTExpert | None = None,
    env: PushTEnv | None = None,
) -> Demonstration:
    """Demonstrate one episode from the start of ``env_seed`` (see the module docstring)."""
    non_negative_int("env_seed", env_seed)
    if expert_seed is None:
        expert_seed = int(env_seed) + EXPERT_SEED_OFFSET
    non_negative_int("expert_seed", expert_seed)
    env = PushTEnv(obs_type="state") if env is None else env
    t0 = time.perf_counter()
    s0 = start_state(env_seed, env)
    states, actions, info = rollout_expert(s0, int(expert_seed), max_steps, expert=expert, env=env)
    return Demonstration(
        env_seed=int(env_seed),
        expert_seed=int(expert_seed),
        states=states.astype(np.float32),
        actions=actions.astype(np.float32),
        is_success=bool(info["is_success"]),
        coverage=float(info["coverage"]),
        seconds=time.perf_counter() - t0,
    )


# one env and one expert per worker process, made on first use
_WORKER: dict[str, Any] = {}


def _collect_in_worker(env_seed: int) -> Demonstration:
    if not _WORKER:
        _WORKER["env"] = PushTEnv(obs_type="state")
        _WORKER["expert"] = PushTExpert(seed=0)
    return collect_episode(env_seed, expert=_WORKER["expert"], env=_WORKER["env"])


def collect_demos(
    n_episodes: int,
    seed: int = 0,
    workers: int = 1,
    progress: bool = True,
    max_attempts: int | None = None,
    command: str | None = None,
) -> Demos:
    """Collect ``n_episodes`` successful expert episodes from the starts ``seed, seed + 1, ...``.

    Introduced in chapter 5.

    Args:
        n_episodes: how many successful episodes to keep.
        seed: the first environment seed.
        workers: processes to run episodes in (1: in this process).
        progress: show a progress bar (tqdm).
        max_attempts: give up after this many episodes (default ``2 · n_episodes + 10``).
        command: how the collection was started, recorded in the meta.

    Returns:
        :class:`~dplearn.data.Demos` whose ``meta`` records how it was made: the env's numbers,
        the expert and its parameters, the seeds of the kept and of the failed episodes, the
        number of workers and the wall time.
    """
    n_episodes = positive_int("n_episodes", n_episodes)
    seed = non_negative_int("seed", seed)
    workers = positive_int("workers", workers)
    max_attempts = integer("max_attempts", 2 * n_episodes + 10 if max_attempts is None else max_attempts,
                           low=n_episodes)
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    results: list[Demonstration] = []
    next_seed = int(seed)
    bar = tqdm(total=int(n_episodes), desc="expert episodes", unit="ep", disable=not progress)
    pool = mp.get_context("spawn").Pool(workers) if workers > 1 else None
    try:
        while sum(r.is_success for r in results) < n_episodes:
            attempted = next_seed - int(seed)
            if attempted >= max_attempts:
                raise RuntimeError(
                    f"only {sum(r.is_success for r in results)} of {n_episodes} episodes succeeded "
                    f"in {attempted} attempts"
                )
            missing = n_episodes - sum(r.is_success for r in results)
            batch = list(range(next_seed, next_seed + min(missing + 2 * workers, max_attempts - attempted)))
            next_seed = batch[-1] + 1
            runs = pool.imap(_collect_in_worker, batch) if pool else map(_collect_in_worker, batch)
            for result in runs:
                results.append(result)
                if result.is_success and bar.n < n_episodes:
                    bar.update(1)
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()
    seconds = time.perf_counter() - t0

    kept = [r for r in results if r.is_success][:n_episodes]
    last = kept[-1].env_seed
    failed = [r.env_seed for r in results if not r.is_success and r.env_seed <= last]
    lengths = np.array([r.n_steps for r in kept])
    probe = PushTExpert(seed=0)
    meta = {
        "version": FORMAT_VERSION,
        "how": "scripted expert dplearn.experts.PushTExpert, collected by dplearn.collection.collect_demos",
        "command": command or f"collect_demos(n_episodes={n_episodes}, seed={seed}, workers={workers})",
        "dplearn_version": dplearn.__version__,
        "env": {
            "id": PUSHT_ID,
            "obs_type": "state",
            "max_episode_steps": MAX_STEPS,
            "success_threshold": SUCCESS_THRESHOLD,
            "goal_pose": [float(v) for v in GOAL_POSE],
            "sim_hz": pusht_env.SIM_HZ,
            "control_hz": pusht_env.CONTROL_HZ,
            "k_p": pusht_env.K_P,
            "k_v": pusht_env.K_V,
        },
        "expert": {
            "class": "dplearn.experts.PushTExpert",
            "params": {
                name: getattr(probe, name)
                for name in (
                    "rotation_scale", "clearance", "stickiness", "choice_tolerance",
                    "first_choice_tolerance", "detour_tolerance", "travel_speed", "push_speed",
                    "max_push",
                )
            },
            "seed_rule": f"expert seed = env seed + {EXPERT_SEED_OFFSET}",
        },
        "start_rule": "env.reset(seed=s) rounded to float32 (dplearn.collection.start_state), "
                      "then reset(options={'reset_to_state': state[0]}); actions rounded to float32",
        "seeds": [r.env_seed for r in kept],
        "failed_seeds": failed,
        "attempts": len(kept) + len(failed),
        "episode_length": {
            "mean": float(lengths.mean()), "median": float(np.median(lengths)),
            "min": int(lengths.min()), "max": int(lengths.max()),
        },
        "workers": int(workers),
        "wall_seconds": round(seconds, 1),
    }
    return Demos.from_episodes([(r.states, r.actions) for r in kept], meta=meta)
