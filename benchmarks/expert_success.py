"""How often, how fast and how cheaply the scripted Push-T expert solves Push-T; prints a table.

Two disjoint ranges of environment seeds: the range the expert was tuned on and a held-out range
it never saw while it was being written. Each episode starts from ``env.reset(seed=s)`` and the
expert is seeded with ``s`` as well; success means coverage > 0.95 within 300 steps.

    python benchmarks/expert_success.py                      # both ranges, 200 + 200 episodes
    python benchmarks/expert_success.py --held-out 10000 100 --tuning 0 0 --workers 2
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

import numpy as np

from dplearn.envs import PushTEnv
from dplearn.experts import PushTExpert

TUNING = (0, 200)  # env seeds the expert's parameters were chosen on
HELD_OUT = (10_000, 200)  # env seeds kept aside to measure it


def run_episode(seed: int) -> tuple[int, bool, int, float, float]:
    """(seed, success, steps, final coverage, seconds spent in the expert) of one episode."""
    env = PushTEnv(obs_type="state")
    expert = PushTExpert(seed=seed)
    obs, info = env.reset(seed=seed)
    thinking = 0.0
    steps = 0
    while steps < 300:
        t0 = time.perf_counter()
        action = expert(obs)
        thinking += time.perf_counter() - t0
        obs, _, terminated, _, info = env.step(action)
        steps += 1
        if terminated:
            break
    return seed, bool(info["is_success"]), steps, float(info["coverage"]), thinking


def measure(first: int, count: int, workers: int) -> dict:
    seeds = list(range(first, first + count))
    t0 = time.perf_counter()
    if workers > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            rows = pool.map(run_episode, seeds, chunksize=4)
    else:
        rows = [run_episode(s) for s in seeds]
    wall = time.perf_counter() - t0
    ok = np.array([r[1] for r in rows])
    steps = np.array([r[2] for r in rows])
    thinking = sum(r[4] for r in rows)
    return {
        "seeds": f"{first}..{first + count - 1}",
        "episodes": count,
        "success": ok.mean(),
        "mean_steps": steps[ok].mean() if ok.any() else float("nan"),
        "median_steps": float(np.median(steps[ok])) if ok.any() else float("nan"),
        "max_steps": int(steps[ok].max()) if ok.any() else 0,
        "ms_per_step": 1e3 * thinking / steps.sum(),
        "wall_s": wall,
        "failed": [r[0] for r in rows if not r[1]],
        "failed_coverage": [round(r[3], 3) for r in rows if not r[1]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tuning", nargs=2, type=int, default=TUNING, metavar=("FIRST", "COUNT"))
    parser.add_argument("--held-out", nargs=2, type=int, default=HELD_OUT, metavar=("FIRST", "COUNT"))
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    results = []
    for name, (first, count) in (("tuning", args.tuning), ("held-out", args.held_out)):
        if count > 0:
            results.append((name, measure(first, count, args.workers)))

    header = (f"{'seeds':<10} {'range':<14} {'episodes':>8} {'success':>8} {'mean steps':>10} "
              f"{'median':>7} {'max':>5} {'expert ms/step':>14} {'wall s':>7}")
    print(header)
    print("-" * len(header))
    for name, r in results:
        print(f"{name:<10} {r['seeds']:<14} {r['episodes']:>8} {r['success']:>8.1%} "
              f"{r['mean_steps']:>10.1f} {r['median_steps']:>7.1f} {r['max_steps']:>5} "
              f"{r['ms_per_step']:>14.2f} {r['wall_s']:>7.1f}")
    for name, r in results:
        if r["failed"]:
            print(f"{name}: failed seeds {r['failed']} (final coverage {r['failed_coverage']})")


if __name__ == "__main__":
    main()
