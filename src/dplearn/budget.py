"""Budget tiers: how much compute a chapter may spend.

Every loop length, dataset size and model width that costs time is read from here, never written
as a literal in a notebook. The tier comes from the environment variable ``DPLEARN_BUDGET``:

========  ==========================================================================
``quick`` tests and CI: each notebook runs top to bottom in about a minute on 2 CPU cores
``book``  the website build on a 2-core CPU: each chapter within about 5 minutes
``full``  real training on a GPU (Colab or your own); the default when CUDA is available
========  ==========================================================================

Usage in a chapter::

    import dplearn
    B = dplearn.budget("03_ddpm")   # the settings of chapter 3 in the current tier
    B.tier, B.train_steps

Each chapter's settings live in :data:`SETTINGS` below as ``name: (quick, book, full)``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

from dplearn.validate import choice

TIERS: tuple[str, ...] = ("quick", "book", "full")
ENV_VAR = "DPLEARN_BUDGET"

# ---------------------------------------------------------------------------------------------
# Per-chapter settings: name -> (quick, book, full). One block per chapter.
# ---------------------------------------------------------------------------------------------
SETTINGS: dict[str, dict[str, tuple[Any, Any, Any]]] = {
    # --- chapter 1: KL divergence ---
    "01_kl_divergence": {
        "n_random_pairs": (2_000, 20_000, 200_000),  # random (p, q) pairs in the Gibbs histogram
        "mc_samples": (20_000, 200_000, 2_000_000),  # largest Monte Carlo sample in convergence plots
        "grid_points": (1_001, 4_001, 8_001),  # quadrature grid for 1-D continuous KLs
        "landscape_size": (41, 121, 241),  # (mean, std) grid of the KL landscapes
        "fit_steps": (300, 1_500, 3_000),  # Adam steps fitting a Gaussian by forward/reverse KL
        "n_data": (5_000, 50_000, 200_000),  # samples of the bimodal data for maximum likelihood
        "elbo_samples": (2_000, 20_000, 200_000),  # Monte Carlo samples of the ELBO
    },
    # --- chapter 2: the forward process ---
    "02_forward_process": {
        "n_samples": (20_000, 100_000, 200_000),    # samples per distribution comparison
        "cloud_points": (1_000, 3_000, 5_000),      # points in the 2-D T-shaped cloud
        "timing_batch": (256, 1_024, 4_096),        # batch size when timing O(1) vs O(t)
        "timing_repeats": (3, 10, 30),              # repetitions per timing (best of)
        "anim_frames": (12, 40, 60),                # frames of the trajectory animation
    },
    # --- chapter 3: DDPM ---
    "03_ddpm": {
        "diffusion_steps": (1_000, 1_000, 1_000),  # T: steps of the forward process (and of sampling)
        "n_train": (4_000, 20_000, 100_000),  # training points drawn from the ring of 8 Gaussians
        "train_steps": (800, 5_000, 10_000),  # optimiser steps of the ring denoiser
        "batch_size": (256, 512, 1_024),  # points per optimiser step
        "hidden": (64, 128, 128),  # width of the MLP denoiser
        "n_layers": (2, 3, 3),  # residual blocks of the MLP denoiser
        "t_train_steps": (400, 3_000, 8_000),  # optimiser steps of the T-shape denoiser
        "n_samples": (500, 2_000, 5_000),  # generated points per measurement (sampled on the CPU)
        "n_heldout": (300, 2_000, 5_000),  # held-out points for the bound in nats
        "bound_draws": (8, 16, 32),  # draws of x_t per point for the first terms of the bound
        "n_check": (128, 256, 256),  # points sampled twice to compare scratch and library samplers
        "n_reference_sets": (3, 5, 5),  # fresh data sets the energy distances are measured against
        "anim_frames": (8, 24, 24),  # frames of the reverse-process animation
    },
    # --- chapter 4: DDIM and scores ---
    "04_ddim_and_scores": {
        "diffusion_steps": (100, 100, 100),  # T: steps of the forward process (Diffusion Policy's 100)
        "n_train": (4_000, 20_000, 100_000),  # training points drawn from the ring of 8 Gaussians
        "train_steps": (800, 5_000, 10_000),  # optimiser steps of the ring denoiser
        "batch_size": (256, 512, 1_024),  # points per optimiser step
        "hidden": (64, 128, 128),  # width of the MLP denoisers
        "n_layers": (2, 3, 3),  # residual blocks of the MLP denoisers
        "n_samples": (400, 2_000, 5_000),  # generated points per sampler in the quality curve
        "n_repeats": (1, 3, 5),  # repetitions of each sampler run (spread of the measurements)
        "grid_size": (11, 21, 31),  # arrows per axis in the score quiver plots
        "cond_train_steps": (800, 6_000, 15_000),  # optimiser steps of the angle-conditioned denoiser
        "n_cond_samples": (300, 1_500, 3_000),  # generated points per angle
    },
    # --- chapter 5: Push-T ---
    "05_pusht": {
        "n_eval_episodes": (10, 50, 50),  # episodes per policy in the evaluation protocol
        "n_routes": (4, 8, 8),  # expert seeds run from one start (multimodality figure)
        "anim_frames": (30, 80, 120),  # frames of the demonstration animation
        "mc_points": (50_000, 400_000, 2_000_000),  # Monte Carlo points for coverage from scratch
    },
    # --- chapter 6: explicit policies ---
    "06_explicit_policies": {
        "toy_demos": (100, 400, 1_000),  # demonstrations of the around-the-obstacle task
        "toy_steps": (300, 3_000, 10_000),  # training steps of each toy policy
        "toy_hidden": (64, 128, 256),  # width of the toy policies' hidden layers
        "toy_rollouts": (100, 500, 2_000),  # episodes per toy policy when measuring collisions
        "bins_max_log2": (4, 8, 9),  # precision sweep: K = 4, 8, ..., 2**bins_max_log2 bins
        "bins_steps": (200, 3_000, 10_000),  # training steps of each policy in the precision sweep
        "pusht_episodes": (3, 50, 50),  # Push-T evaluation episodes per shipped policy
    },
    # --- chapter 7: implicit policies ---
    "07_implicit_policies": {
        "toy_demos": (100, 400, 1_000),  # demonstrations of the around-the-obstacle task
        "toy_steps": (300, 1_500, 8_000),  # training steps of the toy energy model
        "toy_hidden": (64, 64, 128),  # width of the energy MLPs on the toy task
        "toy_rollouts": (50, 200, 1_000),  # episodes of the toy IBC policy
        "dfo_samples": (256, 1_024, 4_096),  # DFO population on the toy task
        "grid_size": (41, 121, 201),  # action grid of the energy-landscape plots (points per axis)
        "quality_states": (50, 300, 1_000),  # held-out states scoring each energy of the sweep
        "negatives_max_log2": (5, 9, 10),  # negative-sampling sweep: N = 8, 32, ... <= 2**negatives_max_log2
        "sweep_steps": (200, 1_200, 5_000),  # training steps of each energy in the sweep
        "sweep_rollouts": (30, 100, 500),  # toy episodes per energy in the sweep
        "pusht_episodes": (3, 50, 50),  # Push-T episodes of a shipped policy without its own recorded run
        "ibc_live_episodes": (2, 10, 50),  # first test starts the shipped IBC pushes on live
        "fig_rollouts": (6, 24, 24),  # rollouts per policy from the multimodal state (closing figure)
        "fig_steps": (12, 16, 16),  # control steps of each of those rollouts
    },
    # --- chapter 8: Diffusion Policy on states ---
    "08_diffusion_policy": {
        "train_steps": (40, 300, 30_000),  # optimiser steps of the chapter's own policy (recipe of the tier)
        "scratch_steps": (5, 20, 50),  # steps of the from-scratch training loop (compared with the library)
        "own_episodes": (2, 20, 50),  # test starts the chapter's own policy is scored on
        "teleop_episodes": (2, 20, 20),  # episodes recorded through the teleop controller (exercise)
        "test_episodes": (3, 50, 50),  # test starts of the comparison tables (the paper's 50)
        "route_rollouts": (3, 10, 20),  # rollouts from the two-route start, per policy
        "route_steps": (30, 80, 120),  # control steps of each of those rollouts
        "n_chunks": (8, 20, 20),  # action chunks sampled from one observation (multimodality figure)
        "speed_repeats": (2, 7, 15),  # chunks timed per sampler (median)
        "anim_steps": (20, 150, 300),  # control steps shown in the animation of each test start
        "episode_steps": (40, 300, 300),  # time limit of the scored episodes (the benchmark's 300)
        "fast_sampler_steps": (5, 10, 10),  # DDIM steps where the chapter needs many plans quickly
    },
    # --- chapter 9: the visuomotor policy ---
    "09_visuomotor_policy": {
        "timing_repeats": (5, 50, 200),  # renders / physics steps timed per camera (median)
        "loss_batch": (4, 16, 64),  # windows of the condition and loss checked by hand against the library
        "train_steps": (10, 150, 30_000),  # optimiser steps of the chapter's own image policy (tier's recipe)
        "score_episodes": (2, 10, 50),  # first test starts every policy of the comparison is scored on
        "episode_steps": (30, 300, 300),  # time limit of those episodes (the benchmark's 300)
        "fast_sampler_steps": (5, 10, 10),  # DDIM steps of the policies' scoring and animation
        "anim_steps": (16, 120, 300),  # control steps of the animation from the policy's cameras
    },
    # --- chapter 10: design choices and the comparison table ---
    "10_design_choices": {
        "recheck_episodes": (2, 10, 50),  # first test starts each shipped policy is re-scored on
        "ibc_recheck_episodes": (1, 2, 50),  # the same for IBC, whose DFO search is slow on a CPU
        "episode_steps": (30, 300, 300),  # time limit of those episodes (the benchmark's 300)
        "fast_sampler_steps": (5, 10, 10),  # DDIM steps of the diffusion policies' quick re-scoring
        "noise_trials": (20, 400, 2_000),  # noisy open-loop chunks per control mode (drift figure)
        "control_steps": (30, 1_500, 50_000),  # training steps of each regression policy (position / velocity)
        "control_episodes": (2, 10, 50),  # test starts those two policies are scored on
        "live_latency": (2, 2, 2),  # the latency (control steps) of the live check beside the recorded sweep
    },
}


def current_tier() -> str:
    """The tier named by ``DPLEARN_BUDGET``; without it ``full`` when CUDA is available, else ``book``."""
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if value:
        if value not in TIERS:
            raise ValueError(
                f"{ENV_VAR}={value!r} is not a budget tier; expected one of {', '.join(TIERS)}"
            )
        return value
    try:
        import torch

        if torch.cuda.is_available():
            return "full"
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return "book"


class Budget(Mapping[str, Any]):
    """The settings of one chapter (or none) in one tier, readable as attributes or keys.

    Parameters
    ----------
    tier:
        ``"quick"``, ``"book"`` or ``"full"``.
    settings:
        ``name -> value`` already resolved for ``tier``.
    chapter:
        The chapter the settings belong to, for error messages.
    """

    def __init__(self, tier: str, settings: Mapping[str, Any] | None = None, chapter: str | None = None):
        self.tier = choice("tier", tier, TIERS)
        self.chapter = chapter
        self._settings = dict(settings or {})

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._settings[name]
        except KeyError:
            known = ", ".join(sorted(self._settings)) or "none"
            raise AttributeError(
                f"budget of chapter {self.chapter!r} has no setting {name!r}; known settings: {known}"
            ) from None

    def __getitem__(self, name: str) -> Any:
        return self._settings[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._settings)

    def __len__(self) -> int:
        return len(self._settings)

    def __repr__(self) -> str:
        items = ", ".join(f"{k}={v!r}" for k, v in self._settings.items())
        head = f"Budget(tier={self.tier!r}" + (f", chapter={self.chapter!r}" if self.chapter else "")
        return head + (f", {items})" if items else ")")


def budget(chapter: str | None = None, tier: str | None = None) -> Budget:
    """The budget for ``chapter`` (e.g. ``"03_ddpm"``) in the current tier (or ``tier``).

    Without ``chapter`` the returned :class:`Budget` only carries ``.tier``.
    """
    tier = current_tier() if tier is None else tier
    choice("tier", tier, TIERS)
    if chapter is None:
        return Budget(tier)
    if chapter not in SETTINGS:
        raise ValueError(
            f"chapter={chapter!r} has no budget; expected one of {', '.join(sorted(SETTINGS))}"
        )
    index = TIERS.index(tier)
    resolved = {}
    for name, values in SETTINGS[chapter].items():
        if not (isinstance(values, tuple) and len(values) == 3):
            raise ValueError(f"budget setting {chapter}.{name} must be a (quick, book, full) tuple")
        resolved[name] = values[index]
    return Budget(tier, resolved, chapter)
