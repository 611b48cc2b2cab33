"""Evaluation speed: Push-T episodes per second, sequential against worker processes.

``dplearn.evaluation.evaluate(..., workers=N)`` steps the environments in N processes (the policy
stays in the calling process and is called on the same batches), or, for a per-step callable such
as the scripted expert, runs whole episodes in the workers. The per-episode results are identical;
this script measures the wall time, and checks the identity on every row.

Policies, side by side (the first three by default):

- ``expert``: the scripted expert on states (one action per call, the expert's planning costs more
  than the physics: whole episodes go to the workers);
- ``regression``: the shipped regression checkpoint (a small MLP, one action per call: the policy is
  cheap, the physics is most of the time);
- ``diffusion-ddim10``: the shipped diffusion-cnn checkpoint sampling DDIM-10, chunks of 8 actions
  (the network is most of the time on a CPU; on a GPU the physics matters again);
- ``diffusion-ddpm100``: the same with DDPM-100 (slow on a CPU; add it on a GPU machine).

    python benchmarks/eval_speed.py                          # 20 episodes, workers 1, 2 and all cores
    python benchmarks/eval_speed.py --episodes 50 --workers 1 2 4 8 16 --policies expert regression \\
        diffusion-ddim10 diffusion-ddpm100 --device cuda --json runs/eval_speed.json

Timed with a pool already started (as during training, where one pool serves every evaluation);
the pool's start-up (spawning the processes) is reported in its own column. The load average of
the machine is printed with the table: on a busy machine the workers wait for a core.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ("expert", "regression", "diffusion-ddim10", "diffusion-ddpm100")


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def make(name: str, device: str):
    from dplearn.policies import load_policy
    from dplearn.policy_protocol import ExpertPolicy

    if name == "expert":
        return ExpertPolicy()
    if name == "regression":
        return load_policy(ROOT / "checkpoints" / "regression-keypoints.pt").to(device)
    policy = load_policy(ROOT / "checkpoints" / "diffusion-cnn-keypoints.pt").to(device)
    policy.set_sampler(*(("ddim", 10) if name == "diffusion-ddim10" else ("ddpm", 100)))
    return policy


def policy_obs_type(policy) -> str:
    return getattr(policy, "obs_type", "state")


def same(a, b) -> bool:
    return all(x.seed == y.seed and np.array_equal(x.rewards, y.rewards) and np.array_equal(x.states, y.states)
               and np.array_equal(x.actions, y.actions) for x, y in zip(a.episodes, b.episodes, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20, help="episodes per row (default 20)")
    parser.add_argument("--envs", type=int, default=None, help="episodes side by side (default: all of them)")
    parser.add_argument("--seed", type=int, default=100_000, help="first episode's seed (default 100000)")
    parser.add_argument("--workers", type=int, nargs="+", default=None,
                        help="pool sizes to time (default: 1, 2 and the number of cores)")
    parser.add_argument("--policies", nargs="+", choices=POLICIES, default=list(POLICIES[:3]))
    parser.add_argument("--device", default="cpu", help="device of the network policies (default cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads of this process (default: all cores)")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args()

    import torch

    from dplearn.compute import set_torch_threads
    from dplearn.envs import PushTEnv
    from dplearn.envs.parallel import EnvWorkers
    from dplearn.evaluation import evaluate

    threads = set_torch_threads(args.threads)
    workers = sorted(set(args.workers or [1, 2, cores()]))
    n_envs = args.envs or args.episodes
    rows = []
    for name in args.policies:
        policy = make(name, args.device)
        evaluate(policy, n_episodes=1, seed=args.seed, max_steps=16, progress=False)  # warm-up (kernels, caches)
        base = None
        for w in workers:
            start = time.perf_counter()
            pool = EnvWorkers(w) if w > 1 else None
            try:
                if pool is not None:  # start-up: the processes, and the environments they build
                    pool.configure(PushTEnv, policy_obs_type(policy), {}, n_envs)
                started = time.perf_counter() - start
                t = time.perf_counter()
                result = evaluate(policy, n_episodes=args.episodes, seed=args.seed, n_envs=n_envs, progress=False,
                                  workers=pool if pool is not None else 1)
                seconds = time.perf_counter() - t
            finally:
                if pool is not None:
                    pool.close()
            if base is None:
                base = (seconds, result)
            row = {"policy": name, "workers": w, "episodes": args.episodes, "envs": n_envs,
                   "env_steps": int(result.steps.sum()), "seconds": seconds,
                   "episodes_per_s": args.episodes / seconds, "speedup": base[0] / seconds,
                   "pool_start_s": started if pool is not None else 0.0, "score": result.score,
                   "same_as_sequential": same(base[1], result)}
            rows.append(row)
            print(f"  {name:18s} workers={w:2d} {seconds:7.2f} s  {row['episodes_per_s']:6.2f} episodes/s  "
                  f"x{row['speedup']:.2f}  same={row['same_as_sequential']}", flush=True)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print()
    print(f"{platform.processor() or platform.machine()}, {cores()} cores, load average {load:.1f} at the end; "
          f"torch {torch.__version__}, {threads} torch thread(s), policies on {args.device}; "
          f"{args.episodes} episodes from seed {args.seed}, {n_envs} side by side")
    print()
    print("| policy | workers | episodes/s | env steps/s | speed-up | pool start | same episodes |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        print(f"| {r['policy']} | {r['workers']} | {r['episodes_per_s']:.2f} | {r['env_steps'] / r['seconds']:,.0f} | "
              f"{r['speedup']:.2f}x | {r['pool_start_s']:.1f} s | {'yes' if r['same_as_sequential'] else 'NO'} |")
    if not all(r["same_as_sequential"] for r in rows):
        raise SystemExit("eval_speed: a parallel evaluation differed from the sequential one")
    if args.json:
        meta = {"cpu": platform.processor() or platform.machine(), "cores": cores(), "load_average": load,
                "torch": torch.__version__, "threads": threads, "device": args.device,
                "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
