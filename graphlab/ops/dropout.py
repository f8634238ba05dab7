r"""Inverted dropout with a counter-based mask, drawn on every thread by graphlab's native kernel.

.. math::
    y = \frac{x \odot m}{1 - p}, \qquad m_i = \big[\, r_i \ge \mathrm{round}(p\, 2^{32}) \,\big], \qquad
    r_i = \mathrm{Philox4x32\text{-}10}\big((\lfloor i/4 \rfloor, o),\ s\big)_{i \bmod 4}

(Srivastava et al., *Dropout*, JMLR 2014; Salmon et al., *Parallel random numbers: as easy as 1, 2, 3*, SC 2011),
:math:`i` the row-major index of an entry of ``x``, :math:`s` the 64-bit seed and :math:`o` the 64-bit offset
(stream). The mask is a pure function of :math:`(s, o, i)`, so

* the native kernel (``kernels/csrc/dropout.c``) draws it on ``torch.get_num_threads()`` threads and gets the same
  mask for any thread count; ``torch.nn.functional.dropout`` draws its mask with ``bernoulli_``, one thread on
  CPU (58% of a GCN epoch on a 2M-edge graph, ``benchmarks/results/end_to_end.txt`` section Q);
* the backward :math:`\partial L / \partial x = m \odot g / (1 - p)` draws the mask again from the seed instead
  of storing it (``save_mask=False``: no memory kept between forward and backward), or applies the bit mask the
  forward wrote (``save_mask=True``, the default: ``N/8`` bytes kept, written only when ``x`` needs a gradient).
  Measured (``benchmarks/results/dropout.txt``, one thread, CPU time, 200,000 x 128 float32): forward 108 ms
  against 467 ms for ``F.dropout``; forward + backward 189 ms with the bit mask, 212 ms drawing the mask again,
  516 ms for ``F.dropout`` (unpacking 1 bit per entry is cheaper than ten Philox rounds per 4 entries).

Unless ``seed`` is given, it is drawn from torch's generator (``generator`` or the default CPU one) on every call,
so ``torch.manual_seed`` / ``seed_everything`` make runs reproducible, as with ``F.dropout``; the mask differs
from ``F.dropout``'s (another generator), the distribution is the same up to :math:`P(\mathrm{drop}) =
\mathrm{round}(p\,2^{32}) / 2^{32}`.

Paths: ``"cpu"`` (the native kernel; float32/float64, and bfloat16/float16 computed in float32 then rounded,
as torch's own ``x * scale`` does), ``"reference"`` (:func:`graphlab.ops.reference.dropout`, the same mask in
plain torch; forced with ``set_backend("reference")``), and ``"torch"``: ``F.dropout`` (its own mask) for CUDA
tensors, under ``torch.compile`` (the ctypes call would break the graph), or on CPU when the native library cannot
be built (``GRAPHLAB_NATIVE=0``, no compiler).
"""

from __future__ import annotations

import numbers
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from graphlab.ops import _native_dropout as native
from graphlab.ops import reference
from graphlab.ops._backend import get_backend, record_path

__all__ = ["dropout", "dropout_mask", "draw_seed"]

_HALF_DTYPES = (torch.bfloat16, torch.float16)
_U64 = 2**64


def draw_seed(generator: Optional[torch.Generator] = None) -> int:
    """A 63-bit seed drawn from ``generator`` (default: torch's default CPU generator)."""
    return int(torch.randint(0, 2**63 - 1, (1,), generator=generator).item())


def _check_p(p: Any) -> float:  # noqa: ANN401 - validated here
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"dropout probability p must be a real number in [0, 1], got {type(p).__name__}")
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"dropout probability p must lie in [0, 1], got {p}; pass e.g. p=0.5")
    return float(p)


def _check_word(name: str, value: Any) -> int:  # noqa: ANN401 - validated here
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"dropout {name} must be an int in [0, 2**64), got {type(value).__name__}")
    if not 0 <= int(value) < _U64:
        raise ValueError(f"dropout {name} must lie in [0, 2**64), got {value}; reduce it modulo 2**64")
    return int(value)


def _check_x(x: Any) -> None:  # noqa: ANN401 - validated here
    if not isinstance(x, Tensor):
        raise TypeError(f"dropout input x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"dropout input x must be a floating-point tensor, got {x.dtype}; cast it with x.float()")


class _NativeDropout(torch.autograd.Function):
    """``y = m * x * scale`` through the native kernel; the backward is the same map applied to the gradient."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, seed: int, offset: int, threshold: int, scale: float,  # noqa: ANN401
                save_mask: bool) -> Tensor:
        y, bits = _native_forward(x, seed, offset, threshold, scale, save_mask)
        ctx.seed, ctx.offset, ctx.threshold, ctx.scale = seed, offset, threshold, scale
        ctx.save_mask = save_mask
        if save_mask:
            ctx.save_for_backward(bits)
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Optional[Tensor], None, None, None, None, None]:  # noqa: ANN401
        record_path("dropout.backward", "cpu")
        if ctx.save_mask:
            (bits,) = ctx.saved_tensors
            return _BitMaskApply.apply(grad, bits, ctx.scale), None, None, None, None, None
        grad_x = _NativeDropout.apply(grad, ctx.seed, ctx.offset, ctx.threshold, ctx.scale, False)  # mask drawn again
        return grad_x, None, None, None, None, None


class _BitMaskApply(torch.autograd.Function):
    """``y = bit * x * scale`` with a stored bit mask (the backward of ``save_mask=True``); linear, self-adjoint."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, bits: Tensor, scale: float) -> Tensor:  # noqa: ANN401
        ctx.save_for_backward(bits)
        ctx.scale = scale
        return _in_value_dtype(x, lambda v: native.apply_bits(v, bits, scale))

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Optional[Tensor], None, None]:  # noqa: ANN401
        (bits,) = ctx.saved_tensors
        return _BitMaskApply.apply(grad, bits, ctx.scale), None, None


def _in_value_dtype(x: Tensor, run: Any) -> Tensor:  # noqa: ANN401
    """``run(x)`` on a float32/float64 view of ``x``: half types are computed in float32 and rounded back."""
    if x.dtype in _HALF_DTYPES:
        return run(x.float()).to(x.dtype)
    return run(x)


def _native_forward(x: Tensor, seed: int, offset: int, threshold: int, scale: float,
                    want_bits: bool) -> tuple[Tensor, Optional[Tensor]]:
    if x.dtype in _HALF_DTYPES:
        y, bits = native.forward(x.float(), seed, offset, threshold, scale, want_bits)
        return y.to(x.dtype), bits
    return native.forward(x, seed, offset, threshold, scale, want_bits)


def _path(x: Tensor) -> str:
    if torch.compiler.is_compiling():  # a ctypes call and a host-side seed would break the graph: torch's own op
        return "torch"
    if get_backend() == "reference":
        return "reference"
    if x.is_cpu and native.available() and (x.dtype in native.VALUE_DTYPES or x.dtype in _HALF_DTYPES):
        return "cpu"
    return "torch"


def dropout(x: Tensor, p: float = 0.5, training: bool = True, *, seed: Optional[int] = None, offset: int = 0,
            generator: Optional[torch.Generator] = None, save_mask: bool = True) -> Tensor:
    r"""Inverted dropout :math:`y = x \odot m / (1 - p)` with the counter-based Philox mask of this module.

    Args:
        x: input of any shape, floating point.
        p: probability of dropping an entry, in :math:`[0, 1]` (``p = 1`` gives zeros).
        training: ``False`` returns ``x`` itself, as ``p = 0`` does.
        seed: the Philox key :math:`s \in [0, 2^{64})`; default: drawn from ``generator`` on every call.
        offset: the Philox stream :math:`o \in [0, 2^{64})` (default 0).
        generator: torch generator the seed is drawn from (default: torch's default CPU generator).
        save_mask: keep a bit mask (``numel / 8`` bytes) for the backward (default); ``False``: draw the mask again
            in the backward from the seed (no memory kept).

    Returns:
        ``y`` of ``x``'s shape and dtype.

    Raises:
        TypeError: ``x`` is not a floating-point tensor, or ``p`` / ``seed`` / ``offset`` has the wrong type.
        ValueError: ``p`` outside :math:`[0, 1]`, ``seed`` / ``offset`` outside :math:`[0, 2^{64})`.
    """
    _check_x(x)
    p = _check_p(p)
    offset = _check_word("offset", offset)
    if seed is not None:
        seed = _check_word("seed", seed)
    if not training or p == 0.0:
        return x
    path = _path(x)
    record_path("dropout", path)
    if path == "torch":
        return F.dropout(x, p, training=True)
    if seed is None:
        seed = draw_seed(generator)
    if path == "reference":
        return reference.dropout(x, p, True, seed, offset)
    scale = 1.0 / (1.0 - p) if p < 1.0 else 0.0
    save_mask = bool(save_mask) and torch.is_grad_enabled() and x.requires_grad  # no backward: no bits to write
    return _NativeDropout.apply(x, seed, offset, reference.dropout_threshold(p), scale, save_mask)


def dropout_mask(numel: int, p: float, seed: int, offset: int = 0) -> Tensor:
    """The keep mask ``[numel]`` (bool) that :func:`dropout` uses with this ``seed`` and ``offset`` (CPU; the
    native kernel when available, else :func:`graphlab.ops.reference.dropout_mask`)."""
    if isinstance(numel, bool) or not isinstance(numel, numbers.Integral) or numel < 0:
        raise ValueError(f"dropout_mask needs numel, a non-negative int, got {numel!r}")
    p, seed, offset = _check_p(p), _check_word("seed", seed), _check_word("offset", offset)
    if get_backend() != "reference" and native.available():
        record_path("dropout_mask", "cpu")
        bits = native.mask_bits(int(numel), seed, offset, reference.dropout_threshold(p))
        return native.unpack_bits(bits, int(numel))
    record_path("dropout_mask", "reference")
    return reference.dropout_mask(int(numel), p, seed, offset)
