r"""Triton kernels for the selective scan (:func:`graphlab.ops.selective_scan` on CUDA without mamba-ssm).

Forward, per batch element and channel block, sequential over positions with the state in registers:

.. math::
    a_t = \exp(\Delta_t A), \qquad h_t = a_t \odot h_{t-1} + \Delta_t u_t B_t, \qquad y_t = \langle C_t, h_t \rangle.

Backward, the adjoint :math:`\lambda_t = a_{t+1} \odot \lambda_{t+1} + g_t C_t` (seeded with the gradient of the
last state) running from the last position to the first, reading the states :math:`h_t, h_{t-1}` that the forward
kernel stored (it is rerun in backward with ``STORE=True``; the forward of training stores nothing):

.. math::
    q_t = \lambda_t \odot a_t \odot h_{t-1}, \quad
    \partial u_t = \Delta_t \langle \lambda_t, B_t \rangle, \quad
    \partial \Delta_t = u_t \langle \lambda_t, B_t \rangle + \langle A, q_t \rangle, \quad
    \partial A \mathrel{+}= \Delta_t q_t, \quad
    \partial B_t \mathrel{+}= \Delta_t u_t \lambda_t, \quad \partial C_t \mathrel{+}= g_t h_t.

``B``/``C`` are read through strides ``(batch, group, n, position)`` and the channels per group (a constant
``[D, N]`` is batch- and position-stride 0, one group per channel), so all layouts share one kernel; their
gradients are summed over the channels of a group and the batch with ``tl.atomic_add``.

1. kernels :func:`_scan_fwd_kernel`, :func:`_scan_bwd_kernel`; one program per (batch element, channel block);
2. host launchers :func:`launch_scan_fwd`, :func:`launch_scan_bwd`. This module imports only torch and triton;
   the autograd wrapper lives in :mod:`graphlab.ops.selective_scan`.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

MAX_BLOCK_D = 32  # channels per program


@triton.jit
def _scan_fwd_kernel(
    u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, y_ptr, last_ptr, hs_ptr,
    D, L, N,
    sb_b, sb_g, sb_n, sb_l, per_group_b,
    sc_b, sc_g, sc_n, sc_l, per_group_c,
    STORE: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
):
    pid_b = tl.program_id(0).to(tl.int64)
    d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    n = tl.arange(0, BLOCK_N)
    mask_d = d < D
    mask = mask_d[:, None] & (n < N)[None, :]
    A = tl.load(A_ptr + d[:, None] * N + n[None, :], mask=mask, other=0.0)
    h = tl.zeros([BLOCK_D, BLOCK_N], dtype=A.dtype)
    row = (pid_b * D + d) * L  # [BLOCK_D] offsets of (b, d, 0) in u / dt / y
    b_off = pid_b * sb_b + (d // per_group_b)[:, None] * sb_g + n[None, :] * sb_n
    c_off = pid_b * sc_b + (d // per_group_c)[:, None] * sc_g + n[None, :] * sc_n
    state_off = row[:, None] * N + n[None, :]
    for t in range(0, L):
        dt = tl.load(dt_ptr + row + t, mask=mask_d, other=0.0)
        u = tl.load(u_ptr + row + t, mask=mask_d, other=0.0)
        Bt = tl.load(B_ptr + b_off + t * sb_l, mask=mask, other=0.0)
        Ct = tl.load(C_ptr + c_off + t * sc_l, mask=mask, other=0.0)
        h = tl.exp(dt[:, None] * A) * h + (dt * u)[:, None] * Bt
        tl.store(y_ptr + row + t, tl.sum(h * Ct, axis=1), mask=mask_d)
        if STORE:
            tl.store(hs_ptr + state_off + t * N, h, mask=mask)
    tl.store(last_ptr + (pid_b * D + d)[:, None] * N + n[None, :], h, mask=mask)


@triton.jit
def _scan_bwd_kernel(
    u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, g_ptr, glast_ptr, hs_ptr,
    du_ptr, ddt_ptr, dA_ptr, dB_ptr, dC_ptr,
    D, L, N,
    sb_b, sb_g, sb_n, sb_l, per_group_b,
    sc_b, sc_g, sc_n, sc_l, per_group_c,
    BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
):
    pid_b = tl.program_id(0).to(tl.int64)
    d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    n = tl.arange(0, BLOCK_N)
    mask_d = d < D
    mask = mask_d[:, None] & (n < N)[None, :]
    A = tl.load(A_ptr + d[:, None] * N + n[None, :], mask=mask, other=0.0)
    row = (pid_b * D + d) * L
    b_off = pid_b * sb_b + (d // per_group_b)[:, None] * sb_g + n[None, :] * sb_n
    c_off = pid_b * sc_b + (d // per_group_c)[:, None] * sc_g + n[None, :] * sc_n
    state_off = row[:, None] * N + n[None, :]
    # lambda_{t+1} a_{t+1} flowing into position t; at t = L - 1 it is the last state's gradient
    carry = tl.load(glast_ptr + (pid_b * D + d)[:, None] * N + n[None, :], mask=mask, other=0.0)
    dA = tl.zeros([BLOCK_D, BLOCK_N], dtype=A.dtype)
    h = tl.load(hs_ptr + state_off + (L - 1) * N, mask=mask, other=0.0)  # h_{L-1} (the host ensures L > 0)
    for i in range(0, L):
        t = L - 1 - i
        dt = tl.load(dt_ptr + row + t, mask=mask_d, other=0.0)
        u = tl.load(u_ptr + row + t, mask=mask_d, other=0.0)
        g = tl.load(g_ptr + row + t, mask=mask_d, other=0.0)
        Bt = tl.load(B_ptr + b_off + t * sb_l, mask=mask, other=0.0)
        Ct = tl.load(C_ptr + c_off + t * sc_l, mask=mask, other=0.0)
        h_prev = tl.load(hs_ptr + state_off + tl.maximum(t - 1, 0) * N, mask=mask, other=0.0)
        h_prev = tl.where(t > 0, h_prev, 0.0)  # h_{-1} = 0
        lam = carry + g[:, None] * Ct
        a = tl.exp(dt[:, None] * A)
        q = lam * a * h_prev
        lam_b = tl.sum(lam * Bt, axis=1)
        tl.store(du_ptr + row + t, dt * lam_b, mask=mask_d)
        tl.store(ddt_ptr + row + t, u * lam_b + tl.sum(q * A, axis=1), mask=mask_d)
        dA += dt[:, None] * q
        tl.atomic_add(dB_ptr + b_off + t * sb_l, (dt * u)[:, None] * lam, mask=mask)
        tl.atomic_add(dC_ptr + c_off + t * sc_l, g[:, None] * h, mask=mask)
        carry = a * lam
        h = h_prev
    tl.store(dA_ptr + (pid_b * D + d)[:, None] * N + n[None, :], dA, mask=mask)


def _param_view(t: Tensor, channels: int) -> tuple[Tensor, tuple[int, int, int, int], int]:
    """``B``/``C`` as ``(tensor, (batch, group, n, position) strides, channels per group)``."""
    t = t.contiguous()
    if t.dim() == 2:  # [D, N]: one group per channel, the same for every batch element and position
        return t, (0, t.stride(0), t.stride(1), 0), 1
    if t.dim() == 3:  # [batch, N, L]: one group
        return t, (t.stride(0), 0, t.stride(1), t.stride(2)), channels
    return t, (t.stride(0), t.stride(1), t.stride(2), t.stride(3)), channels // t.shape[1]


def _blocks(channels: int, state: int) -> tuple[int, int]:
    return min(MAX_BLOCK_D, triton.next_power_of_2(max(channels, 1))), triton.next_power_of_2(max(state, 1))


def launch_scan_fwd(u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, store_states: bool = False):
    """``(y [batch, D, L], last [batch, D, N], states [batch, D, L, N] or None)``; all inputs one dtype."""
    u, dt, A = u.contiguous(), dt.contiguous(), A.contiguous()
    batch, channels, length = u.shape
    state = A.shape[1]
    Bv, sb, gb = _param_view(B, channels)
    Cv, sc, gc = _param_view(C, channels)
    y = torch.empty_like(u)
    last = torch.zeros((batch, channels, state), dtype=u.dtype, device=u.device)
    states = torch.empty((batch, channels, length, state) if store_states else (1,), dtype=u.dtype, device=u.device)
    block_d, block_n = _blocks(channels, state)
    if batch and channels:
        _scan_fwd_kernel[(batch, triton.cdiv(channels, block_d))](
            u, dt, A, Bv, Cv, y, last, states, channels, length, state, *sb, gb, *sc, gc,
            STORE=store_states, BLOCK_D=block_d, BLOCK_N=block_n,
        )
    return y, last, (states if store_states else None)


def launch_scan_bwd(
    u: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, grad_y: Tensor, grad_last: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``(du, ddt, dA, dB, dC)`` in the layouts of the inputs; recomputes the states with the forward kernel."""
    _, _, states = launch_scan_fwd(u, dt, A, B, C, store_states=True)
    u, dt, A = u.contiguous(), dt.contiguous(), A.contiguous()
    batch, channels, length = u.shape
    state = A.shape[1]
    Bv, sb, gb = _param_view(B, channels)
    Cv, sc, gc = _param_view(C, channels)
    du, ddt = torch.empty_like(u), torch.empty_like(u)
    dA = torch.zeros((batch, channels, state), dtype=u.dtype, device=u.device)
    dB, dC = torch.zeros_like(Bv), torch.zeros_like(Cv)
    block_d, block_n = _blocks(channels, state)
    if batch and channels and length:
        _scan_bwd_kernel[(batch, triton.cdiv(channels, block_d))](
            u, dt, A, Bv, Cv, grad_y.to(u.dtype).contiguous(), grad_last.to(u.dtype).contiguous(), states,
            du, ddt, dA, dB, dC, channels, length, state, *sb, gb, *sc, gc,
            BLOCK_D=block_d, BLOCK_N=block_n,
        )
    return du, ddt, dA.sum(0), dB, dC
