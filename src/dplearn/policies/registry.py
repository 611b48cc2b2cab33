"""The policy registry: names → classes, ``make_policy`` and ``load_policy``.

Introduced in chapter 6.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from dplearn.policies.base import Policy, PolicyConfig
from dplearn.policies.categorical import CategoricalPolicy
from dplearn.policies.ibc import IBCPolicy
from dplearn.policies.lstm_gmm import LSTMGMMPolicy
from dplearn.policies.mixture import MixturePolicy
from dplearn.policies.regression import RegressionPolicy

__all__ = ["POLICIES", "register_policy", "policy_class", "make_config", "make_policy", "load_policy",
           "shipped_checkpoint_path", "load_shipped_policy"]

POLICIES: dict[str, type[Policy]] = {}


def register_policy(cls: type[Policy]) -> type[Policy]:
    """Add a :class:`~dplearn.policies.base.Policy` subclass under ``cls.name`` (usable as a decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Policy)):
        raise ValueError(f"cls must be a Policy subclass, got {cls!r}")
    if cls.name in POLICIES and POLICIES[cls.name] is not cls:
        raise ValueError(f"a policy named {cls.name!r} is already registered ({POLICIES[cls.name].__name__})")
    POLICIES[cls.name] = cls
    return cls


for _cls in (RegressionPolicy, CategoricalPolicy, MixturePolicy, LSTMGMMPolicy, IBCPolicy):
    register_policy(_cls)


def policy_class(name: str) -> type[Policy]:
    """The class registered as ``name``; unknown names raise ``ValueError`` listing the known ones."""
    if name not in POLICIES:
        raise ValueError(f"name must be one of the registered policies {sorted(POLICIES)}, got {name!r}")
    return POLICIES[name]


def make_config(name: str, config: PolicyConfig | Mapping[str, Any] | None = None,
                **overrides: Any) -> PolicyConfig:
    """The config of policy ``name``: its defaults, or ``config`` (a config or a mapping), with ``overrides``."""
    cls = policy_class(name).config_class
    if config is None:
        config = cls()
    elif isinstance(config, Mapping):
        config = cls.from_dict(config)
    elif type(config) is not cls:
        raise ValueError(f"config must be a {cls.__name__} (or a mapping of its fields) for the {name!r} "
                         f"policy, got {type(config).__name__}")
    if overrides:
        fields = set(config.to_dict())
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ValueError(f"{cls.__name__} has no fields {unknown}; known fields: {sorted(fields)}")
        config = replace(config, **overrides)
    return config


def make_policy(name: str, config: PolicyConfig | Mapping[str, Any] | None = None, obs_normalizer=None,
                action_normalizer=None, **overrides: Any) -> Policy:
    """Build the policy registered as ``name`` from ``config`` (see :func:`make_config`).

    Example: ``make_policy("mixture", obs_dim=2, n_components=2)``.

    Introduced in chapter 6.
    """
    return policy_class(name)(make_config(name, config, **overrides), obs_normalizer, action_normalizer)


def load_policy(path: str | os.PathLike, map_location: Any = "cpu") -> Policy:
    """Load any policy saved with :meth:`Policy.save` (the class is read from the checkpoint).

    Introduced in chapter 6.
    """
    return Policy.load(path, map_location=map_location)


def shipped_checkpoint_path(name: str) -> Path:
    """Where the shipped checkpoint ``NAME.pt`` of policy ``name`` lives: inside the installed package
    (``dplearn/_shipped/checkpoints``), else the repository's ``checkpoints/``.

    Raises ``FileNotFoundError`` naming the command that makes it when it is in neither place.

    Introduced in chapter 6.
    """
    policy_class(name)
    package_dir = Path(__file__).resolve().parent.parent  # .../dplearn
    candidates = [package_dir / "_shipped" / "checkpoints" / f"{name}.pt",
                  package_dir.parent.parent / "checkpoints" / f"{name}.pt"]  # src/dplearn -> repo root
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"the shipped checkpoint {name}.pt was not found (looked in the installed package's "
        f"_shipped/checkpoints and the repository's checkpoints/); make it with "
        f"`dplearn train --policy {name} --budget full --out checkpoints/{name}.pt`")


def load_shipped_policy(name: str, map_location: Any = "cpu") -> Policy:
    """The pretrained Push-T policy ``name`` that ships with dplearn (see :func:`shipped_checkpoint_path`).

    Introduced in chapter 6.
    """
    return load_policy(shipped_checkpoint_path(name), map_location=map_location)
