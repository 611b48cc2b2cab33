"""Chapter 8 checkers accept correct answers and reject typical mistakes (and stubs) with a hint."""

from __future__ import annotations

from collections import deque

import numpy as np
import torch

from dplearn.exercises import ch08


# ---------------------------------------------------------------------------------------------
# the receding-horizon loop
# ---------------------------------------------------------------------------------------------
def _run_episode(offset=None, order=1, pad="first", stop_mid_chunk=True, n_exec=None):
    """A control loop; the keywords switch on one mistake each."""

    def run_episode(env, plan, T_o, T_a, max_steps):
        obs = env.reset()
        if pad == "first":
            history = deque([obs] * T_o, maxlen=T_o)
        elif pad == "zeros":
            history = deque([np.zeros_like(obs)] * (T_o - 1) + [obs], maxlen=T_o)
        else:
            history = deque([obs], maxlen=T_o)
        start = T_o - 1 if offset is None else offset
        actions, done = [], False
        while not done and len(actions) < max_steps:
            chunk = plan(np.stack(list(history)[::order]))
            for a in chunk[start: start + (T_a if n_exec is None else n_exec)]:
                if stop_mid_chunk and (done or len(actions) == max_steps):
                    break
                obs, done = env.step(a)
                actions.append(a)
                history.append(obs)
        return actions

    return run_episode


def test_receding_horizon_checker():
    assert ch08.check_receding_horizon(_run_episode())
    res = ch08.check_receding_horizon(_run_episode(offset=0))
    assert not res and "from index 0" in res.message
    res = ch08.check_receding_horizon(_run_episode(order=-1))
    assert not res and "newest first" in res.message
    res = ch08.check_receding_horizon(_run_episode(pad="none"))
    assert not res and "at the start the history has" in res.message
    res = ch08.check_receding_horizon(_run_episode(pad="zeros"))
    assert not res and "zeros" in res.message
    res = ch08.check_receding_horizon(_run_episode(stop_mid_chunk=False))
    assert not res and ("after the env said done" in res.message or "executed" in res.message)
    assert "middle of a chunk" in res.hint
    res = ch08.check_receding_horizon(_run_episode(n_exec=1))
    assert not res and "per plan" in res.message

    def returns_chunks(env, plan, T_o, T_a, max_steps):
        _run_episode()(env, plan, T_o, T_a, max_steps)
        return [np.zeros(2)]

    res = ch08.check_receding_horizon(returns_chunks)
    assert not res and "returned list" in res.message
    assert "Not attempted" in ch08.check_receding_horizon(lambda env, plan, T_o, T_a, max_steps: ...).message


def test_receding_horizon_checker_runs_every_stopping_case():
    seen = []

    def spy(env, plan, T_o, T_a, max_steps):
        actions = _run_episode()(env, plan, T_o, T_a, max_steps)
        seen.append((len(actions) % T_a != 0, len(actions) == max_steps))
        return actions

    assert ch08.check_receding_horizon(spy)
    assert (True, True) in seen  # max_steps in the middle of a chunk
    assert (True, False) in seen  # done in the middle of a chunk


def _window(obs_shift=0, act_shift=0, clip=True):
    """A training-window answer; the shifts start the history / the chunk at t (a common mistake)."""

    def window(t, L, T_o, T_p):
        o0 = t if obs_shift else t - T_o + 1
        a0 = t if act_shift else t - T_o + 1
        obs, act = np.arange(o0, o0 + T_o), np.arange(a0, a0 + T_p)
        return (np.clip(obs, 0, L - 1), np.clip(act, 0, L - 1)) if clip else (obs, act)

    return window


# ---------------------------------------------------------------------------------------------
# the FiLM residual block
# ---------------------------------------------------------------------------------------------
def test_training_window_checker():
    assert ch08.check_training_window(_window())
    res = ch08.check_training_window(_window(obs_shift=1, act_shift=1))
    assert not res and "history starts at t" in res.message
    res = ch08.check_training_window(_window(act_shift=1))
    assert not res and "action chunk starts at t" in res.message
    res = ch08.check_training_window(_window(clip=False))
    assert not res and "outside the episode" in res.message
    res = ch08.check_training_window(lambda t, L, T_o, T_p: _window()(t - 1, L, T_o, T_p))  # one step late
    assert not res and "wrong frames" in res.message
    res = ch08.check_training_window(lambda t, L, T_o, T_p: np.arange(T_p))
    assert not res and "pair" in res.message
    assert "Not attempted" in ch08.check_training_window(lambda t, L, T_o, T_p: ...).message


def test_training_window_matches_the_dataset_windows():
    """The checker's reference frames are the rows of window_indices (row t: current step t)."""
    from dplearn.data import window_indices

    for t_o, t_a, extra, n in [(2, 8, 6, 40), (1, 3, 0, 7), (3, 2, 4, 9)]:
        t_p = t_o - 1 + t_a + extra
        rows = window_indices(np.array([n]), t_p, pad_before=t_o - 1, pad_after=t_a - 1)
        assert len(rows) == n - extra  # the last current step with a window is L - 1 - extra
        for t, row in enumerate(rows):
            obs, act = _window()(t, n, t_o, t_p)
            assert np.array_equal(act, row) and np.array_equal(obs, row[:t_o])


# ---------------------------------------------------------------------------------------------
# the DDIM sampling loop
# ---------------------------------------------------------------------------------------------
def _ddim_sample(spacing="leading", last="one", clip=True, recompute=True, seeded=True):
    def ddim_sample(eps_fn, shape, num_steps, alphas_cumprod, generator):
        T = len(alphas_cumprod)
        step = T // num_steps
        if spacing == "leading":
            ts = [k * step for k in range(num_steps - 1, -1, -1)]
        else:
            ts = np.round(np.linspace(0, T - 1, num_steps)).astype(int)[::-1].tolist()
        x = torch.randn(shape, generator=generator if seeded else None)
        for i, t in enumerate(ts):
            a_t = alphas_cumprod[t]
            if i + 1 < len(ts):
                a_p = alphas_cumprod[ts[i + 1]]
            else:
                a_p = {"one": torch.tensor(1.0, dtype=torch.float64), "first": alphas_cumprod[0],
                       "wrap": alphas_cumprod[t - step]}[last]
            eps = eps_fn(x, t)
            x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
            if clip:
                x0 = x0.clamp(-1, 1)
                if recompute:
                    eps = (x - a_t.sqrt() * x0) / (1 - a_t).sqrt()
            x = a_p.sqrt() * x0 + (1 - a_p).sqrt() * eps
        return x

    return ddim_sample


def test_ddim_sampling_checker():
    assert ch08.check_ddim_sampling(_ddim_sample())
    for kwargs, words in [
        (dict(spacing="linspace"), "linspace"),
        (dict(last="first"), "ᾱ_0"),
        (dict(last="wrap"), "negative index"),
        (dict(clip=False), "without clipping"),
        (dict(recompute=False), "unclipped ε"),
        (dict(seeded=False), "different samples"),
    ]:
        res = ch08.check_ddim_sampling(_ddim_sample(**kwargs))
        assert not res and words in res.message, (kwargs, res)
    res = ch08.check_ddim_sampling(lambda eps_fn, shape, n, abar, g: torch.randn(shape, generator=g))
    assert not res and "wrong samples" in res.message
    assert "Not attempted" in ch08.check_ddim_sampling(lambda eps_fn, shape, n, abar, g: None).message


# ---------------------------------------------------------------------------------------------
# your own demonstrations (teleoperation)
# ---------------------------------------------------------------------------------------------
def _recorded(tmp_path, name="mine.npz"):
    from dplearn.teleop import TeleopSession

    s = TeleopSession(seed=21)
    for dx, dy in [(1, 0)] * 5 + [(0, 1)] * 4:
        s.move(dx, dy, step_px=18)
    s.keep()
    for _ in range(6):
        s.move(-1, -1, step_px=10)
    s.keep()
    return s.save(tmp_path / name)


def test_check_own_demos(tmp_path):
    import json

    from dplearn.data import Demos, load_demos, save_demos

    path = _recorded(tmp_path)
    result = ch08.check_own_demos(path)
    assert result, result
    assert "2 episode(s), 15 steps" in result.message and "about 20" in result.message
    assert not ch08.check_own_demos(...)  # the stub
    missing = ch08.check_own_demos(tmp_path / "nothing.npz")
    assert not missing and "no file" in missing.message
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert not ch08.check_own_demos(tmp_path / "junk.npz")
    demos = load_demos(path)
    # an action changed after recording: the states no longer follow from the actions
    action = demos.action.copy()
    action[3] += 7.0
    save_demos(tmp_path / "edited.npz", Demos(demos.state, action, demos.episode_ends, demos.meta))
    edited = ch08.check_own_demos(tmp_path / "edited.npz")
    assert not edited and "episode 0 does not replay" in edited.message
    # states stored one step late (the state after the action): the classic off-by-one
    late = demos.state.copy()
    late[:-1] = demos.state[1:]
    save_demos(tmp_path / "late.npz", Demos(late, demos.action, demos.episode_ends, demos.meta))
    assert not ch08.check_own_demos(tmp_path / "late.npz")
    # meta without the shipped keys, or from another environment
    save_demos(tmp_path / "bare.npz", Demos(demos.state, demos.action, demos.episode_ends, {}))
    assert "lacks" in ch08.check_own_demos(tmp_path / "bare.npz").message
    meta = json.loads(json.dumps(demos.meta))
    meta["env"]["k_p"] = 50.0
    save_demos(tmp_path / "other.npz", Demos(demos.state, demos.action, demos.episode_ends, meta))
    assert "another environment" in ch08.check_own_demos(tmp_path / "other.npz").message
