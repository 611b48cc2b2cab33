"""A small, general training loop: AdamW, warmup + cosine decay, EMA, clipping, checkpoints.

Every chapter that trains a network uses :func:`train`::

    config = TrainConfig(steps=5000, batch_size=256, lr=1e-3, ema_decay=0.999)
    result = train(model, loss_fn, data, config)
    result.losses          # (steps,) the loss of every step
    result.ema_model       # the exponential moving average of the weights (or None)

``loss_fn(model, batch) -> scalar tensor`` says what to minimise; ``data`` says where batches
come from (a tensor, a tuple of tensors, a map-style ``torch.utils.data.Dataset``, or a function
``data(batch_size, generator) -> batch`` that draws fresh samples). The recipe follows Diffusion
Policy's (Chi et al., 2023): AdamW, a linear warmup then cosine decay of the learning rate
(:func:`warmup_cosine`), gradient-norm clipping and an :class:`EMA` of the weights, which is the
model one samples from.

Checkpoints are written atomically (a temporary file, then :func:`os.replace`) and hold
everything needed to continue bit for bit: model, optimiser, scheduler, EMA, step, loss history,
the batch sampler's state and the random number generators. With ``checkpoint_path`` set,
:func:`train` resumes from the file when it exists.

Introduced in chapter 3.
"""

from __future__ import annotations

import copy
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dplearn import validate
from dplearn.atomic import CheckpointError, describe_contents, torch_load, torch_save_atomic
from dplearn.compute import flushed_denormals
from dplearn.seeding import seed_everything

__all__ = ["TrainConfig", "TrainResult", "EMA", "warmup_cosine", "train", "select_device",
           "load_checkpoint_model", "resolve_amp", "read_train_state", "TRAIN_STATE_FORMAT", "AMP_MODES"]

#: Format tag of the training-state files :func:`train` writes (checked when resuming).
TRAIN_STATE_FORMAT = "dplearn-train-state/1"
AMP_MODES = (None, "bf16", "fp16", "auto")
#: TrainConfig fields that may differ between a run and its resumption (they do not change the
#: optimisation: where it runs, how it reports, where it saves).
_RESUMABLE_DIFFERENCES = {"device", "log_every", "progress", "checkpoint_path", "checkpoint_every"}


# ---------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """Plain data describing one training run.

    ================  ============================================================================
    steps             number of optimiser steps (>= 1)
    batch_size        examples per step (>= 1)
    lr                peak learning rate of AdamW (> 0)
    weight_decay      AdamW's decoupled weight decay (>= 0)
    warmup_steps      linear warmup length, then cosine decay to 0 at ``steps`` (0 <= w <= steps)
    grad_clip         clip the global gradient norm to this value; ``None`` disables clipping
    ema_decay         decay of the weights' moving average in (0, 1); ``None`` disables the EMA
    ema_power         ``None``: constant decay; a number p: the warmup
                      :math:`\\min(\\text{ema\\_decay}, 1 - (1 + k)^{-p})` of Diffusion Policy
    seed              seeds Python, NumPy, torch and the batch sampler
    device            ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ...
    log_every         refresh the progress bar's loss every this many steps (>= 1)
    progress          show a tqdm progress bar with the running loss
    checkpoint_path   file to save to and resume from; ``None``: no checkpoints
    checkpoint_every  also save every this many steps (0: only at the end)
    betas             AdamW's (β1, β2); Diffusion Policy uses (0.95, 0.999)
    amp               mixed precision: ``None`` (float32), ``"bf16"``, ``"fp16"`` (with a gradient
                      scaler) or ``"auto"``: bf16 on CUDA GPUs that support it fast (Ampere or
                      newer), fp16 on older CUDA GPUs (e.g. Colab's T4), float32 on the CPU
    ================  ============================================================================

    Bad values raise ``ValueError`` naming the field.

    Introduced in chapter 3.
    """

    steps: int
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-6
    warmup_steps: int = 0
    grad_clip: float | None = 1.0
    ema_decay: float | None = None
    ema_power: float | None = None
    seed: int = 0
    device: str = "auto"
    log_every: int = 50
    progress: bool = True
    checkpoint_path: str | os.PathLike | None = None
    checkpoint_every: int = 0
    betas: tuple[float, float] = (0.9, 0.999)
    amp: str | None = None

    def __post_init__(self) -> None:
        def integer(name: str, low: int) -> None:
            setattr(self, name, validate.integer(f"TrainConfig.{name}", getattr(self, name), low=low))

        def number(name: str, low: float, high: float | None = None, low_open: bool = True,
                   high_open: bool = True, optional: bool = False) -> None:
            value = getattr(self, name)
            if value is None and optional:
                return
            setattr(self, name, validate.finite_float(f"TrainConfig.{name}", value, low=low, high=high,
                                                      low_open=low_open, high_open=high_open))

        integer("steps", 1)
        integer("batch_size", 1)
        number("lr", 0.0)
        number("weight_decay", 0.0, low_open=False)
        integer("warmup_steps", 0)
        if self.warmup_steps > self.steps:
            raise ValueError(f"TrainConfig.warmup_steps must be <= steps={self.steps}, got {self.warmup_steps}")
        number("grad_clip", 0.0, optional=True)
        number("ema_decay", 0.0, 1.0, low_open=False, optional=True)
        number("ema_power", 0.0, optional=True)
        integer("seed", 0)
        if not isinstance(self.device, (str, torch.device)):
            raise ValueError(f"TrainConfig.device must be 'auto' or a torch device string, got {self.device!r}")
        integer("log_every", 1)
        self.progress = validate.boolean("TrainConfig.progress", self.progress)
        if self.checkpoint_path is not None and not isinstance(self.checkpoint_path, (str, os.PathLike)):
            raise ValueError(f"TrainConfig.checkpoint_path must be a path or None, got {self.checkpoint_path!r}")
        integer("checkpoint_every", 0)
        betas = self.betas
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"TrainConfig.betas must be two numbers in [0, 1), got {betas!r}")
        self.betas = tuple(validate.finite_float(f"TrainConfig.betas[{i}]", b, low=0.0, high=1.0, high_open=True)
                           for i, b in enumerate(betas))
        validate.choice("TrainConfig.amp", self.amp, AMP_MODES)


@dataclass
class TrainResult:
    """What :func:`train` returns.

    ``losses`` (steps,) float array of every step's loss (including steps done before a resume);
    ``model`` the trained model (the same object that was passed in); ``ema_model`` a separate copy
    holding the moving average of the weights (``None`` without EMA); ``step`` the number of
    optimiser steps done; ``seconds`` the wall time of this call; ``total_seconds`` that of the
    whole run, across resumptions.
    """

    losses: np.ndarray
    model: nn.Module
    ema_model: nn.Module | None
    step: int
    seconds: float = 0.0
    config: dict = field(default_factory=dict)
    total_seconds: float = 0.0

    @property
    def eval_model(self) -> nn.Module:
        """The model to evaluate or sample from: the EMA when there is one, else the raw model."""
        return self.ema_model if self.ema_model is not None else self.model


# ---------------------------------------------------------------------------------------------
# learning-rate schedule and EMA
# ---------------------------------------------------------------------------------------------
def warmup_cosine(step: int, warmup: int, total: int) -> float:
    """The learning-rate multiplier at ``step``: linear warmup, then half a cosine down to 0.

    .. math::

        \\lambda(s) = \\begin{cases} s / w & s < w \\\\
        \\tfrac12\\big(1 + \\cos(\\pi\\, \\frac{s - w}{n - w})\\big) & w \\le s \\le n \\end{cases}

    with :math:`w` = ``warmup`` and :math:`n` = ``total`` (the schedule of diffusers'
    ``get_cosine_schedule_with_warmup``, used by Diffusion Policy). So :math:`\\lambda(0) = 0`
    when there is a warmup, :math:`\\lambda(w) = 1`, :math:`\\lambda(n) = 0`; past ``total`` it stays 0.

    Introduced in chapter 3.
    """
    step = validate.non_negative_int("step", step)
    total = validate.positive_int("total", total)
    warmup = validate.integer("warmup", warmup, low=0, high=total)  # at most total
    if step < warmup:
        return step / warmup
    if step >= total:
        return 0.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


class EMA:
    """An exponential moving average of a model's weights, :math:`\\bar\\theta \\leftarrow d_k \\bar\\theta + (1-d_k)\\theta`.

    Parameters
    ----------
    model:
        The model being trained; a deep copy (``.model``, in eval mode, without gradients) holds
        the average, starting at the model's current weights.
    decay:
        :math:`d \\in [0, 1)`, the constant decay, or the ceiling of the warmup below.
    power:
        ``None`` for a constant decay :math:`d_k = d`. A number :math:`p` gives Diffusion
        Policy's warmup :math:`d_k = \\min(d, 1 - (1 + k)^{-p})` for the :math:`k`-th update
        (:math:`k = 0, 1, \\dots`), so the first update copies the weights and early noisy weights
        are forgotten fast.

    Floating-point parameters and buffers are averaged; integer buffers are copied.

    Introduced in chapter 3.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, power: float | None = None):
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.decay = validate.finite_float("decay", decay, low=0.0, high=1.0, high_open=True)
        self.power = None if power is None else validate.positive_float("power", power)
        self.num_updates = 0
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    def decay_at(self, k: int) -> float:
        """:math:`d_k`, the decay used by the ``k``-th update (k = 0, 1, ...)."""
        if self.power is None:
            return self.decay
        return min(self.decay, 1.0 - (1.0 + k) ** (-self.power))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average one step towards ``model``'s current weights."""
        d = self.decay_at(self.num_updates)
        avg = self.model.state_dict()
        targets, sources = [], []
        for name, value in model.state_dict().items():
            target = avg[name]
            if target.is_floating_point():
                targets.append(target)
                sources.append(value.detach().to(target.dtype))
            else:
                target.copy_(value)
        if targets:  # avg <- d * avg + (1 - d) * value, all tensors at once
            torch._foreach_lerp_(targets, sources, 1.0 - d)
        self.num_updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "num_updates": self.num_updates,
                "decay": self.decay, "power": self.power}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.num_updates = int(state["num_updates"])


def select_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; anything else is passed to :class:`torch.device`."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'auto' or a torch device string, got {device!r}") from exc


# ---------------------------------------------------------------------------------------------
# batches
# ---------------------------------------------------------------------------------------------
class _Batches:
    """Draws minibatches from ``data``; shuffles without replacement, epoch by epoch.

    Tensors (and tuples of tensors) are moved to ``device`` once, and each epoch's permutation too
    (drawn on the CPU, so the order is the same on every device): a batch is then an index on the
    device, with no host-to-device copy per step. Its whole state (generator, permutation,
    position) goes into checkpoints.
    """

    def __init__(self, data: Any, batch_size: int, seed: int, device: torch.device | None = None,
                 shard: tuple[int, int] | None = None):
        self.generator = torch.Generator().manual_seed(int(seed))
        self.batch_size = batch_size
        # data-parallel: (rank, world); every rank draws the same global batch and keeps its slice
        self.shard = None if shard is None else (batch_size // shard[1] * shard[0],
                                                 batch_size // shard[1] * (shard[0] + 1))
        self.device = device
        self.perm: torch.Tensor | None = None
        self._perm_on_device: torch.Tensor | None = None
        self.pos = 0
        if isinstance(data, torch.Tensor):
            if data.ndim < 1 or data.shape[0] < 1:
                raise ValueError(f"data must have a non-empty first (batch) dimension, got shape {tuple(data.shape)}")
            self.kind, self.n = "tensors", data.shape[0]
            self.data = (data if device is None else data.to(device),)
        elif isinstance(data, (tuple, list)) and data and all(isinstance(d, torch.Tensor) for d in data):
            sizes = {d.shape[0] if d.ndim else -1 for d in data}
            if len(sizes) != 1 or -1 in sizes or 0 in sizes:
                raise ValueError("data tensors must share a non-empty first (batch) dimension, "
                                 f"got shapes {[tuple(d.shape) for d in data]}")
            self.kind, self.n = "tuple", sizes.pop()
            self.data = tuple(data if device is None else tuple(d.to(device) for d in data))
        elif hasattr(data, "__getitem__") and hasattr(data, "__len__"):
            if len(data) < 1:
                raise ValueError("data must not be an empty dataset")
            self.kind, self.n, self.data = "dataset", len(data), data
        elif callable(data):
            self.kind, self.n, self.data = "callable", 0, data
        else:
            raise ValueError("data must be a tensor, a tuple of tensors, a map-style Dataset or a "
                             f"callable data(batch_size, generator), got {type(data).__name__}")

    def _indices(self) -> torch.Tensor:
        out = []
        need = self.batch_size
        while need:
            if self.perm is None or self.pos >= self.n:
                self.perm = torch.randperm(self.n, generator=self.generator)
                self._perm_on_device = None
                self.pos = 0
            if self._perm_on_device is None:
                self._perm_on_device = (self.perm if self.device is None
                                        else self.perm.to(self.device, non_blocking=True))
            take = self._perm_on_device[self.pos:self.pos + need]
            self.pos += take.shape[0]
            need -= take.shape[0]
            out.append(take)
        return out[0] if len(out) == 1 else torch.cat(out)

    def next(self) -> Any:
        if self.kind == "callable":
            batch = self.data(self.batch_size, self.generator)
            return batch if self.shard is None else _rows(batch, *self.shard)
        idx = self._indices()
        if self.shard is not None:
            idx = idx[self.shard[0]:self.shard[1]]
        if self.kind == "tensors":
            return self.data[0][idx]
        if self.kind == "tuple":
            return tuple(d[idx] for d in self.data)
        from torch.utils.data import default_collate

        return default_collate([self.data[int(i)] for i in idx.tolist()])

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "perm": self.perm, "pos": self.pos}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.perm, self.pos = state["perm"], int(state["pos"])
        self._perm_on_device = None


def _rows(batch: Any, lo: int, hi: int) -> Any:
    """Rows ``lo:hi`` of a batch (a tensor, or a tuple, list or mapping of them)."""
    if isinstance(batch, torch.Tensor):
        return batch[lo:hi]
    if isinstance(batch, Mapping):
        return {k: _rows(v, lo, hi) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(_rows(v, lo, hi) for v in batch)
    return batch


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


# ---------------------------------------------------------------------------------------------
# random states and checkpoints
# ---------------------------------------------------------------------------------------------
def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to ``path`` atomically (see :mod:`dplearn.atomic`)."""
    torch_save_atomic(obj, path)


def _config_dict(config: TrainConfig) -> dict[str, Any]:
    out = asdict(config)
    out["checkpoint_path"] = None if config.checkpoint_path is None else str(config.checkpoint_path)
    out["device"] = str(config.device)
    return out


def resolve_amp(amp: str | None, device: torch.device) -> str | None:
    """The mixed precision a run uses: ``None`` (float32), ``"bf16"`` or ``"fp16"``.

    ``"auto"`` picks bf16 on CUDA GPUs with fast bfloat16 (compute capability 8.0 or newer), fp16
    (with a gradient scaler) on older CUDA GPUs such as Colab's T4, and float32 elsewhere.
    """
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be one of {AMP_MODES}, got {amp!r}")
    if amp != "auto":
        return amp
    if device.type != "cuda":
        return None
    major, _ = torch.cuda.get_device_capability(device)
    return "bf16" if major >= 8 else "fp16"


def read_train_state(path: str | os.PathLike) -> dict[str, Any]:
    """Load a training-state file written by :func:`train` (``weights_only``), checking its format.

    An empty, truncated or foreign file raises ``ValueError`` naming the file.
    """
    path = Path(path)
    state = torch_load(path, "training state", map_location="cpu")
    if not isinstance(state, Mapping) or state.get("format") != TRAIN_STATE_FORMAT:
        found = describe_contents(state)
        raise CheckpointError(f"{str(path)!r} is not a dplearn training state of format {TRAIN_STATE_FORMAT!r} "
                              f"(found {found})")
    missing = sorted({"model", "optimizer", "scheduler", "ema", "batches", "rng", "losses", "step", "config",
                      "identity"} - set(state))
    if missing:
        raise CheckpointError(f"{str(path)!r} is an incomplete training state: missing {missing}")
    for key in ("model", "ema"):
        weights = state[key] if key == "model" else (state["ema"] or {}).get("model", {})
        if not isinstance(weights, Mapping):
            raise CheckpointError(f"{str(path)!r}: its {key!r} entry is not a mapping of tensors")
        bad = _nonfinite(weights)
        if bad:
            raise CheckpointError(f"{str(path)!r}: the {key!r} weights contain NaN or infinite values: {bad[:5]}")
    return dict(state)


def _nonfinite(weights: Mapping[str, Any]) -> list[str]:
    """Names of the floating-point tensors in ``weights`` holding NaN or ±inf."""
    return [k for k, v in weights.items()
            if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())]


def _check_resumable(state: Mapping[str, Any], config: TrainConfig, identity: Mapping[str, Any],
                     path: Path) -> None:
    """Refuse to resume a run with another config or other data/model identity, naming the difference."""
    saved, now = dict(state["config"]), _config_dict(config)
    diffs = [f"{k}: saved {saved.get(k)!r}, now {now.get(k)!r}" for k in sorted(set(saved) | set(now))
             if k not in _RESUMABLE_DIFFERENCES and _plain(saved.get(k)) != _plain(now.get(k))]
    if diffs:
        raise ValueError(f"cannot resume from {str(path)!r}: the training config differs ({'; '.join(diffs)})")
    saved_id = dict(state.get("identity") or {})
    diffs = [f"{k}: saved {str(saved_id.get(k))[:80]!r}, now {str(identity.get(k))[:80]!r}"
             for k in sorted(set(saved_id) | set(identity)) if _plain(saved_id.get(k)) != _plain(identity.get(k))]
    if diffs:
        raise ValueError(f"cannot resume from {str(path)!r}: it was made for another run ({'; '.join(diffs)})")


def _plain(value: Any) -> Any:
    """Tuples and lists compare equal (a config read back from a file has lists)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------------
class _LossModule(nn.Module):
    """``loss_fn(model, batch)`` as a module, so that DistributedDataParallel sees the forward pass
    (its gradient all-reduce is prepared in ``forward``; a method such as ``policy.compute_loss``
    called directly would bypass it)."""

    def __init__(self, model: nn.Module, loss_fn: Callable[[nn.Module, Any], torch.Tensor]):
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch: Any) -> torch.Tensor:
        return self.loss_fn(self.model, batch)


class _DataParallel:
    """What :func:`train` does differently in a process group of ``world`` > 1 processes."""

    def __init__(self, distributed: bool | None):
        from dplearn import distributed as dd

        info = dd.current()
        if distributed is True and info is None:
            raise ValueError("distributed=True needs an open process group of two or more processes "
                             "(start with torchrun and call dplearn.distributed.init_distributed())")
        self.info = info if distributed is not False else None

    @property
    def on(self) -> bool:
        return self.info is not None

    def setup(self, config: TrainConfig, device: torch.device) -> torch.device:
        info = self.info
        if config.batch_size % info.world_size:
            raise ValueError(f"TrainConfig.batch_size={config.batch_size} is the global batch and must be divisible "
                             f"by the number of processes ({info.world_size}): each takes an equal share")
        if info.backend == "nccl":
            if device.type != "cuda":
                raise ValueError(f"the process group uses NCCL (CUDA) but the device is {device}")
            if device.index is None:
                device = torch.device("cuda", torch.cuda.current_device())
        elif device.type == "cuda":
            raise ValueError("the process group uses gloo (CPU) but the device is CUDA: "
                             "open it with init_distributed('cuda') for GPUs")
        from dplearn.distributed import control_group

        self.group = control_group()
        return device

    def wrap(self, model: nn.Module, loss_fn: Callable[[nn.Module, Any], torch.Tensor],
             device: torch.device) -> nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(_LossModule(model, loss_fn), device_ids=ids, output_device=None
                                       if ids is None else ids[0])

    def all_gather(self, obj: Any) -> list[Any]:
        import torch.distributed as dist

        out: list[Any] = [None] * self.info.world_size
        dist.all_gather_object(out, obj, group=self.group)
        return out

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier(group=self.group)

    def any(self, flag: bool) -> bool:
        import torch.distributed as dist

        t = torch.tensor([1 if flag else 0], dtype=torch.int32)
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.group)
        return bool(t.item())

    def reduce_loss(self, loss: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """The sum of the ranks' losses (started, not awaited: no sync per step)."""
        import torch.distributed as dist

        total = loss.detach().reshape(()).to(torch.float64)
        return total, dist.all_reduce(total, op=dist.ReduceOp.SUM, async_op=True)


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW's parameter groups: ``model.optim_groups(weight_decay)`` when the model defines it (e.g.
    a transformer that decays only its weight matrices), else one group; frozen parameters left out."""
    groups = model.optim_groups(weight_decay) if callable(getattr(model, "optim_groups", None)) else [
        {"params": list(model.parameters()), "weight_decay": weight_decay}]
    seen: set[int] = set()
    out = []
    for group in groups:
        params = [q for q in group["params"] if q.requires_grad]
        if any(id(q) in seen for q in params):
            raise ValueError("optim_groups must list every parameter at most once")
        seen.update(id(q) for q in params)
        if params:
            out.append({**group, "params": params})
    missing = [q for q in model.parameters() if q.requires_grad and id(q) not in seen]
    if missing:
        raise ValueError(f"optim_groups left out {len(missing)} trainable parameter tensors")
    return out


def train(model: nn.Module, loss_fn: Callable[[nn.Module, Any], torch.Tensor], data: Any,
          config: TrainConfig, callback: Callable[[int, float], None] | None = None,
          identity: Mapping[str, Any] | None = None, stop: Callable[[], bool] | None = None,
          eval_every: int = 0, eval_fn: Callable[[int, nn.Module], Any] | None = None,
          distributed: bool | None = None) -> TrainResult:
    """Train ``model`` to minimise ``loss_fn(model, batch)`` on batches drawn from ``data``.

    Parameters
    ----------
    model:
        Any ``nn.Module``; trained in place and moved to the configured device.
    loss_fn:
        ``loss_fn(model, batch) -> scalar tensor``; ``batch`` is what ``data`` yields, on the device.
    data:
        A tensor ``(N, ...)`` (batches are rows), a tuple/list of tensors sharing ``N`` (batches
        are tuples), a map-style dataset (batches are collated), or a callable
        ``data(batch_size, generator) -> batch`` (e.g. fresh samples of a known distribution).
        Rows are shuffled without replacement, epoch after epoch, by a generator seeded with
        ``config.seed``.
    config:
        A :class:`TrainConfig`.
    callback:
        Optional ``callback(step, loss)`` called after every optimiser step (``step`` counts from 1).
    identity:
        Plain values that name what is being trained (e.g. the model's config and a fingerprint of
        the data); stored in the training state, and a resume with a different identity is refused.
    stop:
        Optional ``stop() -> bool`` asked after every step (e.g. set by a signal handler): when it
        says yes, or when ``callback`` raises ``KeyboardInterrupt``, the training state is saved (with
        ``checkpoint_path``) at that step boundary and ``KeyboardInterrupt`` is raised, so a later
        call continues exactly from there.
    eval_every, eval_fn:
        With both set, ``eval_fn(step, eval_model)`` is called every ``eval_every`` steps with the
        model to evaluate (the EMA when there is one, else the model, in eval mode meanwhile); the
        random-number states are restored afterwards, so evaluating does not change the run.
    distributed:
        ``None`` (default): data-parallel when a process group of two or more processes is open
        (``torchrun``, see :mod:`dplearn.distributed`), else one process; ``False``: one process
        even then; ``True``: require the group.

    Each step: draw a batch, compute the loss, backpropagate, clip the gradient norm, take an
    AdamW step with learning rate ``lr * warmup_cosine(step, warmup_steps, steps)``, update the EMA.
    With ``config.checkpoint_path`` set, an existing checkpoint there is loaded first (training
    continues from its step, bit-identical to a run that was never interrupted) and checkpoints
    are saved every ``checkpoint_every`` steps and at the end. The file carries a format tag, the
    config and ``identity``; resuming with another config (beyond device, logging and checkpoint
    settings) or another identity raises ``ValueError`` saying what differs.

    Tensor data is moved to the device once; with ``config.amp`` the forward pass and loss run
    under ``torch.autocast`` (bf16, or fp16 with a gradient scaler). No step reads a value back
    from the device except every ``log_every`` steps, to report the loss.

    **Data-parallel** (N processes): ``config.batch_size`` is the global batch; every process
    draws the same batch from the same seeded order and computes the loss of its ``batch_size / N``
    rows; :class:`~torch.nn.parallel.DistributedDataParallel` averages the gradients, so weights,
    optimiser and EMA stay identical on every process. The reported loss is the mean over the
    processes (the loss of the whole batch). Global random numbers (noise drawn inside ``loss_fn``)
    are seeded per process (:func:`dplearn.distributed.rank_seed`). Only rank 0 shows progress,
    calls ``eval_fn`` and writes the training state (with every process's random states in it);
    a stop asked on any process stops all of them at the same step. Every process resumes from the
    same file, so it must be visible to all of them.

    Returns a :class:`TrainResult`.

    Introduced in chapter 3 (data-parallel: chapter 9).
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise ValueError(f"loss_fn must be callable as loss_fn(model, batch), got {type(loss_fn).__name__}")
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    eval_every = validate.non_negative_int("eval_every", eval_every)
    if eval_fn is not None and not callable(eval_fn):
        raise ValueError(f"eval_fn must be callable as eval_fn(step, model), got {type(eval_fn).__name__}")
    if distributed not in (None, True, False):
        raise ValueError(f"distributed must be None, True or False, got {distributed!r}")

    if identity is not None and not isinstance(identity, Mapping):
        raise ValueError(f"identity must be a mapping of plain values or None, got {type(identity).__name__}")
    identity = dict(identity or {})
    start = time.perf_counter()
    dp = _DataParallel(distributed)
    rank, world = (dp.info.rank, dp.info.world_size) if dp.on else (0, 1)
    main = rank == 0
    device = select_device(config.device)
    if dp.on:
        device = dp.setup(config, device)
    amp = resolve_amp(config.amp, device)
    autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    if dp.on:
        from dplearn.distributed import rank_seed

        seed_everything(rank_seed(config.seed, rank))
    else:
        seed_everything(config.seed)
    batches = _Batches(data, config.batch_size, config.seed, device=device,
                       shard=(rank, world) if dp.on else None)
    model.to(device)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    # data-parallel: the wrapper broadcasts rank 0's weights, so every copy (and the EMA) starts alike
    forward = dp.wrap(model, loss_fn, device) if dp.on else None
    optimizer = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.lr,
                                  weight_decay=config.weight_decay, betas=config.betas)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16")
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine(s, config.warmup_steps, config.steps))
    ema = None if config.ema_decay is None else EMA(model, config.ema_decay, config.ema_power)
    losses: list[float] = []
    pending: list[torch.Tensor] = []  # losses still on the device: one sync per log_every steps
    works: list[Any] = []  # data-parallel: the all-reduces of the pending losses
    step = 0
    seconds_before = 0.0  # wall time of the run before a resume

    ckpt = None if config.checkpoint_path is None else Path(config.checkpoint_path)
    exists = ckpt is not None and ckpt.exists()
    if dp.on and ckpt is not None:
        seen = dp.all_gather(bool(exists))
        if len(set(seen)) > 1:
            raise ValueError(f"the training state {str(ckpt)!r} exists for processes "
                             f"{[r for r, e in enumerate(seen) if e]} only: every process must see the same file")
    if exists:
        # on the CPU: random-number states must stay CPU tensors; load_state_dict moves the rest
        state = read_train_state(ckpt)
        _check_resumable(state, config, identity, ckpt)
        model.load_state_dict(state["model"])
        if state.get("scaler") is not None:
            scaler.load_state_dict(state["scaler"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if ema is not None:
            if state.get("ema") is None:
                raise ValueError(f"the checkpoint {ckpt} has no EMA but config.ema_decay is set")
            ema.load_state_dict(state["ema"])
        batches.load_state_dict(state["batches"])
        losses = [float(x) for x in state["losses"].tolist()]
        step = int(state["step"])
        seconds_before = float(state.get("seconds", 0.0))
        saved_world = int(state.get("world_size", 1))
        rank_states = state.get("rng_ranks") or [state["rng"]]
        if saved_world == world and len(rank_states) == world:
            _set_rng_state(rank_states[rank])
        else:
            if main:
                import warnings

                warnings.warn(f"{str(ckpt)!r} was saved by {saved_world} process(es) and is resumed by {world}: "
                              "training continues from the same weights, optimiser and batch order, but noise "
                              "drawn inside the loss differs from an uninterrupted run", stacklevel=2)
            if rank < len(rank_states):
                _set_rng_state(rank_states[rank])
            else:
                from dplearn.distributed import rank_seed

                seed_everything(rank_seed(config.seed, rank, step))

    def flush() -> None:
        if pending:
            if works:
                for work in works:
                    work.wait()
                works.clear()
                losses.extend((torch.stack(pending).cpu() / world).tolist())
            else:
                losses.extend(torch.stack(pending).double().cpu().tolist())
            pending.clear()

    def save() -> None:
        """Write the training state (data-parallel: a collective call; rank 0 writes)."""
        assert ckpt is not None
        flush()
        rngs = dp.all_gather(_rng_state()) if dp.on else None
        if main:
            _write_state(rngs)
        if dp.on:  # the file is complete on every process's return
            dp.barrier()

    def _write_state(rngs: list[Any] | None) -> None:
        _save_atomic({
            "format": TRAIN_STATE_FORMAT,
            "identity": identity,
            "scaler": scaler.state_dict() if scaler.is_enabled() else None,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "ema": None if ema is None else ema.state_dict(),
            "batches": batches.state_dict(),
            "rng": _rng_state() if rngs is None else rngs[0],
            "losses": torch.tensor(losses, dtype=torch.float64),
            "step": step,
            "seconds": seconds_before + time.perf_counter() - start,
            "config": _config_dict(config),
            **({"world_size": world, "rng_ranks": rngs} if rngs is not None else {}),
        }, ckpt)

    def run_eval() -> None:
        assert eval_fn is not None
        flush()
        target = model if ema is None else ema.model
        was_training = target.training
        rng = _rng_state()
        target.eval()
        try:
            eval_fn(step, target)
        finally:
            target.train(was_training)
            _set_rng_state(rng)

    bar = None
    if config.progress and step < config.steps and main:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.steps, initial=step, desc="train", dynamic_ncols=True, leave=True)
    # subnormal floats slow CPU arithmetic by up to 100x (dplearn.compute); flush them while training
    with flushed_denormals(device.type == "cpu"):
        try:
            while step < config.steps:
                batch = _to_device(batches.next(), device)
                with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                    loss = loss_fn(model, batch) if forward is None else forward(batch)
                if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                    raise ValueError("loss_fn must return a scalar tensor, got "
                                     f"{type(loss).__name__}{tuple(loss.shape) if isinstance(loss, torch.Tensor) else ''}")
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if config.grad_clip is not None:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                if ema is not None:
                    ema.update(model)
                step += 1
                if dp.on:
                    total, work = dp.reduce_loss(loss)
                    pending.append(total)
                    works.append(work)
                else:
                    pending.append(loss.detach().reshape(()))
                if step % config.log_every == 0 or step == config.steps:
                    flush()
                    if bar is not None:
                        recent = losses[-config.log_every:]
                        bar.set_postfix(loss=f"{sum(recent) / len(recent):.4f}", refresh=False)
                if bar is not None:
                    bar.update(1)
                if ckpt is not None and config.checkpoint_every and step % config.checkpoint_every == 0:
                    save()
                if eval_fn is not None and eval_every and step % eval_every == 0 and main:
                    run_eval()
                if not dp.on:
                    try:  # a step boundary: the state is consistent, so an interruption here can be saved
                        if callback is not None:
                            flush()
                            callback(step, losses[-1])
                        if stop is not None and stop():
                            raise KeyboardInterrupt(f"stopped at step {step} of {config.steps}")
                    except KeyboardInterrupt:
                        if ckpt is not None:
                            save()
                        raise
                    continue
                # data-parallel: a stop asked on any process stops all of them at this same step
                asked = False
                try:
                    if callback is not None:
                        flush()
                        callback(step, losses[-1])
                    asked = stop is not None and bool(stop())
                except KeyboardInterrupt:
                    asked = True
                if dp.any(asked):
                    if ckpt is not None:
                        save()
                    raise KeyboardInterrupt(f"stopped at step {step} of {config.steps}")
        finally:
            if not dp.on or not works:
                flush()
            if bar is not None:
                bar.close()
    if ckpt is not None and (not config.checkpoint_every or step % config.checkpoint_every):
        save()
    flush()
    model.eval()
    return TrainResult(losses=np.asarray(losses, dtype=np.float64), model=model,
                       ema_model=None if ema is None else ema.model, step=step,
                       seconds=time.perf_counter() - start, config=_config_dict(config),
                       total_seconds=seconds_before + time.perf_counter() - start)


def load_checkpoint_model(model: nn.Module, path: str | os.PathLike, ema: bool = True) -> nn.Module:
    """Load the (EMA, when ``ema`` and present) weights of a :func:`train` checkpoint into ``model``.

    Returns ``model`` in eval mode.

    Introduced in chapter 3.
    """
    state = read_train_state(path)
    weights = state["ema"]["model"] if ema and state.get("ema") is not None else state["model"]
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:  # missing, unexpected or misshapen tensors
        first = str(exc).splitlines()[0]
        raise CheckpointError(f"{str(path)!r}: its weights do not fit the model ({first})") from None
    return model.eval()
