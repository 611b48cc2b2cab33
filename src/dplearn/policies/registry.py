"""The policy registry: names → classes, ``make_policy`` and ``load_policy``.

Introduced in chapter 6.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

# Importing the policy modules registers their classes (each is decorated with register_policy).
from dplearn.policies import (  # noqa: F401
    categorical,
    diffusion,
    diffusion_transformer,
    ibc,
    lstm_gmm,
    mixture,
    regression,
)
from dplearn.policies.base import POLICIES, Policy, PolicyConfig, policy_class, register_policy
from dplearn.shipped import shipped_path

__all__ = ["POLICIES", "register_policy", "policy_class", "make_config", "make_policy", "load_policy",
           "shipped_checkpoint_path", "load_shipped_policy"]


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


def shipped_checkpoint_path(name: str, obs_type: str = "keypoints") -> Path:
    """Where the shipped checkpoint ``NAME-OBS.pt`` of policy ``name`` trained on ``obs_type`` lives:
    inside the installed package (``dplearn/_shipped/checkpoints``), else the repository's
    ``checkpoints/``.

    Raises ``FileNotFoundError`` naming the command that makes it when it is in neither place.

    Introduced in chapter 6.
    """
    policy_class(name)
    file = f"{name}-{obs_type}.pt"
    try:
        return shipped_path("checkpoints", file)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"{exc}; make it with "
            f"`dplearn train --policy {name} --obs {obs_type} --budget full --out checkpoints/{file}`") from None


def load_shipped_policy(name: str, obs_type: str = "keypoints", map_location: Any = "cpu") -> Policy:
    """The pretrained Push-T policy ``name`` (trained on ``obs_type``) that ships with dplearn
    (see :func:`shipped_checkpoint_path`).

    Introduced in chapter 6.
    """
    return load_policy(shipped_checkpoint_path(name, obs_type), map_location=map_location)
