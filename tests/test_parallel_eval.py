"""Parallel evaluation (chapter 9): with worker processes, evaluate gives exactly the per-episode
results of the sequential loop for the same seeds, for the scripted expert (whole episodes in the
workers), for a deterministic chunk policy and for a stochastic dplearn policy (environments in
the workers, the policy here)."""

from __future__ import annotations

import numpy as np
import pytest

from dplearn.envs import PushTEnv
from dplearn.envs.parallel import EnvWorkers, default_workers
from dplearn.evaluation import evaluate
from dplearn.policy_protocol import ExpertPolicy


def assert_same_episodes(a, b):
    assert [e.seed for e in a.episodes] == [e.seed for e in b.episodes]
    for x, y in zip(a.episodes, b.episodes, strict=True):
        for name in ("rewards", "coverages", "states", "actions"):
            np.testing.assert_array_equal(getattr(x, name), getattr(y, name), err_msg=f"seed {x.seed}: {name}")
        if x.frames is not None or y.frames is not None:
            np.testing.assert_array_equal(x.frames, y.frames)
    assert a.score == b.score and a.success_rate == b.success_rate


class ChaseBlock:
    """A deterministic chunk policy on states (T_o = 2): three targets past the block, along the
    block's last motion, so that histories, chunks and early ends all matter."""

    obs_horizon = 2
    obs_type = "state"
    batch_independent = True

    def __call__(self, obs):
        obs = np.asarray(obs)
        block, motion = obs[:, -1, 2:4], obs[:, -1, 2:4] - obs[:, 0, 2:4]
        ahead = block + 20.0 * np.sign(motion + 1e-3)
        return np.stack([ahead, block, (ahead + obs[:, -1, :2]) / 2], axis=1)


def test_expert_episodes_in_workers_equal_the_sequential_loop():
    kwargs = dict(n_episodes=5, seed=100_000, n_envs=2, max_steps=120, progress=False, record=1, record_size=32)
    sequential = evaluate(ExpertPolicy(), **kwargs)
    parallel = evaluate(ExpertPolicy(), workers=2, **kwargs)
    assert_same_episodes(sequential, parallel)
    assert parallel.episodes[0].frames is not None and parallel.episodes[1].frames is None


def test_a_deterministic_chunk_policy_gives_the_same_episodes():
    kwargs = dict(n_episodes=5, seed=100_010, n_envs=3, max_steps=60, progress=False)
    sequential = evaluate(ChaseBlock(), **kwargs)
    with EnvWorkers(2) as pool:  # one pool for two evaluations, as during training
        parallel = evaluate(ChaseBlock(), workers=pool, **kwargs)
        again = evaluate(ChaseBlock(), workers=pool, **kwargs)
    assert_same_episodes(sequential, parallel)
    assert_same_episodes(sequential, again)
    assert pool.closed


def test_a_stochastic_diffusion_policy_gives_the_same_episodes():
    import torch

    from dplearn.policies import make_policy
    from dplearn.policy_training import recipe_for

    torch.manual_seed(0)
    policy = make_policy("diffusion-cnn", recipe_for("diffusion-cnn", "keypoints")[1].policy_config("quick"))
    policy.set_sampler("ddim", 2)
    kwargs = dict(n_episodes=3, seed=100_020, n_envs=3, max_steps=24, progress=False)
    sequential = evaluate(policy, **kwargs)
    parallel = evaluate(policy, workers=2, **kwargs)
    assert_same_episodes(sequential, parallel)


def test_start_states_and_a_lambda_per_step_policy():
    starts = np.array([[100.0, 100.0, 250.0, 250.0, 0.5], [400.0, 120.0, 200.0, 300.0, -1.0]])
    kwargs = dict(n_episodes=2, seed=5, n_envs=2, max_steps=30, progress=False, start_states=starts)
    policy = lambda obs: obs[2:4]  # noqa: E731  (not picklable: it stays here, the envs go to the workers)
    assert_same_episodes(evaluate(policy, **kwargs), evaluate(policy, workers=2, **kwargs))


def test_bad_workers_and_worker_errors():
    with pytest.raises(ValueError, match="workers"):
        evaluate(ChaseBlock(), n_episodes=1, workers=0, progress=False)
    with pytest.raises(ValueError, match="picklable"):
        evaluate(ChaseBlock(), n_episodes=1, workers=2, progress=False, make_env=lambda **kw: PushTEnv(**kw))
    with pytest.raises(RuntimeError, match="no_such_option"):  # the worker's error, with its traceback
        evaluate(ChaseBlock(), n_episodes=2, workers=2, progress=False, env_kwargs={"no_such_option": 1})
    pool = EnvWorkers(1)
    pool.close()
    with pytest.raises(ValueError, match="closed"):
        evaluate(ChaseBlock(), n_episodes=1, workers=pool, progress=False)


def test_default_workers_is_bounded():
    assert default_workers(1) == 1
    assert 1 <= default_workers(50) <= 50


def test_eval_command_workers_option(capsys):
    from dplearn.cli import main

    lines = []
    for workers in ("1", "2"):
        assert main(["eval", "--policy", "regression", "--episodes", "3", "--workers", workers, "--no-progress"]) == 0
        lines.append(capsys.readouterr().out.strip().splitlines()[-1])
    assert "workers=1" in lines[0] and "workers=2" in lines[1]
    score = [line.split("score=")[1] for line in lines]
    assert score[0] == score[1]


def test_a_bad_action_in_a_worker_is_the_env_s_one_line_error():
    nan_policy = lambda obs: np.array([np.nan, 1.0])  # noqa: E731
    with pytest.raises(ValueError, match=r"^environment worker \d: action must be finite, got \[nan, 1.0\]$"):
        evaluate(nan_policy, n_episodes=2, seed=0, n_envs=2, max_steps=5, progress=False, workers=2)
    with pytest.raises(ValueError, match=r"^action must be finite, got \[nan, 1.0\]$"):  # the same without workers
        evaluate(nan_policy, n_episodes=2, seed=0, n_envs=2, max_steps=5, progress=False, workers=1)
