"""Diffusion Policy (CNN): an action sequence denoised from noise, conditioned on the observation.

Chi et al. (2023) model the conditional distribution of an action chunk given the observation
history, :math:`p(A_t \\mid O_t)`, with a DDPM over actions (not over observations: the
observation is a condition, encoded once per chunk and reused at every denoising step).

**Training.** Take a demonstration window (:math:`O_t` = ``T_o`` observations, :math:`A^0_t` =
``T_p`` actions), a random diffusion step :math:`k` and noise :math:`\\varepsilon`, and regress
the noise:

.. math::

    A^k_t = \\sqrt{\\bar\\alpha_k}\\,A^0_t + \\sqrt{1-\\bar\\alpha_k}\\,\\varepsilon, \\qquad
    \\mathcal L = \\big\\|\\varepsilon - \\varepsilon_\\theta(A^k_t, k, O_t)\\big\\|^2 .

**Inference.** Start from :math:`A^K_t \\sim \\mathcal N(0, I)` and run :math:`K` reverse steps
(DDPM, or DDIM with fewer steps), clipping the predicted clean sequence to the normalised action
box [−1, 1]; execute the ``T_a`` actions from the current step, then re-plan (receding horizon).

The denoiser :math:`\\varepsilon_\\theta` is :class:`dplearn.nets.ConditionalUnet1D`; the noise
schedule is squared-cosine with 100 steps (the paper's). We write :math:`k` for the diffusion step
and :math:`t` for control time, as the paper does.

Introduced in chapter 8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from dplearn.diffusion import DDIMSampler, DDPMSampler, NoiseSchedule, q_sample
from dplearn.nets import ConditionalUnet1D
from dplearn.policies.base import Policy, PolicyConfig, _check_choice, _check_int, register_policy

__all__ = ["DiffusionConfig", "DiffusionPolicy", "SAMPLERS"]

#: Inference samplers a diffusion policy can use.
SAMPLERS = ("ddpm", "ddim")


@dataclass
class DiffusionConfig(PolicyConfig):
    """:class:`~dplearn.policies.base.PolicyConfig` plus the diffusion model's settings.

    ======================  ====================================================================
    down_dims               U-Net widths per level (the paper: 256, 512, 1024)
    kernel_size             temporal kernel (odd; 5)
    n_groups                GroupNorm groups (8)
    step_embed_dim          width of the diffusion-step embedding (256)
    num_diffusion_steps     :math:`K`, steps of the forward process (100)
    sampler                 ``"ddpm"`` (ancestral, all K steps) or ``"ddim"`` (deterministic)
    inference_steps         DDIM steps (``<= num_diffusion_steps``; DDPM always uses K)
    ddim_spacing            which DDIM steps (:class:`~dplearn.diffusion.DDIMSampler`): ``"trailing"``
                            (default) starts at the last, fully noised step (K=100, 10 steps: 99,
                            89, ..., 9); ``"leading"`` (diffusers' default, used by the paper's
                            code) starts at 90, where pure noise is not yet what the chain expects
    clip_sample             clip the predicted clean sequence to [−1, 1] at every step
    ======================  ====================================================================

    The horizons default to the paper's: ``T_o = 2``, ``T_p = 16``, ``T_a = 8``; the observation to
    the benchmark's ``keypoints`` (20 numbers).

    Introduced in chapter 8.
    """

    obs_dim: int = 20
    obs_horizon: int = 2
    pred_horizon: int = 16
    action_horizon: int = 8
    obs_type: str = "keypoints"
    down_dims: tuple[int, ...] = (256, 512, 1024)
    kernel_size: int = 5
    n_groups: int = 8
    step_embed_dim: int = 256
    num_diffusion_steps: int = 100
    sampler: str = "ddpm"
    inference_steps: int = 100
    ddim_spacing: str = "trailing"
    clip_sample: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        dims = self.down_dims
        if isinstance(dims, (list, tuple)) and dims and all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in dims):
            object.__setattr__(self, "down_dims", tuple(int(d) for d in dims))
        else:
            raise ValueError(f"DiffusionConfig.down_dims must be a non-empty sequence of positive integers, "
                             f"got {dims!r}")
        for name, low in (("kernel_size", 1), ("n_groups", 1), ("step_embed_dim", 4),
                          ("num_diffusion_steps", 1), ("inference_steps", 1)):
            _check_int(self, name, low)
        if self.kernel_size % 2 == 0:
            raise ValueError(f"DiffusionConfig.kernel_size must be odd, got {self.kernel_size}")
        if self.step_embed_dim % 2:
            raise ValueError(f"DiffusionConfig.step_embed_dim must be even, got {self.step_embed_dim}")
        bad = [d for d in self.down_dims if d % self.n_groups]
        if bad:
            raise ValueError(f"DiffusionConfig.down_dims must be divisible by n_groups={self.n_groups}, got {bad}")
        multiple = 2 ** (len(self.down_dims) - 1)
        if self.pred_horizon % multiple:
            raise ValueError(f"DiffusionConfig.pred_horizon must be a multiple of {multiple} for "
                             f"{len(self.down_dims)} U-Net levels, got {self.pred_horizon}")
        _check_choice(self, "sampler", SAMPLERS)
        _check_choice(self, "ddim_spacing", DDIMSampler.SPACINGS)
        if self.inference_steps > self.num_diffusion_steps:
            raise ValueError(f"DiffusionConfig.inference_steps must be <= num_diffusion_steps="
                             f"{self.num_diffusion_steps}, got {self.inference_steps}")
        if not isinstance(self.clip_sample, bool):
            raise ValueError(f"DiffusionConfig.clip_sample must be a bool, got {self.clip_sample!r}")


@register_policy
class DiffusionPolicy(Policy):
    """Diffusion Policy with the 1-D temporal CNN (``diffusion-cnn``).

    The observation history ``(B, T_o, obs_dim)`` is flattened into the global condition of a
    :class:`~dplearn.nets.ConditionalUnet1D` that predicts the noise of an action sequence
    ``(B, T_p, action_dim)``. The noise schedule is a submodule (``policy.to(device)`` moves it).
    Choose the sampler at inference with :meth:`set_sampler` (e.g. DDIM with 10 steps).

    Introduced in chapter 8.
    """

    name = "diffusion-cnn"
    config_class = DiffusionConfig

    def __init__(self, config=None, obs_normalizer=None, action_normalizer=None):
        super().__init__(config, obs_normalizer, action_normalizer)
        c: DiffusionConfig = self.config
        self.schedule = NoiseSchedule.cosine(c.num_diffusion_steps)
        self.model = ConditionalUnet1D(c.action_dim, c.obs_horizon * c.obs_dim, c.down_dims, c.kernel_size,
                                       c.n_groups, c.step_embed_dim)
        self._make_sampler()

    # ---- sampling ------------------------------------------------------------------------------
    def _make_sampler(self) -> None:
        c: DiffusionConfig = self.config
        if c.sampler == "ddpm":
            self.sampler: DDPMSampler | DDIMSampler = DDPMSampler(self.schedule, clip_sample=c.clip_sample)
        else:
            self.sampler = DDIMSampler(self.schedule, c.inference_steps, eta=0.0, clip_sample=c.clip_sample,
                                       spacing=c.ddim_spacing)

    def set_sampler(self, sampler: str = "ddpm", steps: int | None = None,
                    spacing: str | None = None) -> DiffusionPolicy:
        """Sample with ``"ddpm"`` (all K steps) or ``"ddim"`` with ``steps`` steps (and ``spacing``, default
        the config's); returns the policy.

        The network is unchanged: the same :math:`\\varepsilon_\\theta` serves every sampler.
        """
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
        if steps is None:
            steps = self.config.num_diffusion_steps if sampler == "ddpm" else min(10, self.config.num_diffusion_steps)
        if sampler == "ddpm" and int(steps) != self.config.num_diffusion_steps:
            raise ValueError(f"steps must be num_diffusion_steps={self.config.num_diffusion_steps} for DDPM "
                             f"(use sampler='ddim' for fewer), got {steps}")
        self.config = DiffusionConfig.from_dict({**self.config.to_dict(), "sampler": sampler,
                                                 "inference_steps": int(steps),
                                                 "ddim_spacing": spacing or self.config.ddim_spacing})
        self._make_sampler()
        return self

    @property
    def num_inference_steps(self) -> int:
        """How many network evaluations one chunk costs."""
        return self.sampler.num_steps

    def condition(self, obs: torch.Tensor) -> torch.Tensor:
        """Normalised ``obs`` (B, T_o, obs_dim) → the global condition (B, T_o · obs_dim), computed once
        per chunk and reused at every denoising step."""
        return obs.flatten(1)

    def denoise(self, x: torch.Tensor, k: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """:math:`\\varepsilon_\\theta(A^k, k, O)`: ``x`` (B, T_p, action_dim), ``k`` (B,), ``cond`` (B, T_o·obs_dim)."""
        return self.model(x, k, cond)

    # ---- the policy interface ------------------------------------------------------------------
    def compute_loss(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The ε-prediction loss of normalised ``obs`` (B, T_o, obs_dim) and ``action`` (B, T_p, action_dim)."""
        noise = torch.randn_like(action)
        k = torch.randint(0, self.config.num_diffusion_steps, (action.shape[0],), device=action.device)
        noisy = q_sample(self.schedule, action, k, noise)
        return F.mse_loss(self.denoise(noisy, k, self.condition(obs)).float(), noise.float())

    @torch.no_grad()
    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None,
               return_trajectory: bool = False) -> Any:
        """A normalised action chunk (B, T_p, action_dim) for normalised ``obs`` (B, T_o, obs_dim).

        ``generator`` makes the draw reproducible: noise is drawn on the generator's device and
        moved to the policy's (so a CPU generator gives the same chunk on any device). With
        ``return_trajectory`` also returns every intermediate :math:`A^k`, ``(steps + 1, B, T_p, action_dim)``.
        """
        c = self.config
        cond = self.condition(obs)
        shape = (obs.shape[0], c.pred_horizon, c.action_dim)
        return self.sampler.sample(lambda x, k, o: self.denoise(x, k, o), shape, generator=generator, cond=cond,
                                   return_trajectory=return_trajectory, device=obs.device, dtype=obs.dtype)
