"""Drive the Push-T agent yourself and record demonstrations, in Jupyter or Colab.

Introduced in chapter 5.

Two parts, kept apart so that the logic is testable without a browser:

- :class:`TeleopSession` — the recording logic: start an episode, move the target, step the env,
  keep or discard the episode, and turn the kept ones into :class:`dplearn.data.Demos` (the same
  format as the shipped demonstrations) or save them to a ``.npz``.
- :func:`teleop_widget` — an ipywidgets front end: the rendered scene, a pad of arrow buttons that
  move the target (each press is one 0.1 s control step), and buttons to hold still, keep, discard
  and save.

Every recorded step stores the state observed *before* the step and the action (target) taken
after observing it, the convention of :mod:`dplearn.data.demos`.
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np

from dplearn.data.demos import Demos, save_demos

WORKSPACE = 512.0
# Button label -> (dx, dy) in workspace units. Images show y pointing down (row i is y ≈ i), so
# "up" on the screen is -y.
DIRECTIONS: dict[str, tuple[float, float]] = {
    "↖": (-1, -1), "↑": (0, -1), "↗": (1, -1),
    "←": (-1, 0), "·": (0, 0), "→": (1, 0),
    "↙": (-1, 1), "↓": (0, 1), "↘": (1, 1),
}


class TeleopSession:
    """Recording logic for teleoperation (no widgets).

    Parameters
    ----------
    seed : int
        Seed of the first episode; each new episode uses the next seed.
    max_steps : int
        Episode time limit (300, as in evaluation).
    env : PushTEnv, optional
        The environment to drive (a state-observation :class:`dplearn.envs.PushTEnv` by default).

    Typical use::

        s = TeleopSession(seed=0)
        s.move(+1, 0, step_px=20)      # nudge the target right (+x) by 20 px and step once
        s.step([300, 200])             # or command a target directly
        s.keep()                       # store the episode and start the next
        s.to_demos(); s.save("my_demos.npz")
    """

    def __init__(self, seed: int = 0, max_steps: int = 300, env: Any = None):
        from dplearn.envs import PushTEnv

        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
            raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
        self.env = PushTEnv(obs_type="state") if env is None else env
        self.max_steps = int(max_steps)
        self.next_seed = int(seed)
        self.kept: list[tuple[np.ndarray, np.ndarray]] = []
        self.kept_seeds: list[int] = []
        self.new_episode()

    # ---- one episode ---------------------------------------------------------------------------
    def new_episode(self, seed: int | None = None) -> np.ndarray:
        """Reset the env (discarding the current, unkept episode); returns the first state."""
        if seed is not None:
            self.next_seed = int(seed)
        self.seed = self.next_seed
        self.next_seed += 1
        obs, info = self.env.reset(seed=self.seed)
        self.state = np.asarray(obs, dtype=np.float32)
        self.target = self.state[:2].astype(np.float64).copy()
        self.states: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []
        self.coverage = float(info.get("coverage", 0.0))
        self.max_coverage = self.coverage
        self.done = False
        return self.state

    @property
    def steps(self) -> int:
        return len(self.actions)

    def step(self, target: Any) -> dict[str, Any]:
        """Command ``target`` (2,) in [0, 512]² (clipped) for one control step and record it."""
        target = np.asarray(target, dtype=np.float64).reshape(-1)
        if target.shape != (2,) or not np.all(np.isfinite(target)):
            raise ValueError(f"target must be two finite numbers (x, y), got {target!r}")
        if self.done:
            raise ValueError("the episode is over; call keep(), discard() or new_episode() first")
        self.target = np.clip(target, 0.0, WORKSPACE)
        self.states.append(self.state.copy())
        self.actions.append(self.target.astype(np.float32))
        obs, reward, terminated, truncated, info = self.env.step(self.target.copy())
        self.state = np.asarray(obs, dtype=np.float32)
        self.coverage = float(info["coverage"])
        self.max_coverage = max(self.max_coverage, self.coverage)
        self.done = bool(terminated or truncated or self.steps >= self.max_steps)
        return {"reward": float(reward), "coverage": self.coverage, "done": self.done,
                "success": bool(info.get("is_success", self.coverage > 0.95))}

    def move(self, dx: float, dy: float, step_px: float = 20.0) -> dict[str, Any]:
        """Move the target by ``step_px * (dx, dy)`` from where it is, and step once."""
        return self.step(self.target + step_px * np.array([dx, dy], dtype=np.float64))

    # ---- the collection ------------------------------------------------------------------------
    def keep(self) -> bool:
        """Store the current episode (if it has any step) and start the next; True if stored."""
        stored = False
        if self.steps:
            self.kept.append((np.stack(self.states), np.stack(self.actions)))
            self.kept_seeds.append(self.seed)
            stored = True
        self.new_episode()
        return stored

    def discard(self) -> None:
        """Drop the current episode and start the next."""
        self.new_episode()

    def to_demos(self) -> Demos:
        """The kept episodes as :class:`Demos` (raises ``ValueError`` if none was kept)."""
        if not self.kept:
            raise ValueError("no episode kept yet: drive the agent, then press keep (or call keep())")
        meta = {"version": 1, "how": "teleoperation (dplearn.teleop)", "seeds": list(self.kept_seeds),
                "max_steps": self.max_steps}
        return Demos.from_episodes(self.kept, meta=meta)

    def save(self, path: str | os.PathLike) -> str:
        """Write the kept episodes to ``path`` (``.npz``), loadable with :func:`dplearn.data.load_demos`."""
        return str(save_demos(path, self.to_demos()))

    # ---- the picture ---------------------------------------------------------------------------
    def frame(self, size: int = 256) -> np.ndarray:
        """(size, size, 3) uint8 render of the current state, with the target as a red cross."""
        from dplearn.envs.render import render_state

        return render_state(self.state, size=size, action=self.target)


def _png(image: np.ndarray) -> bytes:
    import matplotlib.image

    buf = io.BytesIO()
    matplotlib.image.imsave(buf, image, format="png")
    return buf.getvalue()


def teleop_widget(session: TeleopSession | None = None, size: int = 320, step_px: float = 20.0):
    """An ipywidgets panel to drive the agent with arrow buttons and record demonstrations.

    Returns the widget (display it in a notebook cell); the recording lives in ``widget.session``.
    Needs a live kernel (Jupyter or Colab); on the website the chapter shows a static figure instead.
    """
    import ipywidgets as w

    session = TeleopSession() if session is None else session
    image = w.Image(format="png", width=size, height=size)
    status = w.HTML()
    speed = w.IntSlider(value=int(step_px), min=2, max=60, step=2, description="px / press")
    path = w.Text(value="my_pusht_demos.npz", description="file")

    def refresh(note: str = "") -> None:
        image.value = _png(session.frame(size))
        flag = " — <b>done</b>" if session.done else ""
        status.value = (f"seed {session.seed} · step {session.steps}/{session.max_steps} · coverage "
                        f"{session.coverage:.1%} (best {session.max_coverage:.1%}){flag} · "
                        f"kept {len(session.kept)} episode(s) {note}")

    def on_move(dx: float, dy: float):
        def handler(_):
            if not session.done:
                session.move(dx, dy, step_px=speed.value)
            refresh()
        return handler

    pad = []
    for label, (dx, dy) in DIRECTIONS.items():
        b = w.Button(description=label, layout=w.Layout(width="44px", height="36px"),
                     tooltip="hold still" if label == "·" else "move the target")
        b.on_click(on_move(dx, dy))
        pad.append(b)
    grid = w.GridBox(pad, layout=w.Layout(grid_template_columns="repeat(3, 48px)"))

    keep, discard, save = w.Button(description="keep episode"), w.Button(description="discard"), \
        w.Button(description="save")

    def on_keep(_):
        stored = session.keep()
        refresh("(stored)" if stored else "(nothing to store)")

    def on_discard(_):
        session.discard()
        refresh("(discarded)")

    def on_save(_):
        try:
            refresh(f"(saved to {session.save(path.value)})")
        except ValueError as exc:
            refresh(f"({exc})")

    keep.on_click(on_keep)
    discard.on_click(on_discard)
    save.on_click(on_save)
    refresh()
    panel = w.HBox([image, w.VBox([grid, speed, w.HBox([keep, discard]), w.HBox([path, save]),
                                   status])])
    panel.session = session
    return panel
