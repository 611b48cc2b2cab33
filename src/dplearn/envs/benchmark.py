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

How the paper reports a method (chapter 10): :data:`PAPER_PUSHT`, its Table 1 on Push-T, and
:func:`summarize_seeds`, its statistic — per training seed the best and the mean score of the last
checkpoints, then the mean and spread of each over the seeds.

The environment (:mod:`dplearn.envs.pusht`), its renderer, the evaluation protocol
(:mod:`dplearn.evaluation`) and the policies all read these names from here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dplearn.validate import integer

__all__ = ["WORKSPACE_SIZE", "GOAL_POSE", "SUCCESS_THRESHOLD", "MAX_STEPS", "TEST_SEED",
           "N_TEST_EPISODES", "OBS_TYPES", "IMAGE_OBS_TYPES", "benchmark_start", "PAPER_PUSHT",
           "SeedSummary", "summarize_seeds"]

WORKSPACE_SIZE = 512.0
GOAL_POSE: tuple[float, float, float] = (256.0, 256.0, math.pi / 4)
SUCCESS_THRESHOLD = 0.95
MAX_STEPS = 300
TEST_SEED = 100_000
N_TEST_EPISODES = 50
OBS_TYPES: tuple[str, ...] = ("state", "keypoints", "pixels", "pixels_agent_pos", "two-cameras")
IMAGE_OBS_TYPES: tuple[str, ...] = ("pixels", "pixels_agent_pos", "two-cameras")

#: Diffusion Policy's Table 1 on Push-T: ``PAPER_PUSHT[observation][policy] = (max, avg)``, the best
#: score and the mean score of the last checkpoints, each averaged over 3 training seeds. The paper's
#: "state" results read the keypoint observation, its "image" results the top view and the pusher's
#: position (``pixels_agent_pos``). BET has no ``dplearn`` policy; it is listed for completeness.
PAPER_PUSHT: dict[str, dict[str, tuple[float, float]]] = {
    "keypoints": {"lstm-gmm": (0.67, 0.61), "ibc": (0.90, 0.84), "bet": (0.79, 0.70),
                  "diffusion-cnn": (0.95, 0.91), "diffusion-transformer": (0.95, 0.79)},
    "pixels_agent_pos": {"lstm-gmm": (0.69, 0.54), "ibc": (0.75, 0.64), "diffusion-cnn": (0.91, 0.84),
                         "diffusion-transformer": (0.78, 0.66)},
}


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


@dataclass(frozen=True)
class SeedSummary:
    """One method's row of the paper's table: over ``n_seeds`` training seeds, the mean and the sample
    standard deviation of each seed's best score (``max``, ``max_sd``) and of each seed's mean score over
    its last checkpoints (``avg``, ``avg_sd``); the standard deviations are 0 for a single seed."""

    n_seeds: int
    max: float
    max_sd: float
    avg: float
    avg_sd: float


def summarize_seeds(scores: Sequence[Sequence[float]]) -> SeedSummary:
    """The paper's statistic for one method from ``scores[i][j]``, the score of checkpoint ``j`` (the
    last few of a run) of training seed ``i``; seeds may have different numbers of checkpoints.

    .. math::
        m_i = \\max_j s_{ij}, \\quad \\bar s_i = \\tfrac{1}{n_i} \\textstyle\\sum_j s_{ij}, \\qquad
        \\text{max} = \\operatorname{mean}_i m_i, \\quad \\text{avg} = \\operatorname{mean}_i \\bar s_i,

    with the sample standard deviation (``ddof = 1``) over seeds beside each.

    Introduced in chapter 10.
    """
    if isinstance(scores, (str, bytes)) or not isinstance(scores, Sequence) or len(scores) == 0:
        raise ValueError("scores must be a non-empty list (one entry per training seed) of lists of "
                         f"checkpoint scores, got {scores!r}")
    per_seed = []
    for i, row in enumerate(scores):
        values = np.asarray(row, dtype=np.float64).reshape(-1) if np.ndim(row) <= 1 else None
        if values is None or values.size == 0 or not np.all(np.isfinite(values)):
            raise ValueError(f"scores[{i}] must be a non-empty list of finite checkpoint scores, got {row!r}")
        per_seed.append(values)
    best = np.array([v.max() for v in per_seed])
    mean = np.array([v.mean() for v in per_seed])
    ddof = 1 if len(per_seed) > 1 else 0
    return SeedSummary(n_seeds=len(per_seed), max=float(best.mean()), max_sd=float(best.std(ddof=ddof)),
                       avg=float(mean.mean()), avg_sd=float(mean.std(ddof=ddof)))
