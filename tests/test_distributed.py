"""Data-parallel training (chapter 9): torchrun with two CPU processes (gloo) trains like one process
with the same global batch, keeps the processes identical, resumes exactly, and only rank 0 writes.

Why the two-process loss curve is close to, not bit-equal to, the one-process curve: one process
computes the gradient of the mean over 16 rows in one reduction; two processes each reduce 8 rows
and the all-reduce adds the two halves and halves the sum. The sums are the same numbers added in
another order, so float32 rounding differs in the last bits (about 1e-7 relative), and 40 AdamW
steps carry that along without growing it much: the curves agree to rtol 1e-5 (observed: ~2e-7).
Between the two processes, and between a resumed run and an uninterrupted one, nothing is reordered,
so those are compared bit for bit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dplearn.distributed import init_distributed, rank_seed, torchrun_env
from dplearn.training import TrainConfig, train

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _ddp_run as ddp  # noqa: E402  (the problems the torchrun workers train)

RTOL = 1e-5  # float32, 2 processes against 1: see the module docstring


def _torchrun(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", DPLEARN_THREADS="1", PYTHONUNBUFFERED="1")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", *args]
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}"
    return out


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    _torchrun([str(HERE / "_ddp_run.py"), str(out)], cwd=out)
    results = [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]
    for res in results:
        res["dir"] = out
    return results


def _single(loss_fn, **overrides):
    torch.set_num_threads(1)
    model, data = ddp.problem()
    result = train(model, loss_fn, data, TrainConfig(**{**ddp.CONFIG, **overrides}))
    return result, model


# --------------------------------------------------------------------------- the torchrun environment
def test_torchrun_env_reads_the_variables(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert torchrun_env() is None
    assert init_distributed() is None  # not under torchrun: nothing to do
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    info = torchrun_env()
    assert (info.rank, info.world_size, info.local_rank, info.local_world_size, info.is_main) == (3, 4, 1, 2, False)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ValueError, match="RANK=4 must be below WORLD_SIZE=4"):
        torchrun_env()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ValueError, match="RANK must be an integer"):
        torchrun_env()
    monkeypatch.delenv("RANK")
    with pytest.raises(ValueError, match="torchrun"):
        torchrun_env()
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert init_distributed() is None  # one process: the plain loop


def test_rank_seeds_keep_rank_zero_and_differ():
    assert rank_seed(7, 0) == 7
    seeds = {rank_seed(7, r) for r in range(1, 64)} | {rank_seed(8, 1), rank_seed(7, 1, step=100)}
    assert len(seeds) == 65 and 7 not in seeds and 8 not in seeds


def test_distributed_true_needs_a_process_group():
    model, data = ddp.problem()
    with pytest.raises(ValueError, match="process group"):
        train(model, ddp.plain_loss, data, TrainConfig(steps=1, batch_size=4, progress=False), distributed=True)


# --------------------------------------------------------------------------- two processes against one
def test_two_processes_follow_the_one_process_loss_curve(ddp_results):
    single, model = _single(ddp.plain_loss)
    for res in ddp_results:
        assert res["world_size"] == 2
        got = res["plain"]["losses"]
        assert got.shape == (ddp.CONFIG["steps"],)
        np.testing.assert_allclose(got, single.losses, rtol=RTOL, atol=0)
        for p, q in zip(res["plain"]["weights"], model.parameters(), strict=True):
            np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=RTOL, atol=1e-6)
    print(f"max relative loss difference, 2 processes vs 1: "
          f"{np.max(np.abs(ddp_results[0]['plain']['losses'] / single.losses - 1)):.2e}")


def test_processes_stay_identical(ddp_results):
    a, b = ddp_results
    for run in ("plain", "noisy"):
        np.testing.assert_array_equal(a[run]["losses"], b[run]["losses"])
        for p, q in zip(a[run]["weights"], b[run]["weights"], strict=True):
            assert torch.equal(p, q)
    for p, q in zip(a["plain"]["ema"], b["plain"]["ema"], strict=True):
        assert torch.equal(p, q)


def test_noise_inside_the_loss_is_drawn_per_process(ddp_results):
    # rank 0 draws as one process does, rank 1 from its own stream: the runs differ, but not by much
    single, _ = _single(ddp.noisy_loss)
    got = ddp_results[0]["noisy"]["losses"]
    assert not np.allclose(got, single.losses, rtol=1e-4)
    assert abs(got[-10:].mean() - single.losses[-10:].mean()) < 0.5 * single.losses[:5].mean()


def test_a_stop_on_one_process_stops_all_and_resume_is_exact(ddp_results):
    for res in ddp_results:
        assert res["stopped_at"] == f"stopped at step {ddp.STOP_AT} of {ddp.CONFIG['steps']}"
        assert res["saved_step"] == ddp.STOP_AT
        np.testing.assert_array_equal(res["resumed"]["losses"], res["noisy"]["losses"])
        for p, q in zip(res["resumed"]["weights"], res["noisy"]["weights"], strict=True):
            assert torch.equal(p, q)


def test_only_rank_zero_writes_the_training_state(ddp_results):
    # saves at steps 10 and 17 (the stop), then 20, 30 and 40 after the resume
    assert ddp_results[0]["saves"] == ["noisy.state"] * 5
    assert ddp_results[1]["saves"] == []


def test_a_batch_the_processes_cannot_share_is_refused(ddp_results):
    for res in ddp_results:
        assert "batch_size=15" in res["indivisible"] and "divisible by the number of processes (2)" in \
            res["indivisible"]


def test_one_process_resumes_a_two_process_state_with_a_warning(ddp_results):
    # the finished two-process state loads in one process, which says that the noise streams differ
    state = torch.load(ddp_results[0]["dir"] / "noisy.state", weights_only=True)
    assert state["world_size"] == 2 and len(state["rng_ranks"]) == 2 and state["step"] == ddp.CONFIG["steps"]
    model, data = ddp.problem()
    config = TrainConfig(**ddp.CONFIG, checkpoint_path=ddp_results[0]["dir"] / "noisy.state",
                         checkpoint_every=ddp.CHECKPOINT_EVERY)
    with pytest.warns(UserWarning, match="saved by 2 process"):
        result = train(model, ddp.noisy_loss, data, config)
    np.testing.assert_array_equal(result.losses, ddp_results[0]["noisy"]["losses"])
    for p, q in zip(model.parameters(), ddp_results[0]["noisy"]["weights"], strict=True):
        assert torch.equal(p.detach(), q)


# --------------------------------------------------------------------------- the command line
@pytest.mark.slow
def test_torchrun_dplearn_train_writes_once(tmp_path):
    out = _torchrun(["-m", "dplearn", "train", "--policy", "regression", "--budget", "quick", "--steps", "4",
                     "--device", "cpu", "--out", str(tmp_path / "policy.pt"), "--resume", str(tmp_path / "run.state"),
                     "--no-progress"], cwd=tmp_path)
    assert out.stdout.count("wrote ") == 1, out.stdout  # rank 0 alone reports and writes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy.pt", "run.state"]
    from dplearn.policies import load_policy

    policy = load_policy(tmp_path / "policy.pt")
    assert policy.meta["processes"] == 2
    assert policy.meta["command"].startswith("torchrun --nproc-per-node 2 -m dplearn train --policy regression")
    state = torch.load(tmp_path / "run.state", weights_only=True)
    assert state["world_size"] == 2 and len(state["rng_ranks"]) == 2 and state["step"] == 4
