"""Time to score: the reference Diffusion Policy recipe against ours, trained on the same GPU in one run.

Two training runs ("arms") of the keypoint Diffusion Policy on the shipped Push-T demonstrations,
one after the other on the same device, each for the same training wall time:

- ``reference``: the paper's state CNN as the official notebook trains it: 1-D U-Net with down dims
  256/512/1024 and a 256-wide step embedding (65.8 M parameters), batch 256, float32 (torch's
  defaults: no autocast, no TF32 matrix products), AdamW (lr 1e-4, β 0.95/0.999, weight decay 1e-6),
  500 warmup steps then cosine over 100 epochs, EMA with power 0.75, and batches from a host-side
  ``torch.utils.data.DataLoader`` over CPU NumPy windows (one loader worker, pinned memory, each
  batch copied to the GPU, the loss read back every step);
- ``ours``: the ``full`` recipe of ``dplearn train --policy diffusion-cnn --obs keypoints``
  (:data:`dplearn.policy_training.PUSHT_RECIPES`): 96/192/384 U-Net (9.6 M parameters), windows
  resident on the GPU, bf16 autocast where the GPU has it, TF32 matrix products, as the command runs it.

Every ``--eval-every`` steps the EMA policy of each arm is scored on the 50 test starts (seeds
100000-100049) with 100-step DDPM (``--sampler`` to change), all 50 episodes side by side, the
environments stepped by a pool of worker processes; the training clock stops while it evaluates.
Reported: the training wall time until the EMA policy first scores ``--target`` (0.90), the ratio
reference / ours, and each arm's score at equal training wall time (the shorter of the two arms'
times, the last evaluation within it; every arm is also evaluated where it stops).

    python benchmarks/dp_train_speed.py --minutes-per-arm 10                     # on a GPU
    DPLEARN_THREADS=1 python benchmarks/dp_train_speed.py --budget quick --device cpu \\
        --minutes-per-arm 0.5 --sampler ddim-10 --out runs/dp_train_speed_quick  # the CPU rehearsal

Resumable and time-limited: each arm keeps its training state in ``--out`` (``ours.state``: the
state ``dplearn train --resume`` writes; ``reference.state``) and its evaluations and clock in
``--out/results.json`` (written atomically after every evaluation, with the command, seed, steps,
wall times, device and GPU). The script stops itself at ``--max-minutes`` (and on SIGINT/SIGTERM),
saving where each arm is; the same command continues. An arm whose clock has reached
``--minutes-per-arm`` is done; a larger value continues it. Evaluation settings may not change
within one ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import shlex
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

EVAL_SEED = 100_000
ARMS = ("ours", "reference")
#: the reference network per budget: the paper's at full; a tiny stand-in for the CPU rehearsal
REFERENCE_NET = {"full": {"down_dims": (256, 512, 1024), "step_embed_dim": 256},
                 "quick": {"down_dims": (32, 64, 128), "step_embed_dim": 32}}
DEFAULTS = {  # per budget: eval_every, episodes, reference epochs, minutes per arm
    "full": {"eval_every": 1000, "episodes": 50, "reference_epochs": 100, "minutes_per_arm": 10.0},
    "quick": {"eval_every": 15, "episodes": 2, "reference_epochs": 1, "minutes_per_arm": 0.5},
}
STOP = []  # set by SIGINT/SIGTERM


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------------
# bookkeeping
# ---------------------------------------------------------------------------------------------
class TrainClock:
    """Training wall time of one arm: continues from ``before`` and leaves out what runs in
    :meth:`excluding` (evaluations)."""

    def __init__(self, before: float, device):
        self.before, self.device = float(before), device
        self.t0 = time.perf_counter()
        self.excluded = 0.0

    def sync(self) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def seconds(self) -> float:
        return self.before + time.perf_counter() - self.t0 - self.excluded

    @contextlib.contextmanager
    def excluding(self):
        self.sync()
        t = time.perf_counter()
        try:
            yield
        finally:
            self.excluded += time.perf_counter() - t


class Results:
    """``results.json``: settings, sessions, and per arm its evaluations and clock; written atomically."""

    def __init__(self, path: Path, settings: dict, fresh: bool):
        self.path = path
        if path.exists() and not fresh:
            self.data = json.loads(path.read_text())
            old = self.data.get("settings", {})
            diffs = [f"{k}: {old.get(k)!r} there, {v!r} now" for k, v in settings.items() if old.get(k) != v]
            if diffs:
                raise SystemExit(f"dp_train_speed: {path} holds another experiment ({'; '.join(diffs)}); "
                                 "use another --out, or --fresh to start over")
        else:
            self.data = {"benchmark": "dp_train_speed", "settings": settings, "sessions": [], "arms": {}}

    def arm(self, name: str) -> dict:
        return self.data["arms"].setdefault(name, {"evals": [], "train_seconds": 0.0, "steps_done": 0})

    def save(self) -> None:
        from dplearn.atomic import atomic_write

        self.data["summary"] = summarize(self.data)
        text = json.dumps(self.data, indent=1) + "\n"
        atomic_write(self.path, lambda f: f.write(text.encode()))


def summarize(data: dict) -> dict:
    """Time to target per arm, their ratio, and scores at equal training wall time."""
    target = data["settings"]["target"]
    arms = {n: a for n, a in data["arms"].items() if a.get("evals")}
    out: dict = {"target": target, "arms": {}}
    for name, arm in arms.items():
        hit = next((e for e in arm["evals"] if e["score"] >= target), None)
        out["arms"][name] = {"time_to_target_s": None if hit is None else hit["train_seconds"],
                             "steps_to_target": None if hit is None else hit["step"],
                             "best_score": max(e["score"] for e in arm["evals"]),
                             "train_seconds": arm["train_seconds"], "steps": arm["steps_done"]}
    if len(arms) == 2:
        equal = min(a["evals"][-1]["train_seconds"] for a in arms.values())
        out["equal_wall_time_s"] = equal
        for name, arm in arms.items():
            within = [e for e in arm["evals"] if e["train_seconds"] <= equal * 1.02 + 1.0]
            last = within[-1] if within else None
            out["arms"][name]["score_at_equal_time"] = None if last is None else last["score"]
            out["arms"][name]["step_at_equal_time"] = None if last is None else last["step"]
        ours, ref = out["arms"].get("ours"), out["arms"].get("reference")
        if ours and ref and ours["time_to_target_s"]:
            if ref["time_to_target_s"]:
                out["ratio"] = ref["time_to_target_s"] / ours["time_to_target_s"]
                out["ratio_text"] = f"{out['ratio']:.1f}x"
            else:  # the reference did not get there: a lower bound
                out["ratio"] = ref["train_seconds"] / ours["time_to_target_s"]
                out["ratio_text"] = f"> {out['ratio']:.1f}x (the reference did not reach {target})"
    return out


# ---------------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------------
def score(policy, args, pool) -> tuple[float, float, float]:
    """(score, success rate, seconds) of ``policy`` on the test starts, with ``args.sampler``."""
    from dplearn.evaluation import evaluate

    kind, steps = args.sampler.split("-")
    was = (policy.config.sampler, policy.num_inference_steps)
    policy.set_sampler(kind, int(steps))
    start = time.perf_counter()
    try:
        result = evaluate(policy, n_episodes=args.episodes, seed=EVAL_SEED, n_envs=args.episodes, progress=False,
                          workers=pool if pool is not None else 1)
    finally:
        policy.set_sampler(*was)
    return float(result.score), float(result.success_rate), time.perf_counter() - start


def record_eval(results: Results, name: str, step: int, clock: TrainClock, policy, args, pool) -> dict:
    arm = results.arm(name)
    if arm["evals"] and arm["evals"][-1]["step"] == step:
        return arm["evals"][-1]
    train_seconds = clock.seconds()
    with clock.excluding():
        s, success, seconds = score(policy, args, pool)
    entry = {"step": step, "train_seconds": round(train_seconds, 2), "score": round(s, 4),
             "success_rate": round(success, 4), "eval_seconds": round(seconds, 1), "at": now_iso()}
    arm["evals"].append(entry)
    arm["train_seconds"], arm["steps_done"] = round(train_seconds, 2), step
    results.save()
    print(f"  [{name}] step {step}: score {s:.3f} (success {success:.0%}) after {train_seconds:.0f} s of training; "
          f"evaluated in {seconds:.0f} s", flush=True)
    return entry


# ---------------------------------------------------------------------------------------------
# the arms
# ---------------------------------------------------------------------------------------------
def set_precision_defaults(ours: bool) -> None:
    """Ours: TF32 matrix products as ``dplearn train`` sets them; the reference: torch's defaults."""
    import torch

    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = ours
        torch.backends.cudnn.allow_tf32 = True  # torch's default, for both


def run_ours(args, results: Results, device, pool, deadline: float) -> None:
    from dplearn.policy_training import recipe_for, train_pusht_policy

    name = "ours"
    arm = results.arm(name)
    _, recipe = recipe_for("diffusion-cnn", "keypoints")
    tier = "full" if args.budget == "full" else "quick"
    steps = args.ours_steps or recipe.steps[tier]
    budget = 60.0 * args.minutes_per_arm
    clock = TrainClock(arm["train_seconds"], device)
    live: dict = {}
    set_precision_defaults(ours=True)

    def eval_fn(step, policy):
        live["policy"] = policy  # the EMA copy, updated in place: evaluated again where the run stops
        record_eval(results, name, step, clock, policy, args, pool)

    def stop() -> bool:
        return bool(STOP) or clock.seconds() >= budget or time.time() >= deadline

    arm.update({"label": f"ours ({tier} recipe)", "down_dims": list(recipe.policy_config(tier)["down_dims"]),
                "batch_size": recipe.batch_size, "precision": f"amp={recipe.amp} (bf16 on Ampere+), TF32",
                "data": "windows resident on the device", "steps_total": steps})
    print(f"[{name}] {arm['label']}: {steps} steps at most, {budget:.0f} s of training "
          f"({arm['train_seconds']:.0f} s done)", flush=True)
    start_step = arm["steps_done"]
    session_t0 = clock.seconds()
    try:
        policy, result = train_pusht_policy("diffusion-cnn", tier=tier, steps=steps, seed=args.seed,
                                            device=str(device), progress=False, checkpoint_path=args.out / "ours.state",
                                            obs_type="keypoints", stop=stop, eval_every=args.eval_every, eval_fn=eval_fn)
        live["policy"], step, arm["status"] = policy, int(result.step), "finished"
    except KeyboardInterrupt as exc:
        from dplearn.training import read_train_state

        step = int(read_train_state(args.out / "ours.state")["step"])
        arm["status"] = "stopped" if (STOP or time.time() >= deadline) and clock.seconds() < budget else "budget"
        print(f"[{name}] {exc}", flush=True)
        if "policy" not in live:
            live["policy"] = ema_policy_from_state(args.out / "ours.state", device)
    arm["parameters"] = sum(p.numel() for p in live["policy"].model.parameters())
    record_eval(results, name, step, clock, live["policy"], args, pool)
    done = clock.seconds() - session_t0
    if step > start_step and done > 0:
        arm["steps_per_second"] = round((step - start_step) / done, 2)
    results.save()


def ema_policy_from_state(path: Path, device):
    """The EMA policy a training state of ``train`` holds (config from its identity, normalisers from
    its weights)."""
    from dplearn.data import Normalizer
    from dplearn.policies import make_policy
    from dplearn.training import read_train_state

    state = read_train_state(path)
    weights = state["ema"]["model"] if state.get("ema") is not None else state["model"]

    def normalizer(prefix: str) -> Normalizer:
        return Normalizer(weights[f"{prefix}.data_min"].numpy(), weights[f"{prefix}.data_max"].numpy(),
                          float(weights[f"{prefix}.range_eps"]))

    policy = make_policy(state["identity"]["policy"], state["identity"]["config"], normalizer("obs_normalizer"),
                         normalizer("action_normalizer"))
    policy.load_state_dict(weights)
    return policy.to(device).eval()


class _Windows:
    """The notebook's dataset: normalised (obs, action) windows as CPU NumPy arrays, one per item."""

    def __init__(self, obs, action):
        self.obs, self.action = obs, action

    def __len__(self) -> int:
        return len(self.obs)

    def __getitem__(self, i: int) -> dict:
        return {"obs": self.obs[i], "action": self.action[i]}


class _EpochOrder:
    """A shuffling sampler whose order is seeded per epoch, so a resumed run continues mid-epoch."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch, self.skip = n, seed, 0, 0

    def set_epoch(self, epoch: int, skip: int) -> None:
        self.epoch, self.skip = epoch, skip

    def __iter__(self):
        import torch

        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g)[self.skip:].tolist())

    def __len__(self) -> int:
        return self.n - self.skip


def run_reference(args, results: Results, device, pool, deadline: float) -> None:
    import torch

    from dplearn.atomic import torch_save_atomic
    from dplearn.data import SequenceDataset, load_pusht_demos
    from dplearn.policies import make_policy
    from dplearn.policy_training import fit_normalizers, recipe_for, windows_as_tensors
    from dplearn.seeding import seed_everything
    from dplearn.training import EMA, _rng_state, _set_rng_state, warmup_cosine

    name = "reference"
    arm = results.arm(name)
    set_precision_defaults(ours=False)
    _, recipe = recipe_for("diffusion-cnn", "keypoints")
    config = {**recipe.policy_config("full"), **REFERENCE_NET[args.budget]}
    seed_everything(args.seed)
    policy = make_policy("diffusion-cnn", config)
    c = policy.config
    dataset = SequenceDataset(load_pusht_demos(), c.obs_horizon, c.pred_horizon, c.action_horizon, obs_type="keypoints")
    obs, action = windows_as_tensors(dataset)
    obs_norm, act_norm = fit_normalizers(obs, action)
    policy.set_normalizers(obs_norm, act_norm)
    windows = _Windows(obs_norm.normalize(obs).float().numpy(), act_norm.normalize(action).float().numpy())
    batch_size = 256
    per_epoch = math.ceil(len(windows) / batch_size)
    total = args.reference_epochs * per_epoch
    policy.to(device).train()
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-4, betas=(0.95, 0.999), weight_decay=1e-6)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(s, min(500, total), total))
    ema = EMA(policy, 0.9999, power=0.75)
    state_path = args.out / "reference.state"
    step = 0
    if state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        policy.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        ema.load_state_dict(state["ema"])
        _set_rng_state(state["rng"])
        step = int(state["step"])
    arm.update({"label": "reference (paper's state CNN, notebook recipe)", "down_dims": list(c.down_dims),
                "parameters": sum(p.numel() for p in policy.model.parameters()), "batch_size": batch_size,
                "precision": "fp32 (torch defaults)", "steps_total": total,
                "data": "DataLoader over CPU NumPy windows (1 worker, pinned memory), copied to the device per batch"})
    budget = 60.0 * args.minutes_per_arm
    clock = TrainClock(arm["train_seconds"], device)
    print(f"[{name}] {arm['label']}: {arm['parameters'] / 1e6:.1f} M parameters, {total} steps at most "
          f"({args.reference_epochs} epochs of {per_epoch}), {budget:.0f} s of training "
          f"({arm['train_seconds']:.0f} s done)", flush=True)
    sampler = _EpochOrder(len(windows), args.seed)
    loader = torch.utils.data.DataLoader(windows, batch_size=batch_size, sampler=sampler, num_workers=1,
                                         pin_memory=device.type == "cuda", persistent_workers=True)
    start_step, session_t0 = step, clock.seconds()
    reason = "finished"
    while step < total and reason == "finished":
        sampler.set_epoch(step // per_epoch, (step % per_epoch) * batch_size)
        for batch in loader:
            nobs = batch["obs"].to(device, non_blocking=True)
            naction = batch["action"].to(device, non_blocking=True)
            loss = policy.compute_loss(nobs, naction)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            scheduler.step()
            ema.update(policy)
            loss.item()  # the notebook reads the loss back every step
            step += 1
            if step % args.eval_every == 0:
                record_eval(results, name, step, clock, ema.model, args, pool)
            if STOP or time.time() >= deadline:
                reason = "stopped"
            elif clock.seconds() >= budget:
                reason = "budget"
            if step >= total or reason != "finished":
                break
    arm["status"] = reason
    done = clock.seconds() - session_t0
    with clock.excluding():
        torch_save_atomic({"model": policy.state_dict(), "optimizer": optimizer.state_dict(),
                           "scheduler": scheduler.state_dict(), "ema": ema.state_dict(), "rng": _rng_state(),
                           "step": step}, state_path)
    record_eval(results, name, step, clock, ema.model, args, pool)
    if step > start_step and done > 0:
        arm["steps_per_second"] = round((step - start_step) / done, 2)
    results.save()


# ---------------------------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------------------------
def print_report(data: dict) -> None:
    s = data["summary"]
    print()
    print(f"Time to score {s['target']:.2f} on {data['settings']['episodes']} test starts "
          f"({data['settings']['sampler']}), training wall time (evaluations excluded):")
    print()
    print("| arm | down dims | parameters | batch | precision | steps | steps/s | time to target | "
          "best score | score at equal time |")
    print("| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for name in ARMS:
        arm, row = data["arms"].get(name), s["arms"].get(name)
        if not arm or not row:
            continue
        ttt = "not reached" if row["time_to_target_s"] is None else \
            f"{row['time_to_target_s']:.0f} s (step {row['steps_to_target']})"
        eq = row.get("score_at_equal_time")
        print(f"| {arm.get('label', name)} | {'/'.join(map(str, arm.get('down_dims', [])))} | "
              f"{arm.get('parameters', 0) / 1e6:.1f} M | {arm.get('batch_size')} | {arm.get('precision')} | "
              f"{row['steps']} | {arm.get('steps_per_second', float('nan')):.1f} | {ttt} | {row['best_score']:.3f} | "
              f"{'' if eq is None else f'{eq:.3f}'} |")
    if "equal_wall_time_s" in s:
        print()
        print(f"equal training wall time: {s['equal_wall_time_s']:.0f} s; "
              f"time-to-target ratio reference/ours: {s.get('ratio_text', 'n/a (ours did not reach the target)')}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", choices=("full", "quick"), default="full",
                        help="full: the real networks; quick: tiny ones, a CPU rehearsal of the whole script")
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS), help="which arms to run (in order)")
    parser.add_argument("--minutes-per-arm", type=float, default=None,
                        help="training wall time of each arm (default 10; quick: 0.5)")
    parser.add_argument("--max-minutes", type=float, default=9.0,
                        help="stop this command after this long, saving (default 9: under a 10-minute limit)")
    parser.add_argument("--eval-every", type=int, default=None, help="steps between evaluations (default 1000; quick: 15)")
    parser.add_argument("--episodes", type=int, default=None, help="test starts from seed 100000 (default 50; quick: 2)")
    parser.add_argument("--sampler", default="ddpm-100", help="evaluation sampler: ddpm-100 or ddim-K (default ddpm-100)")
    parser.add_argument("--target", type=float, default=0.90, help="the score to reach (default 0.90)")
    parser.add_argument("--ours-steps", type=int, default=None, help="our run's length (default: the recipe's)")
    parser.add_argument("--reference-epochs", type=int, default=None, help="the reference's length (default 100; quick: 1)")
    parser.add_argument("--seed", type=int, default=0, help="training seed of both arms (default 0)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cuda or cpu")
    parser.add_argument("--eval-workers", type=int, default=None,
                        help="processes stepping the environments (default: one per core, at most one per episode)")
    parser.add_argument("--out", default="runs/dp_train_speed", help="folder of the states and results.json")
    parser.add_argument("--fresh", action="store_true", help="start over, ignoring what --out holds")
    args = parser.parse_args()
    for key, value in DEFAULTS[args.budget].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.eval_every < 1 or args.episodes < 1 or args.minutes_per_arm <= 0:
        parser.error("--eval-every, --episodes and --minutes-per-arm must be positive")
    kind, _, k = args.sampler.partition("-")
    if kind not in ("ddpm", "ddim") or not k.isdigit():
        parser.error(f"--sampler must be ddpm-100 or ddim-K, got {args.sampler!r}")
    deadline = time.time() + 60.0 * args.max_minutes
    args.out = Path(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.fresh:
        for name in ARMS:
            (args.out / f"{name}.state").unlink(missing_ok=True)

    import torch

    from dplearn.compute import set_torch_threads
    from dplearn.envs.parallel import EnvWorkers, default_workers
    from dplearn.training import select_device

    set_torch_threads()
    device = select_device(args.device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    settings = {"budget": args.budget, "seed": args.seed, "eval_every": args.eval_every, "episodes": args.episodes,
                "eval_seed": EVAL_SEED, "sampler": args.sampler, "target": args.target,
                "ours_steps": args.ours_steps, "reference_epochs": args.reference_epochs}
    results = Results(args.out / "results.json", settings, args.fresh)
    session = {"command": shlex.join([sys.executable, *sys.argv]), "started": now_iso(), "device": str(device),
               "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
               "torch": torch.__version__, "cuda": torch.version.cuda, "cpu": platform.processor() or platform.machine(),
               "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
               "minutes_per_arm": args.minutes_per_arm, "max_minutes": args.max_minutes, "arms": args.arms}
    results.data["sessions"].append(session)
    results.save()
    previous = {sig: signal.signal(sig, lambda *_: STOP.append(True)) for sig in (signal.SIGINT, signal.SIGTERM)}
    workers = args.eval_workers or default_workers(args.episodes)
    pool = EnvWorkers(workers) if workers > 1 else None
    print(f"dp_train_speed: {args.budget} budget on {session['gpu'] or device}, {args.minutes_per_arm:g} min of "
          f"training per arm, evaluation every {args.eval_every} steps on {args.episodes} test starts "
          f"({args.sampler}, {workers} environment worker(s)); results in {results.path}", flush=True)
    try:
        for name in args.arms:
            arm = results.arm(name)
            if STOP or time.time() >= deadline:
                print(f"[{name}] not started: the command's time is up; run it again to continue", flush=True)
                continue
            if arm.get("status") == "finished" or arm["train_seconds"] >= 60.0 * args.minutes_per_arm:
                print(f"[{name}] done before ({arm['train_seconds']:.0f} s, {arm['steps_done']} steps)", flush=True)
                continue
            (run_ours if name == "ours" else run_reference)(args, results, device, pool, deadline)
    finally:
        if pool is not None:
            pool.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        session["ended"] = now_iso()
        results.save()
    print_report(results.data)
    print(f"\nwrote {results.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
