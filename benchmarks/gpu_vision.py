"""One GPU session for chapter 9, prepared: train the image policies side by side, score them, record it all.

The visuomotor Diffusion Policy on ``pixels`` (one top-down camera) and on ``two-cameras`` (top-down and
pusher-centred) trains in two ``dplearn train`` processes on the one GPU at once, under a wall-clock
limit this script enforces itself; then each checkpoint is scored with ``dplearn eval --episodes 50
--seed 100000`` (the paper's 50 test starts), and everything goes into ``RUNS/vision_results.json``.

    PYTHONPATH=src python benchmarks/gpu_vision.py                        # full tier, 11 minutes
    PYTHONPATH=src python benchmarks/gpu_vision.py --minutes 11 --out-dir "$OUT" --install
    PYTHONPATH=src python benchmarks/gpu_vision.py --budget quick --steps 4 --device cpu --minutes 4 \\
        --episodes 2 --samplers ddim-10 --runs-dir /tmp/vision-rehearsal   # the CPU rehearsal

It needs torch, numpy, gymnasium, pymunk, tqdm and matplotlib importable and the ``src/`` directory; every
command runs with the same Python. It reuses ``benchmarks/gpu_session.py``'s machinery (processes with a
deadline, training-state snapshots, the summary line of ``dplearn eval``).

1. **Render.** Every frame of the shipped demonstrations, for both cameras, rendered once in parallel on
   all CPU cores into the frame cache (``--cache-dir``, default ``$DPLEARN_CACHE_DIR`` or
   ``~/.cache/dplearn``), before the training processes start, so they load it instead of rendering it
   twice each.
2. **Train.** One run per ``--obs`` (default ``pixels two-cameras``; ``pixels_agent_pos`` is the paper's
   image observation, the top view with the pusher's position): ``dplearn train --policy
   diffusion-cnn --obs OBS --budget BUDGET --steps N --seed S --device D --resume RUNS/NAME.state --out
   RUNS/NAME.pt``, side by side; a run's name holds its observation, tier, steps and seed, so the same
   command on the same machine continues a stopped run from its training state (saved every tenth of the
   run, at most every 1000 steps). At the training deadline (the session's minus ``--eval-seconds``) runs
   still going are stopped and their last saved state is exported as ``RUNS/NAME.stepK.pt`` (EMA weights),
   scored as a partial result.
3. **Evaluate.** Each checkpoint with each sampler (default DDPM-100, the recipe's, and DDIM-10), all in
   parallel processes, on ``--device``.
4. **Record.** ``RUNS/vision_results.json`` gains one entry per session: per run its command, seed, steps
   before and after, wall time, steps per second, status, checkpoint size and the scores; with the GPU's
   name, torch and CUDA versions, the GPU's load while training, and the render time.
5. ``--install`` copies each *finished* run (all its steps: its recorded command reproduces it) whose
   checkpoint is at most 25 MB to ``checkpoints/diffusion-cnn-OBS.pt`` with its scores in the checkpoint's
   meta, unless the shipped one scored higher on the same 50 starts (``gpu_session.install_best``).
   ``--out-dir`` copies the results, the checkpoints and the logs there, cutting files over 15 MiB into
   ``FILE.part0``, ``FILE.part1``, ... (a device machine returns files of at most 16 MiB); join them with
   ``cat FILE.part* > FILE``.

Training states hold weights, EMA and optimiser moments, about 16 bytes per parameter (120-180 MB for
the full tier): they resume a run on the machine that has them, but are too big to bring back from a
lent GPU machine, so plan each run to finish within one session.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_session as gs  # noqa: E402  (the machinery of the chapter 8 session script)

ROOT = gs.ROOT
PART_BYTES = 15 * 2**20


def render_cache(cores: int) -> dict:
    """Render the shipped demonstrations' frames for both cameras into the cache; returns timings."""
    from dplearn.data import demo_frames, load_pusht_demos
    from dplearn.data.frames import frames_cache_path

    demos = load_pusht_demos()
    out = {}
    for camera in ("top", "wrist"):
        start = time.time()
        existed = frames_cache_path(demos, camera).is_file()
        demo_frames(demos, camera, workers=max(1, cores))
        out[camera] = {"seconds": round(time.time() - start, 1), "cached_before": existed,
                       "file": str(frames_cache_path(demos, camera))}
        print(f"[{gs.clock()}] render: {camera} camera, {demos.n_steps} frames, {out[camera]['seconds']} s"
              + (" (from the cache)" if existed else ""), flush=True)
    return out


def copy_out(paths: list[Path], out_dir: Path) -> list[str]:
    """Copy ``paths`` into ``out_dir``, cutting any file over :data:`PART_BYTES` into numbered parts."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in paths:
        if not path.is_file():
            continue
        data = path.read_bytes()
        if len(data) <= PART_BYTES:
            shutil.copyfile(path, out_dir / path.name)
            written.append(path.name)
            continue
        for k in range(0, len(data), PART_BYTES):
            name = f"{path.name}.part{k // PART_BYTES}"
            (out_dir / name).write_bytes(data[k:k + PART_BYTES])
            written.append(name)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--obs", nargs="+", default=["pixels", "two-cameras"], help="observation types to train")
    parser.add_argument("--seed", type=int, default=0, help="training seed of every run (default 0)")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the recipe's)")
    parser.add_argument("--shared-encoder", action="store_true", help="one encoder for both cameras")
    gs.add_session_arguments(parser, minutes=11.0, eval_seconds=120.0, runs_dir=ROOT / "runs",
                             extras=("amp", "samplers", "threads"))
    parser.add_argument("--cache-dir", default=None, help="rendered-frame cache (default: dplearn's)")
    parser.add_argument("--out-dir", default=None, help="also copy results, checkpoints and logs here")
    parser.add_argument("--install", action="store_true",
                        help="copy finished runs to checkpoints/diffusion-cnn-OBS.pt (see above)")
    args = parser.parse_args()

    t0 = time.time()
    deadline = t0 + 60.0 * args.minutes
    gs.check_python()
    if args.cache_dir:
        os.environ["DPLEARN_CACHE_DIR"] = str(Path(args.cache_dir).resolve())  # children inherit it
    import torch

    from dplearn.policy_training import recipe_for

    torch.set_num_threads(1)
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else None
        if args.device is None:
            raise SystemExit("gpu_vision: no CUDA GPU here; pass --device cpu to rehearse on the CPU")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"gpu_vision: --device {args.device}: no CUDA GPU is available")
    recipes = {}
    for obs in args.obs:
        try:
            recipes[obs] = recipe_for("diffusion-cnn", obs)[1]
        except ValueError as exc:
            raise SystemExit(f"gpu_vision: --obs: {exc}") from None
        if args.budget not in recipes[obs].steps:
            raise SystemExit(f"gpu_vision: --budget must be one of {sorted(recipes[obs].steps)}")
    samplers = gs.parse_samplers(args.samplers)
    runs_dir = Path(args.runs_dir).resolve()
    runs_dir.mkdir(parents=True, exist_ok=True)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    print(f"[{gs.clock()}] session: torch {torch.__version__} (CUDA {torch.version.cuda}), {cores} CPU cores; "
          f"diffusion-cnn on {', '.join(args.obs)}, {args.budget} tier; {args.minutes:g} min in all", flush=True)

    # ---- 1. render (worker processes forked before this process opens a CUDA context) ------------
    rendering = render_cache(cores)
    gpu = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None
    print(f"[{gs.clock()}] device: {gpu or 'CPU'}", flush=True)

    # ---- 2. train --------------------------------------------------------------------------------
    runs = []
    for obs, recipe in recipes.items():
        steps = args.steps or recipe.steps[args.budget]
        name = (f"diffusion-cnn-{obs}-{args.budget}-{steps}-seed{args.seed}" + ("-shared" if args.shared_encoder
                                                                                else "")
                + (f"-lr{args.lr:g}" if args.lr else ""))
        state, out = runs_dir / f"{name}.state", runs_dir / f"{name}.pt"
        argv = ["train", "--policy", "diffusion-cnn", "--obs", obs, "--budget", args.budget, "--steps", str(steps),
                "--seed", str(args.seed), "--device", args.device, "--resume", gs.rel(state), "--out", gs.rel(out)]
        argv += (["--lr", f"{args.lr:g}"] if args.lr else []) + (["--amp", args.amp] if args.amp else [])
        argv += ["--shared-encoder"] if args.shared_encoder else []
        before = gs.state_step(state)
        run = {"name": name, "obs": obs, "seed": args.seed, "lr": args.lr or recipe.train_fields(args.budget)["lr"],
               "batch_size": recipe.train_fields(args.budget)["batch_size"], "steps_target": steps,
               "steps_before": before, "state": gs.rel(state), "command": shlex.join(["dplearn", *argv]),
               "log": gs.rel(runs_dir / f"{name}.train.log")}
        if out.exists() and (before >= steps or not state.exists()):
            run["status"], run["job"] = "finished before", None
        else:
            run["job"] = gs.Job(name, gs.dplearn_command(*argv), runs_dir / f"{name}.train.log", 1)
        runs.append(run)
    jobs = [r["job"] for r in runs if r["job"] is not None]
    for job in jobs:
        job.threads = gs.process_threads(args.threads, cores // max(1, len(jobs)))
    eval_reserve = min(args.eval_seconds, 0.4 * 60.0 * args.minutes)
    gpu_samples: list[dict] = []
    completed = gs.run_jobs(jobs, deadline - eval_reserve, max(1, len(jobs)), "train", report_every=30.0,
                            samples=gpu_samples)
    for run in runs:
        job, state, out = run.pop("job"), ROOT / run["state"], runs_dir / f"{run['name']}.pt"
        run["steps_done"] = gs.state_step(state) if state.exists() else (run["steps_target"] if out.exists() else 0)
        if job is not None:
            run["wall_seconds"] = round(job.seconds or 0.0, 1)
            run["returncode"], run["threads"] = job.returncode, job.threads
            gained = run["steps_done"] - run["steps_before"]
            run["steps_per_second"] = round(gained / job.seconds, 2) if job.seconds and gained > 0 else None
            run["last_progress"] = job.progress()
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
            run["checkpoint"] = gs.rel(out)
        elif run["steps_done"] > 0:
            snap = runs_dir / f"{run['name']}.step{run['steps_done']}.pt"
            try:
                gs.export_snapshot(state, snap, {"command": run["command"], "partial_of_steps": run["steps_target"],
                                                 "seed": run["seed"], "tier": args.budget,
                                                 "task": f"pusht-{run['obs']}", "gpu": gpu})
                run["checkpoint"], run["partial"] = gs.rel(snap), True
            except (ValueError, KeyError, RuntimeError) as exc:
                run["snapshot_error"] = str(exc)[:300]
        if run["checkpoint"]:
            run["checkpoint_mb"] = round((ROOT / run["checkpoint"]).stat().st_size / 1e6, 2)

    # ---- 3. evaluate -----------------------------------------------------------------------------
    eval_jobs = {}
    for run in runs:
        if run["checkpoint"]:
            for label, kind, k in samplers:
                eval_jobs[(run["name"], label)] = gs.Job(f"{run['name']} {label}",
                                                         gs.eval_argv(ROOT / run["checkpoint"], kind, k, args),
                                                         runs_dir / f"{run['name']}.eval-{label}.log", 1)
    for job in eval_jobs.values():
        job.threads = gs.process_threads(args.threads, cores // max(1, len(eval_jobs)))
    if completed:
        gs.run_jobs(list(eval_jobs.values()), deadline - 5.0, max(1, len(eval_jobs)), "eval")
    for run in runs:
        run["eval"] = {}
        for label, _, _ in samplers:
            job = eval_jobs.get((run["name"], label))
            if job is None:
                continue
            summary = gs.parse_summary(job.log) if job.returncode == 0 else None
            run["eval"][label] = summary or {"error": f"stopped {job.stopped}" if job.stopped else
                                             "not started" if job.started is None else f"status {job.returncode}"}
            run["eval"][label]["command"] = shlex.join(["dplearn", *job.argv[3:]])

    # ---- 4. record -------------------------------------------------------------------------------
    session = {"started": datetime.datetime.fromtimestamp(t0, datetime.timezone.utc).isoformat(timespec="seconds"),
               "wall_seconds": round(time.time() - t0, 1), "gpu": gpu, "device": args.device,
               "torch": torch.__version__, "cuda": torch.version.cuda, "cpu_cores": cores,
               "python": sys.version.split()[0], "argv": sys.argv[1:], "render": rendering,
               "episodes": args.episodes, "eval_seed": args.eval_seed, "gpu_load_while_training": gpu_samples,
               "runs": runs}
    if args.install:
        session["install"] = {}
        for run in runs:
            shipped = ROOT / "checkpoints" / f"diffusion-cnn-{run['obs']}.pt"
            shipped_meta = gs.checkpoint_meta(shipped) if shipped.exists() else {}
            session["install"][run["obs"]] = gs.install_best([run], shipped, {}, shipped_meta, args, gpu)
    results = runs_dir / "vision_results.json"
    history = []
    if results.exists():
        try:
            history = json.loads(results.read_text()).get("sessions", [])
        except (ValueError, AttributeError):
            history = []
    tmp = results.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"sessions": history + [session]}, indent=1))
    os.replace(tmp, results)
    labels = [s[0] for s in samplers]
    print(f"\n{gpu or 'CPU'}, torch {torch.__version__}; {args.episodes} episodes from seed {args.eval_seed}\n")
    print("| run | steps | status | train s | steps/s | MB | " + " | ".join(f"{x} score | success" for x in labels) + " |")
    print("|---|---:|---|---:|---:|---:|" + "---:|" * 2 * len(labels))
    for r in runs:
        cells = []
        for label in labels:
            s = r["eval"].get(label, {})
            cells += ([f"{s['score']:.3f} ± {s['sem']:.3f}", f"{s['success_rate']:.0%}"] if "score" in s
                      else [s.get("error", ""), ""])
        print("| " + " | ".join([r["name"], f"{r['steps_done']}/{r['steps_target']}",
                                 r["status"] + (" (EMA at last state)" if r["partial"] else ""),
                                 f"{r.get('wall_seconds', 0):.0f}",
                                 f"{r['steps_per_second']:.1f}" if r.get("steps_per_second") else "",
                                 f"{r.get('checkpoint_mb', 0):.1f}"] + cells) + " |")
    if args.out_dir:
        files = [results] + [ROOT / r["checkpoint"] for r in runs if r["checkpoint"]]
        logs = runs_dir / "vision_logs.txt"
        logs.write_text("".join(f"\n######## {p.name}\n" + p.read_text(errors="replace")[-20000:]
                                for p in sorted(runs_dir.glob("*.log"))))
        written = copy_out(files + [logs], Path(args.out_dir))
        print(f"copied to {args.out_dir}: {', '.join(written)}")
    print(f"\nwrote {gs.rel(results)} ({len(history) + 1} session(s)); session took {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, gs._interrupt)
    sys.exit(main())
