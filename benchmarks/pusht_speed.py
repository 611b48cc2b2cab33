"""Push-T speed: environment steps per second, dplearn's env beside Hugging Face's gym-pusht.

Both environments run the same loop in the same run: ``gym.make(...)`` with the default
wrappers, a pusher that aims near the block (contact-rich, like real use), a reset every 300
steps or on success. gym-pusht needs pymunk < 7, so it runs in its own virtual environment, in a
subprocess:

    python benchmarks/pusht_speed.py --gym-pusht-python /path/to/venv/bin/python
    python benchmarks/pusht_speed.py --make-venv      # creates a temporary venv with gym-pusht

Rows: ``state``; ``pixels`` (the 96 × 96 top-down image); ``two-cameras``, dplearn's top-down and
pusher-centred (wrist) images rendered together every step, beside gym-pusht's ``pixels`` (it has one
camera), so the speed-up says how much faster both of our views are than gym-pusht's one.

Without either option only dplearn's numbers are printed. Prints Markdown tables: speed, and how
many open-loop pushing episodes reproduce gym-pusht's trajectory bit for bit (both use Chipmunk's
default bounding-box-tree broad phase; tests/test_gym_pusht_reference.py checks the same against
recorded gym-pusht rollouts without needing gym-pusht).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: (row, dplearn's obs_type, gym-pusht's obs_type): both views of ours against gym-pusht's one image
ROWS = (("state", "state", "state"), ("pixels", "pixels", "pixels"),
        ("two-cameras (top + wrist) vs gym-pusht pixels", "two-cameras", "pixels"))


def measure(env_id: str, obs_type: str, steps: int, seed: int = 0) -> float:
    """Steps per second of ``env_id`` over ``steps`` steps (after a short warm-up)."""
    import gymnasium as gym
    import numpy as np

    env = gym.make(env_id, obs_type=obs_type)
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, 40.0, size=(steps + 100, 2))

    def run(n: int, offset: int) -> None:
        _, info = env.reset(seed=seed)
        block = np.array(info.get("block_pose", [256.0, 256.0, 0.0])[:2], dtype=np.float64)
        t = 0
        for k in range(n):
            action = np.clip(block + noise[offset + k], 0.0, 512.0)
            _, _, terminated, truncated, info = env.step(action)
            block = np.asarray(info["block_pose"][:2], dtype=np.float64)
            t += 1
            if terminated or truncated or t == 300:
                _, info = env.reset(seed=seed + k)
                block = np.array(info.get("block_pose", [256.0, 256.0, 0.0])[:2], dtype=np.float64)
                t = 0

    run(50, steps)  # warm-up
    start = time.perf_counter()
    run(steps, 0)
    elapsed = time.perf_counter() - start
    env.close()
    return steps / elapsed


def trajectories(env_id: str, episodes: int = 40, steps: int = 60) -> dict:
    """State observations along open-loop pushing episodes from fixed start states (angle 0, so
    gym-pusht's ``reset_to_state``, which sets the angle after the position, places them as ours
    does), and whether the pusher touched the block in each step."""
    import gymnasium as gym
    import numpy as np

    env = gym.make(env_id).unwrapped
    rng = np.random.default_rng(0)
    states, touching = [], []
    for ep in range(episodes):
        start = [*rng.uniform(60, 450, 2), *rng.uniform(150, 350, 2), 0.0]
        obs, _ = env.reset(options={"reset_to_state": start})
        traj, touch = [obs.tolist()], []
        centre = np.array(start[2:4])
        for t in range(steps):  # sweep loops through the block's starting area
            loop = 80 * np.array([np.cos(0.3 * t + ep), np.sin(0.21 * t * (1 + ep % 3))])
            action = np.clip(centre + loop + rng.normal(0, 10, 2), 0, 512)
            obs, _, _, _, info = env.step(action)
            traj.append(obs.tolist())
            touch.append(bool(info["n_contacts"] > 0))
        states.append(traj)
        touching.append(touch)
    return {"states": states, "touching": touching}


def worker(which: str, obs_type: str, steps: int, task: str) -> None:
    if which == "dplearn":
        import dplearn.envs  # noqa: F401  (registers dplearn/PushT-v0)

        env_id = "dplearn/PushT-v0"
    else:
        import gym_pusht  # noqa: F401

        env_id = "gym_pusht/PushT-v0"
    if task == "speed":
        print(json.dumps({"steps_per_s": measure(env_id, obs_type, steps)}))
    else:
        print(json.dumps({"trajectories": trajectories(env_id)}))


def run_worker(
    python: str, which: str, obs_type: str = "state", steps: int = 0, task: str = "speed"
):
    env = dict(os.environ)
    if which == "dplearn":
        src = str(Path(__file__).resolve().parents[1] / "src")
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(
        [
            python,
            __file__,
            "--worker",
            which,
            "--obs-type",
            obs_type,
            "--steps",
            str(steps),
            "--task",
            task,
        ],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["steps_per_s"] if task == "speed" else result["trajectories"]


def agreement_table(ref_python: str) -> None:
    """How many open-loop episodes replay gym-pusht's trajectory bit for bit."""
    import numpy as np

    ref = run_worker(ref_python, "gym_pusht", task="trajectories")
    ours = run_worker(sys.executable, "dplearn", task="trajectories")
    ref_states, our_states = np.array(ref["states"]), np.array(ours["states"])
    episodes, steps = ref_states.shape[0], ref_states.shape[1] - 1
    err = np.abs(our_states - ref_states).max(axis=-1)  # (episodes, steps + 1)
    identical = int((err == 0).all(axis=1).sum())
    touching = np.array(ours["touching"])
    same_contacts = bool(np.array_equal(touching, np.array(ref["touching"])))
    print()
    print(
        f"Trajectory agreement with gym-pusht ({episodes} open-loop episodes of {steps} steps, "
        "state observations):"
    )
    print()
    print(
        "| physics | bit-identical episodes | max state difference | steps in contact "
        "| same contact steps |"
    )
    print("| --- | ---: | ---: | ---: | --- |")
    print(
        f"| dplearn (bounding-box tree) | {identical} / {episodes} | {err.max():.3g} "
        f"| {touching.mean():.0%} | {'yes' if same_contacts else 'no'} |"
    )


def make_venv(root: Path) -> str:
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
    python = str(root / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "-q", "gym-pusht==0.1.8"], check=True)
    return python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000, help="timed steps per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per cell (best kept)")
    parser.add_argument(
        "--gym-pusht-python", help="python of a virtual env with gym-pusht installed"
    )
    parser.add_argument(
        "--make-venv", action="store_true", help="create a temporary venv with gym-pusht"
    )
    parser.add_argument("--worker", choices=["dplearn", "gym_pusht"], help=argparse.SUPPRESS)
    parser.add_argument("--obs-type", default="state", help=argparse.SUPPRESS)
    parser.add_argument("--task", default="speed", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.obs_type, args.steps, args.task)
        return

    ref_python = args.gym_pusht_python
    tmp = None
    if args.make_venv and not ref_python:
        tmp = tempfile.TemporaryDirectory(prefix="gym-pusht-venv-")
        ref_python = make_venv(Path(tmp.name))

    rows, refs = [], {}  # refs: gym-pusht's best per obs_type, over every row that measured it
    for label, ours_obs, ref_obs in ROWS:
        steps = args.steps if ours_obs == "state" else max(args.steps // 3, 100)
        ours = 0.0
        for _ in range(args.repeats):  # interleaved, so both see the same machine load
            ours = max(ours, run_worker(sys.executable, "dplearn", ours_obs, steps))
            if ref_python:
                refs[ref_obs] = max(refs.get(ref_obs, 0.0), run_worker(ref_python, "gym_pusht", ref_obs, steps))
        rows.append((label, ours, ref_obs))

    print("| obs_type | dplearn (steps/s) | gym-pusht (steps/s) | speed-up |")
    print("| --- | ---: | ---: | ---: |")
    for label, ours, ref_obs in rows:
        ref = refs.get(ref_obs)
        ref_s = f"{ref:,.0f}" if ref else "n/a"
        up = f"{ours / ref:.1f}×" if ref else "n/a"
        print(f"| {label} | {ours:,.0f} | {ref_s} | {up} |")
    if ref_python:
        agreement_table(ref_python)
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
