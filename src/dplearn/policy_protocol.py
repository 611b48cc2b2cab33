"""The policy protocol of the Push-T evaluation, and the adapters and baselines that speak it.

Introduced in chapter 5.

:func:`dplearn.evaluation.evaluate` accepts two kinds of policy.

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
   the evaluation's ``seed``: an evaluation of a stochastic policy (a diffusion policy samples
   noise) then gives the same result every time on the same device.

   The history holds the last T_o observations, oldest first; at the start of an episode it is the
   first observation repeated (the same padding as :class:`dplearn.data.SequenceDataset`), and
   observations are in the dataset's format (:func:`dplearn.data.observation_to_model`). All n
   returned actions are executed (receding horizon), then the policy is called again.

2. **Per-step callables** ``fn(obs) -> action``: one raw env observation in, one (2,) target out
   (e.g. a lambda, or :class:`dplearn.experts.PushTExpert`). If ``fn`` has a ``reset(seed)`` method
   it is treated as stateful: every parallel env gets its own deep copy, reset with its episode's
   seed. :class:`PerStepPolicy` does this wrapping; :func:`as_policy` applies it.

Two baselines speak the protocol: :class:`RandomPolicy` (the floor) and :class:`ExpertPolicy` (the
scripted expert, the ceiling of chapter 5).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dplearn.envs.benchmark import WORKSPACE_SIZE
from dplearn.experts import PushTExpert
from dplearn.validate import finite_float, integer, non_negative_int, positive_int

__all__ = ["PerStepPolicy", "RandomPolicy", "ExpertPolicy", "RecedingHorizon", "as_policy"]


class PerStepPolicy:
    """Adapts a per-step callable ``fn(obs) -> (2,) action`` to the chunk protocol (T_o = 1, n = 1).

    Raw env observations (not the model format) are passed to ``fn``. If ``fn`` has a
    ``reset(seed)`` method, each of the B parallel episodes gets a deep copy of ``fn`` reset with
    its episode's seed, so stateful controllers (like the scripted expert) stay independent.
    Called on B raw observations, it returns actions of shape (B, 1, 2).
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


class ExpertPolicy(PerStepPolicy):
    """The scripted expert (:class:`dplearn.experts.PushTExpert`, built with ``expert_kwargs``) as
    a policy: one copy per episode, each reset with its episode's seed. Reads ``state``
    observations."""

    obs_type = "state"

    def __init__(self, **expert_kwargs: Any):
        super().__init__(PushTExpert(**expert_kwargs))


class RandomPolicy:
    """The floor: targets drawn uniformly from the workspace ``[low, high]²`` (default [0, 512]²),
    each held ``hold`` steps, so a call on B observations returns (B, hold, 2).

    Episode b of a batch draws from ``np.random.default_rng([seed, episode_seed_b])`` (set by
    :meth:`reset`), so evaluations are reproducible and two values of ``seed`` give two different
    random policies.
    """

    obs_horizon = 1

    def __init__(self, hold: int = 1, low: float = 0.0, high: float = WORKSPACE_SIZE, seed: int = 0):
        self.hold = positive_int("hold", hold)
        self.low = finite_float("low", low)
        self.high = finite_float("high", high, low=self.low, low_open=True)
        self.seed = integer("seed", seed, low=0)
        self._rngs: list[np.random.Generator] = []

    def reset(self, seeds: Sequence[int]) -> None:
        self._rngs = [np.random.default_rng([self.seed, int(s)]) for s in seeds]

    def __call__(self, obs: Any) -> np.ndarray:
        b = len(obs["image"]) if isinstance(obs, dict) else len(obs)
        if len(self._rngs) != b:
            self.reset(range(b))
        targets = np.stack([rng.uniform(self.low, self.high, size=2) for rng in self._rngs])
        return np.repeat(targets[:, None, :], self.hold, axis=1)


def as_policy(policy: Any) -> Any:
    """A chunk policy as is (after checking its ``obs_horizon``); a per-step callable wrapped in
    :class:`PerStepPolicy`."""
    if hasattr(policy, "obs_horizon"):
        positive_int("policy.obs_horizon", policy.obs_horizon)
        return policy
    if callable(policy):
        return PerStepPolicy(policy)
    raise ValueError(
        "policy must be a chunk policy (with obs_horizon, called on a batch of histories) or a "
        f"callable obs -> action, got {type(policy).__name__}"
    )


class RecedingHorizon:
    """Run a chunk policy with another action horizon :math:`T_a` or with latency, without retraining.

    A dplearn policy predicts :math:`T_p` actions :math:`a_{t'-T_o+1}, \\dots, a_{t'-T_o+T_p}` from the
    observations up to :math:`t'` and executes :math:`T_a` of them. With a latency of :math:`k` steps
    the observation it acts on is :math:`k` steps old when its actions start: the prediction made from
    the observations up to :math:`t' = t - k` is executed from step :math:`t` on, so of its chunk the
    executed actions are

    .. math:: a_t, \\dots, a_{t+T_a-1} = \\text{chunk}[T_o - 1 + k \\,:\\, T_o - 1 + k + T_a],

    which needs :math:`T_o - 1 + k + T_a \\le T_p`. The wrapper asks the evaluation for
    :math:`T_o + k` observations (so it has the ones up to :math:`t - k`; at the start of an episode
    they are the first one repeated) and passes the oldest :math:`T_o` to the policy. With
    ``latency=0`` and the policy's own ``action_horizon`` it acts exactly as the policy does.

    Parameters
    ----------
    policy : dplearn.policies.Policy
        A trained policy (anything with ``config`` and ``predict_chunk``).
    action_horizon : int, optional
        :math:`T_a`, actions executed per prediction (default: the policy's).
    latency : int
        :math:`k \\ge 0`, steps between the observation and the first executed action.

    Introduced in chapter 10.
    """

    accepts_generator = True
    batch_independent = True

    def __init__(self, policy: Any, action_horizon: int | None = None, latency: int = 0):
        if not callable(getattr(policy, "predict_chunk", None)) or not hasattr(policy, "config"):
            raise ValueError(f"policy must be a dplearn policy (with config and predict_chunk), got "
                             f"{type(policy).__name__}")
        c = policy.config
        self.policy = policy
        self.latency = non_negative_int("latency", latency)
        self.action_horizon = positive_int("action_horizon",
                                           c.action_horizon if action_horizon is None else action_horizon)
        need = c.obs_horizon - 1 + self.latency + self.action_horizon
        if need > c.pred_horizon:
            raise ValueError(f"latency + action_horizon must be at most pred_horizon - obs_horizon + 1 = "
                             f"{c.pred_horizon - c.obs_horizon + 1} for this policy (T_p = {c.pred_horizon}, "
                             f"T_o = {c.obs_horizon}), got latency={self.latency}, "
                             f"action_horizon={self.action_horizon}")
        self.obs_type = policy.obs_type
        self.control = getattr(policy, "control", "position")  # what its actions are (chapter 10)
        self.obs_horizon = c.obs_horizon + self.latency

    @property
    def device(self) -> Any:
        return self.policy.device

    def reset(self, seeds: Any = None) -> None:
        self.policy.reset(seeds)

    def __call__(self, obs: Any, generator: Any = None) -> np.ndarray:
        """``obs`` (B, T_o + k, ...) (or a dict of such) → the actions to execute ``(B, T_a, 2)``."""
        t_o = self.policy.config.obs_horizon
        if isinstance(obs, dict):
            oldest = {key: value[:, :t_o] for key, value in obs.items()}
        else:
            oldest = np.asarray(obs)[:, :t_o]
        chunk = self.policy.predict_chunk(oldest, generator)
        start = t_o - 1 + self.latency
        return chunk[:, start:start + self.action_horizon].float().cpu().numpy()
