"""Rollouts and scores: the Push-T evaluation protocol.

Introduced in chapter 5.

Protocol (the benchmark's): episode i starts from ``env.reset(seed=seed + i)`` and runs until the
block covers more than 95 % of the goal (success, the env terminates) or ``max_steps`` = 300
steps pass. An episode's score is its maximum reward, ``max_t clip(coverage_t / 0.95, 0, 1)``;
the policy's **score** is the mean of that over episodes and its **success rate** the fraction of
episodes whose coverage exceeded 0.95. ``reset(seed=s)`` draws the benchmark's start for ``s``, so
the default seeds 100 000–100 049 are the paper's 50 test starts; the demonstrations were made
from seeds 1 000 000 and up, so the test starts are held out.

The policies it runs speak the protocol of :mod:`dplearn.policy_protocol`: chunk policies called
on a batch of observation histories, or per-step callables, which :func:`evaluate` wraps in
:class:`~dplearn.policy_protocol.PerStepPolicy`. The benchmark's numbers (0.95, 300, the test seeds)
come from :mod:`dplearn.envs.benchmark`.

What an action means follows the policy (chapter 10): a policy whose ``control`` is ``"velocity"``
outputs displacements and is run in ``PushTEnv(control="velocity")``; every other one outputs target
positions (the benchmark's ``"position"`` control).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dplearn.data.sequence import observation_to_model
from dplearn.envs.benchmark import (
    MAX_STEPS,
    N_TEST_EPISODES,
    OBS_TYPES,
    SUCCESS_THRESHOLD,
    TEST_SEED,
)
from dplearn.envs.parallel import EnvWorkers, LocalEnvs
from dplearn.envs.pusht import CONTROLS, PushTEnv
from dplearn.envs.render import render_state
from dplearn.policy_protocol import PerStepPolicy, as_policy
from dplearn.validate import choice, non_negative_int, positive_int

__all__ = ["EpisodeResult", "EvalResult", "evaluate", "policy_control"]


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------
@dataclass
class EpisodeResult:
    """One evaluation episode.

    ``rewards``, ``coverages`` (steps,) and ``actions`` (steps, 2) have one entry per step taken
    (the reset state is not scored); ``actions`` are what the policy output (displacements under
    velocity control); ``states`` (steps + 1, 5) start with the reset state; ``frames``
    (steps + 1, H, W, 3) uint8 when recorded, frame t marking the target of action t with a red cross.
    """

    seed: int
    rewards: np.ndarray
    coverages: np.ndarray
    frames: np.ndarray | None = None
    states: np.ndarray | None = None
    actions: np.ndarray | None = None

    @property
    def steps(self) -> int:
        return int(len(self.rewards))

    @property
    def max_reward(self) -> float:
        return float(np.max(self.rewards)) if len(self.rewards) else 0.0

    @property
    def max_coverage(self) -> float:
        return float(np.max(self.coverages)) if len(self.coverages) else 0.0

    @property
    def success(self) -> bool:
        return self.max_coverage > SUCCESS_THRESHOLD

    def __repr__(self) -> str:
        return (f"EpisodeResult(seed={self.seed}, max_reward={self.max_reward:.3f}, "
                f"max_coverage={self.max_coverage:.3f}, steps={self.steps}, success={self.success})")


@dataclass
class EvalResult:
    """The outcome of :func:`evaluate`: per-episode results and the two headline numbers.

    ``score`` = mean over episodes of the episode's max reward; ``success_rate`` = fraction of
    episodes with coverage > 0.95.
    """

    episodes: list[EpisodeResult] = field(default_factory=list)

    @classmethod
    def from_traces(
        cls, rewards: Sequence[Sequence[float]], coverages: Sequence[Sequence[float]],
        seeds: Sequence[int] | None = None,
    ) -> EvalResult:
        """Build from per-episode reward and coverage traces (one list per episode)."""
        if len(rewards) != len(coverages):
            raise ValueError(f"rewards and coverages must list the same number of episodes, got "
                             f"{len(rewards)} and {len(coverages)}")
        seeds = list(range(len(rewards))) if seeds is None else list(seeds)
        if len(seeds) != len(rewards):
            raise ValueError(f"seeds must have one entry per episode ({len(rewards)}), got {len(seeds)}")
        episodes = []
        for s, r, c in zip(seeds, rewards, coverages, strict=True):
            r = np.asarray(r, dtype=np.float64)
            c = np.asarray(c, dtype=np.float64)
            if r.shape != c.shape or r.ndim != 1:
                raise ValueError(f"episode {s}: rewards and coverages must be 1-D of equal length")
            episodes.append(EpisodeResult(int(s), r, c))
        return cls(episodes)

    @property
    def n_episodes(self) -> int:
        return len(self.episodes)

    @property
    def max_rewards(self) -> np.ndarray:
        return np.array([e.max_reward for e in self.episodes])

    @property
    def max_coverages(self) -> np.ndarray:
        return np.array([e.max_coverage for e in self.episodes])

    @property
    def successes(self) -> np.ndarray:
        return np.array([e.success for e in self.episodes], dtype=bool)

    @property
    def steps(self) -> np.ndarray:
        return np.array([e.steps for e in self.episodes], dtype=np.int64)

    @property
    def seeds(self) -> np.ndarray:
        return np.array([e.seed for e in self.episodes], dtype=np.int64)

    @property
    def score(self) -> float:
        return float(self.max_rewards.mean()) if self.episodes else float("nan")

    @property
    def success_rate(self) -> float:
        return float(self.successes.mean()) if self.episodes else float("nan")

    def table(self) -> list[dict[str, Any]]:
        """One dict per episode (seed, max_reward, max_coverage, steps, success), for printing."""
        return [dict(seed=e.seed, max_reward=round(e.max_reward, 4),
                     max_coverage=round(e.max_coverage, 4), steps=e.steps, success=e.success)
                for e in self.episodes]

    def __repr__(self) -> str:
        return (f"EvalResult(n_episodes={self.n_episodes}, score={self.score:.3f}, "
                f"success_rate={self.success_rate:.3f})")


# ---------------------------------------------------------------------------------------------
# Rollouts
# ---------------------------------------------------------------------------------------------
def _ask(policy: Any, histories: list[deque], obs_type: str, raw: bool,
         generator: Any) -> np.ndarray:
    """The policy's action chunks ``(B, n, 2)`` (float64) for the observation ``histories`` of B
    episodes; a policy returning ``(B, 2)`` gives chunks of one action."""
    history = _stack_history(histories, obs_type, raw)
    actions = np.asarray(policy(history) if generator is None else policy(history, generator), dtype=np.float64)
    if actions.ndim == 2:
        actions = actions[:, None, :]
    if actions.ndim != 3 or actions.shape[0] != len(histories) or actions.shape[2] != 2:
        raise ValueError(f"policy must return actions of shape (B={len(histories)}, n, 2), got {actions.shape}")
    return actions


def _stack_history(histories: list[deque], obs_type: str, raw: bool) -> Any:
    """B deques of T_o raw observations -> the batch the policy takes."""
    if raw:
        return [h[-1] for h in histories]
    per_env = [observation_to_model(list(h) if obs_type in ("state", "keypoints") else
                                    _stack_raw(list(h)), obs_type) for h in histories]
    if isinstance(per_env[0], dict):
        return {k: np.stack([p[k] for p in per_env]) for k in per_env[0]}
    return np.stack(per_env)


def _stack_raw(obs_list: list[Any]) -> Any:
    if isinstance(obs_list[0], dict):
        return {k: np.stack([o[k] for o in obs_list]) for k in obs_list[0]}
    return np.stack(obs_list)


def policy_control(policy: Any) -> str:
    """What ``policy``'s actions are: its ``control`` attribute (every dplearn policy has one), else that of
    the policy it wraps (``policy.policy``, e.g. a :class:`~dplearn.policy_protocol.RecedingHorizon`),
    else ``"position"`` (per-step callables, the scripted expert, the baselines). Introduced in chapter 10."""
    for candidate in (policy, getattr(policy, "policy", None)):
        control = getattr(candidate, "control", None)
        if isinstance(control, str):
            return choice("policy.control", control, CONTROLS)
    return "position"


def evaluate(
    policy: Any,
    n_episodes: int = N_TEST_EPISODES,
    seed: int = TEST_SEED,
    obs_type: str | None = None,
    max_steps: int = MAX_STEPS,
    n_envs: int | None = None,
    record: bool | int = False,
    record_size: int = 192,
    progress: bool = True,
    env_kwargs: dict[str, Any] | None = None,
    make_env: Callable[..., Any] | None = None,
    start_states: Any = None,
    workers: Any = 1,
    control: str | None = None,
) -> EvalResult:
    """Run ``policy`` on ``n_episodes`` Push-T episodes (episode i from seed ``seed + i``).

    Parameters
    ----------
    policy :
        A chunk policy or a per-step callable (see the module docstring for the protocol).
    n_episodes : int
        How many episodes (the benchmark uses 50).
    seed : int
        Seed of the first episode; episode i uses ``seed + i``.
    obs_type : str, optional
        The observation the policy takes: ``state``, ``keypoints``, ``pixels``, ``pixels_agent_pos``,
        ``two-cameras``;
        by default the policy's own ``obs_type`` attribute (every dplearn policy has one), else
        ``state``.
    max_steps : int
        Time limit per episode (300 in the benchmark).
    n_envs : int, optional
        How many episodes run side by side (the policy is called on a batch of that size);
        default ``min(n_episodes, 10)``.
    record : bool or int
        Record rendered frames and states: ``True`` for every episode, an int k for the first k.
    record_size : int
        Side in pixels of recorded frames.
    progress : bool
        Show a tqdm progress bar over episodes.
    env_kwargs : dict, optional
        Extra arguments for :class:`dplearn.envs.PushTEnv`.
    make_env : callable, optional
        ``make_env(obs_type=..., **env_kwargs)`` builds each environment instead of
        :class:`dplearn.envs.PushTEnv` (e.g. a wrapped or modified env).
    start_states : array (n_episodes, 5), optional
        Start episode i from ``start_states[i]`` (agent x, y, block x, y, angle) instead of a
        random start (e.g. the first states of demonstrations); seeds are still ``seed + i``.
    workers : int or :class:`dplearn.envs.parallel.EnvWorkers`
        ``1`` (default): everything in this process. ``N > 1``: N worker processes step the
        environments on N CPU cores (a pool made and closed by this call; pass an ``EnvWorkers``
        to reuse one). A per-step callable (e.g. the scripted expert) then runs whole episodes in the
        workers (it must be picklable); any other policy stays here and is called on the same
        batches as in the sequential loop. The per-episode results are the same either way, for
        the same seeds. ``make_env`` must be picklable (a class or module-level function).
    control : str, optional
        What the policy's actions are, ``"position"`` (target positions) or ``"velocity"``
        (displacements from the pusher's position; chapter 10): the environments are built with
        ``control=...``. By default the policy's own ``control`` (:func:`policy_control`), or
        ``env_kwargs["control"]`` when given there. ``"position"`` is passed to ``make_env`` only when
        asked for explicitly, so a custom ``make_env`` without a ``control`` argument still works.

    Returns
    -------
    EvalResult with ``score``, ``success_rate`` and ``episodes`` (list of :class:`EpisodeResult`).

    Introduced in chapter 5.
    """

    n_episodes = positive_int("n_episodes", n_episodes)
    seed = non_negative_int("seed", seed)
    obs_type = choice("obs_type", getattr(policy, "obs_type", "state") if obs_type is None else obs_type,
                      OBS_TYPES)
    max_steps = positive_int("max_steps", max_steps)
    n_envs = positive_int("n_envs", min(n_episodes, 10) if n_envs is None else n_envs)
    n_record = n_episodes if record is True else int(record or 0)
    kwargs = dict(env_kwargs or {})
    if control is not None:
        control = choice("control", control, CONTROLS)
        if "control" in kwargs and kwargs["control"] != control:
            raise ValueError(f"control={control!r} contradicts env_kwargs['control']={kwargs['control']!r}")
        kwargs["control"] = control
    elif "control" not in kwargs and policy_control(policy) != "position":
        kwargs["control"] = policy_control(policy)
    velocity = kwargs.get("control") == "velocity"
    if start_states is not None:
        start_states = np.asarray(start_states, dtype=np.float64)
        if start_states.shape != (n_episodes, 5) or not np.all(np.isfinite(start_states)):
            raise ValueError(f"start_states must be a finite array of shape (n_episodes={n_episodes}, 5), "
                             f"got shape {start_states.shape}")

    pool: Any = None
    if not (isinstance(workers, (int, np.integer)) and not isinstance(workers, bool) and workers == 1):
        if isinstance(workers, EnvWorkers):
            if workers.closed:
                raise ValueError("workers is a closed EnvWorkers pool")
            pool = workers
        elif isinstance(workers, (int, np.integer)) and not isinstance(workers, bool) and workers > 1:
            pool = int(workers)
        else:
            raise ValueError(f"workers must be a positive integer or an EnvWorkers pool, got {workers!r}")

    policy = as_policy(policy)
    raw = bool(getattr(policy, "wants_raw_obs", False))
    generator = None
    if getattr(policy, "accepts_generator", False):  # reproducible draws: one generator, seeded below
        import torch

        generator = torch.Generator(device=getattr(policy, "device", "cpu"))
    make_env = PushTEnv if make_env is None else make_env
    own = not isinstance(pool, EnvWorkers)
    if pool is None:
        pool = LocalEnvs()
    else:
        import pickle

        try:
            pickle.dumps((make_env, kwargs))
        except Exception as exc:
            raise ValueError("with workers, make_env and env_kwargs must be picklable (a class or a module-level "
                             f"function, not a lambda): {type(exc).__name__}: {exc}") from None
        pool = EnvWorkers(min(pool, n_episodes)) if own else pool
    try:
        return _rollouts(pool, policy, n_episodes, seed, obs_type, max_steps, n_envs, n_record, record_size,
                         progress, kwargs, make_env, start_states, generator, raw, velocity)
    finally:
        if own and isinstance(pool, EnvWorkers):
            pool.close()


def _rollouts(pool: EnvWorkers | LocalEnvs, policy: Any, n_episodes: int, seed: int, obs_type: str,
              max_steps: int, n_envs: int, n_record: int, record_size: int, progress: bool,
              kwargs: dict[str, Any], make_env: Callable[..., Any], start_states: Any, generator: Any,
              raw: bool, velocity: bool) -> EvalResult:
    """:func:`evaluate`'s episodes, batches of ``n_envs`` at a time, with the environments in ``pool``:
    this process's (:class:`~dplearn.envs.parallel.LocalEnvs`) or worker processes'
    (:class:`~dplearn.envs.parallel.EnvWorkers`). The policy is asked here, on the same batches either
    way; only a picklable per-step callable given worker processes runs whole episodes in them."""
    import pickle

    from tqdm.auto import tqdm

    def start(i: int) -> Any:
        return None if start_states is None else start_states[i]

    bar = tqdm(total=n_episodes, desc="evaluate", disable=not progress)
    episodes: list[EpisodeResult] = []
    t_o = int(policy.obs_horizon)
    whole = isinstance(policy, PerStepPolicy) and isinstance(pool, EnvWorkers)
    if whole:
        try:
            pickle.dumps(policy.fn)
        except Exception:  # a lambda or a closure: keep it here, send only the environments away
            whole = False
    if whole:
        pool.configure(make_env, obs_type, kwargs, pool.n)
        done = pool.run_episodes(policy.fn, policy.stateful, [(i, seed + i, start(i)) for i in range(n_episodes)],
                                 max_steps, on_done=lambda _: bar.update(1))
        for i in range(n_episodes):
            rewards, coverages, states, taken = done[i]
            episodes.append(EpisodeResult(seed + i, np.array(rewards), np.array(coverages),
                                          states=np.array(states, dtype=np.float32),
                                          actions=np.array(taken, dtype=np.float32).reshape(-1, 2)))
    else:
        pool.configure(make_env, obs_type, kwargs, min(n_envs, n_episodes))
        subsets = bool(getattr(policy, "batch_independent", False))
        for first in range(0, n_episodes, n_envs):
            seeds = [seed + i for i in range(first, min(first + n_envs, n_episodes))]
            firsts = pool.reset([(b, s, start(s - seed)) for b, s in enumerate(seeds)])
            histories = [deque([obs] * t_o, maxlen=t_o) for obs, _ in firsts]
            states = [[state] for _, state in firsts]
            rewards: list[list[float]] = [[] for _ in seeds]
            coverages: list[list[float]] = [[] for _ in seeds]
            taken: list[list[np.ndarray]] = [[] for _ in seeds]
            if hasattr(policy, "reset"):
                policy.reset(seeds)
            active = np.ones(len(seeds), dtype=bool)
            if generator is not None and first == 0:
                generator.manual_seed(int(seed))
            while active.any():
                asked = np.flatnonzero(active) if subsets else np.arange(len(seeds))
                actions = _ask(policy, [histories[b] for b in asked], obs_type, raw, generator)
                rows = [(row, int(b)) for row, b in enumerate(asked) if active[b]]
                replies = pool.step([(b, actions[row], max_steps - len(rewards[b])) for row, b in rows], t_o)
                for (row, b), (obs_tail, r, c, st, n_taken, finished) in zip(rows, replies, strict=True):
                    histories[b].extend(obs_tail)
                    rewards[b].extend(r)
                    coverages[b].extend(c)
                    states[b].extend(st)
                    taken[b].extend(actions[row][:n_taken])
                    if finished:
                        active[b] = False
                        bar.update(1)
            for b, s in enumerate(seeds):
                episodes.append(EpisodeResult(s, np.array(rewards[b]), np.array(coverages[b]),
                                              states=np.array(states[b], dtype=np.float32),
                                              actions=np.array(taken[b], dtype=np.float32).reshape(-1, 2)))
    for i, ep in enumerate(episodes[:n_record]):
        ep.frames = _recorded_frames(ep.states, record_size, _targets(ep, velocity))
        episodes[i] = ep
    bar.close()
    return EvalResult(episodes)


def _targets(ep: EpisodeResult, velocity: bool) -> np.ndarray | None:
    """The pusher's targets (steps, 2) of an episode: its actions, or under velocity control the
    displacements added to the positions they were taken from (``states[t, :2] + actions[t]``)."""
    if not velocity or ep.actions is None or ep.states is None:
        return ep.actions
    return ep.states[:len(ep.actions), :2] + ep.actions


def _recorded_frames(states: np.ndarray, size: int = 192, actions: np.ndarray | None = None) -> np.ndarray:
    """Frames (T, size, size, 3) uint8 of a state trajectory (T, 5), with the env's renderer;
    frame t marks ``actions[t]`` (if given and t < len(actions)) with a red cross."""
    states = np.asarray(states)
    n_act = 0 if actions is None else len(actions)
    return np.stack([render_state(s, size=size, action=actions[t] if t < n_act else None)
                     for t, s in enumerate(states)])
