"""Checkers for the exercises of chapter 8 (Diffusion Policy on states).

The exercises:

- :func:`check_receding_horizon` — the control loop: a history of T_o observations in, a chunk of
  T_p actions out, T_a of them executed, then re-plan;
- :func:`check_training_window` — which episode frames train the policy at control step t
  (the windows of :func:`dplearn.data.window_indices`);
- :func:`check_ddim_sampling` — the whole deterministic DDIM loop that turns noise into an action
  chunk (:class:`dplearn.diffusion.DDIMSampler`);
- :func:`check_own_demos` — demonstrations the reader recorded by teleoperation (chapter 5's
  panel): the shipped demonstrations' format and meta, and every episode replays exactly.

Each checker tests the reader's function against the library on fresh random inputs and returns a
:class:`~dplearn.exercises.checking.Result`; none of them prints the reference answer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from dplearn.data import window_indices
from dplearn.diffusion import DDIMSampler, NoiseSchedule
from dplearn.exercises.checking import (
    NotAttempted,
    Result,
    as_numpy,
    call,
    checker,
    close,
    failed,
    passed,
)

__all__ = ["check_receding_horizon", "check_training_window", "check_ddim_sampling",
           "check_own_demos"]


# ---------------------------------------------------------------------------------------------
# Exercise: the receding-horizon control loop
# ---------------------------------------------------------------------------------------------
class _FakeEnv:
    """Observation t (after t steps) is row t of ``table``, whose column 0 is t itself."""

    def __init__(self, table: np.ndarray, done_at: int):
        self.table, self.done_at = table, done_at
        self.t, self.resets, self.after_done, self.actions = 0, 0, 0, []

    def reset(self) -> np.ndarray:
        self.t, self.resets = 0, self.resets + 1
        return self.table[0].copy()

    def step(self, action: Any) -> tuple[np.ndarray, bool]:
        self.after_done += self.t >= self.done_at
        self.actions.append(as_numpy(action).reshape(-1))
        self.t += 1
        return self.table[min(self.t, len(self.table) - 1)].copy(), self.t >= self.done_at


class _FakePlanner:
    """Records (env step, history) per call; chunk entry i of call k is the action (k, i)."""

    def __init__(self, env: _FakeEnv, t_p: int):
        self.env, self.t_p, self.calls = env, t_p, []

    def __call__(self, history: Any) -> np.ndarray:
        k = len(self.calls)
        self.calls.append((self.env.t, as_numpy(history).copy()))
        return np.stack([np.full(self.t_p, float(k)), np.arange(self.t_p, dtype=float)], axis=1)


@checker("the receding-horizon loop")
def check_receding_horizon(run_episode: Callable[..., Any]) -> Result:
    """Check ``run_episode(env, plan, T_o, T_a, max_steps)`` → the list of executed actions.

    ``env.reset() -> obs`` (obs_dim,), ``env.step(action) -> (obs, done)``; ``plan(history)`` takes the
    last T_o observations as an array (T_o, obs_dim), oldest first (the first observation repeated at
    the start), and returns a chunk (T_p, action_dim) of which ``chunk[T_o-1 : T_o-1+T_a]`` is executed.
    The episode ends at ``done`` or after ``max_steps`` actions, also in the middle of a chunk.
    """
    rng = np.random.default_rng()
    for trial, t_o in enumerate([2, 3, 1, 3, 2, int(rng.integers(1, 4))]):
        t_a = int(rng.integers(2, 6))
        t_p = t_o - 1 + t_a + int(rng.integers(0, 4))
        m, r = int(rng.integers(2, 5)), int(rng.integers(1, t_a))
        # never done, max_steps mid-chunk | done mid-chunk | done at the end of a chunk
        done_at, max_steps = [(10**9, m * t_a + r), (m * t_a + r, m * t_a + r + 9), (m * t_a, 99)][trial % 3]
        n_expected = min(done_at, max_steps)
        table = rng.normal(size=(n_expected + 2 * t_p + 10, int(rng.integers(2, 5))))
        table[:, 0] = np.arange(len(table))
        env = _FakeEnv(table, done_at)
        plan = _FakePlanner(env, t_p)
        out = call(run_episode, env, plan, t_o, t_a, max_steps)
        case = f"T_o={t_o}, T_a={t_a}, T_p={t_p}, max_steps={max_steps}"
        if env.resets != 1:
            return failed(f"env.reset() was called {env.resets} times",
                          "Reset once, at the start of the episode.")
        n = len(env.actions)
        if env.after_done:
            return failed(f"for {case} your loop kept stepping after the env said done",
                          "Check done after every env.step, also in the middle of a chunk, and stop there.")
        if n > max_steps:
            return failed(f"for {case} your loop executed {n} actions",
                          "Stop as soon as max_steps actions have run, even in the middle of a chunk.")
        if n < n_expected:
            return failed(f"for {case} the episode stopped after {n} steps, before done and max_steps",
                          "Keep executing and re-planning until done or max_steps.")
        executed = np.stack(env.actions)
        returned = [as_numpy(a).reshape(-1) for a in out]
        if len(returned) != n or not all(close(a, b) for a, b in zip(returned, executed, strict=True)):
            return failed("the returned list is not the list of executed actions",
                          "Append every action you pass to env.step, in order.")
        for s, history in plan.calls[: -(-n // t_a)]:
            rows = table[np.clip(np.arange(s - t_o + 1, s + 1), 0, None)]
            if close(history, rows):
                continue
            if s < t_o - 1 and history.ndim == 2 and history.shape[0] < t_o:
                return failed(f"at the start the history has {history.shape[0]} observations, not T_o={t_o}",
                              "Until T_o steps have passed, pad the history with copies of the first "
                              "observation.")
            if s < t_o - 1 and close(history[t_o - 1 - s:], rows[t_o - 1 - s:]) and not history[0].any():
                return failed("the history at the start is padded with zeros",
                              "Pad with copies of the first observation: zeros are not a state the "
                              "robot was in.")
            if t_o > 1 and close(history, rows[::-1]):
                return failed("the history is newest first",
                              "Oldest first: history[-1] is the current observation.")
            return failed(f"for {case} the history after {s} steps is wrong",
                          f"It is an array ({t_o}, obs_dim) of the last T_o observations, including the newest.")
        k, i = executed[:, 0].astype(int), executed[:, 1].astype(int)
        steps = np.arange(n)
        if not np.array_equal(k, steps // t_a):
            per_plan = np.bincount(k)
            return failed(f"for {case} the numbers of actions executed per plan are {per_plan.tolist()}",
                          "Execute T_a actions of each chunk, then ask plan again with the updated history.")
        if not np.array_equal(i, t_o - 1 + steps % t_a):
            if t_o > 1 and np.array_equal(i, steps % t_a):
                return failed("you execute the chunk from index 0",
                              "The chunk starts at the oldest observation's step: the current step "
                              "is index T_o - 1.")
            return failed(f"for {case} you execute the wrong actions of the chunk",
                          "Execute the T_a actions that start at the current step.")
    return passed("Correct: observe T_o, predict T_p, execute T_a, repeat.")


# ---------------------------------------------------------------------------------------------
# Exercise: which frames train the policy at step t
# ---------------------------------------------------------------------------------------------
def _frames(t: int, n: int, t_o: int, t_p: int, obs_shift: int = 0, act_shift: int = 0,
            clip: bool = True) -> tuple[np.ndarray, np.ndarray]:
    obs = np.arange(t - t_o + 1, t + 1) + obs_shift
    act = np.arange(t - t_o + 1, t - t_o + 1 + t_p) + act_shift
    return (np.clip(obs, 0, n - 1), np.clip(act, 0, n - 1)) if clip else (obs, act)


def _first_wrong(outs: list, n: int, t_o: int, t_p: int, part: int = 2, **kwargs: Any) -> int | None:
    """The first step t whose frames differ from :func:`_frames` (part 0: history, 1: chunk, 2: both)."""
    for t, out in enumerate(outs):
        ref = _frames(t, n, t_o, t_p, **kwargs)
        if not all(close(out[i], ref[i]) for i in (0, 1) if part in (i, 2)):
            return t
    return None


@checker("the training window at step t")
def check_training_window(window: Callable[[int, int, int, int], Any]) -> Result:
    """Check ``window(t, L, T_o, T_p)`` → ``(obs_frames (T_o,), action_frames (T_p,))``: the episode frames
    of the observation history and the action chunk that train the policy at control step t of an episode
    of L steps (indices clipped into [0, L-1])."""
    rng = np.random.default_rng()
    for trial in range(5):
        t_o, t_a = int(rng.integers(2, 4)) if trial < 4 else 1, int(rng.integers(1, 5))
        t_p = t_o - 1 + t_a + int(rng.integers(0, 5))
        n = int(rng.integers(max(5, t_p - 2), 25))
        case = f"L={n}, T_o={t_o}, T_p={t_p}"
        outs = []
        for t in range(n):
            out = call(window, t, n, t_o, t_p)
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                return failed("return a pair (obs_frames, action_frames)")
            obs, act = as_numpy(out[0]).reshape(-1), as_numpy(out[1]).reshape(-1)
            if obs.shape != (t_o,) or act.shape != (t_p,):
                return failed(f"for t={t}, {case} you returned {obs.size} and {act.size} frames; "
                              f"expected {t_o} and {t_p}")
            outs.append((obs, act))
        wrong = functools.partial(_first_wrong, outs, n, t_o, t_p)  # None when all steps agree
        if wrong() is None:  # ... and the same frames as SequenceDataset's window for current step t
            rows = window_indices(np.array([n]), t_p, pad_before=t_o - 1, pad_after=t_a - 1)
            if not all(close(act, row) for (_, act), row in zip(outs, rows, strict=False)):
                return failed(f"for {case} your frames differ from SequenceDataset's windows")
            continue
        if t_o > 1 and wrong(0, obs_shift=t_o - 1) is None:
            return failed(f"for {case} your history starts at t", "The history ends at the current step t.")
        if t_o > 1 and wrong(0) is None and wrong(1, act_shift=t_o - 1) is None:
            return failed(f"for {case} your action chunk starts at t",
                          "The chunk is aligned with the history: it starts at the oldest observation's step.")
        if wrong(clip=False) is None or any(f.min() < 0 or f.max() > n - 1 for out in outs for f in out):
            return failed(f"for {case} some frame indices lie outside the episode",
                          "Clip every index into [0, L-1]: at the edges the first or last frame repeats.")
        return failed(f"wrong frames for t={wrong()}, {case}",
                      "Both ranges start T_o - 1 steps before t; the history has T_o frames, the chunk T_p.")
    return passed("Correct: these are the frames of SequenceDataset's windows.")


# ---------------------------------------------------------------------------------------------
# Exercise: the DDIM sampling loop
# ---------------------------------------------------------------------------------------------
def _ddim(eps_fn: Callable, x: torch.Tensor, ts: list[int], abar: list[float], last: float = 1.0,
          clip: bool = True, recompute: bool = True) -> torch.Tensor:
    for j, t in enumerate(ts):
        a_t = abar[t]
        a_p = abar[ts[j + 1]] if j + 1 < len(ts) else last
        eps = eps_fn(x, t)
        x0 = (x - (1 - a_t) ** 0.5 * eps) / a_t**0.5
        if clip:
            x0 = x0.clamp(-1, 1)
            if recompute:
                eps = (x - a_t**0.5 * x0) / (1 - a_t) ** 0.5
        x = a_p**0.5 * x0 + (1 - a_p) ** 0.5 * eps
    return x


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _gaussian_eps(abar: list[float], mu: torch.Tensor, var: float) -> Callable:
    """The exact ε-prediction E[ε | x_t] for data from N(mu, var·I); t an int or a tensor of indices."""

    def eps_fn(x: torch.Tensor, t: Any) -> torch.Tensor:
        a = abar[int(torch.as_tensor(t).reshape(-1)[0])]
        return ((1 - a) ** 0.5 * (x - a**0.5 * mu) / (a * var + 1 - a)).to(x.dtype)

    return eps_fn


@checker("DDIM sampling")
def check_ddim_sampling(ddim_sample: Callable[..., Any]) -> Result:
    """Check ``ddim_sample(eps_fn, shape, num_steps, alphas_cumprod, generator)`` → samples of ``shape``:
    deterministic DDIM (η = 0) from ``x = torch.randn(shape, generator=generator)`` over the leading
    timesteps ``j * (K // num_steps)``, j = num_steps-1, ..., 0, with x̂0 clipped to [-1, 1] and ε
    recomputed from it, and ᾱ_prev = 1 at the last step.

    ``alphas_cumprod`` is a float64 tensor (K,); ``eps_fn(x, k)`` takes x of ``shape`` and the step indices k.
    """
    rng = np.random.default_rng()
    schedule = NoiseSchedule.cosine(100)
    abar64 = schedule.float64("alphas_cumprod")
    abar, T = abar64.tolist(), len(abar64)
    for _ in range(2):
        num_steps = int(rng.choice([4, 6, 8, 10, 16]))
        shape = (int(rng.integers(4, 9)), int(rng.integers(3, 6)))
        mu = rng.uniform(-1.8, 1.8, shape[1])
        mu[0] = 1.5 if mu[0] > 0 else -1.5  # a mode outside [-1, 1], so that clipping matters
        mu = torch.as_tensor(mu)
        eps_fn = _gaussian_eps(abar, mu, float(rng.uniform(0.05, 0.2)))
        seed = int(rng.integers(2**31))
        expected = DDIMSampler(schedule, num_steps).sample(eps_fn, shape, generator=_seeded(seed))
        out = as_numpy(call(ddim_sample, eps_fn, shape, num_steps, abar64.clone(), _seeded(seed)))
        if out.shape != shape:
            return failed(f"for shape {shape} your function returned shape {out.shape}")
        if close(out, expected, rtol=1e-4, atol=1e-5):
            continue
        again = as_numpy(call(ddim_sample, eps_fn, shape, num_steps, abar64.clone(), _seeded(seed)))
        if not close(out, again, rtol=1e-6):
            return failed("two runs with equally seeded generators gave different samples",
                          "Draw the starting noise from the generator you are given; with η = 0 "
                          "nothing else is random.")
        x_T = torch.randn(shape, generator=_seeded(seed))
        leading = DDIMSampler(schedule, num_steps).timesteps.tolist()
        spacing = "Use leading spacing: the timesteps are multiples of K // num_steps, counting down."
        last = "After the last timestep comes the clean sample: ᾱ_prev = 1 there."
        for ts, kwargs, what, hint in [
            (DDIMSampler(schedule, num_steps, spacing="linspace").timesteps.tolist(), {},
             "with timesteps spaced by linspace", spacing),
            (DDIMSampler(schedule, num_steps, spacing="trailing").timesteps.tolist(), {},
             "whose timesteps start at T-1", spacing),
            (leading, dict(last=abar[0]), "whose last step goes to ᾱ_0 instead of 1", last),
            (leading, dict(last=abar[-(T // num_steps)]), "whose last step reads ᾱ at a negative index", last),
            (leading, dict(clip=False), "without clipping x̂0", "Clip x̂0 to [-1, 1] at every step."),
            (leading, dict(recompute=False), "that keeps the unclipped ε",
             "After clipping x̂0, recompute ε from x_t and the clipped x̂0."),
        ]:
            if close(out, _ddim(eps_fn, x_T.clone(), ts, abar, **kwargs), rtol=1e-4, atol=1e-5):
                return failed(f"for num_steps={num_steps} your samples match a DDIM loop {what}", hint)
        return failed(f"wrong samples for num_steps={num_steps}",
                      "Each step: ε = eps_fn(x, t), x̂0 from (x, ε), clip, recompute ε, then move to ᾱ_prev.")
    return passed("Correct: your DDIM loop matches DDIMSampler.")


# ---------------------------------------------------------------------------------------------
# Exercise: your own demonstrations
# ---------------------------------------------------------------------------------------------
RECOMMENDED_EPISODES = 20


@checker("your own demonstrations")
def check_own_demos(path: Any) -> Result:
    """Check the ``.npz`` at ``path``: demonstrations recorded with :mod:`dplearn.teleop`.

    It must load with :func:`dplearn.data.load_demos`, carry the shipped demonstrations' meta keys
    and environment, and every episode must replay exactly: resetting a fresh env to its first
    state and applying its actions reproduces its states bit for bit (what training assumes: each
    stored state is what the policy would have seen before that action).
    """
    from pathlib import Path

    from dplearn.data import load_demos, load_pusht_demos
    from dplearn.envs import PushTEnv

    if path is None or path is Ellipsis:
        raise NotAttempted
    where = Path(path).expanduser().resolve()
    record = ("Record episodes in the teleoperation panel (chapter 5, or `teleop_widget()` here), "
              "press keep after each, then save, and pass the path that save showed.")
    if not where.is_file():
        return failed(f"there is no file at {where}", record)
    try:
        demos = load_demos(where)
    except ValueError as exc:
        return failed(f"{where.name} is not a demonstrations file: {exc}", record)
    shipped = load_pusht_demos().meta
    missing = sorted(set(shipped) - set(demos.meta))
    if missing:
        return failed(f"{where.name}: the meta lacks the shipped demonstrations' keys {missing}",
                      "Save with TeleopSession.save (or the panel's save button).")
    env_meta = demos.meta.get("env")
    if not isinstance(env_meta, dict) or any(env_meta.get(k) != v for k, v in shipped["env"].items()):
        return failed(f"{where.name} was recorded in another environment than the shipped "
                      "demonstrations (meta['env'] differs)")
    env = PushTEnv(obs_type="state")
    successes = 0
    for i, (states, actions) in enumerate(demos.episodes()):
        obs, info = env.reset(options={"reset_to_state": states[0].astype(np.float64)})
        for t, action in enumerate(actions):
            if not np.array_equal(np.asarray(obs, dtype=np.float32), states[t]):
                return failed(f"episode {i} does not replay: step {t}'s stored state is not what "
                              "the env reaches from the stored start and actions",
                              "Keep state[t] as observed before action[t], and start from the "
                              "float32-exact start (TeleopSession does both).")
            obs, _, _, _, info = env.step(action.astype(np.float64))
        successes += bool(info.get("is_success", False))
    n = demos.n_episodes
    more = (f" Record about {RECOMMENDED_EPISODES} for training." if n < RECOMMENDED_EPISODES
            else "")
    return passed(f"{n} episode(s), {demos.n_steps} steps, {successes} reached the goal; the "
                  f"shipped format, and every episode replays exactly.{more}")
