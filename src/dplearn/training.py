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
           "load_checkpoint_model"]


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


@dataclass
class TrainResult:
    """What :func:`train` returns.

    ``losses`` (steps,) float array of every step's loss (including steps done before a resume);
    ``model`` the trained model (the same object that was passed in); ``ema_model`` a separate copy
    holding the moving average of the weights (``None`` without EMA); ``step`` the number of
    optimiser steps done; ``seconds`` the wall time of this call.
    """

    losses: np.ndarray
    model: nn.Module
    ema_model: nn.Module | None
    step: int
    seconds: float = 0.0
    config: dict = field(default_factory=dict)

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

    Its whole state (generator, permutation, position) goes into checkpoints.
    """

    def __init__(self, data: Any, batch_size: int, seed: int):
        self.generator = torch.Generator().manual_seed(int(seed))
        self.batch_size = batch_size
        self.perm: torch.Tensor | None = None
        self.pos = 0
        if isinstance(data, torch.Tensor):
            if data.ndim < 1 or data.shape[0] < 1:
                raise ValueError(f"data must have a non-empty first (batch) dimension, got shape {tuple(data.shape)}")
            self.kind, self.n = "tensors", data.shape[0]
            self.data = (data,)
        elif isinstance(data, (tuple, list)) and data and all(isinstance(d, torch.Tensor) for d in data):
            sizes = {d.shape[0] if d.ndim else -1 for d in data}
            if len(sizes) != 1 or -1 in sizes or 0 in sizes:
                raise ValueError("data tensors must share a non-empty first (batch) dimension, "
                                 f"got shapes {[tuple(d.shape) for d in data]}")
            self.kind, self.n = "tuple", sizes.pop()
            self.data = tuple(data)
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
                self.pos = 0
            take = self.perm[self.pos:self.pos + need]
            self.pos += take.shape[0]
            need -= take.shape[0]
            out.append(take)
        return torch.cat(out)

    def next(self) -> Any:
        if self.kind == "callable":
            return self.data(self.batch_size, self.generator)
        idx = self._indices()
        if self.kind == "tensors":
            return self.data[0][idx]
        if self.kind == "tuple":
            return tuple(d[idx] for d in self.data)
        from torch.utils.data import default_collate

        return default_collate([self.data[int(i)] for i in idx])

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "perm": self.perm, "pos": self.pos}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.perm, self.pos = state["perm"], int(state["pos"])


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


# ---------------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------------
def train(model: nn.Module, loss_fn: Callable[[nn.Module, Any], torch.Tensor], data: Any,
          config: TrainConfig, callback: Callable[[int, float], None] | None = None) -> TrainResult:
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

    Each step: draw a batch, compute the loss, backpropagate, clip the gradient norm, take an
    AdamW step with learning rate ``lr * warmup_cosine(step, warmup_steps, steps)``, update the EMA.
    With ``config.checkpoint_path`` set, an existing checkpoint there is loaded first (training
    continues from its step, bit-identical to a run that was never interrupted) and checkpoints
    are saved every ``checkpoint_every`` steps and at the end.

    Returns a :class:`TrainResult`.

    Introduced in chapter 3.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise ValueError(f"loss_fn must be callable as loss_fn(model, batch), got {type(loss_fn).__name__}")
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")

    start = time.perf_counter()
    device = select_device(config.device)
    seed_everything(config.seed)
    batches = _Batches(data, config.batch_size, config.seed)
    model.to(device)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine(s, config.warmup_steps, config.steps))
    ema = None if config.ema_decay is None else EMA(model, config.ema_decay, config.ema_power)
    losses: list[float] = []
    pending: list[torch.Tensor] = []  # losses still on the device: one sync per log_every steps
    step = 0

    ckpt = None if config.checkpoint_path is None else Path(config.checkpoint_path)
    if ckpt is not None and ckpt.exists():
        # on the CPU: random-number states must stay CPU tensors; load_state_dict moves the rest
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        if state["config"]["steps"] != config.steps:
            raise ValueError(f"config.steps={config.steps} differs from the checkpoint's "
                             f"{state['config']['steps']} ({ckpt}); the learning-rate schedule would change")
        model.load_state_dict(state["model"])
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

    def flush() -> None:
        if pending:
            losses.extend(torch.stack(pending).double().cpu().tolist())
            pending.clear()

    def save() -> None:
        assert ckpt is not None
        flush()
        _save_atomic({
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "ema": None if ema is None else ema.state_dict(),
            "batches": batches.state_dict(),
            "rng": _rng_state(),
            "losses": torch.tensor(losses, dtype=torch.float64),
            "step": step,
            "config": _config_dict(config),
        }, ckpt)

    bar = None
    if config.progress and step < config.steps:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.steps, initial=step, desc="train", dynamic_ncols=True, leave=True)
    try:
        while step < config.steps:
            batch = _to_device(batches.next(), device)
            loss = loss_fn(model, batch)
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                raise ValueError("loss_fn must return a scalar tensor, got "
                                 f"{type(loss).__name__}{tuple(loss.shape) if isinstance(loss, torch.Tensor) else ''}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
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
            if callback is not None:
                flush()
                callback(step, losses[-1])
    finally:
        flush()
        if bar is not None:
            bar.close()
    if ckpt is not None and (not config.checkpoint_every or step % config.checkpoint_every):
        save()
    model.eval()
    return TrainResult(losses=np.asarray(losses, dtype=np.float64), model=model,
                       ema_model=None if ema is None else ema.model, step=step,
                       seconds=time.perf_counter() - start, config=_config_dict(config))


def load_checkpoint_model(model: nn.Module, path: str | os.PathLike, ema: bool = True) -> nn.Module:
    """Load the (EMA, when ``ema`` and present) weights of a :func:`train` checkpoint into ``model``.

    Returns ``model`` in eval mode.

    Introduced in chapter 3.
    """
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    weights = state["ema"]["model"] if ema and state.get("ema") is not None else state["model"]
    model.load_state_dict(weights)
    return model.eval()
