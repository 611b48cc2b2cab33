"""Drive the Push-T pusher yourself and record demonstrations, in Jupyter or Colab.

Introduced in chapter 5.

The benchmark's human demonstrations were made by a person dragging the pusher with the mouse while
the simulation ran at its control rate, 10 steps per second. This module does the same in a
notebook, in three parts kept apart so that everything but the browser is testable without one:

- :class:`TeleopSession` — the recording: start an episode, command targets, keep or discard the
  episode, turn the kept ones into :class:`dplearn.data.Demos` in exactly the format of the shipped
  demonstrations (same arrays, same meta keys, float32-exact starts that replay bit for bit) and
  save them without ever overwriting a file unless asked.
- :class:`TeleopController` — the inputs: *mouse-follow* (while the pointer is over the scene and
  recording is on, the target is the pointer and the simulation advances at 10 Hz in real time;
  a click or ``r`` starts and stops recording), the keyboard (arrows move the target, ``w`` waits,
  ``k`` keeps, ``d`` discards) and the arrow pad's buttons. Time is passed in, so tests drive it
  with a fake clock.
- :func:`teleop_widget` — the ipywidgets panel. Pointer and key events come from ``ipyevents``
  (imported only here); without it the panel falls back to the arrow pad. Outside a live kernel
  (the website, a viewer without widgets) the panel shows a static picture of itself and a line
  saying where to run it.

Every recorded step stores the state observed *before* the step and the target commanded after
observing it, the convention of :mod:`dplearn.data.demos`.
"""

from __future__ import annotations

import base64
import html
import io
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

import dplearn
from dplearn.collection import start_state
from dplearn.data.demos import FORMAT_VERSION, Demos, save_demos
from dplearn.envs import PUSHT_ID
from dplearn.envs import pusht as pusht_env
from dplearn.envs.benchmark import MAX_STEPS, WORKSPACE_SIZE
from dplearn.validate import choice, finite_float, integer, non_negative_int, positive_int

__all__ = [
    "WORKSPACE", "CONTROL_HZ", "DIRECTIONS", "ARROW_KEYS", "KEYS", "HELP", "COLAB_URL",
    "TeleopSession", "TeleopController", "free_path", "static_html", "teleop_widget",
]

WORKSPACE = WORKSPACE_SIZE  # the benchmark's workspace, [0, 512]²
#: Control steps per second: one ``env.step`` is 0.1 s of simulated time, as in the benchmark.
CONTROL_HZ = pusht_env.CONTROL_HZ
# Pad label -> (dx, dy) in workspace units. Images show y pointing down (row i is y ≈ i), so
# "up" on the screen is -y. "wait" commands the same target again (the pusher catches up).
DIRECTIONS: dict[str, tuple[int, int]] = {
    "↖": (-1, -1), "↑": (0, -1), "↗": (1, -1),
    "←": (-1, 0), "wait": (0, 0), "→": (1, 0),
    "↙": (-1, 1), "↓": (0, 1), "↘": (1, 1),
}
ARROW_KEYS: dict[str, tuple[int, int]] = {
    "ArrowUp": (0, -1), "ArrowDown": (0, 1), "ArrowLeft": (-1, 0), "ArrowRight": (1, 0),
}
#: The other keys: what each does.
KEYS: dict[str, str] = {"w": "wait", " ": "wait", "k": "keep", "d": "discard", "r": "record"}
HELP: dict[str, str] = {
    "mouse": "Pointer over the scene: click (or r) to start/stop recording; the pusher follows the "
             "pointer at 10 steps/s and trails it a little (hold still and it catches up). "
             "k keep · d discard · arrows/w (or held buttons) step without the mouse.",
    "keys": "Pointer over the scene, then: arrows move the red target one step, w waits (the "
            "pusher catches up), k keeps the episode, d discards it; or hold a button (10 "
            "steps/s).",
    "buttons": "Each button press is one 0.1 s step: arrows move the red target, wait lets the "
               "pusher catch up; keep stores the episode, discard drops it.",
}
COLAB_URL = ("https://colab.research.google.com/github/dplearn/dplearn/blob/main/colab/notebooks/"
             "05_pusht.ipynb")


def free_path(path: str | os.PathLike) -> Path:
    """``path`` if no file is there, else the first free ``stem-1.npz``, ``stem-2.npz``, ...

    The result is absolute (resolved against the current folder), so a reader sees where it is.
    """
    path = Path(path).expanduser().resolve()
    if not path.exists():
        return path
    stem = re.sub(r"-\d+$", "", path.stem)
    k = 1
    while (candidate := path.with_name(f"{stem}-{k}{path.suffix}")).exists():
        k += 1
    return candidate


class TeleopSession:
    """Recording logic for teleoperation (no widgets, no clock).

    Parameters
    ----------
    seed : int
        Seed of the first episode's start; each new episode uses the next seed.
    max_steps : int
        Episode time limit (300, as in evaluation).
    env : PushTEnv, optional
        The environment to drive (a state-observation :class:`dplearn.envs.PushTEnv` by default).

    Episodes start, as the shipped demonstrations do, from the seeded start rounded to float32
    (:func:`dplearn.collection.start_state`), and targets are rounded to float32 before they are
    applied, so resetting a fresh env to a stored ``state[0]`` and applying the stored actions
    reproduces the stored states exactly.

    Typical use::

        s = TeleopSession(seed=0)
        s.move(+1, 0, step_px=20)      # nudge the target right (+x) by 20 px and step once
        s.step([300, 200])             # or command a target directly
        s.keep()                       # store the episode and start the next
        s.to_demos(); s.save("my_demos.npz")
    """

    def __init__(self, seed: int = 0, max_steps: int = 300, env: Any = None):
        from dplearn.envs import PushTEnv

        seed = non_negative_int("seed", seed)
        self.max_steps = positive_int("max_steps", max_steps)
        self.env = PushTEnv(obs_type="state") if env is None else env
        self.next_seed = seed
        self.kept: list[tuple[np.ndarray, np.ndarray]] = []
        self.kept_seeds: list[int] = []
        self.discarded_seeds: list[int] = []
        self.started = time.monotonic()
        self.new_episode()

    # ---- one episode ---------------------------------------------------------------------------
    def new_episode(self, seed: int | None = None) -> np.ndarray:
        """Reset the env (dropping the current, unkept episode); returns the first state."""
        if seed is not None:
            self.next_seed = non_negative_int("seed", seed)
        self.seed = self.next_seed
        self.next_seed += 1
        s0 = start_state(self.seed, self.env)
        obs, info = self.env.reset(options={"reset_to_state": s0})
        self.state = np.asarray(obs, dtype=np.float32)
        self.target = self.state[:2].astype(np.float64)
        self.states: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []
        self.coverage = float(info.get("coverage", 0.0))
        self.max_coverage = self.coverage
        self.success = False
        self.done = False
        return self.state

    @property
    def steps(self) -> int:
        """Steps recorded in the current episode."""
        return len(self.actions)

    def step(self, target: Any) -> dict[str, Any]:
        """Command ``target`` (2,) in [0, 512]² (clipped, rounded to float32) for one step; record it."""
        target = np.asarray(target, dtype=np.float64).reshape(-1)
        if target.shape != (2,) or not np.all(np.isfinite(target)):
            raise ValueError(f"target must be two finite numbers (x, y), got {target!r}")
        if self.done:
            raise ValueError("the episode is over; call keep(), discard() or new_episode() first")
        action = np.clip(target, 0.0, WORKSPACE).astype(np.float32)
        self.target = action.astype(np.float64)
        self.states.append(self.state.copy())
        self.actions.append(action)
        obs, reward, terminated, truncated, info = self.env.step(self.target.copy())
        self.state = np.asarray(obs, dtype=np.float32)
        self.coverage = float(info["coverage"])
        self.max_coverage = max(self.max_coverage, self.coverage)
        self.success = self.success or bool(info.get("is_success", False))
        self.done = bool(terminated or truncated or self.steps >= self.max_steps)
        return {"reward": float(reward), "coverage": self.coverage, "done": self.done,
                "success": self.success}

    def move(self, dx: float, dy: float, step_px: float = 20.0) -> dict[str, Any]:
        """Move the target by ``step_px * (dx, dy)`` from where it is, and step once."""
        dx, dy = finite_float("dx", dx), finite_float("dy", dy)
        step_px = finite_float("step_px", step_px, low=0.0)
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
        """Drop the current episode (its seed is listed in the meta's ``failed_seeds``); start the next."""
        if self.steps:
            self.discarded_seeds.append(self.seed)
        self.new_episode()

    def meta(self, command: str | None = None) -> dict[str, Any]:
        """The meta of the kept episodes: the shipped demonstrations' keys, filled in for a person."""
        lengths = np.array([len(a) for _, a in self.kept]) if self.kept else np.zeros(1, int)
        return {
            "version": FORMAT_VERSION,
            "how": "teleoperation by a person, recorded by dplearn.teleop",
            "command": command or f"dplearn.teleop.TeleopSession(seed={self.kept_seeds[:1] or [0]})",
            "dplearn_version": dplearn.__version__,
            "env": {
                "id": PUSHT_ID,
                "obs_type": "state",
                "max_episode_steps": MAX_STEPS,  # the env's time limit (the session's cap: below)
                "success_threshold": pusht_env.SUCCESS_THRESHOLD,
                "goal_pose": [float(v) for v in pusht_env.GOAL_POSE],
                "sim_hz": pusht_env.SIM_HZ,
                "control_hz": pusht_env.CONTROL_HZ,
                "k_p": pusht_env.K_P,
                "k_v": pusht_env.K_V,
            },
            "expert": {
                "class": "human (dplearn.teleop)",
                "params": {"control_hz": CONTROL_HZ, "workspace": WORKSPACE,
                           "max_steps": self.max_steps},
                "seed_rule": "none: a person chose the actions",
            },
            "start_rule": "env.reset(seed=s) rounded to float32 (dplearn.collection.start_state), "
                          "then reset(options={'reset_to_state': state[0]}); actions rounded to "
                          "float32",
            "seeds": list(self.kept_seeds),
            "failed_seeds": list(self.discarded_seeds),
            "attempts": len(self.kept_seeds) + len(self.discarded_seeds),
            "episode_length": {
                "mean": float(lengths.mean()), "median": float(np.median(lengths)),
                "min": int(lengths.min()), "max": int(lengths.max()),
            },
            "workers": 1,
            "wall_seconds": round(time.monotonic() - self.started, 1),
        }

    def to_demos(self) -> Demos:
        """The kept episodes as :class:`Demos` (raises ``ValueError`` if none was kept)."""
        if not self.kept:
            raise ValueError("no episode kept yet: drive the agent, then press keep (or call keep())")
        return Demos.from_episodes(self.kept, meta=self.meta())

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write every kept episode to ``path`` (``.npz``); returns the absolute path written.

        Refuses (``ValueError``) to replace an existing file unless ``overwrite=True``
        (:func:`free_path` gives the next free name). The kept episodes stay in the session
        whatever happens, so a failed save loses nothing.
        """
        if not isinstance(path, (str, os.PathLike)):
            raise ValueError(f"path must be a file name, got {path!r}")
        target = Path(path).expanduser().resolve()
        if target.suffix != ".npz":
            raise ValueError(f"path must end in .npz, got {str(path)!r}")
        if target.exists() and not overwrite:
            raise ValueError(f"path {str(target)!r} exists: choose another name, or pass "
                             f"overwrite=True (the next free name is {free_path(target).name})")
        return Path(save_demos(target, self.to_demos()))

    # ---- the picture ---------------------------------------------------------------------------
    def frame(self, size: int = 256, target: Any = None) -> np.ndarray:
        """(size, size, 3) uint8 render of the current state; the target (or ``target``) as a red cross."""
        from dplearn.envs.render import render_state

        return render_state(self.state, size=size,
                            action=self.target if target is None else target)


class TeleopController:
    """Turns pointer, key and button events into steps of a :class:`TeleopSession`.

    Parameters
    ----------
    session : TeleopSession
    step_px : float
        How far an arrow key or button moves the target (workspace pixels).
    hz : float
        Control rate of mouse-follow and of held keys (10, the benchmark's).

    All methods take ``now``, a time in seconds (``time.monotonic()`` in the widget), and return a
    short note on what happened. Mouse-follow: :meth:`pointer` reports the pointer's position over
    the scene, :meth:`leave` that it left, :meth:`toggle_recording` starts or stops recording (a
    click), and :meth:`tick` takes the steps that are due: one per ``1 / hz`` seconds while
    recording with the pointer over the scene, each commanding the pointer's latest position. After
    a pause (pointer away, recording off) the clock starts again, and if the caller falls more than
    two periods behind the missed steps are dropped rather than taken in a burst.
    """

    def __init__(self, session: TeleopSession, step_px: float = 20.0, hz: float = CONTROL_HZ):
        if not isinstance(session, TeleopSession):
            raise ValueError(f"session must be a TeleopSession, got {type(session).__name__}")
        self.session = session
        self.step_px = finite_float("step_px", step_px, low=0.0, low_open=True)
        self.period = 1.0 / finite_float("hz", hz, low=0.0, low_open=True)
        self.recording = False
        self.inside = False
        self.pointer_target: np.ndarray | None = None
        self.next_tick: float | None = None
        self.last_key_step = -np.inf
        self.held: tuple[int, int] | None = None
        self.next_hold: float | None = None

    # ---- mouse-follow --------------------------------------------------------------------------
    def pointer(self, x: float, y: float, width: float, height: float) -> np.ndarray:
        """The pointer at ``(x, y)`` pixels from the scene's top-left corner, the scene being
        ``width × height`` pixels on screen; returns the target it means, in workspace units."""
        width = finite_float("width", width, low=0.0, low_open=True)
        height = finite_float("height", height, low=0.0, low_open=True)
        x, y = finite_float("x", x), finite_float("y", y)
        self.inside = True
        self.pointer_target = np.clip([x / width * WORKSPACE, y / height * WORKSPACE],
                                      0.0, WORKSPACE)
        return self.pointer_target

    def leave(self) -> str:
        """The pointer left the scene: mouse-follow pauses."""
        self.inside = False
        self.next_tick = None
        return "paused (pointer left the scene)" if self.recording else ""

    def toggle_recording(self, now: float) -> str:
        """Start or stop recording (a click on the scene, or ``r``)."""
        finite_float("now", now)
        if self.session.done:
            self.recording = False
            return "the episode is over: k keeps it, d discards it"
        self.recording = not self.recording
        self.next_tick = None
        return "recording" if self.recording else "recording stopped"

    @property
    def following(self) -> bool:
        """True while mouse-follow steps the simulation."""
        return (self.recording and self.inside and self.pointer_target is not None
                and not self.session.done)

    def tick(self, now: float) -> int:
        """Take the steps due at time ``now`` (mouse-follow, or a held button); returns how many."""
        now = finite_float("now", now)
        if self.held is not None and not self.session.done:
            if self.next_hold is None or now - self.next_hold > 2 * self.period:
                self.next_hold = now
            n = 0
            while now >= self.next_hold and not self.session.done:
                self.session.move(*self.held, step_px=self.step_px)
                n += 1
                self.next_hold += self.period
            return n
        if not self.following:
            self.next_tick = None
            if self.session.done:
                self.recording = False
            return 0
        if self.next_tick is None or now - self.next_tick > 2 * self.period:
            self.next_tick = now  # (re)start the clock: a step now, the next one period later
        n = 0
        while now >= self.next_tick and not self.session.done:
            self.session.step(self.pointer_target)
            n += 1
            self.next_tick += self.period
        return n

    def wait_time(self, now: float) -> float | None:
        """Seconds until the next step is due (``None`` when none will be)."""
        due = self.next_hold if self.held is not None else (
            self.next_tick if self.following else None)
        return None if due is None else max(0.0, due - now)

    def hold(self, dx: int, dy: int, now: float) -> str:
        """An arrow (or wait) button pressed and held: one step now, then one per period (the
        target moving ``step_px · (dx, dy)`` each time) until :meth:`release`."""
        self.held = (integer("dx", dx, low=-1, high=1), integer("dy", dy, low=-1, high=1))
        self.next_hold = None
        return "the episode is over: keep or discard it" if self.session.done else ""

    def release(self) -> str:
        """The held button was released (or the pointer left it)."""
        self.held = None
        self.next_hold = None
        return ""

    # ---- keys and buttons ----------------------------------------------------------------------
    def key(self, key: str, now: float, repeat: bool = False) -> str:
        """A key press: arrows move the target one ``step_px`` and step, ``w``/space waits,
        ``k`` keeps, ``d`` discards, ``r`` starts/stops recording. A held key repeats at ``hz`` at
        most (auto-repeat presses that come sooner are ignored)."""
        now = finite_float("now", now)
        if key in ARROW_KEYS or KEYS.get(key.lower() if len(key) == 1 else key) == "wait":
            if repeat and now - self.last_key_step < self.period * 0.999:
                return ""
            self.last_key_step = now
            dx, dy = ARROW_KEYS.get(key, (0, 0))
            return self.press(dx, dy)
        what = KEYS.get(key.lower() if len(key) == 1 else key)
        if what == "keep":
            return self.keep()
        if what == "discard":
            return self.discard()
        if what == "record":
            return self.toggle_recording(now)
        return ""

    def press(self, dx: int, dy: int) -> str:
        """An arrow (or wait) button: move the target by ``step_px · (dx, dy)`` and step once."""
        if self.session.done:
            return "the episode is over: keep or discard it"
        self.session.move(dx, dy, step_px=self.step_px)
        return ""

    def keep(self) -> str:
        self.recording = False
        n = self.session.steps
        stored = self.session.keep()
        return f"kept the episode ({n} steps)" if stored else "nothing to keep yet"

    def discard(self) -> str:
        self.recording = False
        self.session.discard()
        return "discarded"

    def save(self, path: str | os.PathLike) -> str:
        """Save every kept episode to ``path``, or to the next free name if ``path`` exists;
        the note says where (absolute path). Never overwrites; kept episodes stay kept."""
        try:
            target = free_path(path)
            written = self.session.save(target)
        except (ValueError, OSError) as exc:
            return f"not saved ({exc}); your {len(self.session.kept)} kept episode(s) are still here"
        moved = "" if written == Path(path).expanduser().resolve() else \
            f" ({Path(path).name} exists, so a new name)"
        return f"saved {len(self.session.kept)} episode(s) to {written}{moved}"


def _png(image: np.ndarray) -> bytes:
    from PIL import Image  # Pillow: a dependency of matplotlib; ~20× faster than matplotlib here

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="png", compress_level=1)
    return buf.getvalue()


def _status(ctl: TeleopController, note: str = "") -> str:
    s = ctl.session
    rec = ("● recording" if ctl.following else "● recording (pointer off the scene)"
           if ctl.recording else "○ not recording")
    flag = " — <b>episode over</b>" if s.done else ""
    text = (f"{rec} · seed {s.seed} · step {s.steps}/{s.max_steps} · coverage {s.coverage:.0%} "
            f"(best {s.max_coverage:.0%}){flag} · kept {len(s.kept)}")
    return text + (f" · {html.escape(note)}" if note else "")


def static_html(session: TeleopSession, size: int = 320, help_text: str = HELP["mouse"],
                link: str = COLAB_URL) -> str:
    """A static picture of the panel (scene, help line, status) and where to run it live: what
    the website and any viewer without a live kernel show in place of the widget."""
    size = positive_int("size", size)
    png = base64.b64encode(_png(session.frame(size))).decode("ascii")
    return (
        '<div class="dplearn-teleop-static" style="display:flex;flex-wrap:wrap;gap:12px">'
        f'<img src="data:image/png;base64,{png}" width="{size}" height="{size}" '
        'alt="the teleoperation panel\'s scene: the pusher (blue), the block (grey), the goal '
        '(green) and the target (red cross)">'
        '<div style="max-width:340px">'
        '<p><b>A picture of the teleoperation panel.</b> It needs a live Python kernel: '
        f'<a href="{html.escape(link)}">run this chapter in Jupyter or Colab to drive it</a>.</p>'
        f'<p><small>{html.escape(help_text)}</small></p>'
        f'<p><small>{_status(TeleopController(session))}</small></p></div></div>'
    )


def _import_widgets(mode: str):
    try:
        import ipywidgets
    except ImportError as exc:
        raise ImportError("teleop_widget needs ipywidgets: pip install ipywidgets") from exc
    events = None
    if mode in ("mouse", "keys", "auto"):
        try:
            import ipyevents as events
        except ImportError as exc:
            if mode != "auto":
                raise ImportError(f"mode={mode!r} needs ipyevents (pointer and key events): pip "
                                  "install ipyevents, or use mode='buttons'") from exc
    return ipywidgets, events


def teleop_widget(session: TeleopSession | None = None, size: int = 320, step_px: float = 20.0,
                  mode: str = "auto", path: str = "my_pusht_demos.npz"):
    """An ipywidgets panel to drive the pusher and record demonstrations.

    ``mode``: ``"mouse"`` (the pusher follows the pointer at 10 Hz while recording; the default
    when ``ipyevents`` is installed), ``"keys"`` (arrow keys and buttons step the simulation) or
    ``"buttons"`` (the arrow pad only, no ``ipyevents`` needed); ``"auto"`` picks ``"mouse"`` if
    it can. Returns the panel (display it in a notebook cell); the recording lives in
    ``panel.session`` and the inputs in ``panel.controller``; ``panel.stop()`` ends its clock.

    Needs a live kernel (Jupyter, or Colab with its custom widget manager enabled for
    ``ipyevents``). Anywhere else the panel shows a static picture of itself and says where to run it.
    """
    mode = choice("mode", mode, ("auto", "mouse", "keys", "buttons"))
    size = integer("size", size, low=32, high=2048)
    w, events = _import_widgets(mode)
    if mode == "auto":
        mode = "mouse" if events is not None else "buttons"
    session = TeleopSession() if session is None else session
    ctl = TeleopController(session, step_px=step_px)
    lock = threading.RLock()
    stop = threading.Event()

    image = w.Image(format="png", width=size, height=size,
                    layout=w.Layout(width=f"{size}px", height=f"{size}px"))
    help_line = w.HTML(f"<small>{html.escape(HELP[mode])}</small>")
    status = w.HTML()
    speed = w.IntSlider(value=int(ctl.step_px), min=2, max=60, step=2, description="px / step")
    file_name = w.Text(value=path, description="file")

    def refresh(note: str = "") -> None:
        shown = ctl.pointer_target if (mode == "mouse" and ctl.pointer_target is not None
                                       and not session.done) else None
        image.value = _png(session.frame(size, target=shown))
        status.value = f"<small>{_status(ctl, note)}</small>"

    def run(action, *args) -> None:
        with lock:
            note = action(*args)
            refresh(note or "")

    # ---- the arrow pad and buttons (the fallback, and in keys mode) ----------------------------
    def on_press(dx: int, dy: int):
        def handler(_):
            ctl.step_px = float(speed.value)
            run(ctl.press, dx, dy)
        return handler

    def on_hold(dx: int, dy: int):  # with ipyevents: a held button repeats at 10 Hz
        def handler(event: dict) -> None:
            with lock:
                ctl.step_px = float(speed.value)
                if event.get("type") == "mousedown":
                    ctl.hold(dx, dy, time.monotonic())
                    ctl.tick(time.monotonic())
                else:
                    ctl.release()
                refresh()
        return handler

    pad, handlers = [], []
    for label, (dx, dy) in DIRECTIONS.items():
        b = w.Button(description=label, layout=w.Layout(width="52px", height="36px"),
                     tooltip="let the pusher catch up (same target; hold to repeat)"
                     if label == "wait" else "move the target (hold to repeat, 10 steps/s)")
        if events is None:
            b.on_click(on_press(dx, dy))
        else:
            held = events.Event(source=b, watched_events=["mousedown", "mouseup", "mouseleave"])
            held.on_dom_event(on_hold(dx, dy))
            handlers.append(held)
        pad.append(b)
    grid = w.GridBox(pad, layout=w.Layout(grid_template_columns="repeat(3, 56px)"))
    keep, discard, save = (w.Button(description="keep episode"), w.Button(description="discard"),
                           w.Button(description="save"))
    record = w.ToggleButton(value=False, description="record", tooltip="start/stop recording "
                            "(or click the scene, or press r)")
    keep.on_click(lambda _: run(ctl.keep))
    discard.on_click(lambda _: run(ctl.discard))
    save.on_click(lambda _: run(ctl.save, file_name.value))

    def on_record(change) -> None:
        if change["new"] != ctl.recording:
            run(ctl.toggle_recording, time.monotonic())
            record.value = ctl.recording

    record.observe(on_record, "value")

    # ---- pointer and keys (ipyevents) ----------------------------------------------------------
    if events is not None and mode in ("mouse", "keys"):
        def on_scene(event: dict) -> None:
            kind, now = event.get("type"), time.monotonic()
            with lock:
                note = ""
                if kind in ("mousemove", "mouseenter") and mode == "mouse":
                    ctl.pointer(event["relativeX"], event["relativeY"],
                                event["boundingRectWidth"], event["boundingRectHeight"])
                elif kind == "mouseleave":
                    note = ctl.leave()
                elif kind == "click" and mode == "mouse":
                    note = ctl.toggle_recording(now)
                elif kind == "keydown":
                    ctl.step_px = float(speed.value)
                    note = ctl.key(event.get("key", ""), now, repeat=bool(event.get("repeat")))
                elif kind == "mousemove":
                    return
                if mode == "mouse":
                    ctl.tick(now)
                record.value = ctl.recording
                refresh(note)

        moves = events.Event(source=image, watched_events=["mousemove"], wait=30,
                             throttle_or_debounce="throttle")
        others = events.Event(source=image, prevent_default_action=True,
                              watched_events=["mouseenter", "mouseleave", "click", "keydown",
                                              "dragstart"])
        moves.on_dom_event(on_scene)
        others.on_dom_event(on_scene)
        handlers += [moves, others]

    def clock() -> None:  # the real-time 10 Hz loop: mouse-follow and held buttons
        while not stop.is_set():
            with lock:
                now = time.monotonic()
                if ctl.tick(now):
                    record.value = ctl.recording
                    refresh()
                wait = ctl.wait_time(time.monotonic())
            stop.wait(0.02 if wait is None else min(wait, 0.1))

    if events is not None:
        threading.Thread(target=clock, name="dplearn-teleop-clock", daemon=True).start()

    refresh()
    controls = [grid, speed, w.HBox([keep, discard]), w.HBox([file_name, save]), status]
    if mode == "mouse":
        controls.insert(0, record)
    panel = _panel_class(w)([help_line, w.HBox([image, w.VBox(controls)])])
    panel.session, panel.controller, panel.image, panel.status = session, ctl, image, status
    panel.buttons = {b.description: b for b in [*pad, keep, discard, save]}
    panel.record, panel.file_name, panel.events, panel.mode = record, file_name, handlers, mode
    panel.help_text, panel.refresh, panel.stop = HELP[mode], refresh, stop.set
    panel.lock = lock
    return panel


_PANEL_CLASS: dict[int, type] = {}


def _panel_class(w) -> type:
    """A VBox whose notebook output also carries a static picture (``text/html``): front ends
    with widgets show the live panel, the website and viewers without widgets the picture."""
    if id(w) not in _PANEL_CLASS:
        class TeleopPanel(w.VBox):
            def _repr_mimebundle_(self, **kwargs):
                bundle = super()._repr_mimebundle_(**kwargs)
                if isinstance(bundle, tuple):  # (data, metadata)
                    bundle = bundle[0]
                with self.lock:
                    bundle["text/html"] = static_html(self.session, int(self.image.width),
                                                      self.help_text)
                return bundle

            def close(self) -> None:
                self.stop()  # end the panel's clock
                super().close()

        _PANEL_CLASS[id(w)] = TeleopPanel
    return _PANEL_CLASS[id(w)]
