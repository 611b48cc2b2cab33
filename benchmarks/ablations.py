"""Execution-time ablations of a trained Diffusion Policy: action horizon, latency, sampler steps.

The paper's design choices that need no retraining, measured on one trained policy (by default the
shipped ``checkpoints/diffusion-cnn-keypoints.pt``) on the benchmark's test starts:

* **action horizon** T_a — how many of the predicted actions are executed before predicting again
  (the paper finds 8 best of 1-16: shorter loses temporal consistency, longer reacts late);
* **latency** k — the actions start k steps after the observation they come from (the paper's
  policy stays robust up to about 4 steps, thanks to position control and action sequences);
* **sampler steps** — DDPM with all 100 steps against DDIM with 1-20, score against the time of
  one prediction (batch 1, this machine).

T_a and k use :class:`dplearn.policy_protocol.RecedingHorizon` on the same weights.

    PYTHONPATH=src python benchmarks/ablations.py                          # 50 starts, every sweep
    PYTHONPATH=src python benchmarks/ablations.py --episodes 20 --sweeps latency --sampler ddim-10
    PYTHONPATH=src python benchmarks/ablations.py --episodes 2 --max-steps 40 --out /tmp/abl.json  # smoke

It prints one table per sweep and writes every point (score, success rate, seconds, the settings)
with the machine, torch version and command to ``--out`` (JSON); ``--publish FILE`` writes the same
where the book reads it (e.g. ``data/ablations.json``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import sys
import time
from pathlib import Path

import torch

from dplearn.envs.benchmark import TEST_SEED
from dplearn.evaluation import evaluate
from dplearn.policies import load_policy
from dplearn.policy_protocol import RecedingHorizon

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = ("action-horizon", "latency", "samplers")


def parse_sampler(text: str) -> tuple[str, int]:
    """``"ddim-10"`` → ``("ddim", 10)``; ``"ddpm-100"`` → ``("ddpm", 100)``."""
    m = re.fullmatch(r"(ddpm|ddim)-(\d+)", text.lower())
    if not m:
        raise SystemExit(f"ablations: expected a sampler like ddim-10 or ddpm-100, got {text!r}")
    return m.group(1), int(m.group(2))


def prediction_ms(policy, repeats: int = 5) -> float:
    """Best-of-``repeats`` milliseconds of one prediction for one observation history (batch 1)."""
    c = policy.config
    history = torch.zeros(1, c.obs_horizon, c.obs_dim)
    generator = torch.Generator().manual_seed(0)
    policy.predict_chunk(history, generator)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        policy.predict_chunk(history, generator)
        best = min(best, time.perf_counter() - start)
    return 1000.0 * best


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "diffusion-cnn-keypoints.pt"))
    p.add_argument("--sweeps", nargs="+", choices=SWEEPS, default=list(SWEEPS))
    p.add_argument("--episodes", type=int, default=50, help="test starts (default 50)")
    p.add_argument("--seed", type=int, default=TEST_SEED, help="first test seed (default 100000)")
    p.add_argument("--max-steps", type=int, default=300, help="episode length (default 300, the benchmark's)")
    p.add_argument("--sampler", default="ddim-10",
                   help="sampler of the T_a and latency sweeps (default ddim-10: the CPU's budget)")
    p.add_argument("--action-horizons", type=int, nargs="+", default=[1, 2, 4, 8, 12])
    p.add_argument("--latencies", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--samplers", nargs="+", default=["ddim-1", "ddim-2", "ddim-5", "ddim-10", "ddim-20", "ddpm-100"])
    p.add_argument("--workers", type=int, default=None, help="environment processes (default: cores - 1)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads of the policy (default: the cores the environment processes leave, >= 1)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(ROOT / "runs" / "ablations.json"))
    p.add_argument("--publish", default=None, help="also write the results here (e.g. data/ablations.json)")
    args = p.parse_args()
    for name in ("episodes", "max_steps"):
        if getattr(args, name) < 1:
            raise SystemExit(f"ablations: --{name.replace('_', '-')} must be at least 1")

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = args.workers or max(1, cores - 1)
    torch.set_num_threads(args.threads or max(1, cores - (workers if workers > 1 else 0)))
    try:
        policy = load_policy(args.checkpoint).to(args.device)
    except ValueError as exc:
        raise SystemExit(f"ablations: {exc}") from None
    c = policy.config
    base_kind, base_steps = parse_sampler(args.sampler)
    t0 = time.time()
    results = {"started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "command": shlex.join(["python", "benchmarks/ablations.py", *sys.argv[1:]]),
               "checkpoint": os.path.relpath(args.checkpoint, ROOT), "trained_by": policy.meta.get("command"),
               "policy": {"obs_horizon": c.obs_horizon, "pred_horizon": c.pred_horizon,
                          "action_horizon": c.action_horizon, "sampler": c.sampler,
                          "inference_steps": c.inference_steps},
               "episodes": args.episodes, "seed": args.seed, "max_steps": args.max_steps,
               "device": args.device, "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None,
               "cpu": platform.processor() or platform.machine(), "cores": cores, "workers": workers,
               "threads": torch.get_num_threads(), "torch": torch.__version__,
               "sweeps": {}}

    def score(runner, **settings) -> dict:
        start = time.time()
        r = evaluate(runner, n_episodes=args.episodes, seed=args.seed, max_steps=args.max_steps,
                     n_envs=args.episodes, progress=False, workers=workers)
        point = {**settings, "score": round(r.score, 4), "success_rate": round(r.success_rate, 4),
                 "seconds": round(time.time() - start, 1)}
        print(f"  {settings}: score {r.score:.3f}, success {r.success_rate:.0%} ({point['seconds']:.0f} s)",
              flush=True)
        return point

    limit = c.pred_horizon - c.obs_horizon + 1
    if "action-horizon" in args.sweeps:
        print(f"action horizon (T_o={c.obs_horizon}, T_p={c.pred_horizon}; {args.sampler}):", flush=True)
        policy.set_sampler(base_kind, base_steps)
        results["sweeps"]["action-horizon"] = [score(RecedingHorizon(policy, action_horizon=t_a), action_horizon=t_a)
                                               for t_a in args.action_horizons if t_a <= limit]
    if "latency" in args.sweeps:
        print(f"latency (T_a={c.action_horizon}; {args.sampler}):", flush=True)
        policy.set_sampler(base_kind, base_steps)
        results["sweeps"]["latency"] = [score(RecedingHorizon(policy, latency=k), latency=k)
                                        for k in args.latencies if k + c.action_horizon <= limit]
    if "samplers" in args.sweeps:
        print("samplers (score against the time of one prediction, batch 1):", flush=True)
        points = []
        for text in args.samplers:
            kind, steps = parse_sampler(text)
            policy.set_sampler(kind, steps)
            ms = prediction_ms(policy)
            points.append({**score(policy, sampler=text), "ms_per_prediction": round(ms, 2)})
            print(f"    one prediction: {ms:.1f} ms", flush=True)
        results["sweeps"]["samplers"] = points
    results["wall_seconds"] = round(time.time() - t0, 1)

    for path in filter(None, [args.out, args.publish]):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(results, indent=1))
        os.replace(tmp, path)
        print(f"wrote {path}")
    print(f"{results['wall_seconds']:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
