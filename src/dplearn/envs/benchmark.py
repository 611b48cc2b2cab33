"""The numbers that define the Push-T benchmark (Chi et al., RSS 2023), in one place.

Introduced in chapter 5.

=====================  ==========================  ============================================
name                   value                       meaning
=====================  ==========================  ============================================
``WORKSPACE_SIZE``     512                         the workspace is the square [0, 512]²
``GOAL_POSE``          (256, 256, π/4)             the goal pose (x, y, angle) of the T
``SUCCESS_THRESHOLD``  0.95                        success (and termination) when coverage > it;
                                                   reward = clip(coverage / 0.95, 0, 1)
``MAX_STEPS``          300                         time limit of an episode, in control steps
``TEST_SEED``          100 000                     episode i of an evaluation starts from
                                                   ``reset(seed=TEST_SEED + i)``
``N_TEST_EPISODES``    50                          episodes of the paper's evaluation
``OBS_TYPES``          ``state``, ``keypoints``,   the observations the env offers (and a policy
                       ``pixels``,                 can read)
                       ``pixels_agent_pos``,
                       ``two-cameras``
``IMAGE_OBS_TYPES``    the last three              the observations that hold images
=====================  ==========================  ============================================

and the start of an episode, :func:`benchmark_start`: the state ``reset(seed=s)`` begins from.

The environment (:mod:`dplearn.envs.pusht`), its renderer, the evaluation protocol
(:mod:`dplearn.evaluation`) and the policies all read these names from here.
"""

from __future__ import annotations

import math

import numpy as np

from dplearn.validate import integer

__all__ = ["WORKSPACE_SIZE", "GOAL_POSE", "SUCCESS_THRESHOLD", "MAX_STEPS", "TEST_SEED",
           "N_TEST_EPISODES", "OBS_TYPES", "IMAGE_OBS_TYPES", "benchmark_start"]

WORKSPACE_SIZE = 512.0
GOAL_POSE: tuple[float, float, float] = (256.0, 256.0, math.pi / 4)
SUCCESS_THRESHOLD = 0.95
MAX_STEPS = 300
TEST_SEED = 100_000
N_TEST_EPISODES = 50
OBS_TYPES: tuple[str, ...] = ("state", "keypoints", "pixels", "pixels_agent_pos", "two-cameras")
IMAGE_OBS_TYPES: tuple[str, ...] = ("pixels", "pixels_agent_pos", "two-cameras")


def benchmark_start(seed: int) -> np.ndarray:
    """The benchmark's start state for ``seed``: (agent x, agent y, block x, block y, block angle).

    Diffusion Policy's Push-T env draws it with NumPy's legacy generator (its runner resets test
    episode i with seed 100000 + i)::

        rs = np.random.RandomState(seed)
        agent = rs.randint(50, 450), rs.randint(50, 450)
        block = rs.randint(100, 400), rs.randint(100, 400)
        angle = rs.randn() * 2π − π

    so seeds 100000–100049 are the paper's 50 test starts. The angle is not wrapped (the
    observation wraps it modulo 2π). Introduced in chapter 5.
    """
    rs = np.random.RandomState(integer("seed", seed, low=0, high=2**32 - 1))
    return np.array(
        [rs.randint(50, 450), rs.randint(50, 450), rs.randint(100, 400), rs.randint(100, 400),
         rs.randn() * 2 * np.pi - np.pi],
        dtype=np.float64,
    )
