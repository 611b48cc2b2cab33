"""Atomic file writes and careful reads: a crash mid-write never leaves a half-written checkpoint
or dataset, and a bad file is refused with one line that says what is wrong with it.

The bytes go to a temporary file in the destination's folder, are flushed to disk, and the file
is then moved over the destination with :func:`os.replace` (atomic on POSIX and Windows); the
folder itself is then flushed too (POSIX), so that the rename survives a power cut. The result
gets the usual permissions (``0o666`` less the umask), not the private mode of a temp file.

:func:`torch_load` reads a file written by :func:`torch_save_atomic` with
``torch.load(..., weights_only=True)`` and turns every way a file can be unreadable (missing,
empty, truncated, not a torch file, holding arbitrary Python objects) into a
:class:`CheckpointError` that names the file and the problem.
"""

from __future__ import annotations

import os
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "torch_save_atomic", "torch_load", "describe_contents", "CheckpointError"]


class CheckpointError(ValueError):
    """A file that should hold a dplearn checkpoint (policy or training state) cannot be used.

    A ``ValueError``: the message names the file and says what is wrong, in one line.
    """


def _fsync_directory(folder: Path) -> None:
    """Flush ``folder``'s entries (a rename in it) to disk; a no-op where folders cannot be opened."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(folder, flags)
    except OSError:  # Windows, or a file system that does not open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder; the rename itself has happened
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any], suffix: str = ".tmp") -> Path:
    """Call ``write(f)`` on a binary file that becomes ``path`` only once it is complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_directory(path.parent)
    return path


def torch_save_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` atomically."""
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))


def _unreadable_reason(path: Path, exc: BaseException) -> str:
    """Why ``torch.load`` failed on ``path``, in words (never torch's advice to unpickle anything)."""
    text = str(exc)
    if "Weights only load failed" in text or "weights_only" in text:
        return ("it holds Python objects other than tensors and plain values, which are not loaded "
                "because unpickling them could run arbitrary code; it was not written by dplearn")
    with open(path, "rb") as f:
        head = f.read(4)
    if head == b"PK\x03\x04":
        if not zipfile.is_zipfile(path):
            return "it is truncated (an incomplete zip archive)"
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError):
            return "it is a damaged zip archive"
        if not any(n.endswith("data.pkl") for n in names):
            return "it is a zip archive but not a torch file"
        return f"it is a damaged torch file ({type(exc).__name__})"
    if isinstance(exc, EOFError) or "truncated" in text:
        return "it is truncated"
    return f"it is damaged or not a torch file ({type(exc).__name__})"


def torch_load(path: str | os.PathLike, what: str = "checkpoint", map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``, refusing a missing, empty, truncated or foreign file.

    Raises :class:`CheckpointError` (a ``ValueError``) naming the file, ``what`` it should have been
    and the problem, in one line: ``'x.pt' is not a readable dplearn checkpoint: it is empty``.
    """
    import torch

    path = Path(path)
    prefix = f"{str(path)!r} is not a readable dplearn {what}"
    if not path.exists():
        raise CheckpointError(f"{prefix}: no such file")
    if not path.is_file():
        raise CheckpointError(f"{prefix}: it is not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{prefix}: it is empty")
    try:
        with warnings.catch_warnings():  # e.g. torch's note on the pickle protocol of a foreign file
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # EOFError, RuntimeError (zip archive), UnpicklingError, ...
        raise CheckpointError(f"{prefix}: {_unreadable_reason(path, exc)}") from None


def describe_contents(state: Any) -> str:
    """What a loaded file holds instead of a dplearn format, in words for an error message:
    ``"a list"``, ``"a mapping with no 'format' entry, keys [...]"`` or the format it names."""
    if not isinstance(state, Mapping):
        return f"a {type(state).__name__}"
    if "format" not in state:
        return f"a mapping with no 'format' entry, keys {sorted(map(str, state))[:6]}"
    return repr(state["format"])
