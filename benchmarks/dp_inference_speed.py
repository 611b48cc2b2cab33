"""Diffusion Policy inference speed: milliseconds per action chunk, DDPM-100 against DDIM-16/10/5.

One chunk is what the robot waits for at every re-plan (chapter 8): one observation history (T_o = 2
keypoint observations of 20 numbers, batch 1) in, a (T_p, 2) = (16, 2) chunk of actions out. The
timed call is ``policy.predict_chunk(history)``, the whole path: normalise, K calls of the 1-D
U-Net, un-normalise. Networks, side by side in one run:

- ``ours (full)``: the ``diffusion-cnn`` keypoints recipe's ``full`` tier, down_dims 128/256/512,
  step embedding 128 (the shipped checkpoint's size);
- ``ours (book)``: the ``book`` tier, 64/128/256, step embedding 128 (the CPU size);
- ``reference``: the paper's state network, 256/512/1024, step embedding 256 (65.8 M parameters);
- ``checkpoint``: a trained policy, when ``--checkpoint FILE`` is given.

The weights do not change the cost, so the first three are left untrained. Devices: the CPU with
one torch thread (a robot's computer runs other things too), and CUDA when it is available, in
float32 and with bf16 autocast. The table reports the median of the timed repeats after warm-up
(each network first samples a few DDIM-5 chunks; on CUDA each row also runs once untimed, and every
timed call is bracketed by ``torch.cuda.synchronize()``), and the speed-up over the reference
network's DDPM-100 in float32 on the same device. The paper quotes about 0.1 s per chunk for
DDIM-10 on an RTX 3080.

    python benchmarks/dp_inference_speed.py                     # CPU (and CUDA when present)
    python benchmarks/dp_inference_speed.py --quick             # a smoke run: few repeats
    python benchmarks/dp_inference_speed.py --checkpoint checkpoints/diffusion-cnn-keypoints.pt \\
        --score --episodes 50 --json speed.json                 # also the score of each sampler

With ``--score`` (needs ``--checkpoint``) the checkpoint is also evaluated with each sampler on
``--episodes`` test starts from seed 100000 (the paper's 50 test starts are 100000-100049), all
episodes side by side, on CUDA when available; the score and success rate join its rows. How much
a sampler with fewer steps loses is chapter 10's question; this table gives both sides of the trade.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from contextlib import nullcontext

import numpy as np
import torch

from dplearn.policies import load_policy, make_policy
from dplearn.policy_training import recipe_for

SAMPLERS = (("ddpm", 100), ("ddim", 16), ("ddim", 10), ("ddim", 5))
REFERENCE = {"down_dims": (256, 512, 1024), "step_embed_dim": 256}  # the paper's state CNN
EVAL_SEED = 100_000


def sampler_name(kind: str, steps: int) -> str:
    return f"{kind.upper()}-{steps}"


def networks(checkpoint: str | None) -> dict[str, torch.nn.Module]:
    """The policies to time, by label (untrained, except the checkpoint)."""
    _, recipe = recipe_for("diffusion-cnn", "keypoints")
    torch.manual_seed(0)
    nets = {
        "ours (full)": make_policy("diffusion-cnn", recipe.policy_config("full")),
        "ours (book)": make_policy("diffusion-cnn", recipe.policy_config("book")),
        "reference": make_policy("diffusion-cnn", {**recipe.policy_config("full"), **REFERENCE}),
    }
    if checkpoint:
        policy = load_policy(checkpoint)
        if not hasattr(policy, "set_sampler"):
            raise SystemExit(f"--checkpoint: {checkpoint} holds a {policy.name!r} policy, not a diffusion policy")
        nets["checkpoint"] = policy
    return {name: p.eval() for name, p in nets.items()}


def observation_history() -> np.ndarray:
    """A real keypoint observation history, (1, T_o = 2, 20): the first test start, twice (as at reset)."""
    from dplearn.envs import PushTEnv

    obs, _ = PushTEnv(obs_type="keypoints").reset(seed=EVAL_SEED)
    return np.stack([obs, obs])[None].astype(np.float32)


def time_chunks(policy, history: np.ndarray, device: torch.device, autocast_dtype, repeats: int,
                max_seconds: float, warmup: bool) -> list[float]:
    """Seconds per ``predict_chunk`` call: up to ``repeats`` calls, fewer when they pass ``max_seconds``
    (but at least ``min(3, repeats)``)."""
    cuda = device.type == "cuda"
    context = torch.autocast("cuda", dtype=autocast_dtype) if autocast_dtype is not None else nullcontext()

    def once() -> float:
        if cuda:
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        with context:
            policy.predict_chunk(history)
        if cuda:
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    if warmup:
        once()
    times: list[float] = []
    while len(times) < repeats:
        times.append(once())
        if sum(times) > max_seconds and len(times) >= min(3, repeats):
            break
    return times


def score_checkpoint(policy, kind: str, steps: int, episodes: int, device: torch.device) -> tuple[float, float]:
    """(score, success rate) of ``policy`` sampling with ``kind``-``steps`` on ``episodes`` test starts."""
    from dplearn.evaluation import evaluate

    policy.set_sampler(kind, steps)
    result = evaluate(policy.to(device), n_episodes=episodes, seed=EVAL_SEED, n_envs=episodes, progress=False)
    return float(result.score), float(result.success_rate)


def device_rows(nets, history, device: torch.device, precisions, args) -> list[dict]:
    rows = []
    for label, policy in nets.items():
        policy.to(device)
        policy.set_sampler("ddim", 5)
        for _ in range(3):  # warm-up: allocator, kernels, caches
            with (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()):
                policy.predict_chunk(history)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        params = sum(p.numel() for p in policy.model.parameters())
        for precision, autocast_dtype in precisions:
            for kind, steps in SAMPLERS:
                policy.set_sampler(kind, steps)
                times = time_chunks(policy, history, device, autocast_dtype, args.repeats, args.max_seconds,
                                    warmup=device.type == "cuda")
                rows.append({
                    "device": device.type, "network": label, "down_dims": list(policy.config.down_dims),
                    "step_embed_dim": policy.config.step_embed_dim, "parameters": params,
                    "precision": precision, "sampler": sampler_name(kind, steps),
                    "network_calls": policy.num_inference_steps,
                    "ms_per_chunk": 1000 * statistics.median(times), "ms_min": 1000 * min(times),
                    "repeats": len(times),
                })
                print(f"  {device.type} {label:12s} {precision:5s} {sampler_name(kind, steps):8s} "
                      f"{rows[-1]['ms_per_chunk']:9.2f} ms (n={len(times)})", flush=True)
        policy.to("cpu")
    base = next(r["ms_per_chunk"] for r in rows
                if r["network"] == "reference" and r["sampler"] == "DDPM-100" and r["precision"] == "fp32")
    for r in rows:
        r["speedup_vs_reference_ddpm"] = base / r["ms_per_chunk"]
    return rows


def print_table(title: str, rows: list[dict], with_score: bool) -> None:
    print()
    print(title)
    print()
    head = ["network", "down dims", "parameters", "precision", "sampler", "net calls", "ms / chunk", "repeats",
            "speed-up"]
    if with_score:
        head += ["score", "success"]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(["---"] * 2 + ["---:"] + ["---"] * 2 + ["---:"] * (len(head) - 5)) + "|")
    for r in rows:
        cells = [r["network"], "/".join(map(str, r["down_dims"])), f"{r['parameters'] / 1e6:.1f} M", r["precision"],
                 r["sampler"], str(r["network_calls"]), f"{r['ms_per_chunk']:.1f}", str(r["repeats"]),
                 f"{r['speedup_vs_reference_ddpm']:.1f}x"]
        if with_score:
            cells += [f"{r['score']:.3f}" if "score" in r else "", f"{r['success_rate']:.0%}" if "score" in r else ""]
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="also time (and with --score, evaluate) this policy")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per row (median reported; default 10)")
    parser.add_argument("--max-seconds", type=float, default=20.0,
                        help="stop a row's repeats once they took this long, after at least 3 (default 20)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 repeats, 2 s per row")
    parser.add_argument("--device", choices=("all", "cpu", "cuda"), default="all",
                        help="where to time (default: the CPU, and CUDA when available)")
    parser.add_argument("--no-bf16", action="store_true", help="on CUDA, skip the bf16 autocast rows")
    parser.add_argument("--score", action="store_true", help="evaluate --checkpoint with each sampler")
    parser.add_argument("--episodes", type=int, default=50, help="test starts for --score (default 50)")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.max_seconds = min(args.repeats, 2), 2.0
    if args.repeats < 1 or args.episodes < 1:
        parser.error("--repeats and --episodes must be positive")
    if args.score and not args.checkpoint:
        parser.error("--score needs --checkpoint")

    torch.set_num_threads(1)
    nets = networks(args.checkpoint)
    history = observation_history()
    devices = []
    if args.device in ("all", "cpu"):
        devices.append((torch.device("cpu"), [("fp32", None)]))
    if args.device in ("all", "cuda") and torch.cuda.is_available():
        precisions = [("fp32", None)] + ([] if args.no_bf16 else [("bf16", torch.bfloat16)])
        devices.append((torch.device("cuda"), precisions))
    elif args.device == "cuda":
        raise SystemExit("--device cuda: no CUDA GPU is available on this machine")

    tables, all_rows = [], []
    for device, precisions in devices:
        rows = device_rows(nets, history, device, precisions, args)
        if device.type == "cuda":
            title = (f"CUDA: {torch.cuda.get_device_name(device)}, torch {torch.__version__}; "
                     f"batch 1, median of up to {args.repeats} repeats")
        else:
            title = (f"CPU: {platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread; "
                     f"batch 1, median of up to {args.repeats} repeats ({args.max_seconds:g} s per row at most)")
        tables.append((title, rows))
        all_rows += rows

    scored = {}
    if args.score:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        policy = nets["checkpoint"]
        for kind, steps in SAMPLERS:
            start = time.perf_counter()
            scored[sampler_name(kind, steps)] = score_checkpoint(policy, kind, steps, args.episodes, device)
            print(f"  score {sampler_name(kind, steps):8s} {scored[sampler_name(kind, steps)][0]:.3f} "
                  f"({time.perf_counter() - start:.0f} s on {device.type})", flush=True)
        policy.to("cpu")
        for r in all_rows:
            if r["network"] == "checkpoint":
                r["score"], r["success_rate"] = scored[r["sampler"]]
                r["episodes"], r["eval_seed"] = args.episodes, EVAL_SEED

    for title, rows in tables:
        print_table(title, rows, with_score=bool(scored))
    print()
    print("speed-up: against the reference network's DDPM-100 in fp32 on the same device"
          + (f"; score and success on {args.episodes} test starts from seed {EVAL_SEED}" if scored else ""))
    if args.json:
        meta = {"torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
                "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                "checkpoint": args.checkpoint, "repeats": args.repeats, "max_seconds": args.max_seconds}
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": all_rows}, f, indent=1)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
