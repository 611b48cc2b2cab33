"""IBC's derivative-free search at inference, several ways, on the same checkpoints and test starts.

Is an IBC policy's score limited by the search that minimises its energy, or by the energy itself? For
each checkpoint and each DFO setting — the population M, the rounds, the initial noise sigma and its
shrink factor per round — this scores the policy on the first N of the benchmark's test starts (the same
starts for every setting, stepped side by side as ``dplearn eval`` does) and times it, in all and per
episode step:

    PYTHONPATH=src python benchmarks/ibc_search.py --checkpoints checkpoints/ibc-keypoints.pt --episodes 10

The settings: the checkpoint's own (its recipe's); the Diffusion Policy code's IBC search (1,024 samples,
5 rounds, a fixed sigma of 0.03 in normalised units); four times the samples; twice the rounds. If the
search were the limit, a wider or longer one would score higher.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from dplearn.compute import set_torch_threads  # noqa: E402
from dplearn.envs.benchmark import TEST_SEED  # noqa: E402
from dplearn.evaluation import evaluate  # noqa: E402
from dplearn.policies import load_policy  # noqa: E402


def settings(config) -> dict[str, dict]:
    """Name -> DFO fields, the checkpoint's own first."""
    own = {"dfo_samples": config.dfo_samples, "dfo_iterations": config.dfo_iterations,
           "dfo_noise": config.dfo_noise, "dfo_shrink": config.dfo_shrink}
    return {
        "own": own,
        "Diffusion Policy code": {"dfo_samples": 1024, "dfo_iterations": 5, "dfo_noise": 0.03, "dfo_shrink": 1.0},
        "4x samples": {**own, "dfo_samples": 4 * config.dfo_samples},
        "2x rounds": {**own, "dfo_iterations": 2 * config.dfo_iterations},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoints", nargs="+", default=[str(ROOT / "checkpoints" / "ibc-keypoints.pt")])
    ap.add_argument("--episodes", type=int, default=10, help="the first N test starts (default 10)")
    ap.add_argument("--seed", type=int, default=TEST_SEED, help=f"first start's seed (default {TEST_SEED})")
    args = ap.parse_args()
    if args.episodes < 2:
        ap.error(f"--episodes must be at least 2 (a standard error needs two), got {args.episodes}")
    threads = set_torch_threads()
    print(f"# IBC's search, {args.episodes} test starts from seed {args.seed}; {platform.processor() or 'cpu'}, "
          f"{threads} torch thread(s)\n")
    print("| checkpoint | search | samples | rounds | sigma | shrink | score | success | s | ms per step |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for path in args.checkpoints:
        base = load_policy(path)
        if base.name != "ibc":
            raise SystemExit(f"ibc_search: --checkpoints: {path} holds a {base.name!r} policy, not an IBC one")
        for name, fields in settings(base.config).items():
            policy = load_policy(path)
            policy.config = dataclasses.replace(policy.config, **fields)
            start = time.perf_counter()
            r = evaluate(policy, n_episodes=args.episodes, seed=args.seed, progress=False)
            seconds = time.perf_counter() - start
            sem = r.max_rewards.std(ddof=1) / np.sqrt(r.n_episodes)
            steps = int(r.steps.sum())
            print(f"| {Path(path).name} | {name} | {fields['dfo_samples']:,} | {fields['dfo_iterations']} | "
                  f"{fields['dfo_noise']:g} | {fields['dfo_shrink']:g} | {r.score:.3f} ± {sem:.3f} | "
                  f"{r.success_rate:.0%} | {seconds:.0f} | {1000 * seconds / steps:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
