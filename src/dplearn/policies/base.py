"""The interface every policy shares: config, normalisation, loss, ``act``, checkpoints.

A policy maps a short history of observations to a chunk of future actions, the receding-horizon
convention of Diffusion Policy (Chi et al., 2023):

.. math::

    \\pi_\\theta:\\ (o_{t-T_o+1}, \\dots, o_t) \\;\\mapsto\\; (a_{t-T_o+1}, \\dots, a_{t-T_o+T_p}),

with observation horizon :math:`T_o`, prediction horizon :math:`T_p`, and of the predicted
chunk the :math:`T_a` actions :math:`a_t, \\dots, a_{t+T_a-1}` are executed before the policy is
asked again (:math:`T_o - 1 + T_a \\le T_p`). With :math:`T_o = T_p = T_a = 1` this is the
ordinary one-step policy :math:`a_t = \\pi(o_t)`.

Every policy

- is built from a config dataclass (:class:`PolicyConfig` or a subclass); bad values raise
  ``ValueError`` naming the field;
- works in normalised units: observations and actions are mapped to [−1, 1] by two
  :class:`~dplearn.data.normalizer.Normalizer` s that travel with the policy;
- defines ``loss(batch)``, the scalar a training loop (:mod:`dplearn.training`) minimises, where
  ``batch`` holds raw observation windows ``(B, T_o, obs_dim)`` and action windows
  ``(B, T_p, action_dim)``;
- answers ``act(obs_history)`` with the actions to execute, ``(T_a, action_dim)``, in raw units;
- saves itself atomically (``save(path)``) with its config and normalisers, and loads with
  ``torch.load(..., weights_only=True)`` (``Policy.load(path)`` / :func:`dplearn.policies.load_policy`).

Introduced in chapter 6.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from dplearn.atomic import torch_save_atomic
from dplearn.data.normalizer import Normalizer

__all__ = ["PolicyConfig", "Policy", "mlp", "split_batch", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "dplearn-policy/1"


# ---------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------
def _check_int(config: Any, name: str, low: int) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{type(config).__name__}.{name} must be an integer >= {low}, got {value!r}")
    object.__setattr__(config, name, int(value))


def _check_float(config: Any, name: str, low: float, high: float = math.inf,
                 low_open: bool = True) -> None:
    value = getattr(config, name)
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = math.isfinite(v) and (v > low if low_open else v >= low) and v <= high
    if not ok:
        bracket = "(" if low_open else "["
        raise ValueError(f"{type(config).__name__}.{name} must be a number in {bracket}{low}, {high}], "
                         f"got {value!r}")
    object.__setattr__(config, name, float(value))


def _check_choice(config: Any, name: str, choices: tuple[str, ...]) -> None:
    value = getattr(config, name)
    if value not in choices:
        raise ValueError(f"{type(config).__name__}.{name} must be one of {choices}, got {value!r}")


@dataclass
class PolicyConfig:
    """What every policy needs to know; subclasses add their own fields.

    ===============  ==========================================================================
    obs_dim          width of one observation (5 for Push-T states, 2 for the toy task)
    action_dim       width of one action (2: a target or a displacement in the plane)
    obs_horizon      :math:`T_o`, how many past observations the policy sees (>= 1)
    pred_horizon     :math:`T_p`, how many actions it predicts (>= obs_horizon − 1 + action_horizon)
    action_horizon   :math:`T_a`, how many of them are executed before it is asked again (>= 1)
    hidden           width of the hidden layers (>= 1)
    n_layers         number of hidden layers (>= 1)
    ===============  ==========================================================================

    Introduced in chapter 6.
    """

    obs_dim: int = 5
    action_dim: int = 2
    obs_horizon: int = 2
    pred_horizon: int = 2
    action_horizon: int = 1
    hidden: int = 256
    n_layers: int = 3

    def __post_init__(self) -> None:
        for name in ("obs_dim", "action_dim", "obs_horizon", "pred_horizon", "action_horizon",
                     "hidden", "n_layers"):
            _check_int(self, name, 1)
        if self.obs_horizon - 1 + self.action_horizon > self.pred_horizon:
            raise ValueError(
                f"{type(self).__name__}: pred_horizon must be >= obs_horizon - 1 + action_horizon = "
                f"{self.obs_horizon - 1 + self.action_horizon}, got {self.pred_horizon}")

    def to_dict(self) -> dict[str, Any]:
        """Plain ``name -> value`` (ints, floats, strings, bools), safe for ``weights_only`` loading."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> PolicyConfig:
        """Build from :meth:`to_dict` output; unknown keys raise ``ValueError``."""
        if not isinstance(values, Mapping):
            raise ValueError(f"config must be a mapping of field names to values, got {type(values).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"{cls.__name__} has no fields {unknown}; known fields: {sorted(names)}")
        return cls(**dict(values))


# ---------------------------------------------------------------------------------------------
# small building blocks
# ---------------------------------------------------------------------------------------------
def mlp(in_dim: int, hidden: int, n_layers: int, out_dim: int | None) -> nn.Sequential:
    """``n_layers`` hidden layers of width ``hidden`` with Mish, then a linear map to ``out_dim``.

    Shapes: (..., in_dim) → (..., out_dim); with ``out_dim=None`` the last linear map is left out
    and the output is the last hidden layer's features (..., hidden), for a head to sit on.

    Introduced in chapter 6.
    """
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(n_layers):
        layers += [nn.Linear(width, hidden), nn.Mish()]
        width = hidden
    if out_dim is not None:
        layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(obs, action)`` from a batch that is a mapping with keys ``obs`` and ``action`` or a pair.

    Introduced in chapter 6.
    """
    if isinstance(batch, Mapping):
        if "obs" not in batch or "action" not in batch:
            raise ValueError(f"batch must have keys 'obs' and 'action', got {sorted(batch)}")
        return batch["obs"], batch["action"]
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    raise ValueError("batch must be a mapping with 'obs' and 'action' or a pair (obs, action), "
                     f"got {type(batch).__name__}")


def _identity_normalizer(dim: int) -> Normalizer:
    return Normalizer(-np.ones(dim), np.ones(dim))


def _save_atomic(obj: Any, path: Path) -> None:
    torch_save_atomic(obj, path)


# ---------------------------------------------------------------------------------------------
# the policy
# ---------------------------------------------------------------------------------------------
class Policy(nn.Module):
    """Base class of every policy (see the module docstring for the contract).

    Subclasses set ``name`` and ``config_class`` and implement

    - ``compute_loss(obs, action)`` on *normalised* tensors ``(B, T_o, obs_dim)``,
      ``(B, T_p, action_dim)`` → scalar;
    - ``sample(obs, generator)`` on a normalised ``(B, T_o, obs_dim)`` → normalised action chunk
      ``(B, T_p, action_dim)``.

    Parameters
    ----------
    config:
        The policy's config (an instance of ``config_class``, or a mapping of its fields).
    obs_normalizer, action_normalizer:
        Maps of raw observations / actions to [−1, 1]; identity when omitted. Set them later
        with :meth:`set_normalizers` (the training glue fits them on the demonstrations).

    Introduced in chapter 6.
    """

    name: ClassVar[str] = "policy"
    config_class: ClassVar[type[PolicyConfig]] = PolicyConfig

    def __init__(self, config: PolicyConfig | Mapping[str, Any] | None = None,
                 obs_normalizer: Normalizer | None = None,
                 action_normalizer: Normalizer | None = None):
        super().__init__()
        if config is None:
            config = self.config_class()
        elif isinstance(config, Mapping):
            config = self.config_class.from_dict(config)
        if type(config) is not self.config_class:
            raise ValueError(f"config must be a {self.config_class.__name__} for the {self.name!r} policy, "
                             f"got {type(config).__name__}")
        self.config = config
        self.meta: dict[str, Any] = {}
        self.obs_normalizer = _identity_normalizer(config.obs_dim)
        self.action_normalizer = _identity_normalizer(config.action_dim)
        self.set_normalizers(obs_normalizer, action_normalizer)

    # ---- normalisation -------------------------------------------------------------------------
    def set_normalizers(self, obs_normalizer: Normalizer | None = None,
                        action_normalizer: Normalizer | None = None) -> None:
        """Replace the observation and/or action normaliser (dimensions must match the config)."""
        for attr, value, dim in (("obs_normalizer", obs_normalizer, self.config.obs_dim),
                                 ("action_normalizer", action_normalizer, self.config.action_dim)):
            if value is None:
                continue
            if not isinstance(value, Normalizer):
                raise ValueError(f"{attr} must be a dplearn.data.Normalizer, got {type(value).__name__}")
            if value.dim != dim:
                raise ValueError(f"{attr} has dimension {value.dim}, but the config says {dim}")
            setattr(self, attr, value)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _check_obs(self, obs: torch.Tensor, what: str = "obs") -> None:
        c = self.config
        if obs.ndim != 3 or obs.shape[1:] != (c.obs_horizon, c.obs_dim):
            raise ValueError(f"{what} must have shape (B, {c.obs_horizon}, {c.obs_dim}) = (batch, "
                             f"obs_horizon, obs_dim), got {tuple(obs.shape)}")

    def normalize_batch(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised ``(obs (B, T_o, obs_dim), action (B, T_p, action_dim))`` of a raw batch."""
        obs, action = split_batch(batch)
        c = self.config
        obs = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        action = torch.as_tensor(action, dtype=torch.float32, device=self.device)
        self._check_obs(obs, "batch obs")
        if action.ndim != 3 or action.shape[1:] != (c.pred_horizon, c.action_dim):
            raise ValueError(f"batch action must have shape (B, {c.pred_horizon}, {c.action_dim}) = "
                             f"(batch, pred_horizon, action_dim), got {tuple(action.shape)}")
        if obs.shape[0] != action.shape[0]:
            raise ValueError(f"batch obs and action have different batch sizes {obs.shape[0]} and {action.shape[0]}")
        return self.obs_normalizer.normalize(obs), self.action_normalizer.normalize(action)

    # ---- what subclasses implement -------------------------------------------------------------
    def compute_loss(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    # ---- the public interface ------------------------------------------------------------------
    def loss(self, batch: Any) -> torch.Tensor:
        """The training loss of a raw batch (``{"obs": (B, T_o, obs_dim), "action": (B, T_p, action_dim)}``
        or a pair); normalises, then calls :meth:`compute_loss`."""
        obs, action = self.normalize_batch(batch)
        return self.compute_loss(obs, action)

    @torch.no_grad()
    def predict_chunk(self, obs_history: Any, generator: torch.Generator | None = None) -> torch.Tensor:
        """The whole predicted chunk in raw units: ``(B, T_p, action_dim)`` for ``(B, T_o, obs_dim)``."""
        obs = torch.as_tensor(np.asarray(obs_history, dtype=np.float32) if not isinstance(
            obs_history, torch.Tensor) else obs_history, dtype=torch.float32, device=self.device)
        self._check_obs(obs, "obs_history")
        was_training = self.training
        self.eval()
        try:
            chunk = self.sample(self.obs_normalizer.normalize(obs), generator)
        finally:
            self.train(was_training)
        return self.action_normalizer.unnormalize(chunk)

    def act(self, obs_history: Any, generator: torch.Generator | None = None) -> np.ndarray:
        """The actions to execute now, in raw units.

        ``obs_history`` ``(T_o, obs_dim)`` → ``(T_a, action_dim)``; a batch ``(B, T_o, obs_dim)`` →
        ``(B, T_a, action_dim)``. Of the predicted chunk :math:`a_{t-T_o+1..t-T_o+T_p}` these are
        :math:`a_t, \\dots, a_{t+T_a-1}`. ``generator`` makes stochastic policies reproducible.
        """
        x = obs_history.detach().cpu().numpy() if isinstance(obs_history, torch.Tensor) else np.asarray(
            obs_history, dtype=np.float32)
        single = x.ndim == 2
        if single:
            x = x[None]
        c = self.config
        if x.ndim != 3 or x.shape[1:] != (c.obs_horizon, c.obs_dim):
            raise ValueError(f"obs_history must have shape ({c.obs_horizon}, {c.obs_dim}) = (obs_horizon, "
                             f"obs_dim) or (B, {c.obs_horizon}, {c.obs_dim}), got {x.shape}")
        chunk = self.predict_chunk(x, generator)
        start = c.obs_horizon - 1
        out = chunk[:, start:start + c.action_horizon].cpu().numpy().astype(np.float32)
        return out[0] if single else out

    def forward(self, obs_history: Any, generator: torch.Generator | None = None) -> np.ndarray:
        """``policy(obs_history)`` is :meth:`act`: the chunk protocol of :func:`dplearn.evaluation.evaluate`
        (a batch ``(B, T_o, obs_dim)`` in, the actions to execute ``(B, T_a, action_dim)`` out)."""
        return self.act(obs_history, generator)

    @property
    def obs_horizon(self) -> int:
        """:math:`T_o`, how many observations :meth:`act` expects (read by the evaluation loop)."""
        return self.config.obs_horizon

    def reset(self, seeds: Any = None) -> None:
        """Forget any state kept between calls of :meth:`act` (none: these policies are stateless)."""

    # ---- checkpoints ---------------------------------------------------------------------------
    def checkpoint(self, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Everything :meth:`load` needs, as plain types and tensors (``weights_only``-safe)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "policy": self.name,
            "config": self.config.to_dict(),
            "state_dict": {k: v.detach().cpu().clone() for k, v in self.state_dict().items()},
            "obs_normalizer": self.obs_normalizer.state_dict(),
            "action_normalizer": self.action_normalizer.state_dict(),
            "meta": dict(meta or {}),
        }

    def save(self, path: str | os.PathLike, meta: Mapping[str, Any] | None = None) -> Path:
        """Write the policy to ``path`` atomically (temporary file, then ``os.replace``); returns the path.

        ``meta`` (plain JSON-like values) is stored alongside, e.g. how the policy was trained.
        """
        path = Path(path)
        _save_atomic(self.checkpoint(meta), path)
        return path

    @classmethod
    def from_checkpoint(cls, state: Mapping[str, Any]) -> Policy:
        """Rebuild a policy of this class from :meth:`checkpoint` output."""
        if not isinstance(state, Mapping) or state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"not a dplearn policy checkpoint (expected format {CHECKPOINT_FORMAT!r})")
        if state.get("policy") != cls.name:
            raise ValueError(f"the checkpoint holds a {state['policy']!r} policy, not {cls.name!r}")
        policy = cls(cls.config_class.from_dict(state["config"]),
                     Normalizer.from_state_dict(state["obs_normalizer"]),
                     Normalizer.from_state_dict(state["action_normalizer"]))
        own = policy.state_dict()
        weights = state["state_dict"]
        missing = sorted(set(own) - set(weights))
        unexpected = sorted(set(weights) - set(own))
        if missing or unexpected:
            raise ValueError(f"checkpoint weights do not fit the {cls.name!r} policy: missing {missing}, "
                             f"unexpected {unexpected}")
        bad = [f"{k}: checkpoint {tuple(weights[k].shape)} vs policy {tuple(v.shape)}"
               for k, v in own.items() if tuple(weights[k].shape) != tuple(v.shape)]
        if bad:
            raise ValueError(f"checkpoint shapes do not match the {cls.name!r} policy built from its config: "
                             + "; ".join(bad))
        policy.load_state_dict(weights)
        policy.meta = dict(state.get("meta", {}))
        return policy.eval()

    @classmethod
    def load(cls, path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Policy:
        """Load a policy saved by :meth:`save` (``torch.load(..., weights_only=True)``)."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"path {str(path)!r} is not a file")
        state = torch.load(path, map_location=map_location, weights_only=True)
        if not isinstance(state, Mapping) or state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{str(path)!r} is not a dplearn policy checkpoint (expected format "
                             f"{CHECKPOINT_FORMAT!r})")
        if cls is Policy:
            from dplearn.policies.registry import policy_class

            return policy_class(state.get("policy", "?")).from_checkpoint(state)
        return cls.from_checkpoint(state)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, config={self.config}"
