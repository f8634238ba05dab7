r"""The Mamba block (Gu & Dao, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces", 2023) and its
bidirectional variant over padded batches of sequences, on :func:`graphlab.ops.selective_scan`.

Mamba block, for :math:`x \in \mathbb{R}^{L \times d}` (``d_model``), :math:`E = \mathrm{expand} \cdot d`:

.. math::
    [\bar x, z] = x W_{\mathrm{in}}, \qquad
    x' = \mathrm{SiLU}(\mathrm{CausalConv1d}_{d_{\mathrm{conv}}}(\bar x)), \qquad
    [\delta_r, B, C] = x' W_x, \qquad \Delta = \mathrm{softplus}(\delta_r W_\Delta + b_\Delta),

.. math::
    h_t = \exp(\Delta_t A) \odot h_{t-1} + \Delta_t B_t x'_t, \quad
    y_t = \langle C_t, h_t \rangle + D \odot x'_t, \quad
    \mathrm{out} = (y \odot \mathrm{SiLU}(z)) W_{\mathrm{out}},

with :math:`A = -\exp(A_{\log}) \in \mathbb{R}^{E \times N}` (S4D-real init :math:`A_{e,n} = -(n+1)`), the
convolution depthwise, :math:`\delta_r \in \mathbb{R}^{r}` (``dt_rank``), and :math:`B_t, C_t \in \mathbb{R}^N`
(``d_state``) shared by the channels.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphlab.ops import selective_scan


def valid_mask(lengths: Tensor, length: int) -> Tensor:
    """``[batch, L]`` bool, True at positions ``t < lengths[b]``."""
    return torch.arange(length, device=lengths.device)[None, :] < lengths[:, None]


def flip_valid(x: Tensor, lengths: Tensor | None = None) -> Tensor:
    r"""Reverse every sequence of a padded batch within its valid length; padding stays where it is.

    .. math:: \mathrm{out}_{b,t} = x_{b,\, \ell_b - 1 - t} \ (t < \ell_b), \qquad \mathrm{out}_{b,t} = x_{b,t}\ (t \ge \ell_b)

    Args:
        x: ``[batch, L, ...]``.
        lengths: ``[batch]`` valid lengths; ``None`` flips the whole length.

    Returns:
        A tensor like ``x`` (one gather, no loop); ``flip_valid(flip_valid(x, l), l) == x``.
    """
    if lengths is None:
        return x.flip(1)
    length = x.shape[1]
    t = torch.arange(length, device=x.device)[None, :]
    ell = lengths.to(x.device)[:, None]
    index = torch.where(t < ell, ell - 1 - t, t)  # [batch, L]
    return x.gather(1, index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x))


def _check_sequence_input(x: Tensor, d_model: int, lengths: Tensor | None) -> None:
    if not isinstance(x, Tensor) or x.dim() != 3:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x must be [batch, L, d_model], got {shape}; add a batch dimension with x.unsqueeze(0)")
    if x.shape[-1] != d_model:
        raise ValueError(f"x has {x.shape[-1]} features but the block has d_model = {d_model}")
    if lengths is not None:
        if not isinstance(lengths, Tensor) or lengths.shape != (x.shape[0],):
            raise ValueError(f"lengths must be an integer tensor [batch] = ({x.shape[0]},)")
        if lengths.numel() and (int(lengths.min()) < 0 or int(lengths.max()) > x.shape[1]):
            raise ValueError(
                f"lengths must lie in [0, L = {x.shape[1]}], got max {int(lengths.max())}, min {int(lengths.min())}"
            )


class Mamba(nn.Module):
    r"""The Mamba block (module docstring) over ``[batch, L, d_model]`` with optional per-sequence lengths.

    Padding never reaches a valid position: the sequences are valid prefixes, the convolution is causal (a
    position reads only itself and the ``d_conv - 1`` before it), and the scan carries its state unchanged
    through invalid positions; padded outputs are 0.

    Args:
        d_model: feature size :math:`d`.
        d_state: state size :math:`N` (default 16).
        d_conv: causal convolution width (default 4).
        expand: :math:`E / d` (default 2).
        dt_rank: rank :math:`r` of the :math:`\Delta` projection; ``None`` means :math:`\lceil d / 16 \rceil`.
        dt_min, dt_max: range of the initial :math:`\Delta = \mathrm{softplus}(b_\Delta)`, log-uniform
            (defaults 1e-3, 0.1).
        dt_init_floor: smallest initial :math:`\Delta` (default 1e-4).
        dt_scale: scale of the :math:`W_\Delta` init, uniform in :math:`\pm r^{-1/2} \cdot` ``dt_scale``.
        conv_bias: bias in the convolution (default True).
        bias: bias in the input and output projections (default False).

    Shapes:
        x ``[batch, L, d_model]``, lengths ``[batch]`` -> ``[batch, L, d_model]``.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | None = None,
        dt_min: float = 1e-3,
        dt_max: float = 0.1,
        dt_init_floor: float = 1e-4,
        dt_scale: float = 1.0,
        conv_bias: bool = True,
        bias: bool = False,
    ) -> None:
        super().__init__()
        sizes = {"d_model": d_model, "d_state": d_state, "d_conv": d_conv, "expand": expand}
        if dt_rank is not None:
            sizes["dt_rank"] = dt_rank
        for name, value in sizes.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r} (mamba-ssm's defaults: d_state=16, "
                                 "d_conv=4, expand=2, dt_rank=ceil(d_model / 16))")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
        self.d_model, self.d_state, self.d_conv, self.expand = d_model, d_state, d_conv, expand
        self.d_inner = expand * d_model
        self.dt_rank = math.ceil(d_model / 16) if dt_rank is None else dt_rank
        self.dt_min, self.dt_max, self.dt_init_floor, self.dt_scale = dt_min, dt_max, dt_init_floor, dt_scale
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=bias)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner, padding=d_conv - 1,
                                bias=conv_bias)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        self.A_log = nn.Parameter(torch.empty(self.d_inner, d_state))
        self.D = nn.Parameter(torch.empty(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Mamba's init: :math:`W_\\Delta \\sim U(\\pm r^{-1/2} s)`, :math:`b_\\Delta = \\mathrm{softplus}^{-1}(\\Delta_0)`
        with :math:`\\Delta_0` log-uniform in ``[dt_min, dt_max]``, :math:`A_{e,n} = -(n+1)`, :math:`D = 1`."""
        for layer in (self.in_proj, self.conv1d, self.x_proj, self.out_proj):
            layer.reset_parameters()
        std = self.dt_rank**-0.5 * self.dt_scale
        with torch.no_grad():
            nn.init.uniform_(self.dt_proj.weight, -std, std)
            log_lo, log_hi = math.log(self.dt_min), math.log(self.dt_max)
            dt = torch.exp(torch.rand(self.d_inner) * (log_hi - log_lo) + log_lo).clamp(min=self.dt_init_floor)
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
            n = torch.arange(1, self.d_state + 1, dtype=torch.float32)
            self.A_log.copy_(torch.log(n).expand(self.d_inner, -1))
            self.D.fill_(1.0)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        _check_sequence_input(x, self.d_model, lengths)
        length = x.shape[1]
        valid = None if lengths is None else valid_mask(lengths.to(x.device), length)[..., None]
        if valid is not None:  # padding is never read: a NaN/inf there reaches no output and no gradient
            x = torch.where(valid, x, x.new_zeros(()))
        if length == 0:  # nothing to scan (the convolution rejects an empty sequence)
            return self.out_proj(x.new_zeros((x.shape[0], 0, self.d_inner)))
        xs, z = self.in_proj(x).transpose(1, 2).chunk(2, dim=1)  # [batch, E, L] each
        xs = F.silu(self.conv1d(xs)[..., :length])  # causal: output t sees inputs t - d_conv + 1 .. t
        dt_low, B, C = self.x_proj(xs.transpose(1, 2)).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = (dt_low @ self.dt_proj.weight.t()).transpose(1, 2)  # [batch, E, L]; bias added in the scan
        y = selective_scan(
            xs, delta, -torch.exp(self.A_log), B.transpose(1, 2), C.transpose(1, 2), self.D, z=z,
            delta_bias=self.dt_proj.bias, delta_softplus=True, lengths=lengths,
        )
        out = self.out_proj(y.transpose(1, 2))
        return out if valid is None else torch.where(valid, out, out.new_zeros(()))

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.d_model}, d_state={self.d_state}, d_conv={self.d_conv}, "
                f"expand={self.expand}, dt_rank={self.dt_rank})")


class BiMamba(nn.Module):
    r"""Bidirectional Mamba: a forward block on each sequence and a backward block on each sequence reversed
    **within its valid length** (:func:`flip_valid`, not the padded tensor), summed (GMN's bidirectional SSM):

    .. math::
        \mathrm{out} = \mathrm{Mamba}_{\rightarrow}(x) + \mathrm{flip}(\mathrm{Mamba}_{\leftarrow}(\mathrm{flip}(x)))

    or, with ``combine="concat"``, :math:`[\mathrm{Mamba}_{\rightarrow}(x) \,\|\, \mathrm{flip}(\dots)] W`
    (a linear map :math:`2d \to d`). The two blocks have their own weights. Each direction sees only its own
    sequence's valid positions, so a padded batch gives exactly the outputs of unpadded runs.

    Args:
        d_model: feature size; the other arguments as :class:`Mamba`.
        combine: ``"sum"`` (default) or ``"concat"``.

    Shapes:
        x ``[batch, L, d_model]``, lengths ``[batch]`` -> ``[batch, L, d_model]`` (padded positions 0).
    """

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2,
                 dt_rank: int | None = None, combine: Literal["sum", "concat"] = "sum") -> None:
        super().__init__()
        if combine not in ("sum", "concat"):
            raise ValueError(f"combine must be 'sum' or 'concat', got {combine!r}")
        self.combine = combine
        self.forward_block = Mamba(d_model, d_state, d_conv, expand, dt_rank)
        self.backward_block = Mamba(d_model, d_state, d_conv, expand, dt_rank)
        self.merge = nn.Linear(2 * d_model, d_model) if combine == "concat" else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.forward_block.reset_parameters()
        self.backward_block.reset_parameters()
        if self.merge is not None:
            self.merge.reset_parameters()

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        ahead = self.forward_block(x, lengths)
        behind = flip_valid(self.backward_block(flip_valid(x, lengths), lengths), lengths)
        if self.merge is None:
            return ahead + behind
        out = self.merge(torch.cat([ahead, behind], dim=-1))
        if lengths is not None:
            out = torch.where(valid_mask(lengths.to(x.device), x.shape[1])[..., None], out, out.new_zeros(()))
        return out

    def __repr__(self) -> str:
        block = self.forward_block
        return f"{self.__class__.__name__}({block.d_model}, d_state={block.d_state}, combine={self.combine!r})"
