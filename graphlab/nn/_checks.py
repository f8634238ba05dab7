"""Input checks shared by graphlab's layers (run every call: they read dtypes only, never tensor values)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def check_feature_dtype(layer: torch.nn.Module, x: Any, weight: Tensor) -> None:
    """Features entering ``layer``'s linear map must have its parameters' dtype (unless autocast casts them).

    ``x`` may be a tensor or a ``(x_src, x_dst)`` pair (``None`` entries and non-floating tensors are skipped: the
    linear map itself rejects those).

    Raises:
        TypeError: naming ``x``, both dtypes and the two ways to make them agree.
    """
    features = x if isinstance(x, (tuple, list)) else (x,)
    for part in features:
        if not isinstance(part, Tensor) or not part.is_floating_point() or part.dtype == weight.dtype:
            continue
        if torch.is_autocast_enabled(part.device.type) or isinstance(weight, torch.nn.parameter.UninitializedParameter):
            continue
        name = type(layer).__name__
        raise TypeError(
            f"x has dtype {part.dtype} but {name}'s parameters are {weight.dtype}; convert the features "
            f"(x.to({weight.dtype})) or the layer ({name.lower()}.to({part.dtype}))"
        )
