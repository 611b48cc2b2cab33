"""Data-parallel training on several GPUs (or CPU processes) with ``torchrun``.

``torchrun --nproc-per-node N -m dplearn train ...`` starts N copies of ``dplearn train``; torchrun
tells each its place in the environment variables ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``. The
command then calls :func:`init_distributed`, which opens the process group (NCCL between CUDA
GPUs, one GPU per process, the one numbered ``LOCAL_RANK``; gloo between CPU processes), and
:func:`dplearn.training.train` sees the group and trains with
:class:`~torch.nn.parallel.DistributedDataParallel`:

- the batch size of the recipe stays the **global** batch: each of the N processes ("ranks") takes
  ``batch_size / N`` rows of every batch (a batch size that N does not divide is refused);
- every rank draws the same seeded order of the windows, so batch k is the same on every rank and
  rank r takes its r-th slice: together the ranks see exactly the batches of a one-process run;
- the gradients are averaged over the ranks (an all-reduce) before the optimiser step, so every
  rank holds the same weights, optimiser moments and EMA after every step;
- only rank 0 prints progress and writes files (training states atomically, the policy at the end);
  a resumed run loads the same training state on every rank.

Random numbers drawn *inside* the loss (a diffusion policy's noise and timesteps) come from each
rank's own global generator, seeded from ``(seed, rank)`` (rank 0 keeps ``seed``), so that the
ranks' rows get independent noise; their states are all kept in the training state.

Without torchrun (no ``WORLD_SIZE`` in the environment, or ``WORLD_SIZE=1``) nothing here does
anything and training is the one-process loop, bit for bit.

Introduced in chapter 9.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

__all__ = ["DistInfo", "torchrun_env", "init_distributed", "shutdown", "current", "is_main_process",
           "rank_seed"]

_CONTROL_GROUPS: dict[int, Any] = {}


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in a torchrun job.

    ``rank`` (0 … world_size − 1) over all processes, ``local_rank`` on this machine (the GPU it
    uses), ``local_world_size`` processes on this machine, ``backend`` of the process group
    (``"nccl"`` or ``"gloo"``, empty before :func:`init_distributed`).
    """

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    backend: str = ""

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int | None = None) -> int | None:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"the environment variable {name} must be an integer, got {text!r}") from None
    if value < 0:
        raise ValueError(f"the environment variable {name} must be >= 0, got {value}")
    return value


def torchrun_env() -> DistInfo | None:
    """The torchrun variables of this process, or ``None`` when it was not started by torchrun.

    ``WORLD_SIZE`` missing means no torchrun; ``RANK`` and ``LOCAL_RANK`` must then be set too and
    lie below it, else ``ValueError`` says which variable is wrong.
    """
    world = _env_int("WORLD_SIZE")
    if world is None:
        return None
    if world < 1:
        raise ValueError(f"the environment variable WORLD_SIZE must be >= 1, got {world}")
    rank = _env_int("RANK")
    local_rank = _env_int("LOCAL_RANK")
    if rank is None or local_rank is None:
        raise ValueError("WORLD_SIZE is set but RANK or LOCAL_RANK is not: start data-parallel training with "
                         "torchrun (e.g. `torchrun --nproc-per-node 2 -m dplearn train ...`)")
    local_world = _env_int("LOCAL_WORLD_SIZE", world)
    if rank >= world:
        raise ValueError(f"RANK={rank} must be below WORLD_SIZE={world}")
    if local_rank >= local_world:
        raise ValueError(f"LOCAL_RANK={local_rank} must be below LOCAL_WORLD_SIZE={local_world}")
    return DistInfo(rank, world, local_rank, local_world)


def init_distributed(device: str = "auto", timeout_s: float = 1800.0) -> DistInfo | None:
    """Open the process group torchrun prepared; ``None`` (and nothing done) outside torchrun or with
    one process.

    ``device``: ``"auto"`` or ``"cuda"`` use NCCL and GPU ``LOCAL_RANK`` when CUDA is available
    (``torch.cuda.set_device``), gloo on the CPU otherwise; ``"cpu"`` always uses gloo. A device
    with an explicit index (``cuda:1``) is refused: each process uses the GPU of its ``LOCAL_RANK``.
    Returns this process's :class:`DistInfo`.
    """
    info = torchrun_env()
    if info is None or info.world_size == 1:
        return None
    import torch
    import torch.distributed as dist

    if not dist.is_available():
        raise RuntimeError("this torch build has no torch.distributed: data-parallel training is unavailable")
    kind = str(device).split(":")[0]
    if kind not in ("auto", "cuda", "cpu"):
        raise ValueError(f"data-parallel training runs on cuda or cpu, got device {device!r}")
    if ":" in str(device):
        raise ValueError(f"under torchrun each process uses the GPU of its LOCAL_RANK: pass --device auto, cuda "
                         f"or cpu, not {device!r}")
    use_cuda = kind != "cpu" and torch.cuda.is_available()
    if kind == "cuda" and not use_cuda:
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available")
    if use_cuda:
        if info.local_rank >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK={info.local_rank} but this machine has {torch.cuda.device_count()} "
                             "CUDA GPU(s): start at most one process per GPU")
        torch.cuda.set_device(info.local_rank)
    backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        kwargs = {"backend": backend, "timeout": datetime.timedelta(seconds=float(timeout_s))}
        if use_cuda:
            kwargs["device_id"] = torch.device("cuda", info.local_rank)
        try:
            dist.init_process_group(**kwargs)
        except TypeError:  # torch without device_id
            kwargs.pop("device_id", None)
            dist.init_process_group(**kwargs)
    return DistInfo(info.rank, info.world_size, info.local_rank, info.local_world_size, dist.get_backend())


def shutdown() -> None:
    """Close the process group, if one is open."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        _CONTROL_GROUPS.clear()
        dist.destroy_process_group()


def current() -> DistInfo | None:
    """This process's :class:`DistInfo` when a process group with two or more processes is open, else ``None``."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    local = _env_int("LOCAL_RANK", dist.get_rank())
    local_world = _env_int("LOCAL_WORLD_SIZE", dist.get_world_size())
    return DistInfo(dist.get_rank(), dist.get_world_size(), local, local_world, dist.get_backend())


def is_main_process() -> bool:
    """True on rank 0, and in any process that is not part of a multi-process group."""
    info = current()
    return info is None or info.is_main


def rank_seed(seed: int, rank: int, step: int = 0) -> int:
    """The global-RNG seed of ``rank``: ``seed`` itself for rank 0 at step 0 (so a one-process run and
    rank 0 draw alike), otherwise a number derived from ``(seed, rank, step)`` by NumPy's
    ``SeedSequence`` (independent streams, no collision with a run of ``seed + 1``)."""
    if rank == 0 and step == 0:
        return int(seed)
    import numpy as np

    return int(np.random.SeedSequence([int(seed), int(rank), int(step)]).generate_state(1, np.uint32)[0])


def control_group() -> Any:
    """A gloo group for small host-side messages (stop flags, random states) next to NCCL; the
    default group when that already is gloo. Created once per process group."""
    import torch.distributed as dist

    if dist.get_backend() == "gloo":
        return None
    key = id(dist.group.WORLD)
    if key not in _CONTROL_GROUPS:
        _CONTROL_GROUPS[key] = dist.new_group(backend="gloo")
    return _CONTROL_GROUPS[key]
