r"""ctypes bindings of the native selective-scan kernel (``kernels/csrc/selective_scan.c``), the CPU path of
:func:`graphlab.ops.selective_scan` when graphlab's native library builds (:mod:`graphlab.ops._native`).

Per (batch, channel) pair, sequentially in time, the state :math:`h \in \mathbb{R}^N` in a local buffer:

.. math::
    h_t = \exp(\Delta_t A) \odot h_{t-1} + \Delta_t u_t B_t, \qquad y_t = \langle C_t, h_t \rangle .

:func:`scan_forward` returns ``y``, the last state and (for the backward) the state entering every chunk of
``K`` positions; :func:`scan_backward` recomputes each chunk's states from its checkpoint and runs the adjoint
:math:`\lambda_t = a_{t+1} \odot \lambda_{t+1} + C_t g_t` backwards (the formulas are in
:mod:`graphlab.ops.selective_scan`). Pairs run on ``torch.get_num_threads()`` pthreads; the gradients of ``A``,
``B`` and ``C``, shared between pairs, go to one partial buffer per thread, summed here.

In float32 with ``N = 16`` (Mamba's ``d_state``) and an AVX-512 build, forward and backward run on 16-lane
vectors (``ss_fwd_pair16``/``ss_bwd_pair16``: the state is one register, the per-position dot products of 16
positions are summed at once by a transpose-add tree, the exp is vectorised; :func:`vectorised_forward`).

``B``/``C`` arrive in the kernel layout: constant ``[D, N]`` or position-major ``[batch, G, L, N]`` (see
:func:`kernel_layout`). Every tensor is checked here (device, dtype, shape; non-contiguous ones are copied): a
mismatch raises ``TypeError``/``ValueError`` naming it, as in :mod:`graphlab.ops._native`.
"""

from __future__ import annotations

import ctypes

import torch
from torch import Tensor

from graphlab.ops import _native

_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
# Positions per checkpoint chunk: the backward recomputes K states of N values into one buffer (kept to about
# 16 KiB so it stays in L1). Checkpoints cost batch * D * ceil(L / K) * N values.
_CHUNK_VALUES = 4096
# Below this many (position, state) updates one thread is faster than starting pthreads.
_PARALLEL_MIN_WORK = 1 << 15


def available() -> bool:
    """Whether the native kernel can run (the library built and the native kernels are enabled)."""
    return _native.available()


def _declare(lib: ctypes.CDLL) -> None:
    ptr, i64, cint = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    for suffix in _SUFFIX.values():
        fwd, bwd = getattr(lib, f"ss_fwd_{suffix}"), getattr(lib, f"ss_bwd_{suffix}")
        fwd.argtypes = [ptr] * 9 + [i64] * 7 + [cint]
        bwd.argtypes = [ptr] * 13 + [i64] * 9 + [cint]
        fwd.restype = bwd.restype = ctypes.c_int  # nonzero: a thread could not allocate its scratch buffer
    lib.ss_exp_f32.argtypes = [ptr, ptr, i64, cint]
    lib.ss_exp_f32.restype = None
    lib.ss_vec16_forward.argtypes = []
    lib.ss_vec16_forward.restype = cint


def _lib() -> ctypes.CDLL:
    return _native.declared_library(_declare)


def vectorised_forward() -> bool:
    """Whether the float32 forward at ``N = 16`` (Mamba's ``d_state``) runs on 16-lane vectors (``ss_fwd_pair16``:
    compiled where the build targets AVX-512) rather than the generic loop."""
    return bool(_lib().ss_vec16_forward())


def kernel_exp(x: Tensor, vector: bool = True) -> Tensor:
    r"""The kernels' float32 :math:`\exp` on ``x`` (any shape, float32, CPU), for testing its accuracy:
    :math:`e^x = 2^k e^r`, :math:`k = \mathrm{round}(x / \ln 2)`, :math:`r = x - k \ln 2` (Cody-Waite, two parts),
    :math:`e^r \approx 1 + r + r^2 P_5(r)` (Cephes's coefficients), relative error below ``2e-7`` on
    :math:`[-87, 88]`. Below :math:`-87` the scalar version (``ss_expf``: the backward, the generic loop) clamps
    at :math:`e^{-87} \approx 1.6 \cdot 10^{-38}`, the AVX-512 one (``ss_exp16``: the ``N = 16`` forward)
    underflows to a subnormal or 0, as :func:`torch.exp` does. ``vector=False`` runs every value through
    ``ss_expf``; ``vector=True`` runs blocks of 16 through ``ss_exp16`` where it is compiled."""
    x = _checked("x", x, torch.float32, tuple(x.shape))
    out = torch.empty_like(x)
    _lib().ss_exp_f32(x.data_ptr(), out.data_ptr(), x.numel(), int(vector))
    return out


def checkpoint_every(state: int) -> int:
    """Positions per checkpoint chunk ``K`` for ``N = state``."""
    return max(1, min(64, _CHUNK_VALUES // max(state, 1)))


def kernel_layout(t: Tensor) -> tuple[Tensor, int]:
    """``B``/``C`` in the kernel layout and its group count (0 = constant): ``[D, N]`` stays, ``[batch, N, L]``
    becomes ``[batch, 1, L, N]`` and ``[batch, G, N, L]`` becomes ``[batch, G, L, N]`` (contiguous)."""
    if t.dim() == 2:
        return t.contiguous(), 0
    t4 = t.unsqueeze(1) if t.dim() == 3 else t
    return t4.transpose(2, 3).contiguous(), t4.shape[1]


def input_layout(grad: Tensor, shape: torch.Size) -> Tensor:
    """The inverse of :func:`kernel_layout` for a gradient, in the original ``shape``."""
    if len(shape) == 2:
        return grad
    return grad.transpose(2, 3).reshape(shape)


def _checked(name: str, t: Tensor, dtype: torch.dtype, shape: tuple[int, ...]) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"native scan argument {name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_cpu:
        raise ValueError(f"native scan argument {name} is on {t.device}; the native kernels need CPU tensors")
    if t.dtype is not dtype:
        raise TypeError(f"native scan argument {name} has dtype {t.dtype} but this call needs {dtype}")
    if tuple(t.shape) != shape:
        raise ValueError(f"native scan argument {name} has shape {tuple(t.shape)} but this call needs {shape}")
    return t if t.is_contiguous() else t.contiguous()


def _param_shape(groups: int, batch: int, channels: int, length: int, state: int) -> tuple[int, ...]:
    return (channels, state) if groups == 0 else (batch, groups, length, state)


def _check_all(
    u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, b_groups: int, c_groups: int
) -> tuple[torch.dtype, tuple[Tensor, ...]]:
    if not isinstance(u, Tensor) or u.dtype not in _SUFFIX or u.dim() != 3:
        raise TypeError("native scan argument u must be a float32/float64 tensor [batch, D, L]")
    batch, channels, length = u.shape
    if not isinstance(A, Tensor) or A.dim() != 2:
        raise ValueError("native scan argument A must be [D, N]")
    state = A.shape[1]
    for name, groups in (("B", b_groups), ("C", c_groups)):
        if groups < 0 or (groups and channels % groups):
            raise ValueError(f"native scan argument {name} has {groups} groups, which must divide D = {channels}")
    dtype = u.dtype
    tensors = (
        _checked("u", u, dtype, (batch, channels, length)),
        _checked("dt", dt, dtype, (batch, channels, length)),
        _checked("A", A, dtype, (channels, state)),
        _checked("B", B, dtype, _param_shape(b_groups, batch, channels, length, state)),
        _checked("C", C, dtype, _param_shape(c_groups, batch, channels, length, state)),
    )
    return dtype, tensors


def _raise_if(failed: int, what: str) -> None:
    if failed:
        raise MemoryError(f"the native selective-scan {what} could not allocate its per-thread scratch buffers")


def _threads(work: int) -> int:
    return torch.get_num_threads() if work >= _PARALLEL_MIN_WORK else 1


def scan_forward(
    u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, b_groups: int, c_groups: int, checkpoints: bool,
    skip: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """``(y [batch, D, L], last [batch, D, N], ckpt [batch, D, ceil(L / K), N] or None)``; ``B``/``C`` in the
    kernel layout with their group counts (0 = constant); with ``skip`` (``[D]``) ``y`` includes
    :math:`D_d u_t` (its gradients are the caller's)."""
    dtype, (u, dt, A, B, C) = _check_all(u, dt, A, B, C, b_groups, c_groups)
    batch, channels, length = u.shape
    state = A.shape[1]
    if skip is not None:
        skip = _checked("skip", skip, dtype, (channels,))
    every = checkpoint_every(state)
    y = torch.empty_like(u)  # every entry is written by the kernel (or it fails and MemoryError is raised)
    last = u.new_empty((batch, channels, state))
    ckpt = u.new_empty((batch, channels, -(-length // every), state)) if checkpoints else None
    if length == 0:
        last.zero_()
        return y, last, ckpt
    failed = getattr(_lib(), f"ss_fwd_{_SUFFIX[dtype]}")(
        u.data_ptr(), dt.data_ptr(), A.data_ptr(), B.data_ptr(), C.data_ptr(),
        None if skip is None else skip.data_ptr(), y.data_ptr(), last.data_ptr(),
        None if ckpt is None else ckpt.data_ptr(), batch, channels, length, state, every, b_groups, c_groups,
        _threads(u.numel() * state),
    )
    _raise_if(failed, "forward")
    return y, last, ckpt


def scan_backward(
    u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, b_groups: int, c_groups: int, ckpt: Tensor,
    grad_y: Tensor, grad_last: Tensor,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``(du, ddt, dA, dB, dC)`` (``dB``/``dC`` in the kernel layout) from the forward's checkpoints."""
    dtype, (u, dt, A, B, C) = _check_all(u, dt, A, B, C, b_groups, c_groups)
    batch, channels, length = u.shape
    state = A.shape[1]
    every = checkpoint_every(state)
    ckpt = _checked("ckpt", ckpt, dtype, (batch, channels, -(-length // every), state))
    grad_y = _checked("grad_y", grad_y, dtype, (batch, channels, length))
    grad_last = _checked("grad_last", grad_last, dtype, (batch, channels, state))
    threads = min(_threads(u.numel() * state), max(batch * channels, 1))
    du = torch.full_like(u, float("nan"))  # every entry is written by the kernel
    ddt = torch.full_like(u, float("nan"))
    dA = u.new_zeros((threads, channels, state))
    dB = u.new_zeros((threads, *B.shape))
    dC = u.new_zeros((threads, *C.shape))
    if length:
        failed = getattr(_lib(), f"ss_bwd_{_SUFFIX[dtype]}")(
            u.data_ptr(), dt.data_ptr(), A.data_ptr(), B.data_ptr(), C.data_ptr(), ckpt.data_ptr(),
            grad_y.data_ptr(), grad_last.data_ptr(), du.data_ptr(), ddt.data_ptr(), dA.data_ptr(), dB.data_ptr(),
            dC.data_ptr(), batch, channels, length, state, every, b_groups, c_groups, B.numel(), C.numel(), threads,
        )
        _raise_if(failed, "backward")
    else:
        du, ddt = torch.zeros_like(u), torch.zeros_like(u)
    return du, ddt, dA.sum(0), dB.sum(0), dC.sum(0)
