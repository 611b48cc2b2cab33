"""Windows of (observation history, action chunk) cut from demonstrations, for training policies.

Introduced in chapter 5.

A policy with observation horizon T_o, prediction horizon T_p and action horizon T_a is trained on
windows of T_p consecutive steps of one episode. At a window starting at step t (of an episode of
length L) the sample is

    obs    = o_{t}, ..., o_{t+T_o-1}             (T_o, ...)   the history the policy conditions on
    action = a_{t}, ..., a_{t+T_p-1}             (T_p, 2)     the chunk it learns to predict

and the "current" step is t + T_o - 1: of the predicted chunk the policy executes the T_a actions
a_{t+T_o-1}, ..., a_{t+T_o+T_a-2}. Windows may hang over the edges of the episode: t runs from
-(T_o - 1) to L - T_p + (T_a - 1), i.e. ``pad_before = T_o - 1`` and ``pad_after = T_a - 1``, and a step
outside [0, L) is filled by repeating the first or last frame. Equivalently, frame j of the window
starting at t is frame clip(t + j, 0, L - 1) of the episode. This is the benchmark's sampler
(``create_indices``/``sample_sequence`` of Diffusion Policy), written here as that clipped gather.
The first window's current step is the episode's first step (its history is the first frame
repeated), and the last windows run at most T_a - 1 steps past the episode's last frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from dplearn import validate
from dplearn.data.demos import Demos
from dplearn.data.normalizer import Normalizer
from dplearn.envs.benchmark import OBS_TYPES


# ---------------------------------------------------------------------------------------------
# Episode splits
# ---------------------------------------------------------------------------------------------
def split_episodes(
    n_episodes: int, val_fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split episode indices 0..n_episodes-1 into (train, val), sorted, by whole episodes.

    Windows of one episode overlap heavily, so a split by windows would leak validation data into
    training; we split by episode. With ``val_fraction > 0`` there is at least one validation and
    one training episode; ``n_val = round(n_episodes * val_fraction)`` otherwise.

    Introduced in chapter 5.
    """
    n_episodes = validate.positive_int("n_episodes", n_episodes)
    val_fraction = validate.finite_float("val_fraction", val_fraction, low=0.0, high=1.0, high_open=True)
    n_val = 0
    if val_fraction > 0:
        if n_episodes < 2:
            raise ValueError("n_episodes must be at least 2 to hold out validation episodes")
        n_val = min(max(1, round(n_episodes * val_fraction)), n_episodes - 1)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n_episodes)
    return np.sort(perm[n_val:]).astype(np.int64), np.sort(perm[:n_val]).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Window indices
# ---------------------------------------------------------------------------------------------
def window_indices(
    episode_ends: np.ndarray,
    sequence_length: int,
    pad_before: int = 0,
    pad_after: int = 0,
    episodes: Sequence[int] | None = None,
) -> np.ndarray:
    """Flat-buffer indices of every window, shape (M, sequence_length), int64.

    Row m lists, for each of the ``sequence_length`` frames of window m, the index into the flat
    demonstration arrays: ``episode_start + clip(t + j, 0, L - 1)`` for window start t in
    ``[-pad_before, L - sequence_length + pad_after]`` (pads are clipped to sequence_length - 1, as
    in the benchmark). Windows are ordered by episode (in the order of ``episodes``), then by t.
    """
    ends = np.asarray(episode_ends, dtype=np.int64)
    if sequence_length < 1:
        raise ValueError(f"sequence_length must be at least 1, got {sequence_length}")
    if pad_before < 0 or pad_after < 0:
        raise ValueError(f"pad_before and pad_after must be >= 0, got {pad_before} and {pad_after}")
    pad_before = min(pad_before, sequence_length - 1)
    pad_after = min(pad_after, sequence_length - 1)
    starts = np.concatenate([[0], ends[:-1]])
    chosen = range(len(ends)) if episodes is None else episodes
    offsets = np.arange(sequence_length)
    rows = []
    for i in chosen:
        i = int(i)
        if not 0 <= i < len(ends):
            raise ValueError(f"episodes must hold indices in [0, {len(ends)}), got {i}")
        length = int(ends[i] - starts[i])
        t = np.arange(-pad_before, length - sequence_length + pad_after + 1)
        if t.size == 0:
            continue  # episode too short for even one window
        rows.append(starts[i] + np.clip(t[:, None] + offsets[None, :], 0, length - 1))
    if not rows:
        return np.zeros((0, sequence_length), dtype=np.int64)
    return np.concatenate(rows).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Observations from states
# ---------------------------------------------------------------------------------------------
def _keypoints_of_states(states: np.ndarray) -> np.ndarray:
    """(N, 5) states -> (N, 20) keypoint observations, exactly as the env's ``keypoints`` obs:
    the 9 block keypoints (x, y each), then the agent position."""
    from dplearn.envs.geometry import t_keypoints_batch

    states = np.asarray(states, dtype=np.float64)
    kps = t_keypoints_batch(states[:, 2:5]).reshape(len(states), -1)
    return np.concatenate([kps, states[:, :2]], axis=1).astype(np.float32)


def _render_states(states: np.ndarray, size: int, camera: str = "top") -> np.ndarray:
    """(N, 5) states -> (N, size, size, 3) uint8 renders of ``camera`` with the env's renderer."""
    from dplearn.envs.render import render_states

    return render_states(states, size=size, camera=camera)


def image_to_model(images: np.ndarray) -> np.ndarray:
    """uint8 images (..., H, W, 3) -> float32 (..., 3, H, W) in [0, 1], the layout networks take."""
    images = np.asarray(images)
    if images.ndim < 3 or images.shape[-1] != 3:
        raise ValueError(f"images must have shape (..., H, W, 3), got {images.shape}")
    return np.moveaxis(images, -1, -3).astype(np.float32) / 255.0


def observation_to_model(obs: Any, obs_type: str) -> Any:
    """One env observation (or a stack of them) -> the format :class:`SequenceDataset` yields.

    ``state``/``keypoints``: float32 array (..., D). ``pixels``: ``{"image": (..., 3, H, W)}``.
    ``pixels_agent_pos``: ``{"image": (..., 3, H, W), "agent_pos": (..., 2)}``. ``two-cameras``:
    ``{"image": top, "wrist_image": wrist, "agent_pos": (..., 2)}``. Images are float32
    in [0, 1]. Used by :func:`dplearn.evaluation.evaluate` so that a policy sees the same format in
    training and in rollouts.
    """
    if obs_type not in OBS_TYPES:
        raise ValueError(f"obs_type must be one of {OBS_TYPES}, got {obs_type!r}")
    if obs_type in ("state", "keypoints"):
        return np.asarray(obs, dtype=np.float32)
    if obs_type == "pixels":
        image = obs["pixels"] if isinstance(obs, dict) else obs
        return {"image": image_to_model(image)}
    out = {"image": image_to_model(obs["pixels"])}
    if obs_type == "two-cameras":
        out["wrist_image"] = image_to_model(obs["wrist_pixels"])
    out["agent_pos"] = np.asarray(obs["agent_pos"], dtype=np.float32)
    return out


# ---------------------------------------------------------------------------------------------
# The dataset
# ---------------------------------------------------------------------------------------------
class SequenceDataset(torch.utils.data.Dataset):
    """(observation history, action chunk) windows of demonstrations, with edge padding.

    Parameters
    ----------
    demos : Demos
        The demonstrations (states and actions).
    obs_horizon : int
        T_o, the number of observations the policy conditions on (>= 1).
    pred_horizon : int
        T_p, the length of the predicted action chunk (>= T_o).
    action_horizon : int
        T_a, how many of the predicted actions are executed (1 <= T_a <= T_p - T_o + 1).
    obs_type : str
        ``"state"`` (5 numbers), ``"keypoints"`` (block keypoints and agent position), ``"pixels"``,
        ``"pixels_agent_pos"`` or ``"two-cameras"`` (images rendered from the stored states on first
        use, cached in memory; training renders them all at once instead, see
        :func:`dplearn.data.frames.demo_frames`).
    episodes : sequence of int, optional
        Which episodes to use (e.g. the train half of :func:`split_episodes`); all by default.
    render_size : int
        Image side for pixel observations (the benchmark uses 96).

    Each item is a dict of torch float32 tensors:

    =========================  ======================  ===========================================
    key                        shape                   meaning
    =========================  ======================  ===========================================
    ``obs`` (state/keypoints)  (T_o, D)                the observation history
    ``obs`` (pixels...)        dict ``image``          (T_o, 3, H, W) in [0, 1], and ``agent_pos``
                                                       (T_o, 2) for ``pixels_agent_pos``;
                                                       ``two-cameras`` adds ``wrist_image``
    ``action``                 (T_p, 2)                the action chunk (target positions)
    =========================  ======================  ===========================================

    Values are raw (not normalised); :meth:`get_normalizer` fits the normalisers on this
    dataset's episodes.

    Introduced in chapter 5.
    """

    def __init__(
        self,
        demos: Demos,
        obs_horizon: int = 2,
        pred_horizon: int = 16,
        action_horizon: int = 8,
        obs_type: str = "state",
        episodes: Sequence[int] | None = None,
        render_size: int = 96,
    ):
        if not isinstance(demos, Demos):
            raise ValueError(f"demos must be a Demos, got {type(demos).__name__}")
        obs_horizon, pred_horizon, action_horizon, render_size = (
            validate.positive_int(name, value) for name, value in (
                ("obs_horizon", obs_horizon), ("pred_horizon", pred_horizon),
                ("action_horizon", action_horizon), ("render_size", render_size)))
        if pred_horizon < obs_horizon:
            raise ValueError(
                f"pred_horizon (T_p={pred_horizon}) must be >= obs_horizon (T_o={obs_horizon})"
            )
        if action_horizon > pred_horizon - obs_horizon + 1:
            raise ValueError(
                f"action_horizon (T_a={action_horizon}) must be <= T_p - T_o + 1 = "
                f"{pred_horizon - obs_horizon + 1}: the executed actions start at the current step"
            )
        if obs_type not in OBS_TYPES:
            raise ValueError(f"obs_type must be one of {OBS_TYPES}, got {obs_type!r}")
        self.demos = demos
        self.obs_horizon = int(obs_horizon)
        self.pred_horizon = int(pred_horizon)
        self.action_horizon = int(action_horizon)
        self.obs_type = obs_type
        self.render_size = int(render_size)
        self.episodes = (np.arange(demos.n_episodes) if episodes is None
                         else np.asarray(list(episodes), dtype=np.int64))
        self.indices = window_indices(
            demos.episode_ends, self.pred_horizon,
            pad_before=self.obs_horizon - 1, pad_after=self.action_horizon - 1,
            episodes=self.episodes,
        )
        # flat indices of the frames this dataset uses (for normalisers and caches)
        self.frames = np.unique(self.indices)
        self._vector_obs: np.ndarray | None = None
        self._images: dict[str, np.ndarray] = {}
        self._rendered: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    # ---- observations --------------------------------------------------------------------------
    def vector_obs(self) -> np.ndarray:
        """(N, D) float32 low-dimensional observation of every flat frame (state or keypoints)."""
        if self._vector_obs is None:
            if self.obs_type == "keypoints":
                self._vector_obs = _keypoints_of_states(self.demos.state)
            else:
                self._vector_obs = self.demos.state.astype(np.float32)
        return self._vector_obs

    def images(self, flat_indices: np.ndarray, camera: str = "top") -> np.ndarray:
        """(len, H, W, 3) uint8 renders of the given flat frames by ``camera`` (``"top"`` or
        ``"wrist"``), rendered once and cached."""
        if camera not in self._images:
            n = self.demos.n_steps
            self._images[camera] = np.zeros((n, self.render_size, self.render_size, 3), dtype=np.uint8)
            self._rendered[camera] = np.zeros(n, dtype=bool)
        images, rendered = self._images[camera], self._rendered[camera]
        flat_indices = np.asarray(flat_indices)
        todo = np.unique(flat_indices[~rendered[flat_indices]])
        if todo.size:
            images[todo] = _render_states(self.demos.state[todo], self.render_size, camera)
            rendered[todo] = True
        return images[flat_indices]

    @property
    def obs_frames(self) -> np.ndarray:
        """(M, T_o) int64: the flat frame index of each observation of each window (the first T_o
        columns of :attr:`indices`)."""
        return self.indices[:, :self.obs_horizon]

    def _obs(self, frames: np.ndarray) -> Any:
        if self.obs_type in ("state", "keypoints"):
            return torch.from_numpy(self.vector_obs()[frames])
        out = {"image": torch.from_numpy(image_to_model(self.images(frames)))}
        if self.obs_type == "two-cameras":
            out["wrist_image"] = torch.from_numpy(image_to_model(self.images(frames, "wrist")))
        if self.obs_type in ("pixels_agent_pos", "two-cameras"):
            out["agent_pos"] = torch.from_numpy(self.demos.state[frames, :2].astype(np.float32))
        return out

    def __getitem__(self, idx: int) -> dict[str, Any]:
        if not -len(self) <= idx < len(self):
            raise IndexError(f"window index {idx} out of range for {len(self)} windows")
        frames = self.indices[idx]
        return {
            "obs": self._obs(frames[: self.obs_horizon]),
            "action": torch.from_numpy(self.demos.action[frames].astype(np.float32)),
        }

    # ---- normalisation -------------------------------------------------------------------------
    def get_normalizer(self) -> dict[str, Normalizer]:
        """Min-max normalisers fitted on this dataset's frames: ``action``, and ``obs`` (state /
        keypoints) or ``agent_pos`` (pixels_agent_pos, two-cameras). Images are already in [0, 1]."""
        out = {"action": Normalizer.fit(self.demos.action[self.frames])}
        if self.obs_type in ("state", "keypoints"):
            out["obs"] = Normalizer.fit(self.vector_obs()[self.frames])
        elif self.obs_type in ("pixels_agent_pos", "two-cameras"):
            out["agent_pos"] = Normalizer.fit(self.demos.state[self.frames, :2])
        return out

    def __repr__(self) -> str:
        return (f"SequenceDataset({len(self)} windows from {len(self.episodes)} episodes, "
                f"obs_type={self.obs_type!r}, T_o={self.obs_horizon}, T_p={self.pred_horizon}, "
                f"T_a={self.action_horizon})")
