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
  ``ValueError`` naming the field; the config names the observation type the policy reads
  (``obs_type``) and what its actions mean (``control``: target positions or, chapter 10,
  displacements), so a saved policy can be evaluated with nothing else;
- works in normalised units: observations and actions are mapped to [−1, 1] by
  :class:`~dplearn.data.normalizer.Normalizer` s that are submodules of the policy (so
  ``policy.to(device)`` moves them). An observation is one tensor ``(B, T_o, obs_dim)`` or a dict
  of named tensors ``{key: (B, T_o, ...)}`` with one normaliser per key that needs one (images
  already lie in [0, 1] and have none);
- defines ``loss(batch)``, the scalar a training loop (:mod:`dplearn.training`) minimises, where
  ``batch`` holds raw observation windows and action windows ``(B, T_p, action_dim)``;
- answers ``act(obs_history)`` with the actions to execute, ``(T_a, action_dim)``, in raw units;
- saves itself atomically (``save(path)``) with its config and normalisers, and loads with
  ``torch.load(..., weights_only=True)`` (``Policy.load(path)`` / :func:`dplearn.policies.load_policy`).

Policy classes register themselves under their name with the :func:`register_policy` decorator.

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

from dplearn import seeding, validate
from dplearn.atomic import CheckpointError, describe_contents, torch_load, torch_save_atomic
from dplearn.data.normalizer import Normalizer
from dplearn.envs.benchmark import OBS_TYPES
from dplearn.envs.pusht import CONTROLS

__all__ = ["PolicyConfig", "MLPPolicyConfig", "Policy", "POLICIES", "register_policy", "split_batch",
           "CHECKPOINT_FORMAT", "OBS_TYPES", "CONTROLS"]

CHECKPOINT_FORMAT = "dplearn-policy/2"
_FORMAT_V1 = "dplearn-policy/1"


# ---------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------
def _check_int(config: Any, name: str, low: int) -> None:
    """Config field ``name`` as an ``int`` >= ``low`` (see :mod:`dplearn.validate`), stored back."""
    value = validate.integer(f"{type(config).__name__}.{name}", getattr(config, name), low=low)
    object.__setattr__(config, name, value)


def _check_float(config: Any, name: str, low: float, high: float = math.inf,
                 low_open: bool = True) -> None:
    """Config field ``name`` as a finite ``float`` in (``low``, ``high``] (``[low, ...`` with
    ``low_open=False``), stored back; NaN and ±inf are refused."""
    value = validate.finite_float(f"{type(config).__name__}.{name}", getattr(config, name), low=low,
                                  high=None if high == math.inf else high, low_open=low_open)
    object.__setattr__(config, name, value)


def _check_choice(config: Any, name: str, choices: tuple[str, ...]) -> None:
    """Config field ``name`` must be one of ``choices``."""
    validate.choice(f"{type(config).__name__}.{name}", getattr(config, name), choices)


@dataclass
class PolicyConfig:
    """What every policy needs to know; subclasses add their own fields.

    ===============  ==========================================================================
    obs_dim          width of one (vector) observation (5 for Push-T states, 20 for keypoints,
                     2 for the toy task)
    action_dim       width of one action (2: a target or a displacement in the plane)
    obs_horizon      :math:`T_o`, how many past observations the policy sees (>= 1)
    pred_horizon     :math:`T_p`, how many actions it predicts (>= obs_horizon − 1 + action_horizon)
    action_horizon   :math:`T_a`, how many of them are executed before it is asked again (>= 1)
    obs_type         the observation the policy reads (one of :data:`OBS_TYPES`; ``"state"``)
    control          what its actions are (one of :data:`CONTROLS`): ``"position"`` (default),
                     target positions of the pusher, the benchmark's; ``"velocity"``
                     (chapter 10), displacements ``a_t − p_t`` from the pusher's position,
                     trained on :func:`dplearn.data.velocity_actions` and evaluated in a
                     ``PushTEnv(control="velocity")``. Checkpoints saved before it existed
                     load as ``"position"``.
    ===============  ==========================================================================

    Introduced in chapter 6 (``control``: chapter 10).
    """

    obs_dim: int = 5
    action_dim: int = 2
    obs_horizon: int = 2
    pred_horizon: int = 2
    action_horizon: int = 1
    obs_type: str = "state"
    control: str = "position"

    def __post_init__(self) -> None:
        for name in ("obs_dim", "action_dim", "obs_horizon", "pred_horizon", "action_horizon"):
            _check_int(self, name, 1)
        _check_choice(self, "obs_type", OBS_TYPES)
        _check_choice(self, "control", CONTROLS)
        if self.obs_horizon - 1 + self.action_horizon > self.pred_horizon:
            raise ValueError(
                f"{type(self).__name__}: pred_horizon must be >= obs_horizon - 1 + action_horizon = "
                f"{self.obs_horizon - 1 + self.action_horizon}, got {self.pred_horizon}")

    def to_dict(self) -> dict[str, Any]:
        """Plain ``name -> value`` (ints, floats, strings, bools, tuples), safe for ``weights_only`` loading."""
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


@dataclass
class MLPPolicyConfig(PolicyConfig):
    """:class:`PolicyConfig` plus the width and depth of an MLP (the Part II policies).

    ===============  ==========================================================================
    hidden           width of the hidden layers (>= 1)
    n_layers         number of hidden layers (>= 1)
    ===============  ==========================================================================

    Introduced in chapter 6.
    """

    hidden: int = 256
    n_layers: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("hidden", "n_layers"):
            _check_int(self, name, 1)


# ---------------------------------------------------------------------------------------------
# small building blocks
# ---------------------------------------------------------------------------------------------
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
# the registry
# ---------------------------------------------------------------------------------------------
#: Registered policy classes by name (filled by :func:`register_policy`).
POLICIES: dict[str, type[Policy]] = {}


def register_policy(cls: type[Policy]) -> type[Policy]:
    """Class decorator: add a :class:`Policy` subclass to :data:`POLICIES` under ``cls.name``.

    Introduced in chapter 6.
    """
    if not (isinstance(cls, type) and issubclass(cls, Policy)):
        raise ValueError(f"cls must be a Policy subclass, got {cls!r}")
    if cls.name in POLICIES and POLICIES[cls.name] is not cls:
        raise ValueError(f"a policy named {cls.name!r} is already registered ({POLICIES[cls.name].__name__})")
    POLICIES[cls.name] = cls
    return cls


def policy_class(name: str) -> type[Policy]:
    """The class registered as ``name``; unknown names raise ``ValueError`` listing the known ones."""
    if name not in POLICIES:
        raise ValueError(f"name must be one of the registered policies {sorted(POLICIES)}, got {name!r}")
    return POLICIES[name]


ObsNormalizer = Normalizer | Mapping[str, Normalizer]


# ---------------------------------------------------------------------------------------------
# the policy
# ---------------------------------------------------------------------------------------------
class Policy(nn.Module):
    """Base class of every policy (see the module docstring for the contract).

    Subclasses set ``name`` and ``config_class``, decorate themselves with :func:`register_policy`
    and implement

    - ``compute_loss(obs, action)`` on *normalised* tensors: ``obs`` ``(B, T_o, obs_dim)`` (or a
      dict of ``(B, T_o, ...)``), ``action`` ``(B, T_p, action_dim)`` → scalar;
    - ``sample(obs, generator)`` on normalised ``obs`` → normalised action chunk
      ``(B, T_p, action_dim)``.

    Parameters
    ----------
    config:
        The policy's config (an instance of ``config_class``, or a mapping of its fields).
    obs_normalizer:
        A :class:`~dplearn.data.Normalizer` of vector observations, or a mapping ``key ->
        Normalizer`` for dict observations (keys without one pass through); identity when omitted.
    action_normalizer:
        The action normaliser; identity when omitted. Set both later with :meth:`set_normalizers`
        (the training glue fits them on the demonstrations).

    Introduced in chapter 6.
    """

    name: ClassVar[str] = "policy"
    config_class: ClassVar[type[PolicyConfig]] = PolicyConfig
    #: Each row of a batch is planned on its own (no state, no coupling between episodes), so the
    #: evaluation loop may call the policy on the episodes still running only.
    batch_independent: ClassVar[bool] = True
    #: ``policy(obs, generator)`` draws its randomness from ``generator`` (the evaluation loop seeds one).
    accepts_generator: ClassVar[bool] = True

    def __init__(self, config: PolicyConfig | Mapping[str, Any] | None = None,
                 obs_normalizer: ObsNormalizer | None = None,
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
        self.obs_normalizer: nn.Module = _identity_normalizer(config.obs_dim)
        self.action_normalizer: Normalizer = _identity_normalizer(config.action_dim)
        self.set_normalizers(obs_normalizer, action_normalizer)

    # ---- normalisation -------------------------------------------------------------------------
    def set_normalizers(self, obs_normalizer: ObsNormalizer | None = None,
                        action_normalizer: Normalizer | None = None) -> None:
        """Replace the observation and/or action normaliser (dimensions must match the config).

        ``obs_normalizer`` is one :class:`~dplearn.data.Normalizer` (vector observations of width
        ``obs_dim``) or a mapping ``key -> Normalizer`` (dict observations).
        """
        if obs_normalizer is not None:
            if isinstance(obs_normalizer, Mapping) and not isinstance(obs_normalizer, Normalizer):
                bad = [k for k, v in obs_normalizer.items() if not isinstance(v, Normalizer)]
                if bad or not obs_normalizer:
                    raise ValueError("obs_normalizer must map observation keys to dplearn.data.Normalizer "
                                     f"objects; bad keys {bad}" if bad else "obs_normalizer must not be empty")
                obs_normalizer = nn.ModuleDict(dict(obs_normalizer))
            elif not isinstance(obs_normalizer, Normalizer):
                raise ValueError("obs_normalizer must be a dplearn.data.Normalizer or a mapping of them, got "
                                 f"{type(obs_normalizer).__name__}")
            elif obs_normalizer.dim != self.config.obs_dim:
                raise ValueError(f"obs_normalizer has dimension {obs_normalizer.dim}, but the config says "
                                 f"{self.config.obs_dim}")
            self.obs_normalizer = obs_normalizer
        if action_normalizer is not None:
            if not isinstance(action_normalizer, Normalizer):
                raise ValueError(f"action_normalizer must be a dplearn.data.Normalizer, got "
                                 f"{type(action_normalizer).__name__}")
            if action_normalizer.dim != self.config.action_dim:
                raise ValueError(f"action_normalizer has dimension {action_normalizer.dim}, but the config says "
                                 f"{self.config.action_dim}")
            self.action_normalizer = action_normalizer

    def normalize_obs(self, obs: Any) -> Any:
        """Raw observations (a tensor, or a dict of tensors) → normalised, same structure."""
        if isinstance(obs, Mapping):
            norms = self.obs_normalizer if isinstance(self.obs_normalizer, nn.ModuleDict) else {}
            return {k: norms[k].normalize(v) if k in norms else v for k, v in obs.items()}
        if isinstance(self.obs_normalizer, nn.ModuleDict):
            raise ValueError(f"this policy reads dict observations with keys {sorted(self.obs_normalizer)}, "
                             "got a single tensor")
        return self.obs_normalizer.normalize(obs)

    @property
    def device(self) -> torch.device:
        """Where the policy's weights live."""
        return next(self.parameters()).device

    @property
    def obs_type(self) -> str:
        """The observation the policy reads (``config.obs_type``), for the evaluation loop."""
        return self.config.obs_type

    @property
    def control(self) -> str:
        """What the policy's actions are (``config.control``): ``"position"`` targets or ``"velocity"``
        displacements; the evaluation loop builds its environments with it. Introduced in chapter 10."""
        return self.config.control

    def _check_obs(self, obs: Any, what: str = "obs") -> int:
        """Check the shape of an observation batch; returns its batch size B."""
        c = self.config
        if isinstance(obs, Mapping):
            sizes = set()
            for k, v in obs.items():
                if not isinstance(v, torch.Tensor) or v.ndim < 3 or v.shape[1] != c.obs_horizon:
                    shape = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
                    raise ValueError(f"{what}[{k!r}] must have shape (B, {c.obs_horizon}, ...) = (batch, "
                                     f"obs_horizon, ...), got {shape}")
                sizes.add(v.shape[0])
            if len(sizes) != 1:
                raise ValueError(f"{what} entries have different batch sizes {sorted(sizes)}")
            return sizes.pop()
        if obs.ndim != 3 or obs.shape[1:] != (c.obs_horizon, c.obs_dim):
            raise ValueError(f"{what} must have shape (B, {c.obs_horizon}, {c.obs_dim}) = (batch, "
                             f"obs_horizon, obs_dim), got {tuple(obs.shape)}")
        return obs.shape[0]

    def _as_obs_tensor(self, obs: Any) -> Any:
        """Observations (arrays, tensors, or a dict of them) as float32 tensors on the policy's device."""
        if isinstance(obs, Mapping):
            return {k: self._as_obs_tensor(v) for k, v in obs.items()}
        if isinstance(obs, torch.Tensor):
            return obs.to(self.device, torch.float32, non_blocking=True)
        return torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)

    def normalize_batch(self, batch: Any) -> tuple[Any, torch.Tensor]:
        """Normalised ``(obs, action (B, T_p, action_dim))`` of a raw batch."""
        obs, action = split_batch(batch)
        c = self.config
        obs = self._as_obs_tensor(obs)
        action = torch.as_tensor(action, dtype=torch.float32, device=self.device)
        b = self._check_obs(obs, "batch obs")
        if action.ndim != 3 or action.shape[1:] != (c.pred_horizon, c.action_dim):
            raise ValueError(f"batch action must have shape (B, {c.pred_horizon}, {c.action_dim}) = "
                             f"(batch, pred_horizon, action_dim), got {tuple(action.shape)}")
        if b != action.shape[0]:
            raise ValueError(f"batch obs and action have different batch sizes {b} and {action.shape[0]}")
        return self.normalize_obs(obs), self.action_normalizer.normalize(action)

    # ---- what subclasses implement -------------------------------------------------------------
    def compute_loss(self, obs: Any, action: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sample(self, obs: Any, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    # ---- the public interface ------------------------------------------------------------------
    def loss(self, batch: Any) -> torch.Tensor:
        """The training loss of a raw batch (``{"obs": ..., "action": (B, T_p, action_dim)}`` or a
        pair); normalises, then calls :meth:`compute_loss`."""
        obs, action = self.normalize_batch(batch)
        return self.compute_loss(obs, action)

    @torch.no_grad()
    def predict_chunk(self, obs_history: Any, generator: torch.Generator | None = None) -> torch.Tensor:
        """The whole predicted chunk in raw units: ``(B, T_p, action_dim)`` for a batch of histories
        ``(B, T_o, obs_dim)`` (or a dict of ``(B, T_o, ...)``)."""
        obs = self._as_obs_tensor(obs_history)
        self._check_obs(obs, "obs_history")
        seeding.draw_device(generator, self.device)  # the rule of dplearn.seeding, for every policy
        was_training = self.training
        self.eval()
        try:
            chunk = self.sample(self.normalize_obs(obs), generator)
        finally:
            self.train(was_training)
        return self.action_normalizer.unnormalize(chunk)

    def act(self, obs_history: Any, generator: torch.Generator | None = None) -> np.ndarray:
        """The actions to execute now, in raw units.

        ``obs_history`` ``(T_o, obs_dim)`` → ``(T_a, action_dim)``; a batch ``(B, T_o, obs_dim)`` →
        ``(B, T_a, action_dim)`` (dict observations always come batched: ``{key: (B, T_o, ...)}``).
        Of the predicted chunk
        :math:`a_{t-T_o+1..t-T_o+T_p}` these are :math:`a_t, \\dots, a_{t+T_a-1}`. ``generator``
        makes stochastic policies reproducible.
        """
        c = self.config
        if isinstance(obs_history, Mapping):  # dict observations come batched: {key: (B, T_o, ...)}
            x, single = obs_history, False
        else:
            x = obs_history.detach().cpu().numpy() if isinstance(obs_history, torch.Tensor) else np.asarray(
                obs_history, dtype=np.float32)
            single = x.ndim == 2
            if single:
                x = x[None]
            if x.ndim != 3 or x.shape[1:] != (c.obs_horizon, c.obs_dim):
                raise ValueError(f"obs_history must have shape ({c.obs_horizon}, {c.obs_dim}) = (obs_horizon, "
                                 f"obs_dim) or (B, {c.obs_horizon}, {c.obs_dim}), got {x.shape}")
        chunk = self.predict_chunk(x, generator)
        start = c.obs_horizon - 1
        out = chunk[:, start:start + c.action_horizon].float().cpu().numpy()
        return out[0] if single else out

    def forward(self, obs_history: Any, generator: torch.Generator | None = None) -> np.ndarray:
        """``policy(obs_history)`` is :meth:`act`: the chunk protocol of :func:`dplearn.evaluation.evaluate`
        (a batch of histories in, the actions to execute ``(B, T_a, action_dim)`` out)."""
        return self.act(obs_history, generator)

    @property
    def obs_horizon(self) -> int:
        """:math:`T_o`, how many observations :meth:`act` expects (read by the evaluation loop)."""
        return self.config.obs_horizon

    def reset(self, seeds: Any = None) -> None:
        """Forget any state kept between calls of :meth:`act` (none: these policies are stateless)."""

    # ---- checkpoints ---------------------------------------------------------------------------
    def _obs_normalizer_state(self) -> dict[str, Any]:
        if isinstance(self.obs_normalizer, nn.ModuleDict):
            return {"keys": {k: n.state_dict() for k, n in self.obs_normalizer.items()}}
        return self.obs_normalizer.state_dict()

    def checkpoint(self, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Everything :meth:`load` needs, as plain types and tensors (``weights_only``-safe)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "policy": self.name,
            "config": self.config.to_dict(),
            "state_dict": {k: v.detach().cpu().clone() for k, v in self.state_dict().items()},
            "obs_normalizer": self._obs_normalizer_state(),
            "action_normalizer": self.action_normalizer.state_dict(),
            "meta": dict(meta or {}),
        }

    def save(self, path: str | os.PathLike, meta: Mapping[str, Any] | None = None,
             dtype: torch.dtype | None = None) -> Path:
        """Write the policy to ``path`` atomically (temporary file, then ``os.replace``); returns the path.

        ``meta`` (plain JSON-like values) is stored alongside, e.g. how the policy was trained.
        ``dtype=torch.float16`` stores the float32 weights in half precision (half the file;
        :meth:`load` restores float32); normalisers always stay float64.
        """
        if dtype is not None and dtype not in (torch.float16, torch.bfloat16, torch.float32):
            raise ValueError(f"dtype must be None, torch.float16, torch.bfloat16 or torch.float32, got {dtype!r}")
        state = self.checkpoint(meta)
        if dtype is not None:
            state["state_dict"] = {k: v.to(dtype) if v.dtype == torch.float32 else v
                                   for k, v in state["state_dict"].items()}
            state["weights_dtype"] = str(dtype).removeprefix("torch.")
        path = Path(path)
        _save_atomic(state, path)
        return path

    @staticmethod
    def _upgrade(state: Mapping[str, Any]) -> Mapping[str, Any]:
        """A checkpoint of the first format (Part II, before observation types and normalisers
        became part of the weights) in the current format: ``obs_type`` is ``"state"`` and the
        normalisers' numbers join the state dict. Weights and meta are unchanged."""
        if not isinstance(state, Mapping) or state.get("format") != _FORMAT_V1:
            return state
        state = dict(state)
        state["format"] = CHECKPOINT_FORMAT
        if isinstance(state.get("config"), Mapping):  # a missing entry stays missing (refused later)
            state["config"] = {"obs_type": "state", **state["config"]}
        if isinstance(state.get("state_dict"), Mapping):
            weights = dict(state["state_dict"])
            for attr in ("obs_normalizer", "action_normalizer"):
                norm = state.get(attr)
                if isinstance(norm, Mapping):
                    for key in ("data_min", "data_max", "range_eps"):
                        if key in norm:
                            weights[f"{attr}.{key}"] = torch.as_tensor(norm[key], dtype=torch.float64)
            state["state_dict"] = weights
        return state

    @classmethod
    def from_checkpoint(cls, state: Mapping[str, Any]) -> Policy:
        """Rebuild a policy of this class from :meth:`checkpoint` output (either format)."""
        state = cls._upgrade(state)
        if not isinstance(state, Mapping) or state.get("format") != CHECKPOINT_FORMAT:
            found = describe_contents(state)
            raise ValueError(f"not a dplearn policy checkpoint of format {CHECKPOINT_FORMAT!r} (found {found})")
        if state.get("policy") != cls.name:
            raise ValueError(f"the checkpoint holds a {state.get('policy')!r} policy, not {cls.name!r}")
        for key in ("config", "state_dict", "obs_normalizer", "action_normalizer"):
            if key not in state:
                raise ValueError(f"the checkpoint has no {key!r} entry (truncated or not made by dplearn)")
        obs_state = state["obs_normalizer"]
        try:
            if isinstance(obs_state, Mapping) and "keys" in obs_state:
                obs_norm: ObsNormalizer = {k: Normalizer.from_state_dict(v) for k, v in obs_state["keys"].items()}
            else:
                obs_norm = Normalizer.from_state_dict(obs_state)
        except (ValueError, AttributeError, TypeError) as exc:
            raise ValueError(f"the checkpoint's obs_normalizer entry is unusable: {exc}") from None
        try:
            action_norm = Normalizer.from_state_dict(state["action_normalizer"])
        except (ValueError, AttributeError, TypeError) as exc:
            raise ValueError(f"the checkpoint's action_normalizer entry is unusable: {exc}") from None
        policy = cls(cls.config_class.from_dict(state["config"]), obs_norm, action_norm)
        own = policy.state_dict()
        weights = state["state_dict"]
        if not isinstance(weights, Mapping) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
            raise ValueError("the checkpoint's state_dict is not a mapping of tensors")
        missing = sorted(set(own) - set(weights))
        unexpected = sorted(set(weights) - set(own))
        if missing or unexpected:
            raise ValueError(f"checkpoint weights do not fit the {cls.name!r} policy: missing {missing[:5]}"
                             f"{' ...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
                             f"{' ...' if len(unexpected) > 5 else ''}")
        bad = [f"{k}: checkpoint {tuple(weights[k].shape)} vs policy {tuple(v.shape)}"
               for k, v in own.items() if tuple(weights[k].shape) != tuple(v.shape)]
        if bad:
            absent = sorted({f.name for f in dataclasses.fields(cls.config_class)} - set(state["config"]))
            why = f" (its config has no {absent}, so their defaults were used)" if absent else ""
            raise ValueError(f"checkpoint shapes do not match the {cls.name!r} policy built from its config{why}: "
                             + "; ".join(bad[:3]) + (f"; and {len(bad) - 3} more" if len(bad) > 3 else ""))
        nonfinite = [k for k, v in weights.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
        if nonfinite:
            raise ValueError(f"the checkpoint's weights contain NaN or infinite values: {nonfinite[:5]}")
        policy.load_state_dict({k: v.to(own[k].dtype) for k, v in weights.items()})
        policy.meta = dict(state.get("meta", {}))
        return policy.eval()

    @classmethod
    def load(cls, path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Policy:
        """Load a policy saved by :meth:`save` (``torch.load(..., weights_only=True)``).

        An empty, truncated or foreign file, or one with a missing entry or non-finite weights, raises
        :class:`~dplearn.atomic.CheckpointError` (a ``ValueError``) naming the file and the problem.
        """
        path = Path(path)
        state = torch_load(path, "policy checkpoint", map_location=map_location)
        state = cls._upgrade(state)
        if not isinstance(state, Mapping) or state.get("format") != CHECKPOINT_FORMAT:
            found = describe_contents(state)
            hint = ""
            if isinstance(state, Mapping) and str(state.get("format")).startswith("dplearn-policy/"):
                command = (state.get("meta") or {}).get("command")
                hint = "; it was written by another dplearn version, remake it" + (
                    f" with `{command}`" if command else "")
            raise CheckpointError(f"{str(path)!r} is not a dplearn policy checkpoint of format "
                                  f"{CHECKPOINT_FORMAT!r} (found {found}){hint}")
        try:
            if cls is Policy and "policy" not in state:
                raise ValueError("the checkpoint has no 'policy' entry (truncated or not made by dplearn)")
            klass = cls if cls is not Policy else policy_class(state["policy"])
            return klass.from_checkpoint(state)
        except ValueError as exc:
            raise CheckpointError(f"{str(path)!r}: {exc}") from None

    def extra_repr(self) -> str:
        return f"name={self.name!r}, config={self.config}"
