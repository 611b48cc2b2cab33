"""RecedingHorizon: another action horizon or a latency at execution time, without retraining."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dplearn.evaluation import evaluate
from dplearn.policies import make_policy
from dplearn.policy_protocol import RecedingHorizon

STEP = np.array([3.0, 2.0])  # px per step: the stand-in's plan moves the pusher steadily


class EchoAgent:
    """A stand-in policy that plans to keep moving by STEP per step from the pusher position of the
    newest observation it was given (time t'): its chunk entry j, the action for time
    t' - T_o + 1 + j, is p(t') + STEP (j - T_o + 1). What it executes shows which observation it
    acted on and which entries of its chunk were used."""

    obs_type = "state"

    def __init__(self, t_o: int = 2, t_p: int = 16, t_a: int = 8):
        self.config = SimpleNamespace(obs_horizon=t_o, pred_horizon=t_p, action_horizon=t_a)
        self.device = torch.device("cpu")

    def reset(self, seeds=None):
        pass

    def predict_chunk(self, obs, generator=None):
        obs = torch.as_tensor(np.asarray(obs), dtype=torch.float64)
        assert obs.shape[1] == self.config.obs_horizon
        ahead = torch.arange(self.config.pred_horizon, dtype=torch.float64) - (self.config.obs_horizon - 1)
        return obs[:, -1:, :2] + ahead[None, :, None] * torch.as_tensor(STEP)


@pytest.mark.parametrize("latency", [0, 1, 3])
def test_latency_acts_on_the_observation_k_steps_old(latency):
    """Executed target at step t = the pusher's position observed at step max(t - k, 0) plus k
    steps of the plan (the history is the first observation repeated before the episode starts)."""
    policy = RecedingHorizon(EchoAgent(t_a=1), action_horizon=1, latency=latency)
    result = evaluate(policy, n_episodes=2, seed=100_000, max_steps=25, record=True, progress=False)
    for episode in result.episodes:
        states, actions = episode.states, episode.actions
        assert len(actions) == 25
        for t in range(25):
            np.testing.assert_allclose(actions[t], states[max(t - latency, 0), :2] + latency * STEP, atol=1e-4)
        if latency:  # the pusher did move (without latency it is told to stay where it is)
            assert np.linalg.norm(states[-1, :2] - states[0, :2]) > 20


def test_a_chunk_is_executed_from_the_step_its_latency_reaches():
    """With T_a = 4 and k = 2, the chunk predicted from the observations up to t − 2 is executed at
    t, t+1, t+2, t+3: the targets are the position seen at t − 2 plus 2, 3, 4, 5 steps of the plan."""
    policy = RecedingHorizon(EchoAgent(), action_horizon=4, latency=2)
    result = evaluate(policy, n_episodes=1, seed=100_001, max_steps=24, record=True, progress=False)
    states, actions = result.episodes[0].states, result.episodes[0].actions
    for t in range(0, 24, 4):
        for i in range(4):
            np.testing.assert_allclose(actions[t + i], states[max(t - 2, 0), :2] + (2 + i) * STEP, atol=1e-4)


def test_without_latency_it_is_the_policy_itself():
    torch.manual_seed(0)
    policy = make_policy("diffusion-cnn", obs_dim=20, obs_type="keypoints", down_dims=(8, 16),
                         step_embed_dim=16, num_diffusion_steps=5, inference_steps=5)
    kwargs = dict(n_episodes=2, seed=100_000, max_steps=20, record=True, progress=False)
    plain, wrapped = evaluate(policy, **kwargs), evaluate(RecedingHorizon(policy), **kwargs)
    for a, b in zip(plain.episodes, wrapped.episodes, strict=True):
        np.testing.assert_array_equal(a.actions, b.actions)
    shorter = evaluate(RecedingHorizon(policy, action_horizon=2), **kwargs)
    assert not np.array_equal(shorter.episodes[0].actions, plain.episodes[0].actions)


def test_refuses_what_the_chunk_cannot_cover():
    with pytest.raises(ValueError, match=r"latency \+ action_horizon must be at most .* = 15 .*"
                                         r"got latency=8, action_horizon=8"):
        RecedingHorizon(EchoAgent(), latency=8)
    with pytest.raises(ValueError, match="latency must be an integer >= 0, got -1"):
        RecedingHorizon(EchoAgent(), latency=-1)
    with pytest.raises(ValueError, match="action_horizon must be an integer >= 1, got 0"):
        RecedingHorizon(EchoAgent(), action_horizon=0)
    with pytest.raises(ValueError, match="policy must be a dplearn policy"):
        RecedingHorizon(lambda obs: obs)
