"""Record reference rollouts from Hugging Face's gym-pusht, for tests/test_gym_pusht_reference.py.

gym-pusht needs pymunk < 7, so it lives in its own virtual environment; this script re-runs itself
there (``--make-venv`` creates a temporary one with gym-pusht 0.1.8, ``--python`` uses an existing
one) and writes ``tests/data/gym_pusht_reference.npz``:

    python benchmarks/record_gym_pusht_reference.py --make-venv
    python benchmarks/record_gym_pusht_reference.py --python /path/to/venv/bin/python

The test that reads the file needs neither gym-pusht nor pymunk 6.

How the start is drawn. gym-pusht 0.1.8's ``PushTEnv.reset`` is::

    super().reset(seed=seed)
    self._setup()
    ...
        state = np.array([
            self.np_random.integers(50, 450), self.np_random.integers(50, 450),
            self.np_random.integers(100, 400), self.np_random.integers(100, 400),
            self.np_random.uniform(-np.pi, np.pi),
        ])
    self._set_state(state)

with ``_set_state`` setting the block's position *before* its angle ("for compatibility with legacy
data"), then one physics step. So ``gym_pusht.reset(seed=s)`` is not the benchmark's start: it
draws from gymnasium's ``np_random`` (a PCG64 ``Generator`` seeded with ``s``) rather than NumPy's
legacy ``RandomState``, the angle is uniform rather than ``randn() · 2π − π``, and setting the angle
last turns the block about its centre of gravity (0, 45), so the observed block position is not
the drawn one. Diffusion Policy's own Push-T env (the one behind the paper's numbers) draws
``rs = np.random.RandomState(s)``: agent ``rs.randint(50, 450)`` ×2, block ``rs.randint(100, 400)``
×2, angle ``rs.randn() · 2π − π``, and sets the angle before the position; that is what
``dplearn.envs.PushTEnv.reset(seed=s)`` does.

What the file holds (float64 unless said):

- ``seeds_test`` (50,) int: 100000..100049, the paper's test seeds;
- ``benchmark_starts`` (50, 5): the legacy ``RandomState`` draw for each seed (agent x, y, block
  x, y, angle);
- ``starts`` (50, 5): agent x, y, block x, y and unwrapped block angle after gym-pusht's physics
  places the benchmark start as Diffusion Policy does (fresh space, agent position, block angle,
  block position, one physics step);
- ``gym_reset_draws`` (50, 5): what gym-pusht's own ``reset(seed=s)`` draws from ``np_random``;
- ``gym_reset_obs`` (50, 5) and ``gym_reset_block_pose`` (50, 3): its state observation and its
  block pose (x, y, unwrapped angle) after that reset;
- ``seeds`` (20,) int: the rollouts' seeds, 100000..100009 and ten others;
- ``styles`` (20,) int: 0 for jabs at the block, 1 for sweeps through it (see :func:`pusher`);
- ``actions`` (20, 300, 2): the targets, chosen closed-loop inside gym-pusht, replayed open-loop;
- ``states`` (20, 301, 5): agent x, y, block x, y, unwrapped block angle, at the start (after the
  settling step) and after each step;
- ``obs_angle`` (20, 301): the block angle of the state observation (angle mod 2π);
- ``reward``, ``coverage`` (20, 300): per step, as gym-pusht returns them;
- ``contact_points`` (20, 300) int: contact points summed over the step's 10 physics steps
  (gym-pusht's raw count; its ``info["n_contacts"]`` divides by 1000 instead of 10, so it is only
  ever 0 or 1);
- ``meta``: a JSON string with the versions of gym-pusht, pymunk, gymnasium, numpy, shapely and
  Python, and the command that wrote the file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "tests" / "data" / "gym_pusht_reference.npz"
GYM_PUSHT = "gym-pusht==0.1.8"
TEST_SEEDS = list(range(100000, 100050))
OTHER_SEEDS = [0, 1, 2, 7, 42, 1000, 4242, 31337, 2**31 - 1, 2**32 - 1]
ROLLOUT_SEEDS = list(range(100000, 100010)) + OTHER_SEEDS
STEPS = 300


def legacy_start(seed: int):
    """Diffusion Policy's start for ``seed``: NumPy's legacy RandomState draw."""
    import numpy as np

    rs = np.random.RandomState(seed)
    return [
        float(rs.randint(50, 450)),
        float(rs.randint(50, 450)),
        float(rs.randint(100, 400)),
        float(rs.randint(100, 400)),
        float(rs.randn() * 2 * np.pi - np.pi),
    ]


def place(env, state) -> None:
    """Put ``env`` (an unwrapped gym-pusht env) at ``state`` as Diffusion Policy's env does.

    A fresh space, the agent's position, the block's angle then its position (Diffusion Policy's
    ``legacy=False`` order), and one physics step to settle contacts.
    """
    env._setup()
    env.agent.position = [state[0], state[1]]
    env.block.angle = state[4]
    env.block.position = [state[2], state[3]]
    env.space.step(env.dt)
    env.n_contact_points = 0
    env._last_action = None


def snapshot(env) -> list[float]:
    ax, ay = env.agent.position
    bx, by = env.block.position
    return [float(ax), float(ay), float(bx), float(by), float(env.block.angle)]


def pusher(env, rng, t: int, style: int, plan: dict):
    """A closed-loop, contact-rich target for step ``t``.

    Style 0 (jabs): the block's origin (middle of the bar's long edge) plus Gaussian noise of
    40 px, so the pusher keeps hitting the bar from all sides and often sits inside it; when the
    block's centre of gravity strays more than 150 px from the middle of the workspace, the jabs
    aim 40 px further toward the middle. Style 1 (sweeps): every 25 steps a new waypoint ``w`` in
    the middle of the workspace and a direction φ from ``w`` to the block (±0.6 rad, so pushes are
    off-centre and turn the block); the target runs along φ from 80 px on the far side of the
    centre of gravity to 40 px past it, through the block toward ``w``, swinging ±30 px sideways,
    plus 6 px of noise. Targets stay 60 px inside the workspace: the pusher is a kinematic body
    that could otherwise shove the block through a wall, after which both float free outside.
    """
    import numpy as np

    cog = np.array(env.block.local_to_world(env.block.center_of_gravity))
    if style == 0:
        target = np.array(env.block.position) + rng.normal(0.0, 40.0, 2)
        inward = 256.0 - cog
        if np.hypot(*inward) > 150.0:
            target += 40.0 * inward / np.hypot(*inward)
    else:
        if t % 25 == 0:
            away = cog - rng.uniform(140.0, 372.0, 2)
            plan["phi"] = np.arctan2(away[1], away[0]) + rng.uniform(-0.6, 0.6)
        phi = plan["phi"]
        along = np.array([np.cos(phi), np.sin(phi)])
        across = np.array([-along[1], along[0]])
        r = 80.0 - 120.0 * (t % 25) / 24.0
        target = cog + r * along + 30.0 * np.sin(0.7 * t) * across + rng.normal(0.0, 6.0, 2)
    return np.clip(target, 60.0, 452.0)


def record(out: Path, command: str) -> None:
    """Runs inside the gym-pusht environment: records everything and writes ``out``."""
    import importlib.metadata as md
    import platform

    import gym_pusht  # noqa: F401  (registers gym_pusht/PushT-v0)
    import gymnasium as gym
    import numpy as np
    import pymunk
    from gymnasium.utils import seeding

    env = gym.make("gym_pusht/PushT-v0", obs_type="state").unwrapped

    benchmark_starts, starts, draws, reset_obs, reset_pose = [], [], [], [], []
    for seed in TEST_SEEDS:
        obs, info = env.reset(seed=seed)
        reset_obs.append([float(v) for v in obs])
        reset_pose.append([float(v) for v in info["block_pose"]])
        g, _ = seeding.np_random(seed)  # what reset drew: the same calls on the same generator
        draws.append(
            [
                float(g.integers(50, 450)),
                float(g.integers(50, 450)),
                float(g.integers(100, 400)),
                float(g.integers(100, 400)),
                float(g.uniform(-np.pi, np.pi)),
            ]
        )
        start = legacy_start(seed)
        benchmark_starts.append(start)
        place(env, start)
        starts.append(snapshot(env))

    styles = [i % 2 for i in range(len(ROLLOUT_SEEDS))]
    actions, states, obs_angle, rewards, coverages, contacts = [], [], [], [], [], []
    for seed, style in zip(ROLLOUT_SEEDS, styles, strict=True):
        env.reset(seed=seed)
        place(env, legacy_start(seed))
        rng = np.random.default_rng(seed)
        plan: dict = {}
        traj, angles = [snapshot(env)], [float(env.get_obs()[4])]
        acts, rew, cov, con = [], [], [], []
        for t in range(STEPS):
            action = pusher(env, rng, t, style, plan)
            obs, reward, _, _, info = env.step(action)  # open loop: termination is ignored
            acts.append([float(v) for v in action])
            traj.append(snapshot(env))
            angles.append(float(obs[4]))
            rew.append(float(reward))
            cov.append(float(info["coverage"]))
            con.append(int(env.n_contact_points))
        actions.append(acts)
        states.append(traj)
        obs_angle.append(angles)
        rewards.append(rew)
        coverages.append(cov)
        contacts.append(con)

    meta = {
        "gym_pusht": md.version("gym-pusht"),
        "pymunk": pymunk.version,
        "gymnasium": gym.__version__,
        "numpy": np.__version__,
        "shapely": md.version("shapely"),
        "python": platform.python_version(),
        "command": command,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    f64 = np.float64
    np.savez_compressed(
        tmp,
        seeds_test=np.array(TEST_SEEDS, dtype=np.int64),
        benchmark_starts=np.array(benchmark_starts, dtype=f64),
        starts=np.array(starts, dtype=f64),
        gym_reset_draws=np.array(draws, dtype=f64),
        gym_reset_obs=np.array(reset_obs, dtype=f64),
        gym_reset_block_pose=np.array(reset_pose, dtype=f64),
        seeds=np.array(ROLLOUT_SEEDS, dtype=np.int64),
        styles=np.array(styles, dtype=np.int64),
        actions=np.array(actions, dtype=f64),
        states=np.array(states, dtype=f64),
        obs_angle=np.array(obs_angle, dtype=f64),
        reward=np.array(rewards, dtype=f64),
        coverage=np.array(coverages, dtype=f64),
        contact_points=np.array(contacts, dtype=np.int64),
        meta=np.array(json.dumps(meta, sort_keys=True)),
    )
    os.replace(tmp, out)
    steps_in_contact = float((np.array(contacts) > 0).mean())
    print(json.dumps({**meta, "out": str(out), "steps_in_contact": round(steps_in_contact, 3)}))


def make_venv(root: Path) -> str:
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
    python = str(root / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "-q", GYM_PUSHT], check=True)
    return python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", help="python of a virtual env with gym-pusht installed")
    parser.add_argument(
        "--make-venv", action="store_true", help=f"create a temporary venv with {GYM_PUSHT}"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the .npz")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--command", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        record(args.out, args.command)
        return
    if not args.python and not args.make_venv:
        parser.error("give --make-venv or --python (gym-pusht needs its own virtual environment)")

    shown = [Path(__file__).resolve().relative_to(ROOT).as_posix()]
    if args.make_venv:
        shown.append("--make-venv")
    else:
        shown += ["--python", "PYTHON"]
    if args.out.resolve() != DEFAULT_OUT:
        shown += ["--out", str(args.out)]
    command = " ".join(["python", *shown])

    tmp = None
    python = args.python
    if args.make_venv and not python:
        tmp = tempfile.TemporaryDirectory(prefix="gym-pusht-venv-")
        python = make_venv(Path(tmp.name))
    try:
        subprocess.run(
            [python, __file__, "--worker", "--out", str(args.out.resolve()), "--command", command],
            check=True,
        )
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
