"""The paper's comparison, reproduced: every method × 3 training seeds, scored on the 50 test starts.

Diffusion Policy's Table 1 reports, for each method, the best score and the mean score of the last
checkpoints, over 3 training seeds. This script does the same on our Push-T: it trains every
``--methods`` × ``--seeds`` with ``dplearn train`` side by side under a wall-clock limit it enforces
itself, keeps the EMA weights of each run's last ``--last`` saved training states as checkpoints,
scores every one of them with ``dplearn eval --episodes 50 --seed 100000`` (the paper's test starts),
and writes a results file that chapter 10 reads::

    PYTHONPATH=src python benchmarks/comparison.py --minutes 9            # full tier, on a GPU
    PYTHONPATH=src python benchmarks/comparison.py --budget quick --device cpu --minutes 4 \\
        --methods regression diffusion-cnn --seeds 0 1 --episodes 2 --last 2 \\
        --runs-dir /tmp/comparison-rehearsal                            # the CPU rehearsal

It needs torch, numpy, gymnasium, pymunk, tqdm and matplotlib importable and the ``src/`` directory;
it reuses ``benchmarks/gpu_session.py``'s machinery (processes with a deadline, training-state
snapshots, the summary line of ``dplearn eval``).

1. **Train.** ``dplearn train --policy P --obs OBS --budget B --seed S --resume RUNS/NAME.state --out
   RUNS/NAME.pt`` for every method P and seed S, all at once (``--max-procs`` caps them). A training
   state is saved every tenth of the run (at most every 1000 steps); each time a run's state file
   changes, the script keeps that version (a hard link) and, once training is over, exports the EMA
   policy of each of the last ``--last`` as ``RUNS/NAME.stepK.pt``. At the deadline (the
   session's minus ``--eval-seconds``) runs still going are stopped; they are scored on what they
   reached and marked partial.
2. **Evaluate.** The last ``--last`` snapshots of each run (the final checkpoint counts as the last),
   each with the policy's own sampler, in parallel processes (one environment process each).
3. **Record.** ``RUNS/comparison.json``: per run its command, seed, steps, wall time, status and the
   score and success rate of every evaluated checkpoint; per method the mean ± sd over seeds of each
   run's max and of each run's mean (the paper's "max / avg"); the GPU, torch and CUDA versions, and
   the session's arguments. ``--publish FILE`` also writes the per-method table (a few kB) where the
   book reads it, e.g. ``data/comparison.json``.

``--reuse`` skips the evaluation of a checkpoint file scored before in the same runs directory: a file with
the same content (SHA-256), scored with the same episodes, test-start seed, kind of device and torch, takes
its recorded score, marked with the session that measured it (``scored_in``). It trusts that the
evaluation code has not changed since; leave it out after changing the environment or a sampler.

``--control velocity`` trains every method on displacements instead of target positions (chapter 10's
position-versus-velocity ablation); its rows are marked with the control. ``--checkpoints FILE ...``
skips training and scores the given policy checkpoints (e.g. the shipped ones), each as one run of one
seed with one checkpoint; files made by the same command but for ``--seed`` (and ``--out``) share a row.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_session as gs  # noqa: E402  (processes with a deadline, snapshots, eval summaries)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from dplearn.envs.benchmark import IMAGE_OBS_TYPES, PAPER_PUSHT  # noqa: E402

ROOT = gs.ROOT
METHODS = ("regression", "categorical", "mixture", "lstm-gmm", "ibc", "diffusion-cnn", "diffusion-transformer")


def summarise(runs: list[dict], last: int) -> dict[str, dict]:
    """Per (method, observation): each run's max and mean over its scored checkpoints (with ``max_sem``, the
    standard error over episodes of the best checkpoint's score), then the mean ± sd over seeds
    (:func:`dplearn.envs.benchmark.summarize_seeds`, the paper's statistic)."""
    from dplearn.envs.benchmark import summarize_seeds

    table: dict[str, dict] = {}
    for key in dict.fromkeys(r["key"] for r in runs):
        group = [r for r in runs if r["key"] == key]
        row = {"method": group[0]["method"], "obs": group[0]["obs"], "control": group[0].get("control", "position")}
        per_run, scores = [], []
        for r in group:
            scored = [c for c in r["checkpoints"] if c.get("score") is not None]
            if scored:
                s = [c["score"] for c in scored]
                best = max(scored, key=lambda c: c["score"])
                scores.append(s)
                per_run.append({"seed": r["seed"], "max": max(s), "mean": sum(s) / len(s), "checkpoints": len(s),
                                "max_sem": best.get("sem"),
                                "success_rate": sum(c["success_rate"] for c in scored) / len(s),
                                "partial": r["partial"], "steps": r.get("steps_done"),
                                "wall_seconds": r.get("wall_seconds"), "trained_on": r.get("trained_on"),
                                "command": r.get("command"), "config": r.get("config"),
                                "eval_threads": sorted({c["threads"] for c in scored if c.get("threads")}),
                                "scored_in": sorted({c["scored_in"] for c in scored if c.get("scored_in")})})
        if not per_run:
            table[key] = {**row, "runs": 0}
            continue
        summary = summarize_seeds(scores)
        table[key] = {**row, "runs": summary.n_seeds, "max": round(summary.max, 4),
                      "max_sd": round(summary.max_sd, 4), "mean": round(summary.avg, 4),
                      "mean_sd": round(summary.avg_sd, 4), "per_run": per_run,
                      "partial": any(q["partial"] or q["checkpoints"] < last for q in per_run)}
    return table


def without_options(command: str, *options: str) -> str:
    """``command`` without the given options and the value after each."""
    words = command.split()
    drop = {i + d for i, w in enumerate(words) if w in options for d in (0, 1)}
    return " ".join(w for i, w in enumerate(words) if i not in drop)


def checkpoint_runs(files: list[str]) -> list[dict]:
    """One run per policy checkpoint: its policy, observation, seed, steps and command from its metadata.

    Files whose training commands differ only in ``--seed`` (and ``--out``), and whose policy configs are
    the same (a file made before its recipe changed is another method), are seeds of one recipe:
    they share the row key of the first of them, so the table reports them as the paper does, max and
    mean ± sd over the seeds. Every other file is a row of its own, keyed by its file name."""
    from dplearn.policies import load_policy

    runs, keys = [], {}
    for f in files:
        path = Path(f).resolve()
        try:
            policy = load_policy(path)
        except (ValueError, OSError) as exc:
            raise SystemExit(f"comparison: --checkpoints: {exc}") from None
        meta, c = policy.meta, policy.config
        control = getattr(c, "control", "position")
        command = meta.get("command")
        config = json.dumps(c.to_dict(), sort_keys=True, default=str)  # a recipe changed since: not a seed
        key = path.stem if not command else keys.setdefault(
            (policy.name, c.obs_type, control, without_options(command, "--seed", "--out"), config), path.stem)
        runs.append({"method": policy.name, "obs": c.obs_type, "control": control, "key": key,
                     "seed": meta.get("seed"), "name": path.stem, "steps_target": meta.get("train_steps"),
                     "steps_done": meta.get("train_steps"), "command": meta.get("command"),
                     "wall_seconds": meta.get("train_seconds"), "trained_on": meta.get("gpu") or meta.get("device"),
                     "tier": meta.get("tier"), "status": "finished before", "partial": False,
                     "checkpoints": [{"step": meta.get("train_steps"), "path": gs.rel(path)}],
                     "config": json.loads(config)})
    return runs


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def reuse_scores(runs: list[dict], sessions: list[dict], *, episodes: int, eval_seed: int, device: str,
                 torch_version: str, threads: int | None = None) -> int:
    """Give each checkpoint of ``runs`` (which has its ``sha256``) the score recorded for the same file in
    the latest of ``sessions`` (earlier results of this script) that evaluated it alike: the same
    ``episodes``, ``eval_seed``, kind of device (``cpu``/``cuda``) and torch version and, when ``threads``
    is given (a thread count fixed for this session), the same number of torch threads: on a CPU the
    thread count changes the order of floating-point sums, and a rollout can drift apart. A reused record
    keeps its score, standard error, success rate, seconds, threads and command, and says when it was
    measured (``scored_in``, that session's start). Returns the number of checkpoints given a score."""
    kind = device.split(":")[0]
    recorded: dict[str, dict] = {}
    for session in sessions:  # oldest first: a later session's record replaces an earlier one
        if (session.get("episodes"), session.get("eval_seed"), str(session.get("device", "")).split(":")[0],
                session.get("torch")) != (episodes, eval_seed, kind, torch_version):
            continue
        for run in session.get("runs", []):
            for ck in run.get("checkpoints", []):
                if ck.get("sha256") and ck.get("score") is not None and (
                        threads is None or kind == "cuda" or ck.get("threads") == threads):
                    recorded[ck["sha256"]] = {k: ck[k] for k in ("score", "sem", "success_rate", "seconds", "command",
                                                                 "threads") if k in ck} | {
                        "scored_in": ck.get("scored_in", session.get("started"))}
    reused = 0
    for run in runs:
        for ck in run["checkpoints"]:
            if ck.get("sha256") in recorded:
                ck.update(recorded[ck["sha256"]])
                reused += 1
    return reused


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", nargs="+", default=list(METHODS), help="policies (default: all seven)")
    p.add_argument("--obs", default="keypoints", help="observation type (default keypoints)")
    p.add_argument("--control", default="position", choices=("position", "velocity"),
                   help="train on target positions (the benchmark's) or on displacements (default position)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (default 0 1 2)")
    p.add_argument("--last", type=int, default=5, help="last checkpoints scored per run (default 5)")
    gs.add_session_arguments(p, minutes=9.0, eval_seconds=150.0, runs_dir=ROOT / "runs" / "comparison",
                             extras=("max-procs", "threads"))
    p.add_argument("--publish", default=None, help="also write the per-method table to this JSON file")
    p.add_argument("--reuse", action="store_true",
                   help="take the recorded score of a checkpoint file scored alike before in --runs-dir's "
                        "results (same content, episodes, test starts, device kind and torch, and on a CPU "
                        "the same threads when --threads or DPLEARN_THREADS fixes them) instead of "
                        "evaluating it again")
    p.add_argument("--checkpoints", nargs="+", default=None, metavar="FILE",
                   help="score these policy checkpoints instead of training (each is one run of one seed "
                        "with one checkpoint, e.g. the shipped ones; files whose commands differ only in "
                        "--seed share a row)")
    args = p.parse_args()
    for name in ("last", "episodes", "minutes"):
        if getattr(args, name) <= 0:
            raise SystemExit(f"comparison: --{name} must be positive, got {getattr(args, name)}")

    t0 = time.time()
    started = datetime.datetime.fromtimestamp(t0, datetime.timezone.utc).isoformat(timespec="seconds")
    deadline = t0 + 60.0 * args.minutes
    gs.check_python()
    import torch

    from dplearn.policy_training import recipe_for

    torch.set_num_threads(1)
    args.device = args.device or ("cuda" if torch.cuda.is_available() else None)
    if args.device is None:
        raise SystemExit("comparison: no CUDA GPU here; pass --device cpu to rehearse on the CPU")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"comparison: --device {args.device}: no CUDA GPU is available")
    if args.checkpoints is None:
        recipes = {}
        for method in args.methods:
            try:
                recipes[method] = recipe_for(method, args.obs)[1]
            except ValueError as exc:
                raise SystemExit(f"comparison: {exc}") from None
            if args.budget not in recipes[method].steps:
                raise SystemExit(f"comparison: --budget must be one of {sorted(recipes[method].steps)}")
    runs_dir = Path(args.runs_dir).resolve()
    runs_dir.mkdir(parents=True, exist_ok=True)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    gpu = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None
    print(f"[{gs.clock()}] comparison: {gpu or 'CPU'}, torch {torch.__version__}, {cores} CPU cores; "
          + (f"scoring {len(args.checkpoints)} checkpoints" if args.checkpoints else
             f"{len(args.methods)} methods × {len(args.seeds)} seeds on {args.obs}, {args.budget} tier")
          + f"; {args.minutes:g} min in all", flush=True)

    if args.checkpoints is not None:  # ---- 1'. score given checkpoints: one run each ---------------
        runs, completed = checkpoint_runs(args.checkpoints), True
        args.last, args.obs, args.budget = 1, None, None  # each run's own, in its row
    else:
        # ---- 1. train, exporting a snapshot each time a run saves its state --------------------------
        runs = []
        for method in args.methods:
            steps = args.steps or recipes[method].steps[args.budget]
            for seed in args.seeds:
                control = "" if args.control == "position" else "-velocity"
                name = f"{method}-{args.obs}{control}-{args.budget}-{steps}-seed{seed}"
                state, out = runs_dir / f"{name}.state", runs_dir / f"{name}.pt"
                argv = ["train", "--policy", method, "--obs", args.obs, "--budget", args.budget, "--steps", str(steps),
                        "--seed", str(seed), "--device", args.device, "--resume", gs.rel(state), "--out", gs.rel(out),
                        "--no-progress", *(["--control", args.control] if control else [])]
                runs.append({"method": method, "obs": args.obs, "key": method + control, "control": args.control,
                             "seed": seed, "name": name, "trained_on": gpu or args.device, "steps_target": steps,
                             "steps_before": gs.state_step(state), "command": shlex.join(["dplearn", *argv]),
                             "log": gs.rel(runs_dir / f"{name}.train.log"),
                             "job": None if out.exists() else gs.Job(name, gs.dplearn_command(*argv),
                                                                     runs_dir / f"{name}.train.log", 1),
                             "snapshots": {}})
        # A run saves its training state every tenth of the run (at most every 1000 steps), replacing the
        # file atomically; a hard link to each new version keeps it (no copy, no load) while training goes
        # on, and only the last few are kept and, after training, exported as policies.
        seen: dict[str, int] = {}

        def keep_new_states() -> None:
            for run in runs:
                state = runs_dir / f"{run['name']}.state"
                try:
                    mtime = state.stat().st_mtime_ns
                    if seen.get(run["name"]) == mtime:
                        continue
                    link = runs_dir / f"{run['name']}.kept.{mtime}.state"
                    os.link(state, link)
                except OSError:  # no state yet, or it was replaced between the two calls: next tick
                    continue
                seen[run["name"]] = mtime
                kept = sorted(runs_dir.glob(f"{run['name']}.kept.*.state"), key=lambda q: int(q.name.split(".")[-2]))
                for old in kept[:-(args.last + 1)]:
                    old.unlink(missing_ok=True)

        def export_kept_states(run: dict) -> None:
            for link in sorted(runs_dir.glob(f"{run['name']}.kept.*.state")):
                try:
                    step = gs.state_step(link)
                    if step not in run["snapshots"]:
                        snap = runs_dir / f"{run['name']}.step{step}.pt"
                        gs.export_snapshot(link, snap, {"command": run["command"], "seed": run["seed"],
                                                        "tier": args.budget, "task": f"pusht-{args.obs}", "gpu": gpu})
                        run["snapshots"][step] = gs.rel(snap)
                except (ValueError, KeyError, RuntimeError, OSError) as exc:
                    print(f"[{gs.clock()}] no snapshot from {link.name}: {str(exc)[:160]}", flush=True)
                link.unlink(missing_ok=True)

        for snap in runs_dir.glob("*.step*.pt"):  # snapshots of an earlier session of the same runs
            for run in runs:
                if snap.name.startswith(run["name"] + ".step"):
                    run["snapshots"][int(snap.name[len(run["name"]) + 5:-3])] = gs.rel(snap)
        jobs = [r["job"] for r in runs if r["job"] is not None]
        concurrent = min(len(jobs), args.max_procs or len(jobs)) or 1
        for job in jobs:
            job.threads = gs.process_threads(args.threads, cores // concurrent)
        eval_reserve = min(args.eval_seconds, 0.4 * 60.0 * args.minutes)
        completed = gs.run_jobs(jobs, deadline - eval_reserve, args.max_procs or len(jobs) or 1, "train",
                                report_every=30.0, on_tick=keep_new_states, tick_every=0.5)
        keep_new_states()

        for run in runs:
            export_kept_states(run)
            job, out = run.pop("job"), runs_dir / f"{run['name']}.pt"
            run["steps_done"] = gs.state_step(runs_dir / f"{run['name']}.state")
            if job is not None:
                run["wall_seconds"] = round(job.seconds or 0.0, 1)
                run["status"] = ("finished" if job.returncode == 0 and out.exists() else
                                 f"stopped {job.stopped}" if job.stopped else
                                 "not started" if job.started is None else f"failed (status {job.returncode})")
            else:
                run["status"] = "finished before"
            run["partial"] = not run["status"].startswith("finished")
            chosen = dict(run["snapshots"])
            if not run["partial"]:  # the final checkpoint (EMA weights, saved in the recipe's precision) is the last
                chosen[run["steps_target"]] = gs.rel(out)
            run["checkpoints"] = [{"step": s, "path": chosen[s]} for s in sorted(chosen)[-args.last:]]

    # ---- 2. evaluate the last checkpoints ------------------------------------------------------
    results = runs_dir / "comparison.json"
    history = json.loads(results.read_text()).get("sessions", []) if results.exists() else []
    for run in runs:
        for ck in run["checkpoints"]:
            ck["sha256"] = file_sha256(ROOT / ck["path"])
    if args.reuse:
        fixed = args.threads or os.environ.get("DPLEARN_THREADS", "").strip()  # a thread count this session keeps
        n = reuse_scores(runs, history, episodes=args.episodes, eval_seed=args.eval_seed, device=args.device,
                         torch_version=torch.__version__,
                         threads=gs.process_threads(args.threads, 1) if fixed else None)
        print(f"[{gs.clock()}] --reuse: {n} of {sum(len(r['checkpoints']) for r in runs)} checkpoints scored "
              f"before in {gs.rel(results)}", flush=True)
    eval_jobs = []
    for run in runs:
        for ck in run["checkpoints"]:
            if ck.get("score") is not None:  # reused
                continue
            argv = ["eval", "--checkpoint", ck["path"], "--episodes", str(args.episodes), "--seed",
                    str(args.eval_seed), "--device", args.device, "--workers", "1", "--no-progress"]
            ck["job"] = gs.Job(f"{run['name']}@{ck['step']}", gs.dplearn_command(*argv),
                               runs_dir / f"{run['name']}.step{ck['step']}.eval.log", 1)
            ck["command"] = shlex.join(["dplearn", *argv])
            eval_jobs.append(ck["job"])
    n_eval = min(len(eval_jobs), args.max_procs or cores) or 1
    for job in eval_jobs:
        job.threads = gs.process_threads(args.threads, cores // n_eval)
    if completed:
        gs.run_jobs(eval_jobs, deadline - 5.0, n_eval, "eval")
    for run in runs:
        for ck in run["checkpoints"]:
            job = ck.pop("job", None)
            if job is None:  # reused
                continue
            summary = gs.parse_summary(job.log) if job.returncode == 0 else None
            ck.update(summary or {"score": None, "error": f"stopped {job.stopped}" if job.stopped else
                                  "not started" if job.started is None else f"status {job.returncode}"})
            if summary:
                ck["scored_in"], ck["threads"] = started, job.threads

    # ---- 3. record -----------------------------------------------------------------------------
    table = summarise(runs, args.last)
    session = {"started": started,
               "wall_seconds": round(time.time() - t0, 1), "gpu": gpu, "device": args.device,
               "torch": torch.__version__, "cuda": torch.version.cuda, "cpu_cores": cores,
               "argv": sys.argv[1:], "obs": args.obs, "budget": args.budget, "episodes": args.episodes,
               "eval_seed": args.eval_seed, "last": args.last, "runs": runs, "table": table,
               "paper": PAPER_PUSHT}
    write_json(results, {"sessions": history + [session]})
    if args.publish:
        write_json(Path(args.publish), {k: session[k] for k in ("started", "wall_seconds", "gpu", "device", "torch",
                                                                   "argv", "obs", "budget", "episodes", "eval_seed",
                                                                   "last", "table", "paper")}
                      | {"commands": {r["name"]: r["command"] for r in runs}})
    print(f"\n{gpu or 'CPU'}; {args.episodes} episodes from seed {args.eval_seed}; the last {args.last} "
          f"checkpoints of each run\n")
    print("| method | obs | runs | max (mean ± sd) | avg (mean ± sd) | paper max / avg |")
    print("|---|---|---:|---:|---:|---:|")
    for row in table.values():
        paper = PAPER_PUSHT.get("pixels_agent_pos" if row["obs"] in IMAGE_OBS_TYPES else row["obs"], {}).get(
            row["method"])
        cells = ([f"{row['max']:.3f} ± {row['max_sd']:.3f}", f"{row['mean']:.3f} ± {row['mean_sd']:.3f}"]
                 if row["runs"] else ["", ""])
        print(f"| {row['method']}{' (velocity)' if row['control'] == 'velocity' else ''}"
              f"{' (partial)' if row.get('partial') else ''} | {row['obs']} | {row['runs']} | "
              + " | ".join(cells)
              + f" | {f'{paper[0]:.2f} / {paper[1]:.2f}' if paper else ''} |")
    print(f"\nwrote {gs.rel(results)}; session took {time.time() - t0:.0f} s")
    return 0


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON atomically (a temporary file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, gs._interrupt)
    sys.exit(main())
