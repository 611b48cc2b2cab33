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
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

Array = np.ndarray | torch.Tensor


def _as_float64(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 1:
        raise ValueError(f"{name} must have at least one axis (..., D), got a scalar")
    return x


class Normalizer:
    """Per-dimension affine map of data in [min, max] onto [-1, 1] (see the module docstring).

    Build with :meth:`fit` (from data) or :meth:`from_state_dict` (from a checkpoint).

    Parameters
    ----------
    data_min, data_max : (D,) arrays
        The per-dimension range the map sends to [-1, 1].
    range_eps : float
        Dimensions with ``max - min < range_eps`` are treated as constant.

    Introduced in chapter 5.
    """

    def __init__(self, data_min: Any, data_max: Any, range_eps: float = 1e-4):
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
        if not range_eps >= 0:
            raise ValueError(f"range_eps must be a non-negative number, got {range_eps!r}")
        self.data_min = data_min
        self.data_max = data_max
        self.range_eps = float(range_eps)
        data_range = data_max - data_min
        self.constant = data_range < self.range_eps
        self.scale = np.where(self.constant, 1.0, 2.0 / np.where(self.constant, 1.0, data_range))
        self.offset = np.where(self.constant, -data_min, -1.0 - self.scale * data_min)

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

    # ---- the map -------------------------------------------------------------------------------
    def _params(self, x: Array) -> tuple[Array, Array]:
        if x.shape[-1] != self.dim:
            raise ValueError(f"x must have last dimension D={self.dim}, got shape {tuple(x.shape)}")
        if isinstance(x, torch.Tensor):
            dtype = x.dtype if x.is_floating_point() else torch.float32
            return (torch.as_tensor(self.scale, dtype=dtype, device=x.device),
                    torch.as_tensor(self.offset, dtype=dtype, device=x.device))
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
        return self.scale.astype(dtype), self.offset.astype(dtype)

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

    __call__ = normalize

    # ---- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors that :meth:`from_state_dict` turns back into the same normaliser (float64)."""
        return {
            "data_min": torch.as_tensor(self.data_min, dtype=torch.float64),
            "data_max": torch.as_tensor(self.data_max, dtype=torch.float64),
            "range_eps": torch.tensor(self.range_eps, dtype=torch.float64),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Normalizer:
        """Rebuild a normaliser from :meth:`state_dict` output."""
        missing = {"data_min", "data_max"} - set(state)
        if missing:
            raise ValueError(f"state must have keys data_min and data_max; missing {sorted(missing)}")
        eps = state.get("range_eps", 1e-4)
        eps = float(eps.item() if hasattr(eps, "item") else eps)
        return cls(state["data_min"], state["data_max"], range_eps=eps)

    def __repr__(self) -> str:
        lo = np.array2string(self.data_min, precision=3, separator=", ")
        hi = np.array2string(self.data_max, precision=3, separator=", ")
        return f"Normalizer(dim={self.dim}, min={lo}, max={hi})"
