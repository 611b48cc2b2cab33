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
  and cached on disk (chapter 9);
- :mod:`dplearn.data.results`: :func:`load_results`, the recorded results (JSON) that chapters plot,
  and :func:`recorded_run`, a shipped checkpoint's own recorded score;
- :mod:`dplearn.data.control`: :func:`velocity_actions`, the demonstrations with displacements
  instead of target positions (the velocity-control ablation of chapter 10).
"""

from dplearn.data.control import CONTROLS, demos_control, velocity_actions
from dplearn.data.demos import Demos, load_demos, load_pusht_demos, save_demos
from dplearn.data.frames import CAMERA_KEYS, OBS_CAMERAS, demo_frames
from dplearn.data.normalizer import Normalizer
from dplearn.data.results import load_results, recorded_run, shipped_data_path
from dplearn.data.sequence import (
    SequenceDataset,
    observation_to_model,
    split_episodes,
    window_indices,
)
from dplearn.envs.benchmark import IMAGE_OBS_TYPES, OBS_TYPES

__all__ = [
    "CAMERA_KEYS",
    "CONTROLS",
    "Demos",
    "IMAGE_OBS_TYPES",
    "OBS_CAMERAS",
    "demo_frames",
    "demos_control",
    "Normalizer",
    "OBS_TYPES",
    "SequenceDataset",
    "load_demos",
    "load_pusht_demos",
    "load_results",
    "observation_to_model",
    "recorded_run",
    "save_demos",
    "shipped_data_path",
    "split_episodes",
    "velocity_actions",
    "window_indices",
]
