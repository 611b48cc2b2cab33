"""Environments: Push-T (the benchmark of Diffusion Policy) with its geometry and renderer.

The benchmark's numbers (workspace, goal pose, success threshold, time limit, test seeds,
observation types) live in :mod:`dplearn.envs.benchmark`.

Introduced in chapter 5. Importing this package registers ``dplearn/PushT-v0`` with gymnasium
(time limit 300 steps)::

    import gymnasium as gym
    import dplearn.envs
    env = gym.make("dplearn/PushT-v0", obs_type="state")
    env = gym.make("dplearn/PushT-v0", control="velocity")  # actions are displacements (chapter 10)
"""

from __future__ import annotations

import gymnasium as gym

from dplearn.envs.benchmark import (
    GOAL_POSE,
    IMAGE_OBS_TYPES,
    MAX_STEPS,
    N_TEST_EPISODES,
    OBS_TYPES,
    SUCCESS_THRESHOLD,
    TEST_SEED,
    WORKSPACE_SIZE,
    benchmark_start,
)
from dplearn.envs.geometry import (
    T_KEYPOINTS,
    T_VERTICES,
    coverage,
    t_keypoints,
    t_keypoints_batch,
    t_polygons,
)
from dplearn.envs.pusht import CONTROLS, PushTEnv
from dplearn.envs.render import CAMERAS, render_cameras, render_state, render_states, render_wrist

__all__ = [
    "PushTEnv",
    "CONTROLS",
    "coverage",
    "GOAL_POSE",
    "IMAGE_OBS_TYPES",
    "MAX_STEPS",
    "N_TEST_EPISODES",
    "OBS_TYPES",
    "SUCCESS_THRESHOLD",
    "TEST_SEED",
    "WORKSPACE_SIZE",
    "T_VERTICES",
    "t_polygons",
    "t_keypoints",
    "render_state",
    "render_states",
    "render_wrist",
    "render_cameras",
    "CAMERAS",
    "T_KEYPOINTS",
    "t_keypoints_batch",
    "benchmark_start",
    "PUSHT_ID",
]

PUSHT_ID = "dplearn/PushT-v0"

if PUSHT_ID not in gym.registry:
    gym.register(id=PUSHT_ID, entry_point="dplearn.envs.pusht:PushTEnv", max_episode_steps=MAX_STEPS)
