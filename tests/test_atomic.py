"""Atomic writes: the destination is either the old file or the complete new one, never a partial one."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from dplearn.atomic import atomic_write, torch_save_atomic


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "ckpt.pt"
    path.write_bytes(b"old")

    def boom(f):
        f.write(b"half")
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        atomic_write(path, boom)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]


def test_torch_round_trip_and_usual_permissions(tmp_path):
    obj = {"w": torch.arange(5.0)}
    path = torch_save_atomic(obj, tmp_path / "sub" / "x.pt")
    assert torch.equal(torch.load(path, weights_only=True)["w"], obj["w"])
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_the_folder_is_synced_after_the_rename(tmp_path, monkeypatch):
    """The rename is only durable once the folder's entry is on disk: fsync the folder too (POSIX)."""
    opened = {}
    real_open, real_fsync, real_replace = os.open, os.fsync, os.replace
    events = []

    def record_open(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        opened[fd] = os.fspath(path)
        return fd

    def record_fsync(fd):
        events.append("fsync folder" if opened.get(fd) == str(tmp_path) else "fsync file")
        return real_fsync(fd)

    def record_replace(src, dst):
        events.append("replace")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "open", record_open)
    monkeypatch.setattr(os, "fsync", record_fsync)
    monkeypatch.setattr(os, "replace", record_replace)
    atomic_write(tmp_path / "x.bin", lambda f: f.write(b"data"))
    if not hasattr(os, "O_DIRECTORY"):
        pytest.skip("this platform does not open folders")
    assert events == ["fsync file", "replace", "fsync folder"]
    assert (tmp_path / "x.bin").read_bytes() == b"data"


def test_a_folder_that_cannot_be_opened_is_not_an_error(tmp_path, monkeypatch):
    real_open = os.open

    def refuse(path, flags, *args, **kwargs):
        if os.path.isdir(path):
            raise PermissionError(13, "folders cannot be opened here", os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)  # what Windows does with a folder
    atomic_write(tmp_path / "x.bin", lambda f: f.write(b"data"))
    assert (tmp_path / "x.bin").read_bytes() == b"data"
