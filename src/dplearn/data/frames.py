"""Camera images of every demonstration frame, rendered once and kept on disk: the image policies' data.

A visuomotor policy trains on the pictures its cameras would have taken at every step of the
demonstrations. The demonstrations store states, so the pictures are rendered from them
(:func:`dplearn.envs.render.render_cameras`, the env's own renderer), once for all: :func:`demo_frames`
renders every frame of a demonstration set for one camera, as uint8 ``(N, H, W, 3)``, and keeps the
result in a cache file named after the demonstrations' fingerprint, the camera, the image size and
the renderer's version, so a second run (or a resumed one) loads it in about a second. The cache
lives in ``$DPLEARN_CACHE_DIR``, else ``$XDG_CACHE_HOME/dplearn``, else ``~/.cache/dplearn``
(about 0.5 GB per camera for the shipped demonstrations at 96 × 96; delete it at any time). Training
then moves these arrays to the device once and indexes them there (:mod:`dplearn.policy_training`).

Cameras and the observation types that use them:

================  ====================  ==========================================================
obs_type          cameras               model keys (see :func:`dplearn.data.observation_to_model`)
================  ====================  ==========================================================
pixels            top                   ``image``
pixels_agent_pos  top                   ``image``, ``agent_pos``
two-cameras       top, wrist            ``image``, ``wrist_image``, ``agent_pos``
================  ====================  ==========================================================

Introduced in chapter 9.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from dplearn import validate
from dplearn.atomic import atomic_write
from dplearn.data.demos import Demos

__all__ = ["demo_frames", "render_frames", "cache_dir", "frames_cache_path", "OBS_CAMERAS", "CAMERA_KEYS",
           "RENDER_VERSION", "CACHE_ENV_VAR"]

#: Bump when the renderer's pictures change: cached frames of an older version are not reused.
RENDER_VERSION = 2
CACHE_ENV_VAR = "DPLEARN_CACHE_DIR"
#: The cameras each image observation type reads, in order.
OBS_CAMERAS = {"pixels": ("top",), "pixels_agent_pos": ("top",), "two-cameras": ("top", "wrist")}
#: The key of each camera's images in the model format (what policies read).
CAMERA_KEYS = {"top": "image", "wrist": "wrist_image"}


def cache_dir() -> Path:
    """Where rendered frames are cached: ``$DPLEARN_CACHE_DIR``, else ``$XDG_CACHE_HOME/dplearn``, else
    ``~/.cache/dplearn``."""
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dplearn"


def frames_cache_path(demos: Demos, camera: str, size: int = 96, directory: str | os.PathLike | None = None) -> Path:
    """The cache file of ``demos``' frames for ``camera`` at ``size``: named by the demonstrations'
    fingerprint, the camera, the size and :data:`RENDER_VERSION`."""
    root = cache_dir() if directory is None else Path(directory)
    return root / f"pusht-frames-{demos.fingerprint()[:20]}-{camera}-{int(size)}px-r{RENDER_VERSION}.npy"


def _render_chunk(args: tuple[np.ndarray, str, int]) -> np.ndarray:
    from dplearn.envs.render import render_states

    states, camera, size = args
    return render_states(states, size=size, camera=camera)


def render_frames(states: np.ndarray, camera: str = "top", size: int = 96, workers: int = 1) -> np.ndarray:
    """``camera``'s image of every state (N, 5) → (N, size, size, 3) uint8, in ``workers`` processes."""
    from dplearn.envs.render import CAMERAS

    if camera not in CAMERAS:
        raise ValueError(f"camera must be one of {list(CAMERAS)}, got {camera!r}")
    states = np.asarray(states, dtype=np.float64)
    workers = validate.positive_int("workers", workers)
    if workers == 1 or len(states) < 2000:
        return _render_chunk((states, camera, size))
    chunks = np.array_split(states, workers * 4)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return np.concatenate(list(pool.map(_render_chunk, [(c, camera, size) for c in chunks])))


def demo_frames(demos: Demos, camera: str = "top", size: int = 96, cache: bool = True,
                directory: str | os.PathLike | None = None, workers: int | None = None) -> np.ndarray:
    """Every frame of ``demos`` as ``camera`` sees it: (N, size, size, 3) uint8, frame i of state i.

    Rendered once (in ``workers`` processes; default ``$DPLEARN_RENDER_WORKERS`` or 1) and kept in
    :func:`frames_cache_path` (under ``directory``, default :func:`cache_dir`) when ``cache``; a cache
    file of the wrong shape is rendered again. Introduced in chapter 9.
    """
    if not isinstance(demos, Demos):
        raise ValueError(f"demos must be a Demos, got {type(demos).__name__}")
    if workers is None:
        workers = int(os.environ.get("DPLEARN_RENDER_WORKERS", "1") or 1)
    shape = (demos.n_steps, int(size), int(size), 3)
    path = frames_cache_path(demos, camera, size, directory) if cache else None
    if path is not None and path.is_file():
        try:
            frames = np.load(path)
            if frames.shape == shape and frames.dtype == np.uint8:
                return frames
        except (OSError, ValueError):
            pass  # unreadable: render again and overwrite
    frames = render_frames(demos.state, camera, int(size), workers)
    if path is not None:
        try:
            atomic_write(path, lambda f: np.save(f, frames))
        except OSError:  # a read-only cache dir costs a re-render next time, nothing else
            pass
    return frames
