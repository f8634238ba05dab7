r"""``selective_scan``: Mamba's selective state-space recurrence (S6) with mamba-ssm's ``selective_scan_fn`` contract.

Per batch element and channel :math:`d` (state :math:`h_t \in \mathbb{R}^N`, :math:`h_{-1} = 0`), with
:math:`\Delta = \mathrm{softplus}(\delta + b_\Delta)` (``delta_softplus``) or :math:`\delta + b_\Delta`:

.. math::
    h_t = \underbrace{\exp(\Delta_t A_d)}_{a_t} \odot h_{t-1} + \underbrace{\Delta_t u_t B_t}_{b_t}, \qquad
    y_t = \langle C_t, h_t \rangle + D_d u_t, \qquad \mathrm{out}_t = y_t \cdot \mathrm{silu}(z_t).

Paths (:mod:`graphlab.ops._backend`): the reference loop (:func:`graphlab.ops.reference.selective_scan`); on
CUDA mamba-ssm's fused kernel when it is importable (recorded as ``"mamba-ssm"``), else the Triton kernels of
:mod:`graphlab.kernels.selective_scan`; on the CPU (``"cpu"``) the native C kernel of
:mod:`graphlab.ops._native_scan` (``kernels/csrc/selective_scan.c``: one sequential scan per (batch, channel) pair
on ``torch.get_num_threads()`` pthreads, the state :math:`h \in \mathbb{R}^N` in a local buffer (float32 with
``N = 16`` on an AVX-512 build: one 16-lane vector register), no padding;
the backward recomputes the states of each chunk of ``K`` positions from a checkpoint kept by the forward), or,
when graphlab's native library cannot be built or is switched off (``GRAPHLAB_NATIVE=0``,
:class:`graphlab.ops._native.use_native`), the chunked torch scan below. ``last_path("selective_scan.cpu_impl")``
says which ran (``"native"`` or ``"torch"``).

**The chunked CPU scan.** Positions are cut into chunks of ``T`` (``chunk_size``). Within every chunk, all chunks at
once, a loop of ``T - 1`` fused multiply-adds gives the chunk-local states :math:`\tilde h` (zero state entering the
chunk). The state entering chunk :math:`c` follows from the chunk ends,
:math:`h^{\mathrm{in}}_{c} = \tilde h_{c-1,T-1} + P_{c-1,T-1} \odot h^{\mathrm{in}}_{c-1}`, a loop over chunks,
and the states are :math:`h_{c,j} = \tilde h_{c,j} + P_{c,j} \odot h^{\mathrm{in}}_c` with the decay from the
chunk start :math:`P_{c,j} = \exp(A\, S_{c,j})`, :math:`S_{c,j} = \sum_{k \le j} \Delta_{c,k}` (a cumulative sum
of :math:`\Delta`, restarted at every chunk). Only such segment-relative sums are exponentiated:
:math:`A S \le 0` for Mamba's :math:`A < 0, \Delta \ge 0`, so nothing overflows however long the sequence; for
a growing system (:math:`A > 0`) the exponent is bounded by one chunk. Padding to a multiple of ``T`` uses
:math:`\Delta = 0` (:math:`a = 1`) and :math:`b = 0`, so the padded positions hold the last state.

**Backward** (:class:`ChunkedScan`): the states are recomputed (only the inputs are saved), then the adjoint
:math:`\lambda_t = \partial L / \partial h_t` runs the same chunked scan backwards,
:math:`\lambda_t = a_{t+1} \odot \lambda_{t+1} + C_t\, g_t` (:math:`g = \partial L/\partial y`), and

.. math::
    \frac{\partial L}{\partial C_t} = \sum_d g_{t,d} h_{t,d}, \quad
    \frac{\partial L}{\partial B_t} = \sum_d \lambda_{t,d} \Delta_{t,d} u_{t,d}, \quad
    \frac{\partial L}{\partial u_t} = \Delta_t \langle \lambda_t, B_t \rangle, \quad
    \frac{\partial L}{\partial \Delta_t} = u_t \langle \lambda_t, B_t \rangle + \langle A, q_t \rangle, \quad
    \frac{\partial L}{\partial A} = \sum_{b,t} \Delta_t q_t,

with :math:`q_t = \lambda_t \odot a_t \odot h_{t-1}`. Channels are independent, so both passes run over blocks of
channels (:data:`BLOCK_ELEMENTS` states at most per buffer): memory stays bounded and the buffers stay in cache.

**Variable lengths.** ``lengths`` (or a boolean ``mask``) marks the valid positions; an invalid position gets
:math:`\Delta = 0, u = 0` (the state is carried unchanged, nothing flows into it) and outputs 0. All paths share
this, and the gradient w.r.t. an invalid position's inputs is 0. The per-position inputs (``u``, ``delta``,
``B``, ``C``, ``z``) of invalid positions are replaced by 0 (:func:`zero_invalid`) before anything is computed, so a
NaN or inf in padding changes no output and no gradient.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from graphlab.ops import _native_scan, reference
from graphlab.ops.reference import zero_invalid
from graphlab.ops._backend import record_path, resolve_backend

OP_NAME = "selective_scan"
IMPL_LOG = "selective_scan.cpu_impl"  # last_path(IMPL_LOG) says "native" (the C kernel) or "torch" (chunked scan)
# Chunk length T of the CPU path. Measured (1 thread, batch 4, d_state 16, d_inner 64/256, L 1024/4096; T in
# 8..64): 16 was the fastest at every shape, up to 2x faster than 32 or 8.
DEFAULT_CHUNK = 16
# Elements (batch * channels * padded L * N) per state buffer of one channel block of the CPU path: 2^20 (4 MiB in
# float32) was faster than 2^22 and 2^24 at those shapes (the buffers of a block stay in cache).
BLOCK_ELEMENTS = 1 << 20


# --------------------------------------------------------------------------------------------- validation
def _check_tensor(name: str, t: Any, dims: tuple[int, ...]) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.is_complex():
        raise TypeError(f"{name} has dtype {t.dtype}: mamba-ssm's complex mode is not supported here; pass a real "
                        f"{name} (Mamba's S4D-real A = -exp(A_log) is real)")
    if not t.is_floating_point():
        raise TypeError(f"{name} has dtype {t.dtype}; it must be floating point (call {name}.float())")
    if t.dim() not in dims:
        want = " or ".join(f"{d}-D" for d in dims)
        raise ValueError(f"{name} must be {want}, got shape {tuple(t.shape)}")


def _check_param(name: str, t: Tensor, batch: int, channels: int, state: int, length: int) -> None:
    """``B``/``C``: ``[D, N]``, ``[batch, N, L]`` or ``[batch, G, N, L]`` with ``G`` dividing ``D``."""
    _check_tensor(name, t, (2, 3, 4))
    shape = tuple(t.shape)
    if t.dim() == 2 and shape != (channels, state):
        raise ValueError(f"constant {name} must be [D, N] = {(channels, state)} like A, got {shape}")
    if t.dim() == 3 and shape != (batch, state, length):
        raise ValueError(f"input-dependent {name} must be [batch, N, L] = {(batch, state, length)}, got {shape}")
    if t.dim() == 4:
        if shape[0] != batch or shape[2:] != (state, length):
            raise ValueError(
                f"grouped {name} must be [batch, G, N, L] = ({batch}, G, {state}, {length}), got {shape}"
            )
        if shape[1] == 0 or channels % shape[1]:
            raise ValueError(f"grouped {name} has G = {shape[1]} groups, which must divide D = {channels}")


def _check_inputs(
    u: Any, delta: Any, A: Any, B: Any, C: Any, D: Any, z: Any, delta_bias: Any,
    lengths: Any, mask: Any, chunk_size: Any,
) -> None:
    _check_tensor("u", u, (3,))
    batch, channels, length = u.shape
    _check_tensor("delta", delta, (3,))
    if delta.shape != u.shape:
        raise ValueError(f"delta must have u's shape [batch, D, L] = {tuple(u.shape)}, got {tuple(delta.shape)}")
    _check_tensor("A", A, (2,))
    if A.shape[0] != channels:
        raise ValueError(f"A must be [D, N] with D = {channels} (u's channels), got {tuple(A.shape)}")
    state = A.shape[1]
    _check_param("B", B, batch, channels, state, length)
    _check_param("C", C, batch, channels, state, length)
    for name, t, shape in (("D", D, (channels,)), ("delta_bias", delta_bias, (channels,)), ("z", z, u.shape)):
        if t is not None:
            _check_tensor(name, t, (len(shape),))
            if tuple(t.shape) != tuple(shape):
                raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(t.shape)}")
    tensors = [t for t in (u, delta, A, B, C, D, z, delta_bias) if t is not None]
    if any(t.device != u.device for t in tensors):
        raise ValueError("u, delta, A, B, C, D, z and delta_bias must be on one device; move them with .to(u.device)")
    if lengths is not None and mask is not None:
        raise ValueError("give either lengths or mask, not both")
    if lengths is not None:
        if not isinstance(lengths, Tensor) or lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
            raise TypeError("lengths must be an integer tensor [batch], e.g. torch.tensor([5, 3])")
        if lengths.shape != (batch,):
            raise ValueError(f"lengths must have shape [batch] = ({batch},), got {tuple(lengths.shape)}")
        if lengths.numel() and (int(lengths.min()) < 0 or int(lengths.max()) > length):
            raise ValueError(
                f"lengths must lie in [0, L = {length}], got min {int(lengths.min())}, max {int(lengths.max())}; "
                "pad the sequences to the longest length"
            )
    if mask is not None:
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
            raise TypeError("mask must be a boolean tensor [batch, L] (True = valid position)")
        if mask.shape != (batch, length):
            raise ValueError(f"mask must have shape [batch, L] = {(batch, length)}, got {tuple(mask.shape)}")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")


def _valid_positions(lengths: Tensor | None, mask: Tensor | None, length: int, device: torch.device) -> Tensor | None:
    if mask is not None:
        return mask.to(device)
    if lengths is not None:
        return torch.arange(length, device=device)[None, :] < lengths.to(device)[:, None]
    return None


# --------------------------------------------------------------------------------------------- public op
def selective_scan(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    *,
    lengths: Tensor | None = None,
    mask: Tensor | None = None,
    chunk_size: int | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    r"""Selective scan with mamba-ssm's ``selective_scan_fn`` semantics, on any device.

    .. math::
        h_t = \exp(\Delta_t A) \odot h_{t-1} + \Delta_t B_t u_t, \qquad
        \mathrm{out}_t = (\langle C_t, h_t \rangle + D \odot u_t) \cdot \mathrm{silu}(z_t)

    Differentiable w.r.t. every tensor argument (the last state too, unlike mamba-ssm).

    Args:
        u: ``[batch, D, L]`` input.
        delta: ``[batch, D, L]`` step sizes :math:`\delta` (before ``delta_bias`` / softplus).
        A: ``[D, N]`` real state matrix (diagonal per channel; Mamba uses :math:`A < 0`).
        B, C: ``[D, N]`` (constant), ``[batch, N, L]`` (input-dependent, shared by the channels) or
            ``[batch, G, N, L]`` (``G`` groups of ``D / G`` consecutive channels).
        D: optional ``[D]`` skip connection.
        z: optional ``[batch, D, L]`` gate, :math:`\mathrm{out} = y \cdot \mathrm{silu}(z)`.
        delta_bias: optional ``[D]`` added to ``delta``.
        delta_softplus: apply softplus to ``delta + delta_bias``.
        return_last_state: also return the state after the last valid position, ``[batch, D, N]``.
        lengths: optional ``[batch]`` integer valid lengths (positions ``t >= lengths[b]`` are padding).
        mask: optional ``[batch, L]`` bool, True at valid positions (alternative to ``lengths``). An invalid
            position carries the state unchanged and outputs 0; its inputs get no gradient.
        chunk_size: chunk length of the CPU path (default :data:`DEFAULT_CHUNK`); any value, dividing ``L`` or not.

    Returns:
        ``out [batch, D, L]`` in ``u``'s dtype, and with ``return_last_state`` the last state ``[batch, D, N]``
        (float32 for half-precision inputs). Half-precision inputs are computed in float32.

    Raises:
        TypeError, ValueError: on a wrong type, dtype, shape, device, or ``lengths`` outside ``[0, L]``.
    """
    _check_inputs(u, delta, A, B, C, D, z, delta_bias, lengths, mask, chunk_size)
    valid = _valid_positions(lengths, mask, u.shape[2], u.device)
    if valid is not None:  # before any arithmetic: a NaN/inf in padding reaches no value and no gradient
        u, delta, B, C = (zero_invalid(t, valid) for t in (u, delta, B, C))
        z = None if z is None else zero_invalid(z, valid)
    path = resolve_backend(u, delta, A, B, C)
    if path == "reference":
        record_path(OP_NAME, path)
        return reference.selective_scan(
            u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, mask=valid
        )
    compute = torch.float64 if u.dtype == torch.float64 else torch.float32
    uc, dt = u.to(compute), delta.to(compute)
    if delta_bias is not None:
        dt = dt + delta_bias.to(compute)[:, None]
    if delta_softplus:
        dt = F.softplus(dt)
    if valid is not None:
        dt = zero_invalid(dt, valid)  # the bias and softplus made the zeros of the padding nonzero
    Ac, Bc, Cc = A.to(compute), B.to(compute), C.to(compute)
    if path == "cpu":
        _require_cpu(u)
        record_path(OP_NAME, "cpu")
        if _native_scan.available():
            record_path(IMPL_LOG, "native")
            y, last = NativeScan.apply(uc, dt, Ac, Bc, Cc, None if D is None else D.to(compute))
            D = None  # the kernel added D u
        else:
            record_path(IMPL_LOG, "torch")
            y, last = ChunkedScan.apply(uc, dt, Ac, Bc, Cc, chunk_size or DEFAULT_CHUNK)
    elif u.is_cuda and mamba_ssm_supports(compute, A.shape[1], u.shape[2]) and mamba_ssm_available():
        record_path(OP_NAME, "mamba-ssm")
        y, last = _mamba_ssm_scan(uc, dt, Ac, Bc, Cc)
    else:
        record_path(OP_NAME, "triton")
        y, last = TritonScan.apply(uc, dt, Ac, Bc, Cc)
    return _finish(y, last, uc, D, z, valid, u.dtype, return_last_state)


def _finish(
    y: Tensor, last: Tensor, u: Tensor, D: Tensor | None, z: Tensor | None, valid: Tensor | None,
    dtype: torch.dtype, return_last_state: bool,
) -> Tensor | tuple[Tensor, Tensor]:
    """``(y + D u) * silu(z)``, zero at invalid positions, cast to the input dtype."""
    out = y if D is None else y + u * D.to(y.dtype)[:, None]
    if z is not None:
        out = out * F.silu(z.to(y.dtype))
    if valid is not None:
        out = zero_invalid(out, valid)
    out = out.to(dtype)
    return (out, last) if return_last_state else out


def _require_cpu(u: Tensor) -> None:
    if u.device.type != "cpu":
        raise RuntimeError(
            f"the 'cpu' path needs CPU tensors but u is on {u.device}; use set_backend('auto') or 'triton'"
        )


# --------------------------------------------------------------------------------------------- mamba-ssm (CUDA)
def mamba_ssm_available() -> bool:
    """Whether mamba-ssm's CUDA ``selective_scan_fn`` can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec("mamba_ssm") is not None and torch.cuda.is_available()
    except (ImportError, ValueError):
        return False


MAMBA_SSM_MAX_STATE = 256  # mamba-ssm's CUDA scan: d_state <= 256 (MAX_DSTATE of csrc/selective_scan)


def mamba_ssm_supports(compute: torch.dtype, state: int, length: int) -> bool:
    """Whether mamba-ssm's kernel takes this call: its inputs must be float32/float16/bfloat16 (float64 is rejected
    by its dispatch), ``1 <= d_state <= 256`` and ``L >= 1`` (its last state is read at chunk ``-1``); other calls
    go to the Triton kernels."""
    return (compute in (torch.float32, torch.float16, torch.bfloat16) and 1 <= state <= MAMBA_SSM_MAX_STATE
            and length >= 1)


def _mamba_ssm_scan(u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor) -> tuple[Tensor, Tensor]:
    """mamba-ssm's fused kernel on the already biased / softplus-ed / masked ``dt`` (its gradient of the last
    state is not propagated)."""
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn  # guarded: CUDA only

    y, last = selective_scan_fn(u.contiguous(), dt.contiguous(), A, B, C, None, None, None, False, True)
    return y, last


# --------------------------------------------------------------------------------------------- chunked scan
# Layout of the CPU path's buffers: *chunk-major*, ``X[j, b, d, c, n]`` holds position ``t = c * T + j``, so the
# in-chunk step ``j`` of every chunk is one contiguous slice ``X[j]`` (a position-major layout would make those
# slices strided by ``T * N``, which aliases in the cache for power-of-two ``T``).


def _chunk_major(x: Tensor, chunk: int) -> Tensor:
    """``[b, d, Lp] -> [T, b, d, n_chunks]`` (contiguous copy)."""
    b, d, length = x.shape
    return x.view(b, d, length // chunk, chunk).permute(3, 0, 1, 2).contiguous()


def _position_major(x: Tensor) -> Tensor:
    """``[T, b, d, n_chunks] -> [b, d, Lp]``."""
    chunk, b, d, chunks = x.shape
    return x.permute(1, 2, 3, 0).reshape(b, d, chunks * chunk)


class _Param:
    """``B`` or ``C`` in chunk-major layout ``[T, batch, G, n_chunks, N]``; a constant ``[D, N]`` is
    ``[1, 1, D, 1, N]`` (one "group" per channel, broadcast over batch and positions)."""

    def __init__(self, t: Tensor, channels: int, padded: int, chunk: int) -> None:
        self.dim, self.shape = t.dim(), tuple(t.shape)
        if t.dim() == 2:
            self.value = t.view(1, 1, channels, 1, t.shape[1])
        else:
            t4 = t.unsqueeze(1) if t.dim() == 3 else t  # [batch, G, N, L]
            batch, groups, state, length = t4.shape
            padded4 = _pad(t4, padded)
            self.value = padded4.view(batch, groups, state, padded // chunk, chunk).permute(4, 0, 1, 3, 2).contiguous()
        self.per_group = channels // self.value.shape[2]

    def block(self, d0: int, d1: int) -> Tensor:
        """The values for channels ``[d0, d1)`` (inside one group unless constant), broadcastable to the block."""
        if self.dim == 2:
            return self.value[:, :, d0:d1]
        g = d0 // self.per_group
        return self.value[:, :, g:g + 1]

    def accumulate(self, grad: Tensor, d0: int, d1: int, states: Tensor, weight: Tensor) -> None:
        r"""``grad`` (this layout) += :math:`\sum` over the block's channels (and over batch and positions for a
        constant one) of ``states [T, b, Dc, n_chunks, N]`` times ``weight [T, b, Dc, n_chunks]``."""
        if self.dim == 2:
            grad[0, 0, d0:d1, 0] += torch.einsum("jbdcn,jbdc->dn", states, weight)
        else:
            g = d0 // self.per_group
            grad[:, :, g] += torch.einsum("jbdcn,jbdc->jbcn", states, weight)

    def to_input_layout(self, grad: Tensor, length: int) -> Tensor:
        if self.dim == 2:
            return grad.view(self.shape)
        chunk, batch, groups, chunks, state = grad.shape
        g = grad.permute(1, 2, 4, 3, 0).reshape(batch, groups, state, chunks * chunk)[..., :length]
        return g.reshape(self.shape)


def _channel_blocks(channels: int, per_row: int, group_sizes: list[int]) -> list[tuple[int, int]]:
    """Split ``[0, D)`` into blocks of at most ``BLOCK_ELEMENTS // per_row`` channels that never straddle a group
    boundary of a grouped ``B`` or ``C`` (``group_sizes`` holds their channels per group)."""
    width = max(1, BLOCK_ELEMENTS // max(per_row, 1))
    cuts = {0, channels}
    for size in group_sizes:
        cuts.update(range(0, channels, max(size, 1)))  # size 0 only when D = 0
    bounds = sorted(cuts)
    blocks = []
    for start, end in zip(bounds[:-1], bounds[1:]):
        blocks.extend((d, min(d + width, end)) for d in range(start, end, width))
    return blocks


class _Workspace:
    """Buffers of one call, allocated once and reused by every channel block: a fresh multi-MiB tensor is a fresh
    ``mmap`` whose pages fault in on first touch, which cost more than the arithmetic (measured: an outer-product
    ``exp`` into a reused buffer took 4.4 ms, into a new tensor 11 ms, for 2^20 float32 elements)."""

    def __init__(self, numel: int, like: Tensor) -> None:
        self.numel, self.like = numel, like
        self.buffers: dict[str, Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...]) -> Tensor:
        if name not in self.buffers:
            self.buffers[name] = self.like.new_empty(self.numel)
        size = 1
        for s in shape:
            size *= s
        return self.buffers[name][:size].view(shape)


def _outer_exp(S: Tensor, A: Tensor, out: Tensor | None = None) -> Tensor:
    r""":math:`\exp(S \otimes A)` per channel: ``S [..., Dc, c]``, ``A [Dc, N]`` -> ``[..., Dc, c, N]``."""
    return torch.mul(S[..., None], A[:, None, :], out=out).exp_()


def _decays(dt: Tensor, A: Tensor, out: Tensor | None = None) -> Tensor:
    r""":math:`a_t = \exp(\Delta_t A)`: ``dt [T, b, Dc, n_chunks]``, ``A [Dc, N]`` -> ``[T, b, Dc, n_chunks, N]``."""
    return _outer_exp(dt, A, out)


def _scan_forward_(a: Tensor, h: Tensor, dt: Tensor, A: Tensor, work: Tensor | None = None) -> None:
    r"""In place: ``h`` holds the drives :math:`b_t` and becomes the states :math:`h_t = a_t h_{t-1} + b_t`
    (chunk-major ``[T, b, Dc, n_chunks, N]``; ``dt`` chunk-major ``[T, b, Dc, n_chunks]``)."""
    chunk, chunks = h.shape[0], h.shape[3]
    for j in range(1, chunk):  # chunk-local states, every chunk at once
        h[j].addcmul_(a[j], h[j - 1])
    if chunks == 1:
        return
    S = dt.cumsum(0)  # S_{c,j}: sum of Delta over the chunk up to j
    through = torch.mul(S[-1, ..., None], A[:, None, :]).exp_()  # [b, Dc, n_chunks, N]: across a whole chunk
    h_in = torch.zeros_like(through)
    for c in range(1, chunks):
        torch.addcmul(h[-1, :, :, c - 1], through[:, :, c - 1], h_in[:, :, c - 1], out=h_in[:, :, c])
    rest = S[:, :, :, 1:]
    from_start = _outer_exp(rest, A, None if work is None else work[:rest.numel() * A.shape[1]].view(*rest.shape, -1))
    # from_start = P_{c,j} = exp(A S_{c,j}) for chunks 1.. (chunk 0 starts from h_{-1} = 0)
    h[:, :, :, 1:].addcmul_(from_start, h_in[:, :, 1:])


def _scan_reverse_(a: Tensor, lam: Tensor, dt: Tensor, A: Tensor, work: Tensor | None = None) -> None:
    r"""In place: ``lam`` holds :math:`c_t` and becomes :math:`\lambda_t = a_{t+1} \lambda_{t+1} + c_t`."""
    chunk, chunks = lam.shape[0], lam.shape[3]
    for j in range(chunk - 2, -1, -1):
        lam[j].addcmul_(a[j + 1], lam[j + 1])
    if chunks == 1:
        return
    S = dt.cumsum(0)
    to_end = S[-1:] - S  # sum of Delta over (j, T-1]: exp(A to_end) is the decay from j to the chunk end
    first_to_end = torch.mul(to_end[0, ..., None], A[:, None, :]).exp_()  # [b, Dc, n_chunks, N]
    carry = torch.zeros_like(first_to_end)  # a_t lambda_t at the first position t of chunk c + 1, for chunk c
    for c in range(chunks - 2, -1, -1):
        first_next = torch.addcmul(lam[0, :, :, c + 1], first_to_end[:, :, c + 1], carry[:, :, c + 1])
        torch.mul(a[0, :, :, c + 1], first_next, out=carry[:, :, c])
    head = to_end[:, :, :, :-1]
    to_chunk_end = _outer_exp(head, A, None if work is None else work[:head.numel() * A.shape[1]].view(*head.shape, -1))
    lam[:, :, :, :-1].addcmul_(to_chunk_end, carry[:, :, :-1])


def _pad(t: Tensor, padded: int) -> Tensor:
    return F.pad(t, (0, padded - t.shape[-1])) if padded != t.shape[-1] else t


def _padded_length(length: int, chunk: int) -> int:
    return max(1, -(-length // chunk)) * chunk


class ChunkedScan(torch.autograd.Function):
    """The CPU path: ``(u, dt, A, B, C, chunk) -> (y, last_state)`` with ``y = <C, h>`` (no ``D``, no gate);
    ``dt`` is the final :math:`\\Delta` (biased, softplus-ed, masked). States are recomputed in backward."""

    @staticmethod
    def forward(ctx: Any, u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, chunk: int) -> tuple[Tensor, Tensor]:
        batch, channels, length = u.shape
        chunk = max(1, min(chunk, length))
        padded = _padded_length(length, chunk)
        Bp, Cp = _Param(B, channels, padded, chunk), _Param(C, channels, padded, chunk)
        dtc, duc = _chunk_major(_pad(dt, padded), chunk), _chunk_major(_pad(dt * u, padded), chunk)
        y = dtc.new_empty(dtc.shape)
        last = u.new_empty((batch, channels, A.shape[1]))
        blocks = _blocks(Bp, Cp, batch, channels, padded, A.shape[1])
        ws = _Workspace(max((d1 - d0 for d0, d1 in blocks), default=0) * batch * padded * A.shape[1], u)
        for d0, d1 in blocks:
            h = _states(dtc[:, :, d0:d1], duc[:, :, d0:d1], A[d0:d1], Bp.block(d0, d1), ws)
            last[:, d0:d1] = h[-1, :, :, -1]
            y[:, :, d0:d1] = h.mul_(Cp.block(d0, d1)).sum(-1)  # <C_t, h_t>; h is not needed afterwards
        ctx.chunk = chunk
        ctx.save_for_backward(u, dt, A, B, C)
        return _position_major(y)[:, :, :length], last

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_y: Tensor, grad_last: Tensor) -> tuple[Tensor | None, ...]:
        u, dt, A, B, C = ctx.saved_tensors
        chunk = ctx.chunk
        batch, channels, length = u.shape
        padded = _padded_length(length, chunk)
        Bp, Cp = _Param(B, channels, padded, chunk), _Param(C, channels, padded, chunk)
        dtc, uc = _chunk_major(_pad(dt, padded), chunk), _chunk_major(_pad(u, padded), chunk)
        duc = dtc * uc
        gc = _chunk_major(_pad(grad_y.to(u.dtype), padded), chunk)
        du, ddt = torch.empty_like(uc), torch.empty_like(dtc)
        dA = torch.empty_like(A)
        dB, dC = torch.zeros_like(Bp.value), torch.zeros_like(Cp.value)
        blocks = _blocks(Bp, Cp, batch, channels, padded, A.shape[1])
        ws = _Workspace(max((d1 - d0 for d0, d1 in blocks), default=0) * batch * padded * A.shape[1], u)
        for d0, d1 in blocks:
            Ab, Bb, Cb, dtb = A[d0:d1], Bp.block(d0, d1), Cp.block(d0, d1), dtc[:, :, d0:d1]
            shape = (*dtb.shape, A.shape[1])
            a, work = _decays(dtb, Ab, ws.get("a", shape)), ws.get("work", shape).view(-1)
            h = torch.mul(duc[:, :, d0:d1, :, None], Bb, out=ws.get("h", shape))
            _scan_forward_(a, h, dtb, Ab, work)
            lam = torch.mul(gc[:, :, d0:d1, :, None], Cb, out=ws.get("lam", shape))
            lam[-1, :, :, -1] += grad_last[:, d0:d1].to(lam.dtype)  # padding carries the last state: seed at the end
            _scan_reverse_(a, lam, dtb, Ab, work)
            Cp.accumulate(dC, d0, d1, h, gc[:, :, d0:d1])
            Bp.accumulate(dB, d0, d1, lam, duc[:, :, d0:d1])
            lam_b = torch.mul(lam, Bb, out=ws.get("work", shape)).sum(-1)  # <lambda_t, B_t>
            q = a.mul_(lam)  # q_t = lambda_t a_t h_{t-1}, h_{t-1} one step back in chunk-major order:
            q[1:].mul_(h[:-1])
            q[0, :, :, 1:].mul_(h[-1, :, :, :-1])
            q[0, :, :, 0] = 0  # h_{-1} = 0
            du[:, :, d0:d1] = dtb * lam_b
            ddt[:, :, d0:d1] = uc[:, :, d0:d1] * lam_b + torch.einsum("jbdcn,dn->jbdc", q, Ab)
            dA[d0:d1] = torch.einsum("jbdcn,jbdc->dn", q, dtb)
        return (
            _position_major(du)[:, :, :length], _position_major(ddt)[:, :, :length], dA,
            Bp.to_input_layout(dB, length), Cp.to_input_layout(dC, length), None,
        )


def _blocks(Bp: _Param, Cp: _Param, batch: int, channels: int, padded: int, state: int) -> list[tuple[int, int]]:
    grouped = [p.per_group for p in (Bp, Cp) if p.dim == 4]
    return _channel_blocks(channels, batch * padded * state, grouped)


def _states(dt: Tensor, du: Tensor, A: Tensor, Bb: Tensor, ws: _Workspace) -> Tensor:
    """States ``[T, b, Dc, n_chunks, N]`` of one channel block (chunk-major inputs ``[T, b, Dc, n_chunks]``)."""
    shape = (*dt.shape, A.shape[1])
    a = _decays(dt, A, ws.get("a", shape))
    h = torch.mul(du[..., None], Bb, out=ws.get("h", shape))
    _scan_forward_(a, h, dt, A, ws.get("work", shape).view(-1))
    return h


# --------------------------------------------------------------------------------------------- native (C)
class NativeScan(torch.autograd.Function):
    r"""The CPU path when graphlab's native library builds (:mod:`graphlab.ops._native_scan`): a sequential scan
    per (batch, channel) pair in C, on pthreads; same contract as :class:`ChunkedScan` (no padding to a chunk),
    plus the optional skip ``D``: :math:`y_t = \langle C_t, h_t \rangle + D \odot u_t` in the kernel's pass
    (:math:`\partial L / \partial D = \sum_{b,t} g_t u_t` and :math:`D \odot g_t` for ``u`` are added here).
    The forward keeps the state entering every ``K`` positions (only when a gradient is needed); the backward
    recomputes each chunk's states from it and runs the adjoint backwards."""

    @staticmethod
    def forward(
        ctx: Any, u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        Bk, b_groups = _native_scan.kernel_layout(B)
        Ck, c_groups = _native_scan.kernel_layout(C)
        wants_grad = any(ctx.needs_input_grad[:6])
        y, last, ckpt = _native_scan.scan_forward(
            u, dt.contiguous(), A, Bk, Ck, b_groups, c_groups, wants_grad, skip=D
        )
        if wants_grad:
            ctx.groups = (b_groups, c_groups)
            ctx.shapes = (B.shape, C.shape)
            ctx.save_for_backward(u, dt, A, Bk, Ck, ckpt, D)
        return y, last

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_y: Tensor, grad_last: Tensor) -> tuple[Tensor | None, ...]:
        u, dt, A, Bk, Ck, ckpt, D = ctx.saved_tensors
        B, C = ctx.shapes
        gy = torch.zeros_like(u) if grad_y is None else grad_y.to(u.dtype)
        gl = u.new_zeros((u.shape[0], u.shape[1], A.shape[1])) if grad_last is None else grad_last.to(u.dtype)
        du, ddt, dA, dBk, dCk = _native_scan.scan_backward(u, dt, A, Bk, Ck, *ctx.groups, ckpt, gy, gl)
        dD = None
        if D is not None:
            du.addcmul_(gy, D[:, None])
            dD = (gy * u).sum((0, 2)) if ctx.needs_input_grad[5] else None  # 6x faster than the einsum
        return du, ddt, dA, _native_scan.input_layout(dBk, B), _native_scan.input_layout(dCk, C), dD


# --------------------------------------------------------------------------------------------- Triton
class TritonScan(torch.autograd.Function):
    """The Triton path (:mod:`graphlab.kernels.selective_scan`): same contract as :class:`ChunkedScan`."""

    @staticmethod
    def forward(ctx: Any, u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor) -> tuple[Tensor, Tensor]:
        from graphlab.kernels import selective_scan as kernel

        y, last, _ = kernel.launch_scan_fwd(u, dt, A, B, C)
        ctx.save_for_backward(u, dt, A, B, C)
        return y, last

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_y: Tensor, grad_last: Tensor) -> tuple[Tensor | None, ...]:
        from graphlab.kernels import selective_scan as kernel

        u, dt, A, B, C = ctx.saved_tensors
        record_path(OP_NAME + ".backward", "triton")
        du, ddt, dA, dB, dC = kernel.launch_scan_bwd(u, dt, A, B, C, grad_y, grad_last)
        return du, ddt, dA, dB, dC
