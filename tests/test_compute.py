"""The one rule for torch's CPU threads: DPLEARN_THREADS, else the cores this process may use."""

from __future__ import annotations

import os

import pytest
import torch

from dplearn.compute import THREADS_ENV_VAR, set_torch_threads, torch_threads


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
