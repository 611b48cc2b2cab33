"""Demonstrations and datasets: storage, observation/action windows, normalisation.

Introduced in chapter 5.

- :mod:`dplearn.data.demos`: :class:`Demos` (flat replay-buffer layout), :func:`save_demos`,
  :func:`load_demos`, :func:`load_pusht_demos` (the shipped Push-T demonstrations);
- :mod:`dplearn.data.sequence`: :class:`SequenceDataset` of (T_o observations, T_p actions) windows
  with edge padding, :func:`split_episodes`;
- :mod:`dplearn.data.normalizer`: :class:`Normalizer`, min-max to [-1, 1] per dimension;
- :mod:`dplearn.data.toy`: :class:`~dplearn.data.toy.ToyDemos` and
  :func:`~dplearn.data.toy.make_toy_demos`, scripted demonstrations of chapter 6's toy task;
- :mod:`dplearn.data.frames`: :func:`demo_frames`, every demonstration frame rendered once per camera
  and cached on disk (chapter 9).
"""

from dplearn.data.demos import Demos, load_demos, load_pusht_demos, save_demos
from dplearn.data.frames import CAMERA_KEYS, OBS_CAMERAS, demo_frames
from dplearn.data.normalizer import Normalizer
from dplearn.data.sequence import (
    SequenceDataset,
    observation_to_model,
    split_episodes,
    window_indices,
)
from dplearn.envs.benchmark import IMAGE_OBS_TYPES, OBS_TYPES

__all__ = [
    "CAMERA_KEYS",
    "Demos",
    "IMAGE_OBS_TYPES",
    "OBS_CAMERAS",
    "demo_frames",
    "Normalizer",
    "OBS_TYPES",
    "SequenceDataset",
    "load_demos",
    "load_pusht_demos",
    "observation_to_model",
    "save_demos",
    "split_episodes",
    "window_indices",
]
