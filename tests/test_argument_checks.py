"""The library's arguments go through :mod:`dplearn.validate`: one rule and one message per kind of bad input.

Floats refuse NaN and ±inf; integers accept NumPy integers wherever Python integers are accepted;
the message names the argument (for config fields, ``ConfigName.field``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dplearn.data import Normalizer
from dplearn.data.sequence import split_episodes
from dplearn.diffusion import DDIMSampler, NoiseSchedule
from dplearn.envs import PushTEnv
from dplearn.envs.render import render_state, render_wrist
from dplearn.nets import (
    FiLM,
    MLPDenoiser,
    RandomCrop,
    SinusoidalTimeEmbedding,
    SpatialSoftmax,
    TransformerDenoiser,
)
from dplearn.policies import make_config, make_policy

STATE = [100.0, 100.0, 250.0, 250.0, 0.5]


@pytest.mark.parametrize("make, message", [
    (lambda: SpatialSoftmax(8, 4, temperature=math.inf), "temperature must be a finite number > 0.0, got inf"),
    (lambda: SinusoidalTimeEmbedding(8, max_period=math.inf), "max_period must be a finite number > 1.0, got inf"),
    (lambda: SinusoidalTimeEmbedding(6.0), "dim must be an integer >= 4, got 6.0"),
    (lambda: TransformerDenoiser(2, 4, 3, 2, p_drop_attn=math.nan), r"p_drop_attn must be a finite number in "
                                                                    r"\[0.0, 1.0\), got nan"),
    (lambda: MLPDenoiser(2, hidden=0), "hidden must be an integer >= 1, got 0"),
    (lambda: MLPDenoiser(2)(torch.zeros(3, 2), math.nan), "t must be a finite number, got nan"),
    (lambda: FiLM(True, 4), "cond_dim must be an integer >= 1, got True"),
    (lambda: RandomCrop(0), "size must be an integer >= 1, got 0"),
    (lambda: Normalizer(np.zeros(2), np.ones(2), range_eps=math.inf), "range_eps must be a finite number >= 0.0"),
    (lambda: split_episodes(10, val_fraction=math.nan), r"val_fraction must be a finite number in \[0.0, 1.0\)"),
    (lambda: split_episodes(0), "n_episodes must be an integer >= 1, got 0"),
    (lambda: PushTEnv(obs_size=7), "obs_size must be an integer >= 8, got 7"),
    (lambda: render_state(STATE, size=4), "size must be an integer >= 8, got 4"),
    (lambda: render_wrist(STATE, field=math.inf), "field must be a finite number > 0.0, got inf"),
    (lambda: make_config("mixture", min_std=math.nan), "MixtureConfig.min_std must be a finite number > 0.0, got nan"),
    (lambda: make_config("categorical", temperature=math.inf), "CategoricalConfig.temperature must be a finite"),
    (lambda: make_config("categorical", n_bins=1), "CategoricalConfig.n_bins must be an integer >= 2, got 1"),
    (lambda: make_config("regression", obs_type="pixel"), "RegressionConfig.obs_type must be one of 'state', "),
    (lambda: make_config("diffusion-cnn", clip_sample=1), "DiffusionConfig.clip_sample must be True or False, got 1"),
    (lambda: make_config("diffusion-transformer", p_drop_emb=math.inf),
     r"TransformerDiffusionConfig.p_drop_emb must be a finite number in \[0.0, 1.0\), got inf"),
    (lambda: make_config("lstm-gmm", low_noise_eval="yes"), "LSTMGMMConfig.low_noise_eval must be True or False"),
    (lambda: make_policy("diffusion-cnn", down_dims=(8, 16), n_groups=4, step_embed_dim=8).set_sampler("ddim", 2.5),
     "steps must be an integer >= 1, got 2.5"),
])
def test_bad_arguments_are_refused_with_the_shared_message(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_numpy_integers_are_accepted_wherever_python_integers_are():
    n = np.int64
    assert FiLM(n(3), n(4)).cond_dim == 3
    assert MLPDenoiser(n(2), hidden=n(8), n_layers=n(1))(torch.zeros(3, 2), n(5)).shape == (3, 2)
    assert SpatialSoftmax(n(8), n(4)).num_keypoints == 4
    assert DDIMSampler(NoiseSchedule.cosine(n(20)), n(5)).num_steps == 5
    assert make_config("regression", hidden=n(16), obs_horizon=n(2)).hidden == 16
    assert PushTEnv(obs_size=n(32)).obs_size == 32
    assert render_state(STATE, size=n(16)).shape == (16, 16, 3)
    train, val = split_episodes(n(10), 0.2)
    assert len(train) + len(val) == 10
