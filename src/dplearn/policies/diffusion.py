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

**Images (chapter 9).** With an image observation (``pixels``, ``pixels_agent_pos``, ``two-cameras``)
each camera's picture goes through a vision encoder (:class:`dplearn.nets.ImageEncoder`: crop,
ResNet-18 with GroupNorm, spatial softmax, linear), one encoder per camera by default or one shared by
all cameras (``shared_encoder``); at each of the ``T_o`` steps the image features and the normalised
pusher position are concatenated, and the ``T_o`` vectors flattened form the global condition. The
encoders train with the denoiser, end to end, through the same ε-loss.

Introduced in chapter 8.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dplearn import validate
from dplearn.data.frames import CAMERA_KEYS, OBS_CAMERAS
from dplearn.diffusion import DDIMSampler, DDPMSampler, NoiseSchedule, q_sample
from dplearn.nets import ConditionalUnet1D, ImageEncoder
from dplearn.policies.base import Policy, PolicyConfig, _check_choice, _check_int, register_policy

__all__ = ["DiffusionConfig", "DiffusionPolicy", "SAMPLERS"]

#: Inference samplers a diffusion policy can use.
SAMPLERS = ("ddpm", "ddim")
#: The config fields that only image observations use (chapter 9).
IMAGE_FIELDS = ("crop_size", "encoder_width", "num_keypoints", "image_feature_dim", "shared_encoder")


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

    Image observations (``pixels``, ``pixels_agent_pos``, ``two-cameras``; chapter 9) add:

    ======================  ====================================================================
    crop_size               side of the random (training) / centre (acting) crop of the 96 × 96
                            images (84)
    encoder_width           channels of ResNet-18's first stage (64 is ResNet-18; smaller keeps
                            the depth and narrows every layer)
    num_keypoints           spatial-softmax keypoints per camera (32)
    image_feature_dim       features per camera after the linear map (64)
    shared_encoder          one encoder for all cameras instead of one per camera (False)
    ======================  ====================================================================

    and ``obs_dim`` is then the width of the pusher's position (2), which ``pixels`` does not read.

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
    crop_size: int = 84
    encoder_width: int = 64
    num_keypoints: int = 32
    image_feature_dim: int = 64
    shared_encoder: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("num_diffusion_steps", "inference_steps"):
            _check_int(self, name, 1)
        self._check_network()
        _check_choice(self, "sampler", SAMPLERS)
        _check_choice(self, "ddim_spacing", DDIMSampler.SPACINGS)
        if self.inference_steps > self.num_diffusion_steps:
            raise ValueError(f"DiffusionConfig.inference_steps must be <= num_diffusion_steps="
                             f"{self.num_diffusion_steps}, got {self.inference_steps}")
        object.__setattr__(self, "clip_sample", validate.boolean("DiffusionConfig.clip_sample", self.clip_sample))
        for name in ("crop_size", "encoder_width", "num_keypoints", "image_feature_dim"):
            _check_int(self, name, 1)
        object.__setattr__(self, "shared_encoder",
                           validate.boolean("DiffusionConfig.shared_encoder", self.shared_encoder))
        if self.obs_type in OBS_CAMERAS and self.obs_dim != 2:
            raise ValueError(f"DiffusionConfig.obs_dim must be 2 (the pusher's position) for the image "
                             f"observation {self.obs_type!r}, got {self.obs_dim}")

    def _check_network(self) -> None:
        """Check the denoiser's settings (here the U-Net's)."""
        dims = self.down_dims
        if isinstance(dims, (list, tuple)) and dims and all(
                isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 1 for d in dims):
            object.__setattr__(self, "down_dims", tuple(int(d) for d in dims))
        else:
            raise ValueError(f"DiffusionConfig.down_dims must be a non-empty sequence of positive integers, "
                             f"got {dims!r}")
        for name, low in (("kernel_size", 1), ("n_groups", 1), ("step_embed_dim", 4)):
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

    def to_dict(self) -> dict[str, Any]:
        """The config's fields; a policy without images leaves out the image fields, so its config (and
        the identity of its training runs) is the same as before they existed."""
        out = super().to_dict()
        if self.obs_type not in OBS_CAMERAS:
            for name in IMAGE_FIELDS:
                out.pop(name)
        return out

    @property
    def image_keys(self) -> tuple[str, ...]:
        """The model keys of the cameras this observation reads (``()`` for vector observations)."""
        return tuple(CAMERA_KEYS[c] for c in OBS_CAMERAS.get(self.obs_type, ()))

    @property
    def cond_dim(self) -> int:
        """Width of the global condition: ``T_o`` × (``obs_dim``, or per camera ``image_feature_dim``
        plus the pusher's position where the observation has it)."""
        if not self.image_keys:
            return self.obs_horizon * self.obs_dim
        per_step = len(self.image_keys) * self.image_feature_dim + (self.obs_dim if self.obs_type != "pixels" else 0)
        return self.obs_horizon * per_step


@register_policy
class DiffusionPolicy(Policy):
    """Diffusion Policy with the 1-D temporal CNN (``diffusion-cnn``).

    The observation history ``(B, T_o, obs_dim)`` is flattened into the global condition of a
    :class:`~dplearn.nets.ConditionalUnet1D` that predicts the noise of an action sequence
    ``(B, T_p, action_dim)``. The noise schedule is a submodule (``policy.to(device)`` moves it).
    Choose the sampler at inference with :meth:`set_sampler` (e.g. DDIM with 10 steps).

    Image observations are dicts ``{"image": (B, T_o, 3, H, W), ["wrist_image": ...,]
    ["agent_pos": (B, T_o, 2)]}``, images uint8 or float in [0, 1]; ``encoders`` holds one
    :class:`~dplearn.nets.ImageEncoder` per camera (keys ``image``, ``wrist_image``) or one under
    ``shared``.

    Introduced in chapter 8 (images: chapter 9).
    """

    name = "diffusion-cnn"
    config_class = DiffusionConfig

    def __init__(self, config=None, obs_normalizer=None, action_normalizer=None):
        super().__init__(config, obs_normalizer, action_normalizer)
        c: DiffusionConfig = self.config
        self.schedule = NoiseSchedule.cosine(c.num_diffusion_steps)
        self.encoders: nn.ModuleDict | None = None
        if c.image_keys:
            names = ("shared",) if c.shared_encoder else c.image_keys
            self.encoders = nn.ModuleDict({name: ImageEncoder(c.encoder_width, c.num_keypoints, c.image_feature_dim,
                                                              c.crop_size) for name in names})
        self.model = self.make_denoiser()
        self._make_sampler()

    def make_denoiser(self) -> nn.Module:
        """The network :math:`\\varepsilon_\\theta`: here the :class:`~dplearn.nets.ConditionalUnet1D`."""
        c: DiffusionConfig = self.config
        return ConditionalUnet1D(c.action_dim, c.cond_dim, c.down_dims, c.kernel_size, c.n_groups,
                                 c.step_embed_dim)

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
        validate.choice("sampler", sampler, SAMPLERS)
        if steps is None:
            steps = self.config.num_diffusion_steps if sampler == "ddpm" else min(10, self.config.num_diffusion_steps)
        steps = validate.positive_int("steps", steps)
        if sampler == "ddpm" and steps != self.config.num_diffusion_steps:
            raise ValueError(f"steps must be num_diffusion_steps={self.config.num_diffusion_steps} for DDPM "
                             f"(use sampler='ddim' for fewer), got {steps}")
        self.config = type(self.config).from_dict({**self.config.to_dict(), "sampler": sampler,
                                                 "inference_steps": int(steps),
                                                 "ddim_spacing": spacing or self.config.ddim_spacing})
        self._make_sampler()
        return self

    @property
    def num_inference_steps(self) -> int:
        """How many network evaluations one chunk costs."""
        return self.sampler.num_steps

    def condition(self, obs: Any) -> torch.Tensor:
        """Normalised ``obs`` (B, T_o, obs_dim) → the global condition (B, T_o · obs_dim), computed once
        per chunk and reused at every denoising step.

        Image observations: each camera's ``(B, T_o, 3, H, W)`` through its encoder (all
        ``B · T_o`` images in one batch; a shared encoder takes every camera's at once), then per step
        ``[features of each camera, agent_pos]`` → (B, T_o · (n_cameras · image_feature_dim [+ 2])).
        """
        keys = self.config.image_keys
        if not keys:
            return obs.flatten(1)
        missing = [k for k in keys + (("agent_pos",) if self.config.obs_type != "pixels" else ()) if k not in obs]
        if missing:
            raise ValueError(f"obs must be a dict with keys {list(keys)} (+ 'agent_pos' except for pixels); "
                             f"missing {missing}")
        b, t = obs[keys[0]].shape[:2]
        if self.config.shared_encoder:
            images = torch.cat([obs[k].flatten(0, 1) for k in keys])
            features = list(self.encoders["shared"](images).float().view(len(keys), b, t, -1))
        else:
            features = [self.encoders[k](obs[k].flatten(0, 1)).float().view(b, t, -1) for k in keys]
        if self.config.obs_type != "pixels":
            features.append(obs["agent_pos"].float())
        return torch.cat(features, dim=-1).flatten(1)

    def denoise(self, x: torch.Tensor, k: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """:math:`\\varepsilon_\\theta(A^k, k, O)`: ``x`` (B, T_p, action_dim), ``k`` (B,), ``cond`` (B, T_o·obs_dim)."""
        return self.model(x, k, cond)

    # ---- the policy interface ------------------------------------------------------------------
    def compute_loss(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The ε-prediction loss of normalised ``obs`` (B, T_o, obs_dim), or a dict of image observations,
        and ``action`` (B, T_p, action_dim)."""
        noise = torch.randn_like(action)
        k = torch.randint(0, self.config.num_diffusion_steps, (action.shape[0],), device=action.device)
        noisy = q_sample(self.schedule, action, k, noise)
        return F.mse_loss(self.denoise(noisy, k, self.condition(obs)).float(), noise.float())

    @torch.no_grad()
    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None,
               return_trajectory: bool = False) -> Any:
        """A normalised action chunk (B, T_p, action_dim) for normalised ``obs`` (B, T_o, obs_dim), or a
        dict of image observations.

        ``generator`` makes the draw reproducible: noise is drawn on the generator's device (the CPU
        or the policy's; another raises ``ValueError``) and moved to the policy's, so a CPU generator
        gives the same noise on any device (the rule of :mod:`dplearn.seeding`). With
        ``return_trajectory`` also returns every intermediate :math:`A^k`, ``(steps + 1, B, T_p, action_dim)``.
        """
        c = self.config
        cond = self.condition(obs)
        shape = (cond.shape[0], c.pred_horizon, c.action_dim)
        return self.sampler.sample(lambda x, k, o: self.denoise(x, k, o), shape, generator=generator, cond=cond,
                                   return_trajectory=return_trajectory, device=cond.device, dtype=cond.dtype)
