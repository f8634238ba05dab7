r"""Sheaf layers: discrete NSD diffusion (Bodnar et al. 2022) and the sheaf convolution (Hansen & Gebhart 2020)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphlab.nn.sheaf.laplacian import SheafLaplacian

__all__ = ["stalk_linear", "DiscreteSheafDiffusionLayer", "SheafConv"]


def stalk_linear(x: Tensor, weight: Tensor) -> Tensor:
    r"""``(W \otimes I_F)``-style mixing of stalk dimensions: ``out[n, i, f] = sum_j W[i, j] x[n, j, f]``."""
    return torch.einsum("ij,njf->nif", weight, x)


def _check_cochain(x: Tensor, laplacian: SheafLaplacian, d: int, channels: int) -> None:
    """``x`` is a ``[N, d, F]`` cochain; a :class:`SheafLaplacian` must live on ``N`` nodes with stalk dimension
    ``d`` (any other operator with a ``matmul`` of cochains, e.g. a benchmark's COO Laplacian, is taken as is)."""
    if x.dim() != 3 or tuple(x.shape[1:]) != (d, channels):
        raise ValueError(f"x must be a cochain [N, d, F] = [N, {d}, {channels}], got {tuple(x.shape)}; "
                         f"reshape it with x.view(N, d, F)")
    if isinstance(laplacian, SheafLaplacian) and (laplacian.d != d or laplacian.graph.num_nodes != x.size(0)):
        raise ValueError(f"the Laplacian has stalk dimension {laplacian.d} on {laplacian.graph.num_nodes} nodes but "
                         f"x is [{x.size(0)}, {d}, {channels}]; build the layer with d = d + add_lp + add_hp of the "
                         f"Laplacian and pass a cochain on its graph")


class DiscreteSheafDiffusionLayer(nn.Module):
    r"""One step of discrete Neural Sheaf Diffusion (Bodnar et al. 2022, eq. 11).

    Matrix form:

    .. math::
        X_{t+1} = (1 + \tanh \varepsilon_t) \odot X_t - \sigma\Big(\Delta_{\mathcal{F}(t)}
        (I_N \otimes W_1^t)\, \mathrm{dropout}(X_t)\, W_2^t\Big)

    Node-wise: :math:`\mathbf{x}_u \leftarrow (1 + \tanh\varepsilon) \odot \mathbf{x}_u - \sigma\big(
    \sum_v (\Delta_{\mathcal{F}})_{uv} W_1 \mathbf{x}_v W_2\big)`.

    Symbols: :math:`X_t \in \mathbb{R}^{N d \times F}`, :math:`W_1 \in \mathbb{R}^{d\times d}` (left weights,
    identity init), :math:`W_2 \in \mathbb{R}^{F \times F}` (right weights, orthogonal init),
    :math:`\varepsilon_t \in \mathbb{R}^d`, :math:`\sigma` = ELU.

    Args:
        d: stalk dimension (including fixed dimensions).
        hidden_channels: ``F``.
        dropout: dropout on :math:`X_t` before the weights.
        left_weights, right_weights: use :math:`W_1` / :math:`W_2` (identity otherwise).
        use_act: apply ELU.

    Shapes: ``x [N, d, F]``, :class:`SheafLaplacian` -> ``[N, d, F]``.
    """

    def __init__(self, d: int, hidden_channels: int, dropout: float = 0.0, left_weights: bool = True,
                 right_weights: bool = True, use_act: bool = True) -> None:
        super().__init__()
        self.d, self.hidden_channels, self.dropout, self.use_act = d, hidden_channels, dropout, use_act
        self.left = nn.Linear(d, d, bias=False) if left_weights else None
        self.right = nn.Linear(hidden_channels, hidden_channels, bias=False) if right_weights else None
        self.epsilons = nn.Parameter(torch.zeros(d, 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.left is not None:
            nn.init.eye_(self.left.weight)
        if self.right is not None:
            nn.init.orthogonal_(self.right.weight)
        nn.init.zeros_(self.epsilons)

    def forward(self, x: Tensor, laplacian: SheafLaplacian) -> Tensor:
        _check_cochain(x, laplacian, self.d, self.hidden_channels)
        h = F.dropout(x, p=self.dropout, training=self.training)
        if self.left is not None:
            h = stalk_linear(h, self.left.weight)
        if self.right is not None:
            h = self.right(h)
        h = laplacian.matmul(h)
        if self.use_act:
            h = F.elu(h)
        return (1 + torch.tanh(self.epsilons)) * x - h

    def extra_repr(self) -> str:
        return f"d={self.d}, hidden_channels={self.hidden_channels}, dropout={self.dropout}"


class SheafConv(nn.Module):
    r"""Sheaf convolution of Hansen & Gebhart (2020), the sheaf analogue of a GCN layer.

    Matrix form: :math:`Y = \sigma\big((I_{Nd} - \Delta_{\mathcal{F}}) (I_N \otimes W_1) X W_2\big)`.

    Node-wise: :math:`\mathbf{y}_u = \sigma\big(W_1 \mathbf{x}_u W_2 - \sum_v (\Delta_{\mathcal{F}})_{uv}
    W_1 \mathbf{x}_v W_2\big)`.

    Symbols: :math:`\Delta_{\mathcal{F}}` a (normalised) sheaf Laplacian on a given sheaf,
    :math:`W_1 \in \mathbb{R}^{d \times d}`, :math:`W_2 \in \mathbb{R}^{F_{in} \times F_{out}}`.

    Args:
        d: stalk dimension.
        in_channels, out_channels: :math:`F_{in}`, :math:`F_{out}`.
        left_weights: learn :math:`W_1` (identity otherwise).
        act: ``"elu"``, ``"relu"`` or ``"id"``.

    Shapes: ``x [N, d, F_in]``, :class:`SheafLaplacian` -> ``[N, d, F_out]``.
    """

    def __init__(self, d: int, in_channels: int, out_channels: int, left_weights: bool = True,
                 act: Literal["elu", "relu", "id"] = "elu") -> None:
        super().__init__()
        acts = {"elu": F.elu, "relu": F.relu, "id": lambda t: t}
        if act not in acts:
            raise ValueError(f"act must be one of {sorted(acts)}, got {act!r}")
        self.d, self.in_channels, self.out_channels, self.act_name = d, in_channels, out_channels, act
        self.act = acts[act]
        self.left = nn.Linear(d, d, bias=False) if left_weights else None
        self.right = nn.Linear(in_channels, out_channels, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.left is not None:
            nn.init.eye_(self.left.weight)
        self.right.reset_parameters()

    def forward(self, x: Tensor, laplacian: SheafLaplacian) -> Tensor:
        _check_cochain(x, laplacian, self.d, self.in_channels)
        h = stalk_linear(x, self.left.weight) if self.left is not None else x
        h = self.right(h)
        return self.act(h - laplacian.matmul(h))

    def extra_repr(self) -> str:
        return f"d={self.d}, {self.in_channels}, {self.out_channels}, act={self.act_name!r}"
