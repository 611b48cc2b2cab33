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
from dplearn.validate import finite_float, integer, positive_int

__all__ = ["PerStepPolicy", "RandomPolicy", "ExpertPolicy", "as_policy"]


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
