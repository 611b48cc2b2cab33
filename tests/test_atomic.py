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
