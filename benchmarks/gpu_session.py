"""One GPU session, prepared: train Diffusion Policy runs side by side, evaluate them, record everything.

A GPU (one H100/H200-class card with 16 CPU cores) comes now and then for about 15 minutes, at most
10 minutes per command, with no downloads. This script is the whole of such a session: it checks the
Python it runs in, trains several small ``dplearn train`` runs at once on the one GPU (several
processes fill a card far better than one), stops them at its own deadline, evaluates what they
made on the benchmark's test starts, and writes ``runs/results.json`` and a Markdown table.

    PYTHONPATH=src python benchmarks/gpu_session.py                  # 3 runs of the full recipe, 8 minutes
    PYTHONPATH=src python benchmarks/gpu_session.py --minutes 8 --install-best
    PYTHONPATH=src python benchmarks/gpu_session.py --budget quick --steps 30 --device cpu \\
        --minutes 3 --runs 2 --episodes 2                             # the CPU rehearsal of the same script

On a small or busy machine add ``--max-procs 1 --threads 1`` (one process at a time, one thread each).

It needs only torch, numpy, gymnasium, pymunk, tqdm and matplotlib importable, and the ``src/``
directory (``pip install -e .`` is not needed); every command runs with the same Python.

What it does, within ``--minutes`` (default 8) that it enforces itself:

1. **Train.** ``--runs`` runs (default 3) of ``dplearn train --policy diffusion-cnn --obs keypoints
   --budget full`` side by side, each with its own seed, or its own learning rate with
   ``--sweep lr`` (the default: learning rates 1e-4, 3e-4, 1e-3), ``--steps`` (default: the recipe's),
   ``--resume runs/NAME.state`` and ``--out runs/NAME.pt``; ``DPLEARN_THREADS`` shares the CPU
   cores among them. A run's name holds its tier, steps and seed, so the same command in a later
   session continues it from its training state (saved every tenth of the run, at most every 1000
   steps). At the training deadline (the session's minus ``--eval-seconds``) runs still going are
   stopped; a stopped run's last saved state is exported as ``runs/NAME.stepK.pt`` (its EMA weights)
   and evaluated as a partial result.
2. **Evaluate.** Each checkpoint, and the shipped ``checkpoints/diffusion-cnn-keypoints.pt`` when
   there is one (the same starts on the same machine: a fair comparison), with ``dplearn eval
   --episodes 50 --seed 100000`` with DDPM-100 and DDIM-10, all in parallel processes (stepping the
   environments is CPU work); the score is read from the summary line ``dplearn eval`` prints last.
3. **Record.** ``runs/results.json`` gains one entry per session: for every run its command, seed,
   learning rate, steps before and after, wall time, steps per second, status, checkpoint and size,
   and score and success rate per sampler; with the GPU's name, torch and CUDA versions and the
   session's arguments. Every command writes its output to its own log, ``runs/NAME.train.log``
   and ``runs/NAME.eval-SAMPLER.log``.

``--install-best`` then copies the best *finished* run (the full number of steps, so that its
recorded command reproduces it) to ``checkpoints/diffusion-cnn-keypoints.pt``, with its scores in
the checkpoint's meta (``meta["eval"]``), but only when its DDPM-100 score is higher than the
shipped checkpoint's on the same 50 test starts (100000-100049), measured in this session (else the
score recorded in the shipped checkpoint's meta), and when the file is under the 25 MB a shipped
checkpoint may take; otherwise it says why and copies nothing. The shipped checkpoint's recorded
score (from its meta, when an earlier session installed it) is printed at the start.

After the session, keep ``runs/``: the ``.pt`` files and ``results.json`` are small; the ``.state``
files (weights, EMA and optimiser moments: about 16 bytes per parameter, about 155 MB for the full
tier's 9.6 M parameters) are what a later session needs to continue a stopped run.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NEEDED = ("torch", "numpy", "gymnasium", "pymunk", "tqdm", "matplotlib")
SUMMARY = re.compile(r"seconds=(?P<seconds>\d+) score=(?P<score>[0-9.]+)±(?P<sem>[0-9.]+) "
                     r"success_rate=(?P<success>[0-9.]+)")
PROGRESS = re.compile(r"(\d+)/(\d+) \[[^\]]*?([0-9.]+)it/s")
SHIPPED_LIMIT = 25e6  # bytes: the largest checkpoint the repository ships


# ---------------------------------------------------------------------------------------------
# the Python this runs in
# ---------------------------------------------------------------------------------------------
def check_python() -> None:
    """Stop with one clear message when a needed package or ``dplearn`` itself cannot be imported."""
    missing = []
    for name in NEEDED:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            missing.append(f"{name} ({exc})")
    if missing:
        raise SystemExit("gpu_session: this Python cannot import " + ", ".join(missing) + f"; it needs "
                         f"{', '.join(NEEDED)} (run it with a Python that has them: {sys.executable})")
    if str(ROOT / "src") not in sys.path:
        sys.path.insert(0, str(ROOT / "src"))
    try:
        importlib.import_module("dplearn.cli")
    except ImportError as exc:
        raise SystemExit(f"gpu_session: cannot import dplearn from {ROOT / 'src'} ({exc}); "
                         "run it from the repository as `PYTHONPATH=src python benchmarks/gpu_session.py`") from None


def child_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src")] + [p for p in [env.get("PYTHONPATH")] if p])
    env["DPLEARN_THREADS"] = str(threads)
    env["TQDM_MININTERVAL"] = "15"  # a progress line every 15 s keeps the logs short and readable
    env["PYTHONUNBUFFERED"] = "1"
    return env


def process_threads(asked: int | None, share: int) -> int:
    """Torch threads of each child process, by the project's rule (:func:`dplearn.compute.torch_threads`):
    ``DPLEARN_THREADS`` of this process's environment when set, else ``--threads`` (``asked``) when given,
    else ``share``, the CPU cores divided among the processes that run at once."""
    from dplearn.compute import torch_threads

    try:
        return torch_threads(asked or max(1, share))
    except ValueError as exc:
        raise SystemExit(f"{Path(sys.argv[0]).stem}: {exc}") from None


def dplearn_command(*args: str) -> list[str]:
    """``python -m dplearn.cli ARGS`` with this Python (the package has no ``__main__`` module)."""
    return [sys.executable, "-m", "dplearn.cli", *args]


def cli_has_lr_option() -> bool:
    out = subprocess.run(dplearn_command("train", "--help"), capture_output=True, text=True, env=child_env(1),
                         cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"gpu_session: `python -m dplearn.cli train --help` failed:\n{out.stderr[-2000:]}")
    return "--lr" in out.stdout


# ---------------------------------------------------------------------------------------------
# processes with a deadline
# ---------------------------------------------------------------------------------------------
class Job:
    """One command, its log file, and what became of it."""

    def __init__(self, name: str, argv: list[str], log: Path, threads: int):
        self.name, self.argv, self.log, self.threads = name, argv, log, threads
        self.proc: subprocess.Popen | None = None
        self.started = self.ended = None
        self.returncode: int | None = None
        self.stopped = ""  # why it was stopped, if it was

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "a") as f:
            f.write(f"\n==== {now_iso()}  {shlex.join(self.argv)}  (DPLEARN_THREADS={self.threads})\n")
        self._file = open(self.log, "a")
        self.started = time.time()
        self.proc = subprocess.Popen(self.argv, stdout=self._file, stderr=subprocess.STDOUT, cwd=ROOT,
                                     env=child_env(self.threads), start_new_session=True)

    def poll(self) -> bool:
        """True once the process has ended (or never started)."""
        if self.proc is None:
            return self.returncode is not None
        if self.returncode is None and self.proc.poll() is not None:
            self.returncode, self.ended = self.proc.returncode, time.time()
            self._file.close()
        return self.returncode is not None

    def stop(self, why: str, grace: float = 20.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds (the training state on disk is written atomically,
        so a stop never leaves a broken file)."""
        if self.proc is None or self.poll():
            return
        self.stopped = why
        self.proc.terminate()
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.poll()

    @property
    def seconds(self) -> float | None:
        return None if self.started is None else (self.ended or time.time()) - self.started

    def progress(self) -> str:
        """The last ``step/total it/s`` the log shows (tqdm's bar), or ''."""
        try:
            with open(self.log, "rb") as f:
                f.seek(max(0, self.log.stat().st_size - 4000))
                tail = f.read().decode(errors="replace")
        except OSError:
            return ""
        found = PROGRESS.findall(tail)
        return f"{found[-1][0]}/{found[-1][1]} at {found[-1][2]} it/s" if found else ""


def gpu_load() -> str | None:
    """``nvidia-smi``'s utilisation and memory of the GPUs, one line, or None without it."""
    if shutil.which("nvidia-smi") is None:
        return None
    out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used,memory.total,power.draw",
                          "--format=csv,noheader"], capture_output=True, text=True)
    return out.stdout.strip().replace("\n", "; ") if out.returncode == 0 else None


def run_jobs(jobs: list[Job], deadline: float, max_procs: int, label: str, report_every: float = 60.0,
             samples: list | None = None, on_tick: Callable[[], None] | None = None,
             tick_every: float = 5.0) -> bool:
    """Run ``jobs``, at most ``max_procs`` at a time, stopping whatever still runs at ``deadline``;
    every ``report_every`` seconds print their progress (and append the GPU's load to ``samples``);
    ``on_tick()``, when given, is called about every ``tick_every`` seconds while they run.

    Returns False when interrupted (Ctrl-C or SIGTERM): the jobs are stopped and the caller records
    what there is."""
    waiting, running = list(jobs), []
    begun = last_report = last_tick = time.time()
    try:
        while waiting or running:
            while waiting and len(running) < max_procs and time.time() < deadline:
                job = waiting.pop(0)
                job.start()
                running.append(job)
                print(f"[{clock()}] {label}: started {job.name}", flush=True)
            if time.time() >= deadline:
                for job in running:
                    print(f"[{clock()}] {label}: deadline, stopping {job.name} {job.progress()}", flush=True)
                    job.stop("at the deadline")
                for job in waiting:
                    print(f"[{clock()}] {label}: deadline, {job.name} never started", flush=True)
                break
            for job in [j for j in running if j.poll()]:
                running.remove(job)
                print(f"[{clock()}] {label}: {job.name} ended with status {job.returncode} after "
                      f"{job.seconds:.0f} s", flush=True)
            if running and time.time() - last_report >= report_every:
                last_report = time.time()
                print(f"[{clock()}] {label}: " + "; ".join(f"{j.name} {j.progress() or 'running'}" for j in running),
                      flush=True)
                load = gpu_load()
                if load and samples is not None:
                    samples.append({"seconds": round(time.time() - begun), "nvidia_smi": load})
                    print(f"[{clock()}] {label}: GPU {load}", flush=True)
            if on_tick is not None and time.time() - last_tick >= tick_every:
                last_tick = time.time()
                on_tick()
            time.sleep(min(1.0, tick_every))
    except KeyboardInterrupt:
        print(f"[{clock()}] {label}: interrupted, stopping " + ", ".join(j.name for j in running), flush=True)
        for job in running:
            job.stop("interrupted", grace=5.0)
        return False
    return True


# ---------------------------------------------------------------------------------------------
# training states and checkpoints
# ---------------------------------------------------------------------------------------------
def state_step(path: Path) -> int:
    """Optimiser steps a training state holds (0 when there is none)."""
    if not path.exists():
        return 0
    from dplearn.training import read_train_state

    return int(read_train_state(path)["step"])


def export_snapshot(state_path: Path, out: Path, meta: dict) -> Path:
    """The EMA policy a (stopped) training state holds, saved as a policy checkpoint like ``dplearn train``'s.

    The training state stores the policy's whole state dict, normalisers included, and the policy's
    config in its identity, so nothing is refitted.
    """
    import torch

    from dplearn.data import Normalizer
    from dplearn.policies import make_policy
    from dplearn.policy_training import recipe_for
    from dplearn.training import read_train_state

    state = read_train_state(state_path)
    identity = state["identity"]
    weights = state["ema"]["model"] if state.get("ema") is not None else state["model"]

    def normalizer(prefix: str) -> Normalizer:
        return Normalizer(weights[f"{prefix}.data_min"].numpy(), weights[f"{prefix}.data_max"].numpy(),
                          float(weights[f"{prefix}.range_eps"]))

    # dict observations (images with the pusher's position) keep one normaliser per key
    keys = sorted({k.split(".")[1] for k in weights if k.startswith("obs_normalizer.") and k.count(".") == 2})
    obs_norm = {k: normalizer(f"obs_normalizer.{k}") for k in keys} if keys else normalizer("obs_normalizer")
    policy = make_policy(identity["policy"], identity["config"], obs_norm, normalizer("action_normalizer"))
    policy.load_state_dict(weights)
    _, recipe = recipe_for(identity["policy"], policy.obs_type)
    dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(recipe.save_dtype or "")
    return policy.eval().save(out, meta={**meta, "train_steps": int(state["step"])}, dtype=dtype)


def checkpoint_meta(path: Path) -> dict:
    from dplearn.policies import load_policy

    return dict(getattr(load_policy(path), "meta", {}) or {})


# ---------------------------------------------------------------------------------------------
# the session
# ---------------------------------------------------------------------------------------------
def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def clock() -> str:
    return time.strftime("%H:%M:%S")


def parse_samplers(texts: list[str]) -> list[tuple[str, str, int]]:
    """``["ddpm-100", "ddim-10"]`` → ``[("DDPM-100", "ddpm", 100), ("DDIM-10", "ddim", 10)]``."""
    out = []
    for text in texts:
        m = re.fullmatch(r"(ddpm|ddim)-(\d+)", text.lower())
        if not m:
            raise SystemExit(f"gpu_session: --samplers: expected ddpm-100 or ddim-K, got {text!r}")
        out.append((text.upper(), m.group(1), int(m.group(2))))
    return out


def eval_argv(checkpoint: Path, kind: str, steps: int, args) -> list[str]:
    argv = ["eval", "--checkpoint", rel(checkpoint), "--episodes", str(args.episodes), "--seed", str(args.eval_seed),
            "--device", args.device, "--sampler", kind, "--no-progress"]
    if kind == "ddim":
        argv += ["--inference-steps", str(steps)]
    return dplearn_command(*argv)


def rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def parse_summary(log: Path) -> dict | None:
    """The summary line ``dplearn eval`` printed last in ``log`` (in the section of its latest run)."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return None
    found = SUMMARY.findall(text.rsplit("\n==== ", 1)[-1])
    if not found:
        return None
    seconds, score, sem, success = found[-1]
    return {"score": float(score), "sem": float(sem), "success_rate": float(success), "seconds": int(seconds)}


def add_session_arguments(parser: argparse.ArgumentParser, *, minutes: float, eval_seconds: float, runs_dir: Path,
                          extras: tuple[str, ...] = ("amp", "samplers", "max-procs", "threads")) -> None:
    """The options every GPU-session script takes (``--budget --steps --device --minutes --eval-seconds
    --episodes --eval-seed --runs-dir``) with this script's defaults, and those of ``extras`` it uses."""
    parser.add_argument("--budget", default="full", help="recipe tier: quick, book or full (default full)")
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps per run (default: the recipe's)")
    parser.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    if "amp" in extras:
        parser.add_argument("--amp", choices=("auto", "bf16", "fp16", "none"), default=None,
                            help="mixed precision of the training runs (default: the recipe's)")
    parser.add_argument("--minutes", type=float, default=minutes,
                        help=f"wall-clock limit of the whole session (default {minutes:g})")
    parser.add_argument("--eval-seconds", type=float, default=eval_seconds,
                        help=f"kept for evaluation at the end (default {eval_seconds:g}; at most 40%% of the session)")
    parser.add_argument("--episodes", type=int, default=50, help="evaluation episodes (default 50)")
    parser.add_argument("--eval-seed", type=int, default=100_000, help="first evaluation seed (default 100000)")
    if "samplers" in extras:
        parser.add_argument("--samplers", nargs="+", default=["ddpm-100", "ddim-10"],
                            help="samplers to evaluate with (default ddpm-100 ddim-10)")
    if "max-procs" in extras:
        parser.add_argument("--max-procs", type=int, default=None,
                            help="processes at a time, training and evaluation (default: all at once)")
    if "threads" in extras:
        parser.add_argument("--threads", type=int, default=None,
                            help="DPLEARN_THREADS of each process (default: this shell's DPLEARN_THREADS "
                                 "when set, which always wins, else the CPU cores shared among them)")
    parser.add_argument("--runs-dir", default=str(runs_dir), help="states, checkpoints, logs, results")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", default="diffusion-cnn")
    parser.add_argument("--obs", default="keypoints")
    parser.add_argument("--runs", type=int, default=3, help="runs side by side (default 3)")
    parser.add_argument("--sweep", choices=("auto", "seed", "lr"), default="auto",
                        help="what differs between runs: seeds, or learning rates (needs `dplearn train --lr`); "
                        "auto: lr when the command line has --lr, else seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="training seeds (default 0, 1, ...; with --sweep lr, every run uses the first)")
    parser.add_argument("--lrs", type=float, nargs="+", default=[1e-4, 3e-4, 1e-3],
                        help="learning rates of --sweep lr (default 1e-4 3e-4 1e-3)")
    add_session_arguments(parser, minutes=8.0, eval_seconds=90.0, runs_dir=ROOT / "runs")
    parser.add_argument("--shipped", default=None,
                        help="the checkpoint to compare with and --install-best into (default "
                        "checkpoints/POLICY-OBS.pt)")
    parser.add_argument("--no-shipped", action="store_true", help="do not evaluate the shipped checkpoint")
    parser.add_argument("--install-best", action="store_true",
                        help="copy the best finished run to checkpoints/ if it beats the shipped one (see above)")
    args = parser.parse_args()

    t0 = time.time()
    deadline = t0 + 60.0 * args.minutes
    check_python()
    import torch

    from dplearn.policy_training import recipe_for

    torch.set_num_threads(1)
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else None
        if args.device is None:
            raise SystemExit("gpu_session: no CUDA GPU here; pass --device cpu to rehearse on the CPU")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"gpu_session: --device {args.device}: no CUDA GPU is available")
    obs_type, recipe = recipe_for(args.policy, args.obs)
    if args.budget not in recipe.steps:
        raise SystemExit(f"gpu_session: --budget must be one of {sorted(recipe.steps)}")
    steps = args.steps or recipe.steps[args.budget]
    samplers = parse_samplers(args.samplers)
    runs_dir = Path(args.runs_dir).resolve()
    runs_dir.mkdir(parents=True, exist_ok=True)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    gpu = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None

    has_lr = cli_has_lr_option()
    sweep = args.sweep if args.sweep != "auto" else ("lr" if has_lr else "seed")
    if sweep == "lr" and not has_lr:
        raise SystemExit("gpu_session: --sweep lr needs a `dplearn train --lr` option, which this dplearn lacks; "
                         "use --sweep seed")
    if sweep == "lr":
        lrs = args.lrs[:args.runs]
        seeds = [(args.seeds or [0])[0]] * len(lrs)
    else:
        seeds = (args.seeds or list(range(args.runs)))[:args.runs]
        lrs = [None] * len(seeds)
    shipped = Path(args.shipped).resolve() if args.shipped else ROOT / "checkpoints" / f"{args.policy}-{obs_type}.pt"

    print(f"[{clock()}] session: {gpu or 'CPU'}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
          f"{cores} CPU cores; {len(seeds)} run(s) of {args.policy}/{obs_type} {args.budget} tier, {steps} steps, "
          f"sweep over {sweep}; {args.minutes:g} min in all", flush=True)
    if sweep == "seed" and not has_lr:
        print("           (runs differ by seed: a learning-rate sweep needs a `dplearn train --lr` option)")
    shipped_meta = {}
    if shipped.exists():
        shipped_meta = checkpoint_meta(shipped)
        recorded = shipped_meta.get("eval")
        print(f"           shipped {rel(shipped)}: {shipped_meta.get('command', 'no command recorded')}; "
              + (f"recorded score {json.dumps(recorded)}" if recorded else "no score recorded in its meta"))
    else:
        print(f"           no shipped {rel(shipped)} yet")

    # ---- 1. train ------------------------------------------------------------------------------
    runs = []
    for seed, lr in zip(seeds, lrs, strict=True):
        name = f"{args.policy}-{obs_type}-{args.budget}-{steps}-seed{seed}" + (f"-lr{lr:g}" if lr else "")
        state, out = runs_dir / f"{name}.state", runs_dir / f"{name}.pt"
        argv = ["train", "--policy", args.policy, "--obs", obs_type, "--budget", args.budget, "--steps", str(steps),
                "--seed", str(seed), "--device", args.device, "--resume", rel(state), "--out", rel(out)]
        argv += (["--lr", f"{lr:g}"] if lr else []) + (["--amp", args.amp] if args.amp else [])
        before = state_step(state)
        run = {"name": name, "seed": seed, "lr": lr if lr else recipe.train_fields(args.budget)["lr"],
               "steps_target": steps, "steps_before": before, "state": rel(state),
               "command": shlex.join(["dplearn", *argv]), "log": rel(runs_dir / f"{name}.train.log")}
        if out.exists() and (before >= steps or not state.exists()):
            run["status"] = "finished before"
            run["job"] = None
        else:
            run["job"] = Job(name, dplearn_command(*argv), runs_dir / f"{name}.train.log", 1)
        runs.append(run)
    train_jobs = [r["job"] for r in runs if r["job"] is not None]
    eval_reserve = min(args.eval_seconds, 0.4 * 60.0 * args.minutes)
    concurrent = min(len(train_jobs), args.max_procs or len(train_jobs)) or 1
    for job in train_jobs:
        job.threads = process_threads(args.threads, cores // concurrent)
    gpu_samples: list[dict] = []
    completed = run_jobs(train_jobs, deadline - eval_reserve, args.max_procs or len(train_jobs) or 1, "train",
                         report_every=30.0, samples=gpu_samples)

    for run in runs:
        job, state, out = run.pop("job"), ROOT / run["state"], runs_dir / f"{run['name']}.pt"
        run["steps_done"] = state_step(state) if state.exists() else (steps if out.exists() else 0)
        if job is not None:
            run["wall_seconds"] = round(job.seconds or 0.0, 1)
            run["returncode"] = job.returncode
            run["threads"] = job.threads
            gained = run["steps_done"] - run["steps_before"]  # kept steps: a stop loses those after the last save
            run["steps_per_second"] = round(gained / job.seconds, 2) if job.seconds and gained > 0 else None
            run["last_progress"] = job.progress()  # tqdm's last step count and rate in the log
            if job.returncode == 0 and out.exists():
                run["status"] = "finished"
            elif job.stopped:
                run["status"] = f"stopped {job.stopped}"
            elif job.started is None:
                run["status"] = "not started"
            else:
                run["status"] = f"failed (status {job.returncode}, see its log)"
        run["checkpoint"], run["partial"] = None, False
        if run["status"].startswith("finished"):
            run["checkpoint"] = rel(out)
        elif run["steps_done"] > 0:
            snap = runs_dir / f"{run['name']}.step{run['steps_done']}.pt"
            try:
                export_snapshot(state, snap, {"command": run["command"], "partial_of_steps": steps, "seed": run["seed"],
                                              "tier": args.budget, "task": f"pusht-{obs_type}", "gpu": gpu})
                run["checkpoint"], run["partial"] = rel(snap), True
            except (ValueError, KeyError, RuntimeError) as exc:
                run["snapshot_error"] = str(exc)[:300]
        if run["checkpoint"]:
            run["checkpoint_mb"] = round((ROOT / run["checkpoint"]).stat().st_size / 1e6, 2)

    # ---- 2. evaluate -------------------------------------------------------------------------
    targets = [(r["name"], ROOT / r["checkpoint"]) for r in runs if r["checkpoint"]]
    if shipped.exists() and not args.no_shipped:
        targets.append(("shipped", shipped))
    eval_jobs = {}
    for name, path in targets:
        for label, kind, k in samplers:
            eval_jobs[(name, label)] = Job(f"{name} {label}", eval_argv(path, kind, k, args),
                                           runs_dir / f"{name}.eval-{label}.log", 1)
    n_eval = min(len(eval_jobs), args.max_procs or len(eval_jobs)) or 1
    for job in eval_jobs.values():
        job.threads = process_threads(args.threads, cores // n_eval)
    if completed:  # after an interrupt, record the training and evaluate nothing
        run_jobs(list(eval_jobs.values()), deadline - 5.0, args.max_procs or len(eval_jobs) or 1, "eval")

    def scores_of(name: str) -> dict:
        out = {}
        for label, _, _ in samplers:
            job = eval_jobs.get((name, label))
            if job is None:
                continue
            summary = parse_summary(job.log) if job.returncode == 0 else None
            out[label] = summary or {"error": f"stopped {job.stopped}" if job.stopped else
                                     "not started" if job.started is None else f"status {job.returncode}"}
            out[label]["command"] = shlex.join(["dplearn", *job.argv[3:]])
        return out

    for run in runs:
        run["eval"] = scores_of(run["name"])
    shipped_scores = scores_of("shipped") if shipped.exists() and not args.no_shipped else {}

    # ---- 3. record ---------------------------------------------------------------------------
    session = {"started": datetime.datetime.fromtimestamp(t0, datetime.timezone.utc).isoformat(timespec="seconds"),
               "wall_seconds": round(time.time() - t0, 1), "gpu": gpu, "device": args.device,
               "torch": torch.__version__, "cuda": torch.version.cuda, "cpu_cores": cores,
               "python": sys.version.split()[0], "argv": sys.argv[1:], "sweep": sweep,
               "episodes": args.episodes, "eval_seed": args.eval_seed, "gpu_load_while_training": gpu_samples,
               "runs": runs,
               "shipped": {"checkpoint": rel(shipped), "meta_eval": shipped_meta.get("eval"), "eval": shipped_scores}
               if shipped.exists() else None}
    if args.install_best:
        session["install"] = install_best(runs, shipped, shipped_scores, shipped_meta, args, gpu)
    results = runs_dir / "results.json"
    history = []
    if results.exists():
        try:
            history = json.loads(results.read_text()).get("sessions", [])
        except (ValueError, AttributeError):
            history = []
    tmp = results.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"sessions": history + [session]}, indent=1))
    os.replace(tmp, results)
    print_table(session, samplers)
    print(f"\nwrote {rel(results)} ({len(history) + 1} session(s)); session took {time.time() - t0:.0f} s")
    return 0


def install_best(runs: list[dict], shipped: Path, shipped_scores: dict, shipped_meta: dict, args,
                 gpu: str | None) -> dict:
    """Copy the best finished run to ``checkpoints/`` when it beats the shipped checkpoint (see the docstring)."""
    import torch

    from dplearn.policies import load_policy
    from dplearn.policy_training import recipe_for

    key = "DDPM-100"

    def refuse(why: str) -> dict:
        print(f"\n--install-best: nothing installed: {why}")
        return {"installed": False, "reason": why}

    if args.episodes != 50 or args.eval_seed != 100_000:
        return refuse("the comparison needs the benchmark's 50 test starts (--episodes 50 --eval-seed 100000)")
    done = [r for r in runs if r["status"].startswith("finished") and "score" in r["eval"].get(key, {})]
    if not done:
        return refuse(f"no finished run has a {key} score (stopped runs are not installed: their "
                      "recorded command would not reproduce them)")
    best = max(done, key=lambda r: r["eval"][key]["score"])
    new = best["eval"][key]["score"]
    if shipped.exists():
        old, source = shipped_scores.get(key, {}).get("score"), "in this session"
        recorded = shipped_meta.get("eval") or {}
        if old is None and recorded.get("episodes") == 50 and recorded.get("seed") == 100_000:
            old, source = recorded.get(key, {}).get("score"), "recorded in its meta"
        if old is None:
            return refuse(f"the shipped {rel(shipped)} has no {key} score on the 50 test starts to compare with "
                          "(from this session or in its meta)")
        if not new > old:
            return refuse(f"the best run {best['name']} scores {new:.3f}, not above the shipped {old:.3f} ({source})")
    size = (ROOT / best["checkpoint"]).stat().st_size
    if size >= SHIPPED_LIMIT:
        return refuse(f"{best['checkpoint']} is {size / 1e6:.1f} MB, over the {SHIPPED_LIMIT / 1e6:.0f} MB a "
                      "shipped checkpoint may take")
    policy = load_policy(ROOT / best["checkpoint"])
    meta = {**policy.meta, "installed_from": best["name"]}
    meta["eval"] = {"episodes": args.episodes, "seed": args.eval_seed, "gpu": gpu,
                    **{label: {k: v for k, v in s.items() if k != "command"}
                       for label, s in best["eval"].items() if "score" in s}}
    _, recipe = recipe_for(policy.name, policy.obs_type)
    dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(recipe.save_dtype or "")
    policy.save(shipped, meta=meta, dtype=dtype)
    print(f"\n--install-best: installed {best['checkpoint']} as {rel(shipped)} ({key} score {new:.3f})")
    return {"installed": True, "run": best["name"], "score": new}


def print_table(session: dict, samplers) -> None:
    labels = [s[0] for s in samplers]
    print()
    print(f"{session['gpu'] or 'CPU'}, torch {session['torch']}; {session['episodes']} episodes from seed "
          f"{session['eval_seed']}")
    print()
    head = ["run", "seed", "lr", "steps", "status", "train s", "steps/s", "MB"]
    for label in labels:
        head += [f"{label} score", "success"]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(["---", "---:", "---:", "---:", "---", "---:", "---:", "---:"] + ["---:"] * 2 * len(labels)) + "|")

    def cells(evals: dict) -> list[str]:
        out = []
        for label in labels:
            s = evals.get(label, {})
            out += ([f"{s['score']:.3f} ± {s['sem']:.3f}", f"{s['success_rate']:.0%}"] if "score" in s
                    else [s.get("error", ""), ""])
        return out

    for r in session["runs"]:
        row = [r["name"], str(r["seed"]), f"{r['lr']:g}", f"{r['steps_done']}/{r['steps_target']}",
               r["status"] + (" (EMA at last state)" if r["partial"] else ""), f"{r.get('wall_seconds', 0):.0f}",
               f"{r['steps_per_second']:.1f}" if r.get("steps_per_second") else "",
               f"{r.get('checkpoint_mb', 0):.1f}"]
        print("| " + " | ".join(row + cells(r["eval"])) + " |")
    if session["shipped"] and session["shipped"]["eval"]:
        print("| " + " | ".join(["shipped", "", "", "", "", "", "", ""] + cells(session["shipped"]["eval"])) + " |")


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    # a SIGTERM (e.g. an outer time limit) acts like Ctrl-C: the children are stopped, the results written
    signal.signal(signal.SIGTERM, _interrupt)
    sys.exit(main())
