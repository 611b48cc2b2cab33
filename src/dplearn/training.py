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

from dplearn.atomic import torch_save_atomic
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
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"TrainConfig.{name} must be an integer >= {low}, got {value!r}")
            setattr(self, name, int(value))

        def number(name: str, low: float, high: float = math.inf, low_open: bool = True,
                   high_open: bool = True, optional: bool = False) -> None:
            value = getattr(self, name)
            if value is None and optional:
                return
            ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
            if ok:
                v = float(value)
                ok = math.isfinite(v) and (v > low if low_open else v >= low) and (
                    v < high if high_open else v <= high)
            if not ok:
                lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
                none = " or None" if optional else ""
                raise ValueError(f"TrainConfig.{name} must be a number in {lo}{low}, {high}{hi}{none}, "
                                 f"got {value!r}")
            setattr(self, name, float(value))

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
        if not isinstance(self.progress, bool):
            raise ValueError(f"TrainConfig.progress must be True or False, got {self.progress!r}")
        if self.checkpoint_path is not None and not isinstance(self.checkpoint_path, (str, os.PathLike)):
            raise ValueError(f"TrainConfig.checkpoint_path must be a path or None, got {self.checkpoint_path!r}")
        integer("checkpoint_every", 0)
        betas = self.betas
        if (not isinstance(betas, (tuple, list)) or len(betas) != 2
                or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0.0 <= b < 1.0
                           and math.isfinite(b) for b in betas)):
            raise ValueError(f"TrainConfig.betas must be two numbers in [0, 1), got {betas!r}")
        self.betas = (float(betas[0]), float(betas[1]))
        if self.amp not in AMP_MODES:
            raise ValueError(f"TrainConfig.amp must be one of {AMP_MODES}, got {self.amp!r}")


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
    for name, value in (("step", step), ("warmup", warmup), ("total", total)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if total < 1:
        raise ValueError(f"total must be >= 1, got {total}")
    if warmup > total:
        raise ValueError(f"warmup must be <= total={total}, got {warmup}")
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
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not (0.0 <= decay < 1.0):
            raise ValueError(f"decay must be a number in [0, 1), got {decay!r}")
        if power is not None and (isinstance(power, bool) or not isinstance(power, (int, float))
                                  or not power > 0):
            raise ValueError(f"power must be a positive number or None, got {power!r}")
        self.decay = float(decay)
        self.power = None if power is None else float(power)
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

    def __init__(self, data: Any, batch_size: int, seed: int, device: torch.device | None = None):
        self.generator = torch.Generator().manual_seed(int(seed))
        self.batch_size = batch_size
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
            return self.data(self.batch_size, self.generator)
        idx = self._indices()
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
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # EOFError, RuntimeError (zip archive), UnpicklingError, ...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{str(path)!r} is not a readable dplearn training state "
                         f"({type(exc).__name__}: {reason[:200]})") from None
    if not isinstance(state, Mapping) or state.get("format") != TRAIN_STATE_FORMAT:
        found = state.get("format") if isinstance(state, Mapping) else type(state).__name__
        raise ValueError(f"{str(path)!r} is not a dplearn training state of format {TRAIN_STATE_FORMAT!r} "
                         f"(found {found!r})")
    missing = sorted({"model", "optimizer", "scheduler", "ema", "batches", "rng", "losses", "step", "config",
                      "identity"} - set(state))
    if missing:
        raise ValueError(f"{str(path)!r} is an incomplete training state: missing {missing}")
    return dict(state)


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
def train(model: nn.Module, loss_fn: Callable[[nn.Module, Any], torch.Tensor], data: Any,
          config: TrainConfig, callback: Callable[[int, float], None] | None = None,
          identity: Mapping[str, Any] | None = None, stop: Callable[[], bool] | None = None) -> TrainResult:
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

    Returns a :class:`TrainResult`.

    Introduced in chapter 3.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise ValueError(f"loss_fn must be callable as loss_fn(model, batch), got {type(loss_fn).__name__}")
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")

    if identity is not None and not isinstance(identity, Mapping):
        raise ValueError(f"identity must be a mapping of plain values or None, got {type(identity).__name__}")
    identity = dict(identity or {})
    start = time.perf_counter()
    device = select_device(config.device)
    amp = resolve_amp(config.amp, device)
    autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    seed_everything(config.seed)
    batches = _Batches(data, config.batch_size, config.seed, device=device)
    model.to(device)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, betas=config.betas)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16")
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine(s, config.warmup_steps, config.steps))
    ema = None if config.ema_decay is None else EMA(model, config.ema_decay, config.ema_power)
    losses: list[float] = []
    pending: list[torch.Tensor] = []  # losses still on the device: one sync per log_every steps
    step = 0
    seconds_before = 0.0  # wall time of the run before a resume

    ckpt = None if config.checkpoint_path is None else Path(config.checkpoint_path)
    if ckpt is not None and ckpt.exists():
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
        _set_rng_state(state["rng"])
        losses = [float(x) for x in state["losses"].tolist()]
        step = int(state["step"])
        seconds_before = float(state.get("seconds", 0.0))

    def flush() -> None:
        if pending:
            losses.extend(torch.stack(pending).double().cpu().tolist())
            pending.clear()

    def save() -> None:
        assert ckpt is not None
        flush()
        _save_atomic({
            "format": TRAIN_STATE_FORMAT,
            "identity": identity,
            "scaler": scaler.state_dict() if scaler.is_enabled() else None,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "ema": None if ema is None else ema.state_dict(),
            "batches": batches.state_dict(),
            "rng": _rng_state(),
            "losses": torch.tensor(losses, dtype=torch.float64),
            "step": step,
            "seconds": seconds_before + time.perf_counter() - start,
            "config": _config_dict(config),
        }, ckpt)

    bar = None
    if config.progress and step < config.steps:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.steps, initial=step, desc="train", dynamic_ncols=True, leave=True)
    try:
        while step < config.steps:
            batch = _to_device(batches.next(), device)
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                loss = loss_fn(model, batch)
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
    finally:
        flush()
        if bar is not None:
            bar.close()
    if ckpt is not None and (not config.checkpoint_every or step % config.checkpoint_every):
        save()
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
    model.load_state_dict(weights)
    return model.eval()
