"""Min-max normalisation of observations and actions to [-1, 1], per dimension.

Introduced in chapter 5.

Fitted on data x of shape (..., D) (all leading axes are pooled), each dimension d is mapped by the
affine map

    normalize(x)_d   = scale_d * x_d + offset_d,      scale_d = 2 / (max_d - min_d),
    unnormalize(y)_d = (y_d - offset_d) / scale_d,    offset_d = -1 - scale_d * min_d,

so that min_d -> -1 and max_d -> +1. A (nearly) constant dimension, whose range is below
``range_eps``, gets scale 1 and is shifted so that its value maps to 0 (the benchmark's choice);
the map stays invertible. Diffusion samples are clipped to [-1, 1], which is why actions are
normalised to exactly that box.

Works on NumPy arrays and torch tensors: the output has the input's type, dtype and device.
A :class:`Normalizer` is an ``nn.Module`` whose numbers are buffers, so a policy that holds its
normalisers carries them along with ``policy.to(device)`` and normalises on the device, with no
copies in the hot path.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from dplearn import validate

Array = np.ndarray | torch.Tensor


def _as_float64(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 1:
        raise ValueError(f"{name} must have at least one axis (..., D), got a scalar")
    return x


class Normalizer(nn.Module):
    """Per-dimension affine map of data in [min, max] onto [-1, 1] (see the module docstring).

    Build with :meth:`fit` (from data) or :meth:`from_state_dict` (from a checkpoint).

    Parameters
    ----------
    data_min, data_max : (D,) arrays
        The per-dimension range the map sends to [-1, 1].
    range_eps : float
        Dimensions with ``max - min < range_eps`` are treated as constant.

    Buffers: ``data_min``, ``data_max``, ``range_eps`` (float64, saved in ``state_dict``) and the
    derived ``scale``, ``offset`` (float64 and float32 copies, not saved).

    Introduced in chapter 5.
    """

    def __init__(self, data_min: Any, data_max: Any, range_eps: float = 1e-4):
        super().__init__()
        data_min = _as_float64(data_min, "data_min").reshape(-1)
        data_max = _as_float64(data_max, "data_max").reshape(-1)
        if data_min.shape != data_max.shape:
            raise ValueError(
                f"data_min and data_max must have the same shape (D,), got {data_min.shape} and "
                f"{data_max.shape}"
            )
        if not (np.all(np.isfinite(data_min)) and np.all(np.isfinite(data_max))):
            raise ValueError("data_min and data_max must be finite")
        if np.any(data_max < data_min):
            raise ValueError("data_max must be >= data_min in every dimension")
        range_eps = validate.finite_float("range_eps", range_eps, low=0.0)
        self.register_buffer("data_min", torch.from_numpy(data_min.copy()))
        self.register_buffer("data_max", torch.from_numpy(data_max.copy()))
        self.register_buffer("range_eps", torch.tensor(range_eps, dtype=torch.float64))
        self._derive()

    def _derive(self) -> None:
        """(Re)compute scale and offset from ``data_min``, ``data_max`` and ``range_eps``."""
        data_min = self.data_min.detach().cpu().double().numpy()
        data_max = self.data_max.detach().cpu().double().numpy()
        data_range = data_max - data_min
        constant = data_range < float(self.range_eps)
        scale = np.where(constant, 1.0, 2.0 / np.where(constant, 1.0, data_range))
        offset = np.where(constant, -data_min, -1.0 - scale * data_min)
        self._np = {"scale": scale, "offset": offset, "constant": constant}
        device = self.data_min.device
        for name, value in (("scale", scale), ("offset", offset)):
            t = torch.from_numpy(value.copy()).to(device)
            self.register_buffer(name, t, persistent=False)
            self.register_buffer(f"{name}32", t.float(), persistent=False)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # loading new ranges into an existing normaliser (e.g. a policy's load_state_dict) must
        # also update the map they define
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._derive()

    # ---- construction --------------------------------------------------------------------------
    @classmethod
    def fit(cls, data: Any, range_eps: float = 1e-4) -> Normalizer:
        """Fit on ``data`` of shape (..., D): the range of each last-axis dimension over all others."""
        x = _as_float64(data, "data")
        if x.size == 0:
            raise ValueError("data must not be empty")
        if not np.all(np.isfinite(x)):
            raise ValueError("data must be finite (no NaN or inf)")
        flat = x.reshape(-1, x.shape[-1])
        return cls(flat.min(axis=0), flat.max(axis=0), range_eps=range_eps)

    @property
    def dim(self) -> int:
        """D, the number of dimensions."""
        return int(self.data_min.shape[0])

    @property
    def constant(self) -> np.ndarray:
        """(D,) bool: which dimensions were constant in the data (mapped to 0)."""
        return self._np["constant"]

    # ---- the map -------------------------------------------------------------------------------
    def _params(self, x: Array) -> tuple[Array, Array]:
        if x.shape[-1] != self.dim:
            raise ValueError(f"x must have last dimension D={self.dim}, got shape {tuple(x.shape)}")
        if isinstance(x, torch.Tensor):
            scale, offset = (self.scale32, self.offset32) if x.dtype == torch.float32 else (self.scale, self.offset)
            if scale.device != x.device or scale.dtype != x.dtype:
                scale, offset = scale.to(x.device, x.dtype), offset.to(x.device, x.dtype)
            return scale, offset
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
        return self._np["scale"].astype(dtype), self._np["offset"].astype(dtype)

    @staticmethod
    def _prepare(x: Any) -> Array:
        if isinstance(x, torch.Tensor):
            return x if x.is_floating_point() else x.float()
        return np.asarray(x)

    def normalize(self, x: Any) -> Array:
        """y = scale * x + offset, shape (..., D); data in [min, max] lands in [-1, 1]."""
        x = self._prepare(x)
        scale, offset = self._params(x)
        return x * scale + offset

    def unnormalize(self, y: Any) -> Array:
        """x = (y - offset) / scale, shape (..., D); the inverse of :meth:`normalize`."""
        y = self._prepare(y)
        scale, offset = self._params(y)
        return (y - offset) / scale

    def forward(self, x: Any) -> Array:
        """``normalizer(x)`` is :meth:`normalize`."""
        return self.normalize(x)

    # ---- checkpoints ---------------------------------------------------------------------------
    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Normalizer:
        """Rebuild a normaliser from its ``state_dict()`` (``data_min``, ``data_max``, ``range_eps``)."""
        if not hasattr(state, "keys"):
            raise ValueError(f"state must be a mapping with data_min and data_max, got {type(state).__name__}")
        missing = {"data_min", "data_max"} - set(state)
        if missing:
            raise ValueError(f"state must have keys data_min and data_max; missing {sorted(missing)}")
        eps = state.get("range_eps", 1e-4)
        eps = float(eps.item() if hasattr(eps, "item") else eps)
        return cls(state["data_min"], state["data_max"], range_eps=eps)

    def extra_repr(self) -> str:
        lo = np.array2string(self.data_min.cpu().numpy(), precision=3, separator=", ")
        hi = np.array2string(self.data_max.cpu().numpy(), precision=3, separator=", ")
        return f"dim={self.dim}, min={lo}, max={hi}"
