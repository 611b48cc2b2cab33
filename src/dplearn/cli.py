"""The ``dplearn`` command: ``dplearn collect`` (and the other subcommands as they are added).

Introduced in chapter 5 (``collect``) and chapter 6 (``train``, ``eval``); data-parallel
``train`` under ``torchrun`` and ``eval --workers`` in chapter 9.

    dplearn collect --episodes 200 --seed 1000000 --workers 4 --out data/pusht_demos.npz
    dplearn train --policy diffusion-cnn --obs keypoints --budget full --resume /tmp/dp.state
    dplearn train --policy diffusion-cnn --obs keypoints --control velocity   # chapter 10's ablation
    torchrun --nproc-per-node 4 -m dplearn train --policy diffusion-cnn --obs keypoints --budget full
    dplearn eval --checkpoint checkpoints/diffusion-cnn-keypoints.pt --episodes 50 --seed 100000

Each subcommand is a function ``add_<name>(subparsers)`` that adds its parser and sets
``func`` to the function that runs it with the parsed arguments; :func:`main` dispatches.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
from collections.abc import Sequence

__all__ = ["main", "build_parser"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


# ---------------------------------------------------------------------------------- collect --
def add_collect(subparsers) -> None:
    p = subparsers.add_parser(
        "collect",
        help="collect successful Push-T demonstrations of the scripted expert",
        description="Run the scripted Push-T expert on seeded starts (in parallel), keep the "
        "successful episodes and write them as a compressed .npz in the replay-buffer layout.",
    )
    p.add_argument("--episodes", type=_positive_int, default=200,
                   help="successful episodes to keep (default 200)")
    p.add_argument("--seed", type=_seed, default=1_000_000,
                   help="first environment seed; episode i starts from seed + i (default 1000000)")
    p.add_argument("--workers", type=_positive_int, default=max(1, (os.cpu_count() or 1)),
                   help="worker processes (default: all CPU cores)")
    p.add_argument("--out", default="data/pusht_demos.npz", help="output .npz file")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run_collect)


def run_collect(args: argparse.Namespace) -> int:
    from dplearn.collection import collect_demos
    from dplearn.data import save_demos

    if not str(args.out).endswith(".npz"):
        raise SystemExit(f"dplearn collect: --out must end in .npz, got {args.out!r}")
    command = "dplearn collect " + " ".join(
        shlex.quote(a) for a in (
            "--episodes", str(args.episodes), "--seed", str(args.seed),
            "--workers", str(args.workers), "--out", str(args.out),
        )
    )
    demos = collect_demos(
        args.episodes, seed=args.seed, workers=args.workers, progress=not args.no_progress,
        command=command,
    )
    path = save_demos(args.out, demos)
    m = demos.meta
    print(
        f"wrote {path}: {demos.n_episodes} episodes, {len(demos.state)} steps "
        f"(length mean {m['episode_length']['mean']:.1f}, median {m['episode_length']['median']:.1f}); "
        f"{len(m['failed_seeds'])} of {m['attempts']} attempts failed; "
        f"{m['wall_seconds']:.1f} s with {args.workers} workers; {path.stat().st_size / 1e6:.2f} MB"
    )
    return 0


# ------------------------------------------------------------------------------------ train --
def add_train(subparsers) -> None:
    from dplearn.budget import TIERS

    p = subparsers.add_parser(
        "train",
        help="train a policy on the Push-T demonstrations and save it",
        description="Train a policy (regression, categorical, mixture, lstm-gmm, ibc on keypoints or "
        "states; diffusion-cnn on keypoints, pixels, pixels_agent_pos or two-cameras; diffusion-transformer "
        "on keypoints) on the shipped Push-T demonstrations (or --demos) with its recipe "
        "(dplearn.policy_training.PUSHT_RECIPES) and save the policy (config, weights and "
        "normalisers) atomically. Under torchrun (`torchrun --nproc-per-node N -m dplearn train ...`) "
        "the N processes train data-parallel with the recipe's batch as the global batch; rank 0 writes.",
    )
    p.add_argument("--policy", required=True, help="registered policy name, e.g. diffusion-cnn")
    p.add_argument("--obs", default=None,
                   help="observation type of the recipe (default: keypoints where the policy has a keypoint "
                   "recipe, e.g. regression or diffusion-cnn)")
    p.add_argument("--budget", choices=TIERS, default=None,
                   help="recipe size: quick, book or full (default: full with CUDA, else book)")
    p.add_argument("--steps", type=_positive_int, default=None, help="override the recipe's optimiser steps")
    p.add_argument("--seed", type=_seed, default=0, help="training seed (default 0)")
    p.add_argument("--lr", type=_positive_float, default=None, help="override the recipe's peak learning rate")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    p.add_argument("--amp", choices=("auto", "bf16", "fp16", "none"), default=None,
                   help="mixed precision (default: the recipe's; auto = bf16 on Ampere+, fp16 on older GPUs)")
    p.add_argument("--demos", default=None, help="demonstrations .npz (default: the shipped ones)")
    p.add_argument("--out", default=None, help="output checkpoint (default checkpoints/POLICY-OBS.pt; with "
                   "--demos D.npz: D-POLICY-OBS.pt beside the demonstrations)")
    p.add_argument("--resume", default=None,
                   help="training-state file to save to (every tenth of the run, at most every 1000 "
                   "steps) and resume from; not the same file as --out")
    p.add_argument("--shared-encoder", action="store_true",
                   help="image policies: one vision encoder for all cameras instead of one per camera "
                   "(default out: checkpoints/POLICY-OBS-shared.pt)")
    p.add_argument("--control", choices=("position", "velocity"), default="position",
                   help="what the actions are: position (default, the benchmark's target positions) or velocity "
                   "(displacements from the pusher's position, robomimic's delta control: the paper's ablation; "
                   "default out: checkpoints/POLICY-OBS-velocity.pt)")
    p.add_argument("--obs-horizon", type=_positive_int, default=None, metavar="T_O",
                   help="override the recipe's observation horizon T_o, the observations each prediction "
                   "reads (chapter 10's ablation; default out: checkpoints/POLICY-OBS-obsT_O.pt)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run_train)


def _check_device(text: str) -> str:
    """``--device``: ``auto`` or a device torch knows and this machine has; one-line errors otherwise."""
    import torch

    if text == "auto":
        return text
    try:
        device = torch.device(text)
    except (RuntimeError, TypeError):
        raise SystemExit(f"dplearn: --device must be auto, cpu, cuda or cuda:N, got {text!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"dplearn: --device {text}: no CUDA GPU is available on this machine")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise SystemExit(f"dplearn: --device {text}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    if device.type not in ("cpu", "cuda", "mps"):
        raise SystemExit(f"dplearn: --device must be auto, cpu, cuda or cuda:N, got {text!r}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise SystemExit(f"dplearn: --device {text}: no Apple MPS device is available on this machine")
    return text


def run_train(args: argparse.Namespace) -> int:
    from dplearn.policy_training import recipe_for

    try:
        obs_type, recipe = recipe_for(args.policy, args.obs)
    except ValueError as exc:
        raise SystemExit(f"dplearn train: --policy/--obs: {exc}") from None
    device = _check_device(args.device)
    from dplearn.distributed import init_distributed, shutdown

    try:  # under torchrun: one process of a data-parallel run (see dplearn.distributed)
        dist_info = init_distributed(device)
    except (ValueError, RuntimeError) as exc:
        raise SystemExit(f"dplearn train: {exc}") from None
    try:
        return _run_train(args, recipe, obs_type, device, dist_info)
    finally:
        shutdown()


def _run_train(args: argparse.Namespace, recipe, obs_type: str, device: str, dist_info) -> int:
    import torch

    from dplearn.budget import current_tier
    from dplearn.compute import _available_cores, set_torch_threads
    from dplearn.data import load_pusht_demos
    from dplearn.policy_training import train_pusht_policy

    main = dist_info is None or dist_info.is_main
    # CPU processes of one data-parallel run share the cores (DPLEARN_THREADS still wins)
    set_torch_threads(None if dist_info is None else max(1, _available_cores() // dist_info.local_world_size))
    if torch.cuda.is_available():  # TensorFloat-32 matrix products: several times faster, ample precision here
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    tier = args.budget or current_tier()
    shared = bool(getattr(args, "shared_encoder", False))
    velocity = getattr(args, "control", "position") == "velocity"
    obs_horizon = getattr(args, "obs_horizon", None)
    name = (f"{args.policy}-{obs_type}{'-shared' if shared else ''}{'-velocity' if velocity else ''}"
            f"{f'-obs{obs_horizon}' if obs_horizon else ''}.pt")
    # a policy trained on other demonstrations never replaces a shipped checkpoint by default: it goes
    # beside its demonstrations, named after them (my_demos.npz -> my_demos-diffusion-cnn-keypoints.pt)
    out = args.out or (os.path.join("checkpoints", name) if args.demos is None
                       else os.path.splitext(args.demos)[0] + f"-{name}")
    if args.resume is not None and os.path.abspath(args.resume) == os.path.abspath(out):
        raise SystemExit("dplearn train: --resume must be a different file from --out (the training state "
                         "holds the optimiser and must not overwrite the policy, nor the other way round)")
    try:
        demos = load_pusht_demos(args.demos)
    except (ValueError, OSError) as exc:
        raise SystemExit(f"dplearn train: --demos: {exc}") from None
    overrides = {"shared_encoder": True} if shared else {}
    if obs_horizon:
        overrides["obs_horizon"] = obs_horizon
    launcher = "dplearn train " if dist_info is None else (
        f"torchrun --nproc-per-node {dist_info.local_world_size} -m dplearn train "
        if dist_info.local_world_size == dist_info.world_size
        else f"torchrun (WORLD_SIZE={dist_info.world_size}) -m dplearn train ")
    command = launcher + " ".join(shlex.quote(a) for a in (
        ["--policy", args.policy, "--obs", obs_type, "--budget", tier, "--seed", str(args.seed)]
        + (["--steps", str(args.steps)] if args.steps else [])
        + (["--lr", repr(args.lr)] if args.lr else [])
        + (["--amp", args.amp] if args.amp else []) + (["--shared-encoder"] if shared else [])
        + (["--control", "velocity"] if velocity else [])
        + (["--obs-horizon", str(obs_horizon)] if obs_horizon else [])
        + (["--demos", args.demos] if args.demos else []) + ["--out", out]))
    amp = {"none": None}.get(args.amp, args.amp) if args.amp else "__recipe__"
    stop_requested = []
    previous = {sig: signal.signal(sig, lambda *_: stop_requested.append(True))
                for sig in (signal.SIGINT, signal.SIGTERM)}  # stop at the next step boundary, saving
    try:
        policy, result = train_pusht_policy(
            args.policy, tier=tier, steps=args.steps, seed=args.seed, device=device, demos=demos,
            progress=not args.no_progress, checkpoint_path=args.resume, config_overrides=overrides,
            obs_type=obs_type, amp=amp, lr=args.lr, stop=lambda: bool(stop_requested),
            control="velocity" if velocity else "position")
    except ValueError as exc:
        raise SystemExit(f"dplearn train: {exc}") from None
    except KeyboardInterrupt as exc:
        where = (f"the training state is saved in {args.resume}; run the same command to continue"
                 if args.resume else "nothing was saved (use --resume FILE to keep the training state)")
        if main:
            print(f"dplearn train: {exc or 'interrupted'}; {where}", file=sys.stderr)
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not main:  # data-parallel: rank 0 writes the policy
        return 0
    policy.meta["command"] = command
    if dist_info is not None:
        policy.meta["processes"] = dist_info.world_size
    dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(recipe.save_dtype or "")
    path = policy.cpu().save(out, meta=policy.meta, dtype=dtype)
    print(f"wrote {path}: {args.policy} policy on {obs_type}{' (velocity control)' if velocity else ''}, "
          f"{result.step} steps in "
          f"{policy.meta['train_seconds']:.0f} s on {policy.meta.get('gpu', policy.meta['device'])}, final loss "
          f"{policy.meta['final_loss']:.4f}; {os.path.getsize(path) / 1e6:.2f} MB")
    return 0


# ------------------------------------------------------------------------------------- eval --
def add_eval(subparsers) -> None:
    p = subparsers.add_parser(
        "eval",
        help="score a policy on Push-T episodes from the benchmark's test starts",
        description="Run a saved policy on Push-T with the benchmark's protocol (episode i starts from "
        "reset(seed=SEED+i); score = mean of each episode's best reward, success = coverage above 95 %%; "
        "300 steps) and print a one-line summary last. A policy trained with --control velocity acts in "
        "velocity-control environments (its actions are displacements), read from its checkpoint.",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--policy", help="a shipped policy by name (its checkpoints/NAME-OBS.pt)")
    which.add_argument("--checkpoint", help="a policy checkpoint written by dplearn train")
    p.add_argument("--obs", default=None, help="with --policy: the observation it was trained on "
                   "(default: keypoints where the policy has a keypoint recipe)")
    p.add_argument("--episodes", type=_positive_int, default=50, help="episodes (default 50)")
    p.add_argument("--seed", type=_seed, default=None,
                   help="seed of the first episode; episode i uses seed + i (default 100000: the paper's "
                   "50 test starts are 100000-100049)")
    p.add_argument("--envs", type=_positive_int, default=None, help="episodes run side by side (default 50)")
    p.add_argument("--workers", type=_positive_int, default=None,
                   help="processes stepping the environments on as many CPU cores (default: one per usable core "
                   "but one, at most one per environment, and 1 below 4 cores; 1 = all in this process); "
                   "the results are the same")
    p.add_argument("--device", default="cpu", help="device the policy runs on (default cpu)")
    p.add_argument("--sampler", choices=("ddpm", "ddim"), default=None,
                   help="diffusion policies: sample with DDPM (all steps) or DDIM (default: as saved)")
    p.add_argument("--inference-steps", type=_positive_int, default=None,
                   help="diffusion policies: DDIM steps (default 10 with --sampler ddim)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    import time

    from dplearn.compute import set_torch_threads
    from dplearn.envs.benchmark import TEST_SEED
    from dplearn.envs.parallel import default_workers
    from dplearn.evaluation import evaluate
    from dplearn.policies import load_policy, shipped_checkpoint_path
    from dplearn.policy_training import recipe_for

    device = _check_device(args.device)
    set_torch_threads()
    try:
        if args.policy:
            obs_type, _ = recipe_for(args.policy, args.obs)
            path = shipped_checkpoint_path(args.policy, obs_type)
        else:
            path = args.checkpoint
        policy = load_policy(path)
        if args.sampler or args.inference_steps:
            if not hasattr(policy, "set_sampler"):
                raise ValueError(f"--sampler/--inference-steps apply to diffusion policies, not {policy.name!r}")
            policy.set_sampler(args.sampler or "ddim", args.inference_steps)
    except (ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"dplearn eval: {exc}") from None
    seed = TEST_SEED if args.seed is None else args.seed
    policy.to("cuda" if device == "auto" and _cuda() else ("cpu" if device == "auto" else device))
    start = time.perf_counter()
    n_envs = args.envs or min(args.episodes, 50)
    workers = args.workers or default_workers(min(n_envs, args.episodes))
    result = evaluate(policy, n_episodes=args.episodes, seed=seed, n_envs=n_envs, progress=not args.no_progress,
                      workers=workers)
    seconds = time.perf_counter() - start
    rewards = result.max_rewards
    sem = rewards.std(ddof=1) / len(rewards) ** 0.5 if len(rewards) > 1 else 0.0
    sampler = ""
    if hasattr(policy, "num_inference_steps"):
        sampler = f" sampler={policy.config.sampler}-{policy.num_inference_steps}"
    shown = os.path.relpath(path) if not os.path.relpath(path).startswith("..") else str(path)
    control = f" control={policy.control}" if getattr(policy, "control", "position") != "position" else ""
    print(f"policy={policy.name} obs={policy.obs_type}{control} checkpoint={shown}{sampler} episodes={result.n_episodes} "
          f"seed={seed} workers={workers} seconds={seconds:.0f} score={result.score:.3f}±{sem:.3f} "
          f"success_rate={result.success_rate:.3f}")
    return 0


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


# -------------------------------------------------------------------------------- exercises --
def add_exercises(subparsers) -> None:
    p = subparsers.add_parser(
        "exercises",
        help="student notebooks without solutions; the chapters' Colab copies",
        description="Tools for the chapters' exercises: `strip` writes a student notebook without "
        "the worked solutions (cells tagged 'solution'); `sync` refreshes the chapters' generated "
        "cells and writes their Colab/Jupyter copies (colab/notebooks).",
    )
    sub = p.add_subparsers(dest="exercises_command", metavar="ACTION", required=True)
    strip = sub.add_parser(
        "strip", help="write a student notebook without solutions",
        description="Copy a chapter notebook without its worked solutions: the cells tagged "
        "'solution' go, the exercise prompts, starter cells and checker calls stay. Strip "
        "colab/notebooks/NN_*.ipynb for a handout that reads in plain Jupyter and Colab, or "
        "notebooks/NN_*.ipynb for one in the book's MyST Markdown.",
    )
    strip.add_argument("notebook", help="the chapter notebook (.ipynb)")
    strip.add_argument("-o", "--out", required=True, help="the student notebook to write (.ipynb)")
    strip.set_defaults(func=run_exercises_strip)
    sync = sub.add_parser(
        "sync", help="refresh the chapters' generated cells and their Colab copies",
        description="In a checkout of the book: give every chapter its math-macro cell (from "
        "_config.yml) and its solution tags, and write colab/notebooks/NN_*.ipynb, the plain-"
        "Markdown copies that the website's Colab button opens.",
    )
    sync.add_argument("--root", default=".", help="the book's checkout (default: .)")
    sync.add_argument("--check", action="store_true",
                      help="write nothing; exit 1 when something is out of date")
    sync.set_defaults(func=run_exercises_sync)


def run_exercises_strip(args: argparse.Namespace) -> int:
    import json

    from dplearn.atomic import atomic_write
    from dplearn.exercises.handout import strip_solutions

    if os.path.abspath(args.notebook) == os.path.abspath(args.out):
        raise SystemExit("dplearn exercises strip: --out must differ from the input notebook")
    try:
        with open(args.notebook, encoding="utf-8") as f:
            nb = json.load(f)
        student = strip_solutions(nb)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"dplearn exercises strip: {args.notebook}: {exc}") from None
    text = json.dumps(student, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    atomic_write(args.out, lambda f: f.write(text.encode("utf-8")))
    removed = len(nb["cells"]) - len(student["cells"])
    print(f"wrote {args.out}: {len(student['cells'])} cells, {removed} solution cells removed")
    return 0


def run_exercises_sync(args: argparse.Namespace) -> int:
    from dplearn.exercises.colab import MystError, sync

    try:
        report = sync(args.root, check=args.check, log=print)
    except (MystError, OSError) as exc:
        raise SystemExit(f"dplearn exercises sync: {exc}") from None
    if args.check and report:
        print("run `dplearn exercises sync` to bring these up to date")
        return 1
    if not report:
        print("everything is up to date")
    return 0


# ------------------------------------------------------------------------------------- main --
SUBCOMMANDS = [add_collect, add_train, add_eval, add_exercises]


def build_parser() -> argparse.ArgumentParser:
    """The ``dplearn`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="dplearn", description="Diffusion Policy from first principles: command-line tools."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dplearn`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError) as exc:  # expected failures (bad files, values, a full disk): one line
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"dplearn {args.command}: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
