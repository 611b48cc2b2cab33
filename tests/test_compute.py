"""The one rule for torch on the CPU: DPLEARN_THREADS, else the cores this process may use; subnormal
numbers flushed to zero while training."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from dplearn.compute import (
    THREADS_ENV_VAR,
    denormals_flushed,
    flushed_denormals,
    set_torch_threads,
    torch_threads,
)
from dplearn.training import TrainConfig, train


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_environment_variable_sets_the_thread_count_and_wins(monkeypatch, restore_threads):
    monkeypatch.setenv(THREADS_ENV_VAR, "1")
    assert torch_threads() == 1 and set_torch_threads() == 1 and torch.get_num_threads() == 1
    assert set_torch_threads(3) == 1  # the environment overrides what a chapter asks for


def test_without_the_variable_every_usable_core(monkeypatch, restore_threads):
    monkeypatch.delenv(THREADS_ENV_VAR, raising=False)
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert torch_threads() == expected
    assert set_torch_threads(1) == 1 and torch.get_num_threads() == 1


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_bad_values_are_refused_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv(THREADS_ENV_VAR, value)
    with pytest.raises(ValueError, match=f"{THREADS_ENV_VAR} must be a positive integer"):
        torch_threads()
    monkeypatch.delenv(THREADS_ENV_VAR)
    with pytest.raises(ValueError, match="n must be an integer >= 1, got 0"):
        set_torch_threads(0)


SUBNORMAL = 1e-39  # below float32's smallest normal number, and not zero


def _can_flush() -> bool:
    supported = torch.set_flush_denormal(True)
    torch.set_flush_denormal(False)
    return supported


def test_the_subnormal_constant_is_subnormal_in_float32():
    value = np.float32(SUBNORMAL)
    assert 0 < value < np.finfo(np.float32).tiny


@pytest.mark.skipif(not _can_flush(), reason="this CPU cannot flush subnormal numbers")
def test_flushing_reaches_every_thread_of_a_parallel_operation_and_is_undone(restore_threads):
    torch.set_num_threads(2)
    x = torch.full((1_000_000,), SUBNORMAL)  # large enough that torch splits x * 1 across its threads
    assert not denormals_flushed() and bool(((x * 1.0) == x).all())  # IEEE: x * 1 is x
    with flushed_denormals() as on:
        assert on and denormals_flushed()
        assert int(((x * 1.0) == 0).sum()) == x.numel()  # every chunk, not only the calling thread's
    assert not denormals_flushed() and bool(((x * 1.0) == x).all())
    with flushed_denormals(enabled=False) as on:
        assert not on and bool(((x * 1.0) == x).all())


@pytest.mark.skipif(not _can_flush(), reason="this CPU cannot flush subnormal numbers")
def test_training_on_the_cpu_flushes_subnormals_and_restores_the_setting_after():
    seen = []
    model = torch.nn.Linear(2, 1)

    def loss_fn(m, batch):
        seen.append(denormals_flushed())
        return (m(batch[0]) - batch[1]).pow(2).mean()

    data = (torch.randn(64, 2), torch.randn(64, 1))
    train(model, loss_fn, data, TrainConfig(steps=3, batch_size=8, device="cpu", progress=False))
    assert seen == [True, True, True] and not denormals_flushed()
