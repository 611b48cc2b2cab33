"""Demonstrations and datasets: storage, observation/action windows, normalisation.

Introduced in chapter 5.

- :mod:`dplearn.data.demos`: :class:`Demos` (flat replay-buffer layout), :func:`save_demos`,
  :func:`load_demos`, :func:`load_pusht_demos` (the shipped Push-T demonstrations);
- :mod:`dplearn.data.sequence`: :class:`SequenceDataset` of (T_o observations, T_p actions) windows
  with edge padding, :func:`split_episodes`;
- :mod:`dplearn.data.normalizer`: :class:`Normalizer`, min-max to [-1, 1] per dimension.
"""

from dplearn.data.demos import Demos, load_demos, load_pusht_demos, save_demos
from dplearn.data.normalizer import Normalizer
from dplearn.data.sequence import (
    OBS_TYPES,
    SequenceDataset,
    observation_to_model,
    split_episodes,
    window_indices,
)

__all__ = [
    "Demos",
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
