r"""ctypes bindings of the native dropout kernels (``kernels/csrc/dropout.c``), the CPU path of
:func:`graphlab.ops.dropout` when graphlab's native library builds (:mod:`graphlab.ops._native`).

The mask is Philox4x32-10 on the counter ``(i div 4, offset)`` and key ``seed``, word ``i mod 4``, kept where the
word is at least ``threshold`` (:func:`graphlab.ops.reference.dropout_mask` is the same function in plain torch).
Elements are split into units of 16,384 that ``torch.get_num_threads()`` pthreads claim from a counter: the result
does not depend on the thread count. Every tensor is checked here (device, dtype, size; non-contiguous ones are
copied); a mismatch raises ``TypeError``/``ValueError`` naming it, as in :mod:`graphlab.ops._native`.
"""

from __future__ import annotations

import ctypes

import torch
from torch import Tensor

from graphlab.ops import _native

_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
VALUE_DTYPES = tuple(_SUFFIX)
# Below this many elements one thread is faster than starting pthreads (a thread start costs ~20-50 us).
_PARALLEL_MIN_ELEMENTS = 1 << 15
_U64_MAX = 2**64 - 1


def available() -> bool:
    """Whether the native kernel can run (the library built and the native kernels are enabled)."""
    return _native.available()


def _declare(lib: ctypes.CDLL) -> None:
    ptr, i64, u64, cint, dbl = ctypes.c_void_p, ctypes.c_int64, ctypes.c_uint64, ctypes.c_int, ctypes.c_double
    for suffix in _SUFFIX.values():
        fwd, apply = getattr(lib, f"dr_fwd_{suffix}"), getattr(lib, f"dr_apply_{suffix}")
        fwd.argtypes = [ptr, ptr, ptr, i64, u64, u64, u64, dbl, cint]
        apply.argtypes = [ptr, ptr, ptr, i64, dbl, cint]
        fwd.restype = apply.restype = None
    lib.dr_bits.argtypes = [ptr, i64, u64, u64, u64, cint]
    lib.dr_bits.restype = None


def _lib() -> ctypes.CDLL:
    return _native.declared_library(_declare)


def _threads(n: int) -> int:
    return torch.get_num_threads() if n >= _PARALLEL_MIN_ELEMENTS else 1


def _values(name: str, t: Tensor) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"native dropout argument {name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_cpu:
        raise ValueError(f"native dropout argument {name} is on {t.device}; the native kernels need CPU tensors")
    if t.dtype not in VALUE_DTYPES:
        raise TypeError(f"native dropout argument {name} has dtype {t.dtype}; the native kernels take float32/float64")
    return t if t.is_contiguous() else t.contiguous()


def _check_u64(name: str, value: int) -> int:
    if not 0 <= value <= _U64_MAX:
        raise ValueError(f"native dropout argument {name} = {value} is outside [0, 2**64)")
    return value


def _bit_bytes(n: int) -> int:
    return (n + 7) // 8


def forward(x: Tensor, seed: int, offset: int, threshold: int, scale: float,
            want_bits: bool) -> tuple[Tensor, Tensor | None]:
    """``y = keep ? x * scale : 0`` (same shape as ``x``) and, if ``want_bits``, the keep flags as a uint8 bit
    mask (bit ``i % 8`` of byte ``i // 8``)."""
    x = _values("x", x)
    if not 0 <= threshold <= 2**32:
        raise ValueError(f"native dropout threshold {threshold} is outside [0, 2**32]")
    n = x.numel()
    y = torch.empty_like(x)
    bits = torch.empty(_bit_bytes(n), dtype=torch.uint8) if want_bits else None
    if n:
        fn = getattr(_lib(), f"dr_fwd_{_SUFFIX[x.dtype]}")
        fn(x.data_ptr(), y.data_ptr(), None if bits is None else bits.data_ptr(), n, _check_u64("seed", seed),
           _check_u64("offset", offset), threshold, float(scale), _threads(n))
    return y, bits


def apply_bits(x: Tensor, bits: Tensor, scale: float) -> Tensor:
    """``y = bit ? x * scale : 0`` with the bit mask of :func:`forward`."""
    x = _values("x", x)
    n = x.numel()
    if not isinstance(bits, Tensor) or bits.dtype is not torch.uint8 or bits.shape != (_bit_bytes(n),):
        got = tuple(bits.shape) if isinstance(bits, Tensor) else type(bits).__name__
        raise ValueError(f"native dropout bit mask must be a uint8 tensor of {_bit_bytes(n)} bytes, got {got}")
    bits = bits if bits.is_contiguous() else bits.contiguous()
    y = torch.empty_like(x)
    if n:
        getattr(_lib(), f"dr_apply_{_SUFFIX[x.dtype]}")(x.data_ptr(), y.data_ptr(), bits.data_ptr(), n, float(scale),
                                                        _threads(n))
    return y


def mask_bits(n: int, seed: int, offset: int, threshold: int) -> Tensor:
    """The keep flags of ``n`` elements as a uint8 bit mask (bit ``i % 8`` of byte ``i // 8``)."""
    if n < 0:
        raise ValueError(f"native dropout needs n >= 0 elements, got {n}")
    bits = torch.empty(_bit_bytes(n), dtype=torch.uint8)
    if n:
        _lib().dr_bits(bits.data_ptr(), n, _check_u64("seed", seed), _check_u64("offset", offset), threshold,
                       _threads(n))
    return bits


def unpack_bits(bits: Tensor, n: int) -> Tensor:
    """The bool flags ``[n]`` of a bit mask (bit ``i % 8`` of byte ``i // 8``)."""
    shifts = torch.arange(8, dtype=torch.uint8)
    return ((bits[:, None] >> shifts) & 1).bool().reshape(-1)[:n]
