"""Demonstration storage: episodes of states and actions in one flat, compressed file.

Introduced in chapter 5.

The layout is the benchmark's replay buffer: all episodes are concatenated along the first axis
and ``episode_ends`` holds the cumulative end index of each episode, so episode ``i`` is the
half-open slice ``[episode_ends[i-1], episode_ends[i])`` (with ``episode_ends[-1] = 0``)::

    state         (N, S) float32   Push-T: S = 5, agent x, y, block x, y, block angle mod 2π
                                   (the env's ``state`` obs)
    action        (N, A) float32   action[i] = what was commanded after observing state[i];
                                   Push-T: A = 2, a target position
    episode_ends  (E,)   int64     strictly increasing, episode_ends[-1] == N
    meta          dict             JSON-able: version, env numbers, seeds, how the file was made

The widths S and A are the data's own (the toy task of chapter 6, :mod:`dplearn.data.toy`, has
S = A = 2).

On disk it is a compressed ``.npz`` with the three arrays and ``meta`` as a JSON string. Files are
written atomically (a temporary file in the same folder, then ``os.replace``), so a crash never
leaves a half-written file behind.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dplearn.atomic import atomic_write
from dplearn.data.results import shipped_data_path
from dplearn.validate import integer

FORMAT_VERSION = 1
SHIPPED_NAME = "pusht_demos.npz"
_KEYS = ("state", "action", "episode_ends", "meta")


def _check(state: np.ndarray, action: np.ndarray, episode_ends: np.ndarray, where: str) -> None:
    """Raise ``ValueError`` naming the first problem with the arrays of a demonstration set."""
    if state.ndim != 2 or state.shape[1] < 1:
        raise ValueError(f"{where}: state must have shape (N, S) with S >= 1, got {state.shape}")
    if action.ndim != 2 or action.shape[1] < 1:
        raise ValueError(f"{where}: action must have shape (N, A) with A >= 1, got {action.shape}")
    if state.shape[0] != action.shape[0]:
        raise ValueError(
            f"{where}: state and action must have the same length N, got {state.shape[0]} "
            f"and {action.shape[0]}"
        )
    if episode_ends.ndim != 1:
        raise ValueError(f"{where}: episode_ends must be 1-D, got shape {episode_ends.shape}")
    n = state.shape[0]
    if n == 0 or episode_ends.size == 0:
        raise ValueError(f"{where}: a demonstration set needs at least one non-empty episode")
    if episode_ends[0] <= 0 or np.any(np.diff(episode_ends) <= 0):
        raise ValueError(f"{where}: episode_ends must be strictly increasing positive indices")
    if episode_ends[-1] != n:
        raise ValueError(
            f"{where}: episode_ends must end at N={n} (the number of steps), got {episode_ends[-1]}"
        )
    if not np.all(np.isfinite(state)):
        raise ValueError(f"{where}: state contains NaN or infinite values")
    if not np.all(np.isfinite(action)):
        raise ValueError(f"{where}: action contains NaN or infinite values")


@dataclass
class Demos:
    """A set of demonstration episodes in the flat replay-buffer layout (see the module docstring).

    Introduced in chapter 5.

    Attributes
    ----------
    state : np.ndarray, (N, S) float32
    action : np.ndarray, (N, A) float32
    episode_ends : np.ndarray, (E,) int64, cumulative end indices
    meta : dict, JSON-able description of where the data came from
    """

    state: np.ndarray
    action: np.ndarray
    episode_ends: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.state = np.asarray(self.state, dtype=np.float32)
        self.action = np.asarray(self.action, dtype=np.float32)
        ends = np.asarray(self.episode_ends)
        if ends.size and not np.issubdtype(ends.dtype, np.integer):
            if not np.all(ends == np.round(ends)):
                raise ValueError(f"episode_ends must hold integers, got {ends.dtype}")
        self.episode_ends = ends.astype(np.int64)
        if not isinstance(self.meta, dict):
            raise ValueError(f"meta must be a dict, got {type(self.meta).__name__}")
        _check(self.state, self.action, self.episode_ends, "Demos")

    # ---- construction ----------------------------------------------------------------------
    @classmethod
    def from_episodes(
        cls, episodes: list[tuple[np.ndarray, np.ndarray]], meta: dict[str, Any] | None = None
    ) -> Demos:
        """Build from a list of ``(states (T_i, S), actions (T_i, A))`` pairs."""
        if len(episodes) == 0:
            raise ValueError("episodes must contain at least one (states, actions) pair")
        states, actions, lengths = [], [], []
        for i, (s, a) in enumerate(episodes):
            s = np.asarray(s, dtype=np.float32)
            a = np.asarray(a, dtype=np.float32)
            if s.ndim != 2 or a.ndim != 2 or s.shape[0] != a.shape[0] or s.shape[0] == 0:
                raise ValueError(
                    f"episodes[{i}] must be (states (T, S), actions (T, A)) with T > 0, got "
                    f"shapes {s.shape} and {a.shape}"
                )
            states.append(s)
            actions.append(a)
            lengths.append(s.shape[0])
        return cls(
            state=np.concatenate(states),
            action=np.concatenate(actions),
            episode_ends=np.cumsum(lengths),
            meta=dict(meta or {}),
        )

    # ---- access --------------------------------------------------------------------------------
    @property
    def n_episodes(self) -> int:
        return int(self.episode_ends.shape[0])

    @property
    def n_steps(self) -> int:
        return int(self.state.shape[0])

    @property
    def episode_starts(self) -> np.ndarray:
        """(E,) int64: index of the first step of each episode."""
        return np.concatenate([[0], self.episode_ends[:-1]]).astype(np.int64)

    @property
    def episode_lengths(self) -> np.ndarray:
        """(E,) int64: number of steps of each episode."""
        return np.diff(np.concatenate([[0], self.episode_ends])).astype(np.int64)

    def episode_slice(self, i: int) -> slice:
        """The slice of the flat arrays that holds episode ``i`` (negative ``i`` counts from the end)."""
        n = self.n_episodes
        i = integer("episode index i", i, low=-n, high=n - 1) % n
        start = 0 if i == 0 else int(self.episode_ends[i - 1])
        return slice(start, int(self.episode_ends[i]))

    def episode(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(states (T_i, S), actions (T_i, A))`` of episode ``i`` (views, not copies)."""
        sl = self.episode_slice(i)
        return self.state[sl], self.action[sl]

    def episodes(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Iterate over ``(states, actions)`` of every episode in order."""
        for i in range(self.n_episodes):
            yield self.episode(i)

    def subset(self, indices) -> Demos:
        """A new :class:`Demos` holding the episodes ``indices`` (in that order)."""
        indices = [int(i) for i in np.asarray(indices).ravel()]
        meta = dict(self.meta)
        meta["subset_of_episodes"] = indices
        return Demos.from_episodes([self.episode(i) for i in indices], meta=meta)

    def fingerprint(self) -> str:
        """SHA-256 of the arrays (states, actions, episode ends): which data a policy saw, and the key
        of caches made from them (e.g. :func:`dplearn.data.frames.demo_frames`)."""
        import hashlib

        h = hashlib.sha256()
        for array in (self.state, self.action, self.episode_ends):
            h.update(np.ascontiguousarray(array).tobytes())
        return h.hexdigest()

    def __len__(self) -> int:
        return self.n_episodes

    def __repr__(self) -> str:
        lengths = self.episode_lengths
        return (
            f"Demos(n_episodes={self.n_episodes}, n_steps={self.n_steps}, "
            f"episode length min/mean/max={lengths.min()}/{lengths.mean():.1f}/{lengths.max()})"
        )


def save_demos(path: str | os.PathLike, demos: Demos) -> Path:
    """Write ``demos`` to ``path`` as a compressed ``.npz`` (atomically); returns the path.

    Introduced in chapter 5.
    """
    if not isinstance(demos, Demos):
        raise ValueError(f"demos must be a Demos, got {type(demos).__name__}")
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"path must end in .npz, got {str(path)!r}")
    try:
        meta_json = json.dumps(demos.meta, sort_keys=True)
    except TypeError as exc:
        raise ValueError(f"demos.meta must be JSON-serialisable: {exc}") from None
    def write(f) -> None:
        np.savez_compressed(
            f,
            state=demos.state.astype(np.float32),
            action=demos.action.astype(np.float32),
            episode_ends=demos.episode_ends.astype(np.int64),
            meta=np.array(meta_json),
        )

    atomic_write(path, write, suffix=".tmp.npz")
    return path


def _why_unreadable(exc: Exception) -> str:
    """A short reason ``np.load`` failed, without NumPy's advice to allow pickles (never safe here)."""
    text = str(exc)
    if isinstance(exc, zipfile.BadZipFile) or "zip" in text.lower():
        return "not an .npz archive, or a truncated one"
    if "pickle" in text.lower():
        return "not a NumPy file, or one holding pickled Python objects, which are not loaded"
    return f"{type(exc).__name__}: {text.splitlines()[0][:160]}" if text else type(exc).__name__


def load_demos(path: str | os.PathLike) -> Demos:
    """Read a file written by :func:`save_demos`, refusing a corrupt or mismatched one.

    Raises ``ValueError`` naming the problem: missing keys, wrong shapes or dtypes, ``episode_ends``
    not strictly increasing or not ending at N, NaNs, unreadable meta.

    Introduced in chapter 5.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path {str(path)!r} is not a file")
    try:
        with np.load(path, allow_pickle=False) as f:
            if not hasattr(f, "files"):
                raise ValueError("a single array, not an .npz archive")
            arrays = {k: f[k] for k in _KEYS if k in f.files}
    except Exception as exc:  # zip errors, bad headers, pickled objects ...
        raise ValueError(f"{path.name}: not a readable demonstrations file ({_why_unreadable(exc)})") from None
    missing = [k for k in _KEYS if k not in arrays]
    if missing:
        raise ValueError(f"{path.name}: missing keys {missing}; expected {list(_KEYS)}")
    where = path.name
    for key, kind in (("state", np.floating), ("action", np.floating), ("episode_ends", np.integer)):
        if not np.issubdtype(arrays[key].dtype, kind):
            raise ValueError(f"{where}: {key} must have a {kind.__name__} dtype, got {arrays[key].dtype}")
    if arrays["state"].dtype != np.float32 or arrays["action"].dtype != np.float32:
        raise ValueError(
            f"{where}: state and action must be float32, got {arrays['state'].dtype} and "
            f"{arrays['action'].dtype}"
        )
    _check(arrays["state"], arrays["action"], arrays["episode_ends"], where)
    try:
        meta = json.loads(str(arrays["meta"]))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: meta is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{where}: meta must be a JSON object, got {type(meta).__name__}")
    return Demos(arrays["state"], arrays["action"], arrays["episode_ends"], meta)


def shipped_demos_path() -> Path:
    """Where the shipped ``pusht_demos.npz`` lives: inside the installed package, else the repo's ``data/``."""
    try:
        return shipped_data_path(SHIPPED_NAME)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{exc}; make them with `dplearn collect`") from None


def load_pusht_demos(path: str | os.PathLike | None = None) -> Demos:
    """The Push-T demonstrations that ship with dplearn (or the file at ``path``).

    Returns a :class:`Demos` with ``state`` (N, 5), ``action`` (N, 2) and ``episode_ends`` (E,).
    A corrupt or mismatched file raises ``ValueError`` naming the problem.

    Introduced in chapter 5.
    """
    demos = load_demos(shipped_demos_path() if path is None else path)
    if demos.state.shape[1] != 5 or demos.action.shape[1] != 2:
        raise ValueError(f"{path or SHIPPED_NAME}: Push-T demonstrations must have state (N, 5) and action "
                         f"(N, 2), got {demos.state.shape} and {demos.action.shape}")
    return demos
