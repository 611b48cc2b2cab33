"""Rollouts and scores: the Push-T evaluation protocol.

Introduced in chapter 5.

Protocol (the benchmark's): episode i starts from ``env.reset(seed=seed + i)`` and runs until the
block covers more than 95 % of the goal (success, the env terminates) or ``max_steps`` = 300
steps pass. An episode's score is its maximum reward, ``max_t clip(coverage_t / 0.95, 0, 1)``;
the policy's **score** is the mean of that over episodes and its **success rate** the fraction of
episodes whose coverage exceeded 0.95. ``reset(seed=s)`` draws the benchmark's start for ``s``, so
the default seeds 100 000–100 049 are the paper's 50 test starts; the demonstrations were made
from seeds 1 000 000 and up, so the test starts are held out.

The policy protocol
-------------------
:func:`evaluate` accepts two kinds of policy.

1. **Chunk policies** (what Parts II and III build) have an attribute ``obs_horizon`` (T_o) and are
   called on a *batch* of observation histories, returning the actions to execute next:

   ======================  ================================  =====================================
   call                    argument / result                 shape
   ======================  ================================  =====================================
   ``policy(obs)``         ``obs``: float32 NumPy array      (B, T_o, D) for ``state``/``keypoints``
                           or, for image observations,       ``{"image": (B, T_o, 3, H, W) in [0, 1],
                           a dict                            "agent_pos": (B, T_o, 2)}`` (and
                                                             ``"wrist_image"`` for ``two-cameras``)
                           returns the next actions          (B, n, 2), n >= 1 (e.g. n = T_a)
   ``policy.reset(seeds)`` optional; called when a batch of  ``seeds``: list of B ints
                           B episodes starts
   ======================  ================================  =====================================

   A policy whose rows do not depend on each other (every dplearn :class:`~dplearn.policies.Policy`)
   sets ``batch_independent = True``; it is then called only on the episodes still running, so
   finished episodes cost nothing. Otherwise it always gets all B histories, in episode order.
   A policy with ``accepts_generator = True`` (every dplearn policy) is called as
   ``policy(obs, generator)`` with one ``torch.Generator`` on the policy's device, seeded with
   ``seed``: an evaluation of a stochastic policy (a diffusion policy samples noise) then gives the
   same result every time on the same device.

   The history holds the last T_o observations, oldest first; at the start of an episode it is the
   first observation repeated (the same padding as :class:`dplearn.data.SequenceDataset`), and
   observations are in the dataset's format (:func:`dplearn.data.observation_to_model`). All n
   returned actions are executed (receding horizon), then the policy is called again.

2. **Per-step callables** ``fn(obs) -> action``: one raw env observation in, one (2,) target out
   (e.g. a lambda, or :class:`dplearn.experts.PushTExpert`). If ``fn`` has a ``reset(seed)`` method
   it is treated as stateful: every parallel env gets its own deep copy, reset with its episode's
   seed. :class:`PerStepPolicy` does this wrapping; :func:`evaluate` applies it automatically.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dplearn.data.sequence import OBS_TYPES, observation_to_model

SUCCESS_COVERAGE = 0.95
DEFAULT_EVAL_SEED = 100_000
MAX_STEPS = 300
WORKSPACE = 512.0


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------
@dataclass
class EpisodeResult:
    """One evaluation episode.

    ``rewards``, ``coverages`` (steps,) and ``actions`` (steps, 2) have one entry per step taken
    (the reset state is not scored); ``states`` (steps + 1, 5) start with the reset state;
    ``frames`` (steps + 1, H, W, 3) uint8 when recorded, frame t marking action t with a red cross.
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
        return self.max_coverage > SUCCESS_COVERAGE

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
# Policies: adapters and baselines
# ---------------------------------------------------------------------------------------------
class PerStepPolicy:
    """Adapts a per-step callable ``fn(obs) -> (2,) action`` to the chunk protocol (T_o = 1, n = 1).

    Raw env observations (not the model format) are passed to ``fn``. If ``fn`` has a
    ``reset(seed)`` method, each of the B parallel episodes gets a deep copy of ``fn`` reset with
    its episode's seed, so stateful controllers (like the scripted expert) stay independent.
    """

    obs_horizon = 1
    wants_raw_obs = True

    def __init__(self, fn: Callable[[Any], Any]):
        if not callable(fn):
            raise ValueError(f"fn must be callable obs -> action, got {type(fn).__name__}")
        self.fn = fn
        self.stateful = callable(getattr(fn, "reset", None))
        self._copies: list[Any] = []

    def reset(self, seeds: Sequence[int]) -> None:
        if self.stateful:
            self._copies = []
            for s in seeds:
                c = copy.deepcopy(self.fn)
                c.reset(int(s))
                self._copies.append(c)

    def __call__(self, raw_obs: Sequence[Any]) -> np.ndarray:
        fns = self._copies if self.stateful else [self.fn] * len(raw_obs)
        if len(fns) != len(raw_obs):
            raise ValueError("PerStepPolicy.reset(seeds) must be called with one seed per episode")
        return np.stack([np.asarray(f(o), dtype=np.float64).reshape(1, 2)
                         for f, o in zip(fns, raw_obs, strict=True)])


class RandomPolicy:
    """The floor: targets drawn uniformly from the workspace [0, 512]², each held ``hold`` steps.

    Seeded per episode (by :meth:`reset`), so evaluations are reproducible.
    """

    obs_horizon = 1

    def __init__(self, hold: int = 1, low: float = 0.0, high: float = WORKSPACE, seed: int = 0):
        if not isinstance(hold, (int, np.integer)) or hold < 1:
            raise ValueError(f"hold must be a positive integer, got {hold!r}")
        if not high > low:
            raise ValueError(f"high must be > low, got low={low}, high={high}")
        self.hold, self.low, self.high, self.seed = int(hold), float(low), float(high), int(seed)
        self._rngs: list[np.random.Generator] = []

    def reset(self, seeds: Sequence[int]) -> None:
        self._rngs = [np.random.default_rng([self.seed, int(s)]) for s in seeds]

    def __call__(self, obs: Any) -> np.ndarray:
        b = len(obs["image"]) if isinstance(obs, dict) else len(obs)
        if len(self._rngs) != b:
            self.reset(range(b))
        targets = np.stack([rng.uniform(self.low, self.high, size=2) for rng in self._rngs])
        return np.repeat(targets[:, None, :], self.hold, axis=1)


def ExpertPolicy(**expert_kwargs: Any) -> PerStepPolicy:
    """The scripted expert (:class:`dplearn.experts.PushTExpert`) as a policy; one copy per episode,
    each reset with its episode's seed. Needs ``obs_type="state"``."""
    from dplearn.experts import PushTExpert

    return PerStepPolicy(PushTExpert(**expert_kwargs))


def as_policy(policy: Any) -> Any:
    """A chunk policy as is; a per-step callable wrapped in :class:`PerStepPolicy`."""
    if hasattr(policy, "obs_horizon"):
        t_o = policy.obs_horizon
        if not isinstance(t_o, (int, np.integer)) or t_o < 1:
            raise ValueError(f"policy.obs_horizon must be a positive integer, got {t_o!r}")
        return policy
    if callable(policy):
        return PerStepPolicy(policy)
    raise ValueError(
        "policy must be a chunk policy (with obs_horizon, called on a batch of histories) or a "
        f"callable obs -> action, got {type(policy).__name__}"
    )


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


def evaluate(
    policy: Any,
    n_episodes: int = 50,
    seed: int = DEFAULT_EVAL_SEED,
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

    Returns
    -------
    EvalResult with ``score``, ``success_rate`` and ``episodes`` (list of :class:`EpisodeResult`).

    Introduced in chapter 5.
    """
    from tqdm.auto import tqdm

    from dplearn.envs import PushTEnv

    if not isinstance(n_episodes, (int, np.integer)) or n_episodes < 1:
        raise ValueError(f"n_episodes must be a positive integer, got {n_episodes!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if obs_type is None:
        obs_type = getattr(policy, "obs_type", "state")
    if obs_type not in OBS_TYPES:
        raise ValueError(f"obs_type must be one of {OBS_TYPES}, got {obs_type!r}")
    if not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
    n_envs = min(n_episodes, 10) if n_envs is None else n_envs
    if not isinstance(n_envs, (int, np.integer)) or n_envs < 1:
        raise ValueError(f"n_envs must be a positive integer, got {n_envs!r}")
    n_record = n_episodes if record is True else int(record or 0)
    if start_states is not None:
        start_states = np.asarray(start_states, dtype=np.float64)
        if start_states.shape != (n_episodes, 5) or not np.all(np.isfinite(start_states)):
            raise ValueError(f"start_states must be a finite array of shape (n_episodes={n_episodes}, 5), "
                             f"got shape {start_states.shape}")

    pool = None
    if not (isinstance(workers, (int, np.integer)) and not isinstance(workers, bool) and workers == 1):
        from dplearn.envs.parallel import EnvWorkers

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
    t_o = int(policy.obs_horizon)
    kwargs = dict(env_kwargs or {})
    make_env = PushTEnv if make_env is None else make_env
    if pool is not None:
        import pickle

        from dplearn.envs.parallel import EnvWorkers

        try:
            pickle.dumps((make_env, kwargs))
        except Exception as exc:
            raise ValueError("with workers, make_env and env_kwargs must be picklable (a class or a module-level "
                             f"function, not a lambda): {type(exc).__name__}: {exc}") from None
        own = not isinstance(pool, EnvWorkers)
        pool = EnvWorkers(min(pool, n_episodes)) if own else pool
        try:
            return _evaluate_parallel(pool, policy, n_episodes, seed, obs_type, max_steps, n_envs, n_record,
                                      record_size, progress, kwargs, make_env, start_states, generator, t_o, raw)
        finally:
            if own:
                pool.close()
    envs = [make_env(obs_type=obs_type, **kwargs) for _ in range(min(n_envs, n_episodes))]

    results: list[EpisodeResult] = []
    bar = tqdm(total=n_episodes, desc="evaluate", disable=not progress)
    for first in range(0, n_episodes, n_envs):
        seeds = [seed + i for i in range(first, min(first + n_envs, n_episodes))]
        batch = envs[: len(seeds)]
        histories, rewards, coverages, states, taken = [], [], [], [], []
        for env, s in zip(batch, seeds, strict=True):
            options = None if start_states is None else {"reset_to_state": start_states[s - seed]}
            obs, _ = env.reset(seed=s, options=options)
            histories.append(deque([obs] * t_o, maxlen=t_o))
            rewards.append([])
            coverages.append([])
            states.append([_state_of(env, obs, obs_type)])
            taken.append([])
        if hasattr(policy, "reset"):
            policy.reset(seeds)
        active = np.ones(len(seeds), dtype=bool)
        subsets = bool(getattr(policy, "batch_independent", False))
        if generator is not None and first == 0:
            generator.manual_seed(int(seed))
        while active.any():
            asked = np.flatnonzero(active) if subsets else np.arange(len(seeds))
            actions = _ask(policy, [histories[b] for b in asked], obs_type, raw, generator)
            for row, b in enumerate(asked):
                if not active[b]:
                    continue
                for action in actions[row]:
                    obs, reward, terminated, truncated, info = batch[b].step(action)
                    taken[b].append(action)
                    histories[b].append(obs)
                    rewards[b].append(float(reward))
                    coverages[b].append(float(info["coverage"]))
                    states[b].append(_state_of(batch[b], obs, obs_type))
                    if terminated or truncated or len(rewards[b]) >= max_steps:
                        active[b] = False
                        bar.update(1)
                        break
        for b, s in enumerate(seeds):
            ep = EpisodeResult(s, np.array(rewards[b]), np.array(coverages[b]),
                               states=np.array(states[b], dtype=np.float32),
                               actions=np.array(taken[b], dtype=np.float32).reshape(-1, 2))
            if first + b < n_record:
                ep.frames = render_frames(ep.states, record_size, ep.actions)
            results.append(ep)
    bar.close()
    return EvalResult(results)


def _evaluate_parallel(pool: Any, policy: Any, n_episodes: int, seed: int, obs_type: str, max_steps: int,
                       n_envs: int, n_record: int, record_size: int, progress: bool, kwargs: dict[str, Any],
                       make_env: Callable[..., Any], start_states: Any, generator: Any, t_o: int,
                       raw: bool) -> EvalResult:
    """:func:`evaluate` with the environments in ``pool``'s worker processes: the same episodes, the
    same policy calls (or, for a per-step callable, the same episodes run whole in the workers)."""
    import pickle

    from tqdm.auto import tqdm

    def start(i: int) -> Any:
        return None if start_states is None else start_states[i]

    bar = tqdm(total=n_episodes, desc="evaluate", disable=not progress)
    episodes: list[EpisodeResult] = []
    whole = isinstance(policy, PerStepPolicy)
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
        ep.frames = render_frames(ep.states, record_size, ep.actions)
        episodes[i] = ep
    bar.close()
    return EvalResult(episodes)


def _state_of(env: Any, obs: Any, obs_type: str) -> np.ndarray:
    """(5,) state (agent x, y, block x, y, angle mod 2π) of a PushTEnv, whatever its obs type
    (:func:`dplearn.envs.parallel.state_of`, which the worker processes use, is the same)."""
    if obs_type == "state":
        return np.asarray(obs, dtype=np.float32)
    return np.asarray(env.unwrapped.get_state(), dtype=np.float32)


def render_frames(states: np.ndarray, size: int = 192, actions: np.ndarray | None = None) -> np.ndarray:
    """Frames (T, size, size, 3) uint8 of a state trajectory (T, 5), with the env's renderer;
    frame t marks ``actions[t]`` (if given and t < len(actions)) with a red cross."""
    from dplearn.envs.render import render_state

    states = np.asarray(states)
    n_act = 0 if actions is None else len(actions)
    return np.stack([render_state(s, size=size, action=actions[t] if t < n_act else None)
                     for t, s in enumerate(states)])
