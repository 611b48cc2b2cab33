"""Diffusion: noise schedules, the forward (noising) process, and reverse-process samplers.

- :mod:`~dplearn.diffusion.schedule` — :class:`NoiseSchedule` (linear, cosine, any betas); chapter 2.
- :mod:`~dplearn.diffusion.forward` — :func:`q_step`, :func:`q_sample` (chapter 2),
  :func:`q_posterior`, :func:`predict_x0_from_eps`, :func:`predict_eps_from_x0` (chapter 3).
- :mod:`~dplearn.diffusion.samplers` — :class:`DDPMSampler` (chapter 3), :class:`DDIMSampler` (chapter 4).

Index convention: tensors of length T, index ``t = 0 .. T-1`` is math step ``t + 1``.
"""

from dplearn.diffusion.forward import (
    predict_eps_from_x0,
    predict_x0_from_eps,
    q_posterior,
    q_sample,
    q_step,
)
from dplearn.diffusion.samplers import DDIMSampler, DDPMSampler
from dplearn.diffusion.schedule import NoiseSchedule

__all__ = [
    "NoiseSchedule",
    "q_step",
    "q_sample",
    "q_posterior",
    "predict_x0_from_eps",
    "predict_eps_from_x0",
    "DDPMSampler",
    "DDIMSampler",
]
