"""Position and velocity control: the same demonstrations with actions as displacements.

Introduced in chapter 10.

The Push-T demonstrations store what the expert commanded, a target position ``a_i`` for the pusher
(``control="position"``, the benchmark's). Diffusion Policy's "position vs velocity control"
ablation trains on robomimic's *delta* actions instead: the displacement from where the pusher was
observed to the target,

.. math::

    d_i = a_i - p_i, \\qquad p_i = \\text{state}[i, :2] \\text{ (the pusher's observed position)},

which :class:`~dplearn.envs.PushTEnv` with ``control="velocity"`` turns back into the target
``p_i + d_i`` at every step. :func:`velocity_actions` makes that data set; ``meta["control"]``
records which kind of action a :class:`~dplearn.data.Demos` holds (absent means ``"position"``).
"""

from __future__ import annotations

import numpy as np

from dplearn.data.demos import Demos
from dplearn.envs.pusht import CONTROLS

__all__ = ["CONTROLS", "demos_control", "velocity_actions"]


def demos_control(demos: Demos) -> str:
    """What the actions of ``demos`` are: ``meta["control"]``, ``"position"`` when absent
    (every data set made before chapter 10). Introduced in chapter 10."""
    if not isinstance(demos, Demos):
        raise ValueError(f"demos must be a dplearn.data.Demos, got {type(demos).__name__}")
    control = demos.meta.get("control", "position")
    if control not in CONTROLS:
        raise ValueError(f"demos.meta['control'] must be one of {list(CONTROLS)}, got {control!r}")
    return control


def velocity_actions(demos: Demos) -> Demos:
    """The same demonstrations with velocity (delta) actions: ``action[i] − state[i, :2]``.

    Parameters
    ----------
    demos : Demos
        Push-T demonstrations with target-position actions: ``state`` (N, S ≥ 2) whose first two
        columns are the pusher's position, ``action`` (N, 2).

    Returns
    -------
    Demos
        A new set (the input is not changed) with the same ``state`` and ``episode_ends`` and
        ``action[i] = action[i] − state[i, :2]`` (N, 2) float32, the displacement from the observed
        pusher to the target; ``meta`` is a copy with ``meta["control"] = "velocity"``.

    Data that already holds velocity actions (``meta["control"] == "velocity"``) is refused with a
    ``ValueError``: converting twice would subtract the position twice.

    Introduced in chapter 10.
    """
    if demos_control(demos) == "velocity":
        raise ValueError("demos already hold velocity actions (meta['control'] == 'velocity'); "
                         "velocity_actions converts target positions only")
    if demos.action.shape[1] != 2 or demos.state.shape[1] < 2:
        raise ValueError(f"demos must have action (N, 2) target positions and state (N, S >= 2) starting with the "
                         f"pusher's position, got action {demos.action.shape} and state {demos.state.shape}")
    delta = demos.action - demos.state[:, :2]  # float32 - float32: the exact difference, rounded once
    meta = {**demos.meta, "control": "velocity"}
    return Demos(state=demos.state.copy(), action=delta.astype(np.float32), episode_ends=demos.episode_ends.copy(),
                 meta=meta)
