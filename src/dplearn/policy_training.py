"""Training glue for policies: demonstrations → windows → normalisers → policy → :func:`dplearn.training.train`.

Policies (layer 3) define a model, a loss and ``act``; this module (layer 4) drives them:

1. cut (observation history, action chunk) windows with the policy's horizons
   (:class:`~dplearn.data.SequenceDataset` for Push-T, or arrays for a toy task);
2. fit min-max normalisers on them and hand them to the policy;
3. minimise ``policy.loss(batch)`` with :func:`dplearn.training.train` (AdamW, warmup + cosine,
   EMA of the weights, gradient clipping, progress bar);
4. return the policy to act with (the EMA copy when there is one).

A policy whose config says ``control="velocity"`` (chapter 10's ablation) trains on the
displacements of :func:`~dplearn.data.velocity_actions` instead of the target positions:
:func:`train_pusht_policy` converts the demonstrations, so its normalisers are fitted on the
displacements.

:data:`PUSHT_RECIPES` holds the settings ``dplearn train --policy NAME --obs OBS`` uses on Push-T,
one recipe per (policy, observation) with a size per budget tier; its ``full`` tier made the
shipped checkpoints.

Introduced in chapter 6 (Part II policies) and chapter 8 (``diffusion-cnn``).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from dplearn.data import (
    CAMERA_KEYS,
    CONTROLS,
    OBS_CAMERAS,
    Demos,
    Normalizer,
    SequenceDataset,
    demo_frames,
    demos_control,
    load_pusht_demos,
    velocity_actions,
)
from dplearn.data.frames import RENDER_VERSION
from dplearn.envs.benchmark import IMAGE_OBS_TYPES
from dplearn.policies import Policy, make_policy
from dplearn.seeding import seed_everything
from dplearn.training import TrainConfig, TrainResult, train
from dplearn.validate import choice

__all__ = ["PolicyRecipe", "PUSHT_RECIPES", "recipe_for", "windows_as_tensors", "fit_normalizers", "fit_policy",
           "demos_fingerprint", "train_pusht_policy", "recipe_train_config", "ImageWindows", "image_windows",
           "demos_for_control"]


# ---------------------------------------------------------------------------------------------
# recipes
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PolicyRecipe:
    """How to train one policy on Push-T from one observation type.

    ``config``: fields of the policy's config (horizons, widths, policy-specific settings);
    ``steps``: optimiser steps per budget tier ``{"quick", "book", "full"}``; ``tier_config``: config
    fields that differ per tier (e.g. the network's widths); the rest are
    :class:`~dplearn.training.TrainConfig` fields, with ``tier_train`` overriding them per tier.
    ``save_dtype``: precision the weights are stored in (``"float16"`` halves the file).

    Introduced in chapter 6.
    """

    config: Mapping[str, Any]
    steps: Mapping[str, int]
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-6
    warmup_steps: int = 500
    ema_decay: float | None = 0.9999
    ema_power: float | None = 0.75
    grad_clip: float | None = 1.0
    betas: tuple[float, float] = (0.9, 0.999)
    amp: str | None = "auto"
    tier_config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    tier_train: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    save_dtype: str | None = None
    note: str = ""

    def policy_config(self, tier: str) -> dict[str, Any]:
        """The policy-config fields of this recipe in ``tier``."""
        return {**self.config, **self.tier_config.get(tier, {})}

    def train_fields(self, tier: str) -> dict[str, Any]:
        """The TrainConfig fields of this recipe in ``tier`` (without ``steps``)."""
        base = {"batch_size": self.batch_size, "lr": self.lr, "weight_decay": self.weight_decay,
                "warmup_steps": self.warmup_steps, "ema_decay": self.ema_decay, "ema_power": self.ema_power,
                "grad_clip": self.grad_clip, "betas": self.betas, "amp": self.amp}
        return {**base, **self.tier_train.get(tier, {})}


_ONE_STEP = {"obs_dim": 5, "action_dim": 2, "obs_horizon": 2, "pred_horizon": 2, "action_horizon": 1,
             "obs_type": "state"}
_ONE_STEP_KEYPOINTS = {**_ONE_STEP, "obs_dim": 20, "obs_type": "keypoints"}
_QUICK_MLP = {"quick": {"hidden": 64, "n_layers": 2}}  # tests and CI: the same code, narrower

def _image_recipe(obs_type: str) -> dict[str, Any]:
    """The image recipe of ``diffusion-cnn`` (chapter 9), the same for one camera and for two."""
    return dict(
        config={"obs_dim": 2, "action_dim": 2, "obs_horizon": 2, "pred_horizon": 16, "action_horizon": 8,
                "obs_type": obs_type, "kernel_size": 5, "n_groups": 8, "num_diffusion_steps": 100,
                "sampler": "ddpm", "inference_steps": 100, "clip_sample": True, "crop_size": 84,
                "num_keypoints": 32, "image_feature_dim": 64, "shared_encoder": False},
        steps={"quick": 20, "book": 300, "full": 30_000},
        tier_config={"quick": {"encoder_width": 8, "down_dims": (16, 32, 64), "step_embed_dim": 32,
                               "sampler": "ddim", "inference_steps": 10},
                     "book": {"encoder_width": 16, "down_dims": (32, 64, 128), "step_embed_dim": 64},
                     "full": {"encoder_width": 32, "down_dims": (64, 128, 256), "step_embed_dim": 128}},
        tier_train={"quick": {"batch_size": 16, "warmup_steps": 5, "lr": 1e-3},
                    "book": {"batch_size": 32, "warmup_steps": 50, "lr": 1e-3}},
        batch_size=256, lr=3e-4, weight_decay=1e-6, warmup_steps=500, betas=(0.95, 0.999), grad_clip=None,
        ema_decay=0.9999, ema_power=0.75, save_dtype="float16")


#: Push-T recipes by (policy, observation). Part II (states): one-step policies (T_o = 2, T_a = 1)
#: as the benchmark's baselines; LSTM-GMM sees the last 10 observations as robomimic's BC-RNN does;
#: IBC follows Diffusion Policy's IBC horizons (T_o = 2, T_p = 2) with a smaller energy network,
#: 512 counter-examples and 256 DFO samples, so that 50 evaluation episodes fit a CPU's budget.
#: ``diffusion-cnn`` on keypoints: the paper's horizons (T_o = 2, T_p = 16, T_a = 8), 100-step
#: squared-cosine DDPM with ε-prediction and clipping, AdamW (β = 0.95, 0.999, weight decay 1e-6),
#: warmup then cosine, batch 256, EMA with power 0.75; the U-Net is narrower than the paper's
#: 256/512/1024 (65.8 M parameters) so that a shipped file stays under 25 MB: 96/192/384 with a
#: 128-wide step embedding (9.6 M, 19 MB in float16) on a GPU, 64/128/256 (4.6 M) on a CPU.
#: ``diffusion-cnn`` on ``pixels``, ``pixels_agent_pos`` (the paper's image observation: the top view and
#: the pusher's position) and ``two-cameras`` (chapter 9): the paper's image recipe — 96 × 96
#: images, random 84 crop in training and centre crop when acting, ResNet-18 from scratch with GroupNorm,
#: spatial softmax with 32 keypoints, 64 features per camera, one encoder per camera — shrunk to fit the
#: 25 MB a shipped checkpoint may take: the paper's U-Net (512/1024/2048) alone would be ~250 M parameters
#: and one full-width ResNet-18 is 11.2 M (22 MB in float16, two cameras 45 MB), so the ``full`` tier keeps
#: ResNet-18's depth at half its width (32/64/128/256 channels, 2.8 M per camera) and a 64/128/256 U-Net
#: (7.7 M parameters, 15 MB, for pixels; 11.0 M, 22 MB, for two cameras). It trains with batch 256 at
#: peak learning rate 3e-4 (the paper: 64 at 1e-4), more images per step for a GPU that has only
#: minutes, for 30,000 steps (planned as about 8 minutes at about 60 steps/s per run with two runs
#: sharing one H100/H200: an estimate until a GPU session measures it; ``benchmarks/gpu_vision.py``
#: records the rate); the ``book`` and ``quick`` tiers narrow everything further for a CPU.
PUSHT_RECIPES: dict[tuple[str, str], PolicyRecipe] = {
    ("regression", "state"): PolicyRecipe(
        config={**_ONE_STEP, "hidden": 512, "n_layers": 4},
        steps={"quick": 200, "book": 3_000, "full": 20_000}),
    ("categorical", "state"): PolicyRecipe(
        config={**_ONE_STEP, "hidden": 512, "n_layers": 4, "n_bins": 64, "decode": "argmax"},
        steps={"quick": 200, "book": 3_000, "full": 20_000}),
    ("mixture", "state"): PolicyRecipe(
        config={**_ONE_STEP, "hidden": 512, "n_layers": 4, "n_components": 5},
        steps={"quick": 200, "book": 3_000, "full": 20_000}),
    ("lstm-gmm", "state"): PolicyRecipe(
        config={"obs_dim": 5, "action_dim": 2, "obs_horizon": 10, "pred_horizon": 10, "action_horizon": 1,
                "obs_type": "state", "hidden": 400, "n_layers": 2, "n_components": 5},
        steps={"quick": 100, "book": 2_000, "full": 15_000}, lr=5e-4),
    ("ibc", "state"): PolicyRecipe(
        config={**_ONE_STEP, "hidden": 256, "n_layers": 3, "n_negatives": 512, "dfo_samples": 256,
                "dfo_iterations": 3, "dfo_noise": 0.1, "dfo_shrink": 0.5},
        steps={"quick": 20, "book": 500, "full": 15_000}, batch_size=128, lr=5e-4),
    # Part II on the benchmark's low-dim observation (chapter 10's comparison): the same networks on
    # the 20 keypoint numbers, trained longer in the full tier; IBC with the IBC paper's 256
    # counter-examples per example and its DFO (16,384 samples, 3 iterations, noise 0.33 halved
    # each iteration), narrowed to 1,024 samples in the book tier so that a CPU can evaluate it; its
    # energy reads the executed action a_t only, as the Diffusion Policy paper's IBC baseline does
    ("regression", "keypoints"): PolicyRecipe(
        config={**_ONE_STEP_KEYPOINTS, "hidden": 512, "n_layers": 4},
        steps={"quick": 200, "book": 3_000, "full": 50_000},
        tier_config=_QUICK_MLP),
    ("categorical", "keypoints"): PolicyRecipe(
        config={**_ONE_STEP_KEYPOINTS, "hidden": 512, "n_layers": 4, "n_bins": 64, "decode": "argmax"},
        steps={"quick": 200, "book": 3_000, "full": 50_000},
        tier_config=_QUICK_MLP),
    ("mixture", "keypoints"): PolicyRecipe(
        config={**_ONE_STEP_KEYPOINTS, "hidden": 512, "n_layers": 4, "n_components": 5},
        steps={"quick": 200, "book": 3_000, "full": 50_000},
        tier_config=_QUICK_MLP),
    ("lstm-gmm", "keypoints"): PolicyRecipe(
        config={"obs_dim": 20, "action_dim": 2, "obs_horizon": 10, "pred_horizon": 10, "action_horizon": 1,
                "obs_type": "keypoints", "hidden": 400, "n_layers": 2, "n_components": 5},
        steps={"quick": 100, "book": 2_000, "full": 30_000}, lr=5e-4,
        tier_config={"quick": {"hidden": 64}}, tier_train={"quick": {"batch_size": 64}}),
    ("ibc", "keypoints"): PolicyRecipe(
        config={**_ONE_STEP_KEYPOINTS, "hidden": 512, "n_layers": 4, "n_negatives": 256,
                "dfo_samples": 16_384, "dfo_iterations": 3, "dfo_noise": 0.33, "dfo_shrink": 0.5,
                "energy_actions": "executed"},
        steps={"quick": 20, "book": 500, "full": 30_000},
        tier_config={"quick": {"hidden": 64, "n_layers": 2, "n_negatives": 32, "dfo_samples": 64},
                     "book": {"hidden": 256, "n_layers": 3, "dfo_samples": 1_024}},
        batch_size=128, lr=5e-4),
    ("diffusion-cnn", "keypoints"): PolicyRecipe(
        config={"obs_dim": 20, "action_dim": 2, "obs_horizon": 2, "pred_horizon": 16, "action_horizon": 8,
                "obs_type": "keypoints", "kernel_size": 5, "n_groups": 8, "num_diffusion_steps": 100,
                "sampler": "ddpm", "inference_steps": 100, "clip_sample": True},
        steps={"quick": 30, "book": 800, "full": 30_000},
        tier_config={"quick": {"down_dims": (16, 32, 64), "step_embed_dim": 32},
                     "book": {"down_dims": (64, 128, 256), "step_embed_dim": 128},
                     "full": {"down_dims": (96, 192, 384), "step_embed_dim": 128}},
        tier_train={"quick": {"warmup_steps": 5, "lr": 1e-3}, "book": {"warmup_steps": 100, "lr": 1e-3}},
        lr=1e-4, weight_decay=1e-6, warmup_steps=500, betas=(0.95, 0.999), grad_clip=None,
        ema_decay=0.9999, ema_power=0.75, save_dtype="float16"),
    # the paper's transformer on states (appendix): 8 layers, 4 heads, width 256, attention dropout 0.01,
    # AdamW lr 1e-4, weight decay 0.1 on weight matrices only, betas (0.9, 0.95), 1000 warmup steps
    ("diffusion-transformer", "keypoints"): PolicyRecipe(
        config={"obs_dim": 20, "action_dim": 2, "obs_horizon": 2, "pred_horizon": 16, "action_horizon": 8,
                "obs_type": "keypoints", "num_diffusion_steps": 100, "sampler": "ddpm", "inference_steps": 100,
                "clip_sample": True, "p_drop_emb": 0.0, "p_drop_attn": 0.01, "causal": True},
        steps={"quick": 30, "book": 800, "full": 30_000},
        tier_config={"quick": {"n_layer": 2, "n_head": 2, "n_emb": 32},
                     "book": {"n_layer": 4, "n_head": 4, "n_emb": 128},
                     "full": {"n_layer": 8, "n_head": 4, "n_emb": 256}},
        tier_train={"quick": {"warmup_steps": 5, "lr": 1e-3}, "book": {"warmup_steps": 100, "lr": 5e-4}},
        lr=1e-4, weight_decay=1e-1, warmup_steps=1000, betas=(0.9, 0.95), grad_clip=None,
        ema_decay=0.9999, ema_power=0.75, save_dtype="float16"),
    ("diffusion-cnn", "pixels"): PolicyRecipe(**_image_recipe("pixels")),
    ("diffusion-cnn", "pixels_agent_pos"): PolicyRecipe(**_image_recipe("pixels_agent_pos")),
    ("diffusion-cnn", "two-cameras"): PolicyRecipe(**_image_recipe("two-cameras")),
}


def recipe_for(name: str, obs_type: str | None = None) -> tuple[str, PolicyRecipe]:
    """``(obs_type, recipe)`` of policy ``name`` on ``obs_type`` (default: ``keypoints``, the benchmark's
    low-dimensional observation, for every policy with a keypoint recipe; else the policy's first recipe
    in :data:`PUSHT_RECIPES`).

    Unknown combinations raise ``ValueError`` listing the known ones.

    Introduced in chapter 6.
    """
    known = sorted(PUSHT_RECIPES)
    if obs_type is None:
        matches = [o for n, o in PUSHT_RECIPES if n == name]  # in the table's order
        if not matches:
            raise ValueError(f"name must be one of the policies with a Push-T recipe {sorted({n for n, _ in known})}, "
                             f"got {name!r}")
        obs_type = "keypoints" if "keypoints" in matches else matches[0]
    if (name, obs_type) not in PUSHT_RECIPES:
        raise ValueError(f"there is no Push-T recipe for policy {name!r} on observation {obs_type!r}; "
                         f"known (policy, observation) pairs: {known}")
    return obs_type, PUSHT_RECIPES[(name, obs_type)]


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------
def windows_as_tensors(dataset: SequenceDataset) -> tuple[torch.Tensor, torch.Tensor]:
    """All windows of a low-dimensional :class:`~dplearn.data.SequenceDataset` as two tensors,
    ``obs (M, T_o, D)`` and ``action (M, T_p, 2)`` (raw units), so batches are a fast index.

    Introduced in chapter 6.
    """
    if not isinstance(dataset, SequenceDataset):
        raise ValueError(f"dataset must be a SequenceDataset, got {type(dataset).__name__}")
    if dataset.obs_type not in ("state", "keypoints"):
        raise ValueError(f"dataset.obs_type must be 'state' or 'keypoints' for tensors, got {dataset.obs_type!r}")
    index = dataset.indices
    obs = dataset.vector_obs()[index[:, :dataset.obs_horizon]]
    action = dataset.demos.action[index]
    return torch.as_tensor(obs, dtype=torch.float32), torch.as_tensor(action, dtype=torch.float32)


def fit_normalizers(obs: Any, action: Any) -> tuple[Normalizer, Normalizer]:
    """Min-max normalisers of observations ``(..., obs_dim)`` and actions ``(..., action_dim)``.

    Introduced in chapter 6.
    """
    def flat(x: Any) -> np.ndarray:
        x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        return x.reshape(-1, x.shape[-1])

    return Normalizer.fit(flat(obs)), Normalizer.fit(flat(action))


def _as_pair(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(data, SequenceDataset):
        return windows_as_tensors(data)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return (torch.as_tensor(np.asarray(data[0]), dtype=torch.float32),
                torch.as_tensor(np.asarray(data[1]), dtype=torch.float32))
    raise ValueError("data must be a SequenceDataset or a pair (obs (M, T_o, obs_dim), action (M, T_p, "
                     f"action_dim)), got {type(data).__name__}")


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------
def _normalized_loss(model: Policy, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """``policy.compute_loss`` on a batch that was normalised once, up front (same value as
    ``policy.loss`` on the raw batch, without normalising every step)."""
    return model.compute_loss(batch[0], batch[1])


def fit_policy(policy: Policy, data: Any, config: TrainConfig,
               normalizers: tuple[Normalizer, Normalizer] | None = None,
               stop: Callable[[], bool] | None = None, eval_every: int = 0,
               eval_fn: Callable[[int, Policy], Any] | None = None) -> tuple[Policy, TrainResult]:
    """Fit normalisers on ``data``, then train ``policy`` by minimising ``policy.loss``.

    Parameters
    ----------
    policy:
        A :class:`~dplearn.policies.Policy`; its horizons must match the windows.
    data:
        A :class:`~dplearn.data.SequenceDataset` (any observation type; image ones train as
        :func:`image_windows` describes) or a pair of arrays
        ``(obs (M, T_o, obs_dim), action (M, T_p, action_dim))`` in raw units.
    config:
        The :class:`~dplearn.training.TrainConfig`.
    normalizers:
        ``(obs_normalizer, action_normalizer)`` to use instead of fitting them on ``data``.
    stop:
        Optional ``stop() -> bool`` asked after every step (see :func:`dplearn.training.train`).
    eval_every, eval_fn:
        ``eval_fn(step, policy)`` every ``eval_every`` steps with the policy being trained (its EMA
        copy when there is one), e.g. to score it during training (see :func:`dplearn.training.train`).

    Returns ``(trained policy, TrainResult)``: the trained policy is the EMA copy when the config
    asks for an EMA, else ``policy`` itself; it is in eval mode. With ``config.checkpoint_path``
    the run resumes from that training state, which must have been made by the same policy config
    on the same windows (a fingerprint of them is stored in the file).

    Introduced in chapter 6.
    """
    if not isinstance(policy, Policy):
        raise ValueError(f"policy must be a dplearn Policy, got {type(policy).__name__}")
    if isinstance(data, SequenceDataset) and data.obs_type in IMAGE_OBS_TYPES:
        return _fit_image_policy(policy, data, config, normalizers, stop)
    obs, action = _as_pair(data)
    c = policy.config
    if obs.ndim != 3 or obs.shape[1:] != (c.obs_horizon, c.obs_dim):
        raise ValueError(f"data obs must have shape (M, {c.obs_horizon}, {c.obs_dim}) to fit the policy's "
                         f"config, got {tuple(obs.shape)}")
    if action.ndim != 3 or action.shape[1:] != (c.pred_horizon, c.action_dim) or action.shape[0] != obs.shape[0]:
        raise ValueError(f"data action must have shape ({obs.shape[0]}, {c.pred_horizon}, {c.action_dim}) to fit "
                         f"the policy's config, got {tuple(action.shape)}")
    obs_norm, act_norm = fit_normalizers(obs, action) if normalizers is None else normalizers
    policy.set_normalizers(obs_norm, act_norm)
    normalized = (obs_norm.normalize(obs).float(), act_norm.normalize(action).float())
    identity = {"policy": policy.name, "config": _identity_config(policy),
                "windows_sha256": _tensors_fingerprint(obs, action)}
    result = train(policy, _normalized_loss, normalized, config, identity=identity, stop=stop,
                   eval_every=eval_every, eval_fn=eval_fn)
    trained = result.eval_model
    trained.meta = {"train_steps": int(result.step), "final_loss": float(np.mean(result.losses[-100:])),
                    "n_windows": int(obs.shape[0]), "train_seconds": round(float(result.total_seconds), 1)}
    return trained.eval(), result


# ---------------------------------------------------------------------------------------------
# image observations: frames rendered once, indexed on the device
# ---------------------------------------------------------------------------------------------
@dataclass
class ImageWindows:
    """The training windows of an image dataset, as tensors a batch is an index into.

    ================  ======================  ===================================================
    frames            {key: (F, 3, H, W)}     uint8 images of the F frames the windows use, per
                                              camera (keys ``image``, ``wrist_image``)
    obs_frames        (M, T_o) int64          row of ``frames`` of each observation of each window
    agent_pos         (M, T_o, 2) float32     the pusher's position at those steps (raw units)
    action            (M, T_p, 2) float32     the action chunk (raw units)
    frames_id         str                     which demonstrations, cameras, size and renderer
    ================  ======================  ===================================================

    Introduced in chapter 9.
    """

    frames: dict[str, torch.Tensor]
    obs_frames: torch.Tensor
    agent_pos: torch.Tensor
    action: torch.Tensor
    frames_id: str


def image_windows(dataset: SequenceDataset, cache: bool = True) -> ImageWindows:
    """The windows of an image :class:`~dplearn.data.SequenceDataset` (``pixels``, ``pixels_agent_pos``,
    ``two-cameras``) as :class:`ImageWindows`.

    Every demonstration frame is rendered once per camera (:func:`dplearn.data.demo_frames`, cached on
    disk when ``cache``); the windows are the dataset's own (:attr:`SequenceDataset.obs_frames`, its
    edge padding included), renumbered to the frames they use.

    Introduced in chapter 9.
    """
    if not isinstance(dataset, SequenceDataset) or dataset.obs_type not in IMAGE_OBS_TYPES:
        raise ValueError(f"dataset must be a SequenceDataset of an image observation {IMAGE_OBS_TYPES}, got "
                         f"{getattr(dataset, 'obs_type', type(dataset).__name__)!r}")
    cameras = OBS_CAMERAS[dataset.obs_type]
    obs_frames = dataset.obs_frames
    used = np.unique(obs_frames)
    frames = {}
    for camera in cameras:
        images = demo_frames(dataset.demos, camera, dataset.render_size, cache=cache)
        # (F, 3, H, W) as a view of the (F, H, W, 3) array: channels-last memory, no copy
        frames[CAMERA_KEYS[camera]] = torch.from_numpy(images[used]).permute(0, 3, 1, 2)
    return ImageWindows(
        frames=frames,
        obs_frames=torch.from_numpy(np.searchsorted(used, obs_frames).astype(np.int64)),
        agent_pos=torch.as_tensor(dataset.demos.state[obs_frames][..., :2], dtype=torch.float32),
        action=torch.as_tensor(dataset.demos.action[dataset.indices], dtype=torch.float32),
        frames_id=f"{dataset.demos.fingerprint()}/{'+'.join(cameras)}/{dataset.render_size}px/r{RENDER_VERSION}",
    )


class _ImageLoss:
    """``loss_fn(policy, (obs_frames, agent_pos, action))``: gathers the batch's images from the frames
    (moved to the batch's device on the first call: once) and calls ``policy.compute_loss``. The images
    stay uint8 until the encoder has cropped them."""

    def __init__(self, frames: dict[str, torch.Tensor], uses_agent_pos: bool):
        self.frames = frames
        self.uses_agent_pos = uses_agent_pos

    def __call__(self, model: Policy, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        index, agent_pos, action = batch
        if any(f.device != index.device for f in self.frames.values()):
            self.frames = {k: f.to(index.device) for k, f in self.frames.items()}
        obs = {k: f[index] for k, f in self.frames.items()}
        if self.uses_agent_pos:
            obs["agent_pos"] = agent_pos
        return model.compute_loss(obs, action)


def _fit_image_policy(policy: Policy, dataset: SequenceDataset, config: TrainConfig,
                      normalizers: tuple[Any, Normalizer] | None, stop: Callable[[], bool] | None
                      ) -> tuple[Policy, TrainResult]:
    """:func:`fit_policy` for image observations (see :func:`image_windows`)."""
    from dplearn.training import select_device

    c = policy.config
    if c.obs_type != dataset.obs_type:
        raise ValueError(f"the policy reads {c.obs_type!r} but the dataset holds {dataset.obs_type!r}")
    if (dataset.obs_horizon, dataset.pred_horizon) != (c.obs_horizon, c.pred_horizon):
        raise ValueError(f"the dataset's horizons (T_o={dataset.obs_horizon}, T_p={dataset.pred_horizon}) differ "
                         f"from the policy's (T_o={c.obs_horizon}, T_p={c.pred_horizon})")
    windows = image_windows(dataset)
    uses_agent_pos = c.obs_type != "pixels"
    if normalizers is None:
        pos_norm, act_norm = fit_normalizers(windows.agent_pos, windows.action)
        obs_norm = {"agent_pos": pos_norm} if uses_agent_pos else None
    else:
        obs_norm, act_norm = normalizers
    policy.set_normalizers(obs_norm, act_norm)
    pos = windows.agent_pos
    if uses_agent_pos:
        pos = policy.obs_normalizer["agent_pos"].normalize(pos).float()
    data = (windows.obs_frames, pos, act_norm.normalize(windows.action).float())
    if select_device(config.device).type == "cuda":  # the layout cuDNN's convolutions are fastest in
        policy.to(memory_format=torch.channels_last)
    identity = {"policy": policy.name, "config": _identity_config(policy), "frames": windows.frames_id,
                "windows_sha256": _tensors_fingerprint(windows.obs_frames, windows.agent_pos, windows.action)}
    result = train(policy, _ImageLoss(windows.frames, uses_agent_pos), data, config, identity=identity, stop=stop)
    trained = result.eval_model
    trained.meta = {"train_steps": int(result.step), "final_loss": float(np.mean(result.losses[-100:])),
                    "n_windows": int(windows.action.shape[0]), "train_seconds": round(float(result.total_seconds), 1)}
    return trained.eval(), result


def _identity_config(policy: Policy) -> dict[str, Any]:
    """The policy's config as it names a training run in a training state: ``control`` is left out
    when it is ``"position"``, so that states saved before chapter 10 added it still resume (a
    velocity run differs anyway, in its config and in its windows' fingerprint)."""
    config = policy.config.to_dict()
    if config.get("control") == "position":
        del config["control"]
    return config


def _tensors_fingerprint(*tensors: torch.Tensor) -> str:
    import hashlib

    h = hashlib.sha256()
    for t in tensors:
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def demos_fingerprint(demos: Demos) -> str:
    """SHA-256 of a demonstration set's arrays (states, actions, episode ends): which data a policy saw.

    Introduced in chapter 6.
    """
    return demos.fingerprint()


def recipe_train_config(recipe: PolicyRecipe, tier: str, steps: int | None = None, seed: int = 0,
                        device: str = "auto", progress: bool = True,
                        checkpoint_path: str | os.PathLike | None = None) -> TrainConfig:
    """The :class:`~dplearn.training.TrainConfig` of ``recipe`` in ``tier`` (``steps`` overrides its steps).

    Introduced in chapter 6.
    """
    n_steps = recipe.steps[tier] if steps is None else steps
    fields = recipe.train_fields(tier)
    fields["warmup_steps"] = min(fields["warmup_steps"], n_steps)
    return TrainConfig(steps=n_steps, seed=seed, device=device, progress=progress,
                       checkpoint_path=checkpoint_path,
                       checkpoint_every=0 if checkpoint_path is None else max(1, min(1000, n_steps // 10)),
                       **fields)


def demos_for_control(demos: Demos, control: str) -> Demos:
    """``demos`` with the actions a policy of ``control`` learns: unchanged when they already are
    of that kind (``meta["control"]``, ``"position"`` when absent), converted by
    :func:`~dplearn.data.velocity_actions` for ``"velocity"``; velocity data for a position policy
    is refused with a ``ValueError``.

    Introduced in chapter 10.
    """
    control = choice("control", control, CONTROLS)
    have = demos_control(demos)
    if have == control:
        return demos
    if control == "velocity":
        return velocity_actions(demos)
    raise ValueError("the demonstrations hold velocity actions (meta['control'] == 'velocity') but the policy's "
                     "control is 'position': train it on target positions, or with control='velocity'")


def train_pusht_policy(name: str, tier: str = "full", steps: int | None = None, seed: int = 0,
                       device: str = "auto", demos: Demos | None = None, progress: bool = True,
                       checkpoint_path: str | os.PathLike | None = None,
                       config_overrides: Mapping[str, Any] | None = None,
                       obs_type: str | None = None, amp: str | None = "__recipe__", lr: float | None = None,
                       stop: Callable[[], bool] | None = None, eval_every: int = 0,
                       eval_fn: Callable[[int, Policy], Any] | None = None,
                       control: str | None = None) -> tuple[Policy, TrainResult]:
    """Train policy ``name`` on the shipped Push-T demonstrations with its recipe for ``obs_type``.

    ``tier`` picks the recipe's size and number of steps (``steps`` overrides the steps); ``amp``
    overrides the recipe's mixed precision (``None``, ``"bf16"``, ``"fp16"``, ``"auto"``) and ``lr`` its
    peak learning rate; ``stop`` ends the run early at a step boundary (the state is saved);
    ``checkpoint_path`` is the training state to save to and resume from (every tenth of the run,
    at most every 1000 steps; not the policy file: save that with ``policy.save``); ``eval_fn(step,
    policy)`` is called every ``eval_every`` steps with the EMA policy (see :func:`fit_policy`).
    ``control`` (chapter 10): ``"position"`` (the recipes' and the default) trains on the target
    positions, ``"velocity"`` on the displacements of :func:`~dplearn.data.velocity_actions`
    (see :func:`demos_for_control`); it is stored in the policy's config, so an evaluation of the
    saved policy uses the matching environment. ``None`` keeps ``config_overrides``' ``control``, if any.

    Introduced in chapter 6 (``control``: chapter 10).
    """
    obs_type, recipe = recipe_for(name, obs_type)
    if control is not None:
        control = choice("control", control, CONTROLS)
    if tier not in recipe.steps:
        raise ValueError(f"tier must be one of {sorted(recipe.steps)}, got {tier!r}")
    demos = load_pusht_demos() if demos is None else demos
    config = recipe.policy_config(tier)
    config.update(config_overrides or {})
    if control is not None:
        config["control"] = control
    seed_everything(seed)  # the initial weights too: one seed names the whole run
    policy = make_policy(name, config)
    c = policy.config
    source = demos  # its fingerprint names the file; the conversion is recorded as meta["control"]
    demos = demos_for_control(demos, c.control)
    dataset = SequenceDataset(demos, c.obs_horizon, c.pred_horizon, c.action_horizon, obs_type=c.obs_type)
    train_config = recipe_train_config(recipe, tier, steps, seed, device, progress, checkpoint_path)
    if amp != "__recipe__":
        train_config = dataclasses.replace(train_config, amp=amp)
    if lr is not None:
        train_config = dataclasses.replace(train_config, lr=lr)
    start = time.perf_counter()
    trained, result = fit_policy(policy, dataset, train_config, stop=stop, eval_every=eval_every, eval_fn=eval_fn)
    dev = next(trained.parameters()).device
    trained.meta.update({"task": f"pusht-{obs_type}", "control": c.control, "tier": tier, "seed": int(seed),
                         "batch_size": train_config.batch_size, "lr": train_config.lr,
                         "n_episodes": int(demos.n_episodes), "demos_sha256": demos_fingerprint(source),
                         "device": str(dev), "amp": str(result.config.get("amp")),
                         "wall_seconds": round(time.perf_counter() - start, 1)})
    if dev.type == "cuda":
        trained.meta["gpu"] = torch.cuda.get_device_name(dev)
    return trained, result
