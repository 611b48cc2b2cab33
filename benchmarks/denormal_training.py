"""Training steps on the CPU with subnormal numbers kept or flushed to zero, side by side.

x86 CPUs compute with subnormal float32 numbers (below about 1.2e-38) up to a hundred times slower than
with ordinary ones. Training makes them where a softmax gives some entries probabilities that small:
IBC's InfoNCE does once the energy separates the demonstrated action from most of its 256
counter-examples. ``dplearn.training.train`` therefore flushes them to zero on the CPU
(``dplearn.compute.flushed_denormals``), on the calling thread and on every thread of torch's pool.
This script times one training step (loss, backward; the optimiser's work does not depend on it) of
trained policies on a batch of the shipped demonstrations, with the recipe's batch size, both ways:

    PYTHONPATH=src python benchmarks/denormal_training.py
    PYTHONPATH=src python benchmarks/denormal_training.py --threads 1 2 --checkpoints checkpoints/ibc-keypoints.pt

A trained network is what matters: an untrained energy gives its counter-examples no such tiny
probabilities.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from dplearn.compute import flushed_denormals  # noqa: E402
from dplearn.data import SequenceDataset, load_pusht_demos  # noqa: E402
from dplearn.policies import load_policy  # noqa: E402
from dplearn.policy_training import demos_for_control, windows_as_tensors  # noqa: E402

DEFAULT = ["ibc-keypoints.pt", "regression-keypoints.pt", "categorical-keypoints.pt", "mixture-keypoints.pt",
           "lstm-gmm-keypoints.pt", "diffusion-cnn-keypoints.pt"]


def training_batch(policy, batch_size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of normalised demonstration windows, as the policy's training drew them."""
    c = policy.config
    demos = demos_for_control(load_pusht_demos(), c.control)
    obs, action = windows_as_tensors(SequenceDataset(demos, c.obs_horizon, c.pred_horizon, c.action_horizon,
                                                     obs_type=c.obs_type))
    pick = torch.randperm(len(obs), generator=torch.Generator().manual_seed(seed))[:batch_size]
    return (policy.obs_normalizer.normalize(obs[pick]).float(), policy.action_normalizer.normalize(action[pick]).float())


def step_seconds(policy, batch, repeats: int) -> float:
    """Best wall time of loss + backward over ``repeats`` (the same random draws each time)."""
    times = []
    for _ in range(repeats + 1):  # the first is a warm-up
        torch.manual_seed(0)
        start = time.perf_counter()
        policy.zero_grad(set_to_none=True)
        policy.compute_loss(*batch).backward()
        times.append(time.perf_counter() - start)
    return min(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", nargs="+", default=[str(ROOT / "checkpoints" / f) for f in DEFAULT])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (best is reported)")
    args = parser.parse_args()
    print(f"CPU: {platform.processor() or platform.machine()}, torch {torch.__version__}; best of {args.repeats}")
    print()
    print(f"| {'checkpoint':30s} | {'batch':>5s} | {'threads':>7s} | "
          f"{'ms, kept':>9s} | {'ms, flushed':>11s} | {'speed-up':>8s} |")
    print(f"|{'-' * 32}|{'-' * 7}|{'-' * 9}|{'-' * 11}|{'-' * 13}|{'-' * 10}|")
    for path in args.checkpoints:
        policy = load_policy(path).float().train()
        batch_size = int(policy.meta.get("batch_size", 256))
        batch = training_batch(policy, batch_size)
        for threads in args.threads:
            torch.set_num_threads(threads)
            kept = step_seconds(policy, batch, args.repeats)  # torch's default: subnormals kept
            with flushed_denormals():
                flushed = step_seconds(policy, batch, args.repeats)
            print(f"| {Path(path).name:30s} | {batch_size:5d} | {threads:7d} | "
                  f"{1000 * kept:9.1f} | {1000 * flushed:11.1f} | {kept / flushed:7.1f}x |", flush=True)


if __name__ == "__main__":
    main()
