r"""Sheaf neural networks for node classification, selectable from YAML.

* :class:`NeuralSheafDiffusion` (and :class:`DiagNSD`, :class:`BundleNSD`, :class:`GeneralNSD`): discrete NSD,
  Bodnar et al. 2022, eq. 11, :math:`X_{t+1} = (1 + \tanh\varepsilon_t) X_t - \sigma(\Delta_{\mathcal{F}(t)}
  (I \otimes W_1^t) X_t W_2^t)`.
* :class:`ContinuousNSD`: :math:`\dot X(t) = \sigma(-\Delta_{\mathcal{F}(t)} (I \otimes W_1) X(t) W_2)`
  integrated with torchdiffeq (as in the official ``cont_models.py``).
* :class:`ConnectionNSD`: the discrete diffusion on a fixed connection Laplacian from local PCA and orthogonal
  Procrustes alignment (Barbero et al. 2022).
* :class:`SheafNN`: Hansen & Gebhart's sheaf convolutional network on a given sheaf.
* :class:`Sheaf4Rec`: Purificato et al.'s recommender, ``d = 1`` learned sheaf on the user-item graph,
  concatenated layer outputs, dot-product scores (trained with ``LinkPrediction(loss="bpr")``).

Every model takes ``in_channels``, ``out_channels`` and its hyperparameters (the defaults of the official
NSD parser), and ``forward(x, edge_index) -> logits [N, C]``. The graph is prepared once and cached across
calls: self-loops dropped and reverse edges added (the official preprocessing), edges sorted, reverse-edge
and block indices built. The Laplacian is applied with ``graphlab.ops.block_spmm``.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphlab.nn.sparse_input import DropoutLinear
from graphlab.nn.sheaf import (
    DiscreteSheafDiffusionLayer, LocalConcatSheafLearner, Normalisation, OrthMap, SheafAct, SheafConv, SheafGraph, SheafGraphCache,
    SheafLaplacian, SheafLaplacianLearner, SheafType, append_fixed_dims, connection_sheaf_laplacian,
    diag_sheaf_laplacian, general_sheaf_laplacian, local_pca_bases, procrustes_transports, stalk_linear,
)

__all__ = ["NeuralSheafDiffusion", "DiagNSD", "BundleNSD", "GeneralNSD", "ContinuousNSD", "ConnectionNSD", "SheafNN",
           "Sheaf4Rec"]

ODEMethod = Literal["dopri5", "adaptive_heun", "bosh3", "euler", "midpoint", "rk4"]


def _sheaf_param_groups(model: nn.Module, weight_decay: float, sheaf_decay: Optional[float]) -> list[dict[str, Any]]:
    """The official split: parameters of the restriction-map learners get ``sheaf_decay`` (``weight_decay``
    when None), all others ``weight_decay``."""
    sheaf = [p for name, p in model.named_parameters() if ".map_learner." in name]
    ids = {id(p) for p in sheaf}
    others = [p for p in model.parameters() if id(p) not in ids]
    decay = weight_decay if sheaf_decay is None else sheaf_decay
    return [{"params": sheaf, "weight_decay": decay}, {"params": others, "weight_decay": weight_decay}]


class _SheafEncoderDecoder(nn.Module):
    """NSD's input and output maps: ``dropout -> Linear(in, d F) -> ELU -> dropout [-> Linear]`` reshaped to a
    ``[N, d, F]`` cochain, and ``Linear(d F, out)`` back to logits."""

    def __init__(self, in_channels: int, out_channels: int, final_d: int, hidden_channels: int, dropout: float,
                 input_dropout: float, use_act: bool, second_linear: bool) -> None:
        super().__init__()
        if min(in_channels, out_channels, final_d, hidden_channels) < 1:
            raise ValueError("in_channels, out_channels, d and hidden_channels must all be positive")
        if not (0.0 <= dropout < 1.0 and 0.0 <= input_dropout < 1.0):
            raise ValueError(f"dropout and input_dropout must lie in [0, 1), got {dropout}, {input_dropout}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.final_d, self.hidden_channels = final_d, hidden_channels
        self.dropout, self.input_dropout, self.use_act = dropout, input_dropout, use_act
        self.lin1 = DropoutLinear(in_channels, final_d * hidden_channels, p=input_dropout)
        self.lin12 = nn.Linear(final_d * hidden_channels, final_d * hidden_channels) if second_linear else None
        self.lin2 = nn.Linear(final_d * hidden_channels, out_channels)
        self._graphs = SheafGraphCache()

    def encode(self, x: Tensor) -> Tensor:
        return self.lift(self.lin1(x))  # lin1(dropout(x)), on the non-zeros of a sparse bag-of-words x

    def lift(self, x: Tensor) -> Tensor:
        """``lin1``'s output ``[N, d F]`` -> ELU, dropout, optional ``lin12`` -> the ``[N, d, F]`` cochain."""
        if self.use_act:
            x = F.elu(x)
        x = F.dropout(x, p=self.dropout, training=self.training)
        if self.lin12 is not None:
            x = self.lin12(x)
        return x.view(x.size(0), self.final_d, self.hidden_channels)

    def decode(self, x: Tensor) -> Tensor:
        return self.lin2(x.reshape(x.size(0), -1))

    def graph(self, edge_index: Tensor, num_nodes: int) -> SheafGraph:
        return self._graphs(edge_index, num_nodes)

    def reset_encoder_decoder(self) -> None:
        for lin in (self.lin1, self.lin12, self.lin2):
            if lin is not None:
                lin.reset_parameters()


class NeuralSheafDiffusion(_SheafEncoderDecoder):
    r"""Discrete Neural Sheaf Diffusion (Bodnar, Di Giovanni, Chamberlain, Liò, Bronstein; NeurIPS 2022).

    Matrix form, for :math:`t = 0, \dots, T-1`:

    .. math::
        X_{t+1} = (1 + \tanh\varepsilon_t) \odot X_t - \mathrm{ELU}\big(\Delta_{\mathcal{F}(X_t)}
        (I_N \otimes W_1^t)\, X_t\, W_2^t\big)

    Node-wise: :math:`\mathbf{x}_u \leftarrow (1+\tanh\varepsilon_t) \odot \mathbf{x}_u - \mathrm{ELU}\big(
    \sum_v (\Delta_{\mathcal{F}})_{uv} W_1 \mathbf{x}_v W_2\big)` with restriction maps
    :math:`\mathcal{F}_{u \trianglelefteq (u,v)} = \sigma(W[\mathbf{x}_u \Vert \mathbf{x}_v])` learned per layer
    (once, from :math:`X_0`, when ``linear``).

    Symbols: :math:`X_t \in \mathbb{R}^{N d \times F}` (``d`` = stalk dimension incl. fixed ones,
    ``F`` = ``hidden_channels``), :math:`\Delta_{\mathcal{F}}` the augmented normalised sheaf Laplacian.

    Args:
        in_channels, out_channels: input features and classes.
        sheaf_type: ``"diag"``, ``"bundle"`` (O(d)) or ``"general"``.
        d: learned stalk dimension.
        num_layers: diffusion steps ``T`` (``--layers``).
        hidden_channels: channels per stalk dimension ``F``.
        dropout, input_dropout: as the official ``--dropout``, ``--input_dropout``.
        add_lp, add_hp: fixed extra stalk dimensions (:func:`graphlab.nn.sheaf.append_fixed_dims`).
        normalisation: ``"augmented"`` (``--normalised``), ``"degree"`` (``--deg_normalised``) or ``"none"``.
        linear: learn the sheaf once from :math:`X_0` and reuse it.
        left_weights, right_weights: use :math:`W_1`, :math:`W_2`.
        use_act: ELU in the encoder and the diffusion.
        second_linear: a second encoder linear layer.
        sheaf_act: activation of the map learner.
        sparse_learner: sum stalks before the map learner.
        orth_map: O(d) parametrisation (bundle).
        edge_weights: learn edge weights (bundle).
        sheaf_decay: weight decay of the map learners (``None``: the task's ``weight_decay``).

    Shapes: ``x [N, in_channels]``, ``edge_index [2, E]`` (undirected, no self-loops) -> ``[N, out_channels]``.
    """

    def __init__(self, in_channels: int, out_channels: int, sheaf_type: SheafType = "bundle", d: int = 2,
                 num_layers: int = 2, hidden_channels: int = 20, dropout: float = 0.0, input_dropout: float = 0.0,
                 add_lp: bool = False, add_hp: bool = False, normalisation: Normalisation = "augmented",
                 linear: bool = False, left_weights: bool = True, right_weights: bool = True, use_act: bool = True,
                 second_linear: bool = False, sheaf_act: SheafAct = "tanh", sparse_learner: bool = False,
                 orth_map: OrthMap = "householder", edge_weights: bool = True,
                 sheaf_decay: Optional[float] = None) -> None:
        final_d = d + int(add_lp) + int(add_hp)
        super().__init__(in_channels, out_channels, final_d, hidden_channels, dropout, input_dropout, use_act,
                         second_linear)
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.sheaf_type, self.d, self.num_layers, self.linear = sheaf_type, d, num_layers, linear
        self.sheaf_decay = sheaf_decay
        self.sheaf_learners = nn.ModuleList([
            SheafLaplacianLearner(sheaf_type, d, hidden_channels, add_lp, add_hp, normalisation, sparse_learner,
                                  sheaf_act, orth_map, edge_weights)
            for _ in range(1 if linear else num_layers)
        ])
        self.layers = nn.ModuleList([
            DiscreteSheafDiffusionLayer(final_d, hidden_channels, dropout, left_weights, right_weights, use_act)
            for _ in range(num_layers)
        ])
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.reset_encoder_decoder()
        for module in (*self.sheaf_learners, *self.layers):
            module.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        graph = self.graph(edge_index, x.size(0))
        x = self.encode(x)
        laplacian: Optional[SheafLaplacian] = None
        for t, layer in enumerate(self.layers):
            if laplacian is None or not self.linear:
                x_maps = F.dropout(x, p=self.dropout if t > 0 else 0.0, training=self.training)
                laplacian = self.sheaf_learners[t if not self.linear else 0](x_maps, graph)
            x = layer(x, laplacian)
        return self.decode(x)

    def optimizer_param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """Adam groups: the restriction-map learners with ``sheaf_decay``, everything else with ``weight_decay``."""
        return _sheaf_param_groups(self, weight_decay, self.sheaf_decay)

    def extra_repr(self) -> str:
        return f"sheaf_type={self.sheaf_type!r}, d={self.d}, final_d={self.final_d}, num_layers={self.num_layers}"


class _NoOrthMapNSD(NeuralSheafDiffusion):
    """Shared constructor of :class:`DiagNSD` and :class:`GeneralNSD` (no ``orth_map``/``edge_weights``): the
    subclass names its ``_sheaf_type``."""

    _sheaf_type: SheafType

    def __init__(self, in_channels: int, out_channels: int, d: int = 2, num_layers: int = 2,
                 hidden_channels: int = 20, dropout: float = 0.0, input_dropout: float = 0.0, add_lp: bool = False,
                 add_hp: bool = False, normalisation: Normalisation = "augmented", linear: bool = False,
                 left_weights: bool = True, right_weights: bool = True, use_act: bool = True,
                 second_linear: bool = False, sheaf_act: SheafAct = "tanh", sparse_learner: bool = False,
                 sheaf_decay: Optional[float] = None) -> None:
        super().__init__(in_channels, out_channels, self._sheaf_type, d, num_layers, hidden_channels, dropout,
                         input_dropout, add_lp, add_hp, normalisation, linear, left_weights, right_weights, use_act,
                         second_linear, sheaf_act, sparse_learner, sheaf_decay=sheaf_decay)


class DiagNSD(_NoOrthMapNSD):
    """Discrete NSD with diagonal restriction maps (``DiagSheaf`` of the official code); see
    :class:`NeuralSheafDiffusion` for the equations and arguments."""

    _sheaf_type: SheafType = "diag"


class BundleNSD(NeuralSheafDiffusion):
    """Discrete NSD with O(d) restriction maps and learned edge weights (``BundleSheaf``); see
    :class:`NeuralSheafDiffusion`."""

    def __init__(self, in_channels: int, out_channels: int, d: int = 2, num_layers: int = 2,
                 hidden_channels: int = 20, dropout: float = 0.0, input_dropout: float = 0.0, add_lp: bool = False,
                 add_hp: bool = False, normalisation: Normalisation = "augmented", linear: bool = False,
                 left_weights: bool = True, right_weights: bool = True, use_act: bool = True,
                 second_linear: bool = False, sheaf_act: SheafAct = "tanh", sparse_learner: bool = False,
                 orth_map: OrthMap = "householder", edge_weights: bool = True,
                 sheaf_decay: Optional[float] = None) -> None:
        super().__init__(in_channels, out_channels, "bundle", d, num_layers, hidden_channels, dropout, input_dropout,
                         add_lp, add_hp, normalisation, linear, left_weights, right_weights, use_act, second_linear,
                         sheaf_act, sparse_learner, orth_map, edge_weights, sheaf_decay)


class GeneralNSD(_NoOrthMapNSD):
    """Discrete NSD with general ``d x d`` restriction maps (``GeneralSheaf``); see :class:`NeuralSheafDiffusion`.
    The block normaliser uses :func:`graphlab.nn.sheaf.spd_inv_sqrt` (no noise injection)."""

    _sheaf_type: SheafType = "general"


class _SheafODEFunc(nn.Module):
    """Right-hand side :math:`f(t, X) = \\sigma(-\\Delta_{\\mathcal{F}(X)} (I \\otimes W_1) X W_2)`; the sheaf is
    re-learned at every evaluation unless ``linear`` (then it is learned once per integration)."""

    def __init__(self, learner: SheafLaplacianLearner, d: int, hidden_channels: int, left_weights: bool,
                 right_weights: bool, use_act: bool, linear: bool) -> None:
        super().__init__()
        self.learner, self.use_act, self.linear = learner, use_act, linear
        self.left = nn.Linear(d, d, bias=False) if left_weights else None
        self.right = nn.Linear(hidden_channels, hidden_channels, bias=False) if right_weights else None
        self.graph: Optional[SheafGraph] = None
        self.laplacian: Optional[SheafLaplacian] = None

    def reset_parameters(self) -> None:
        self.learner.reset_parameters()
        for lin in (self.left, self.right):
            if lin is not None:
                lin.reset_parameters()

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        if self.laplacian is None or not self.linear:
            self.laplacian = self.learner(x, self.graph)
        h = stalk_linear(x, self.left.weight) if self.left is not None else x
        h = self.right(h) if self.right is not None else h
        h = self.laplacian.matmul(-h)
        return F.elu(h) if self.use_act else h


class ContinuousNSD(_SheafEncoderDecoder):
    r"""Continuous Neural Sheaf Diffusion (Bodnar et al. 2022, Sec. 5; ``*SheafODE`` of the official code).

    Matrix form: :math:`\dot X(t) = \mathrm{ELU}\big(-\Delta_{\mathcal{F}(X(t))} (I_N \otimes W_1) X(t) W_2\big)`,
    :math:`X(0) = \mathrm{encoder}(x)`, integrated over :math:`[0, T]` with ``torchdiffeq.odeint``.

    Node-wise: :math:`\dot{\mathbf{x}}_u = \mathrm{ELU}\big(-\sum_v (\Delta_{\mathcal{F}})_{uv} W_1 \mathbf{x}_v
    W_2\big)`.

    Symbols: as :class:`NeuralSheafDiffusion`; one sheaf learner and one pair :math:`W_1, W_2` shared over time.

    Args:
        in_channels, out_channels, sheaf_type, d, hidden_channels, dropout, input_dropout, add_lp, add_hp,
            normalisation, linear, left_weights, right_weights, use_act, second_linear, sheaf_act, orth_map,
            edge_weights, sheaf_decay: as :class:`NeuralSheafDiffusion`.
        max_t: integration time :math:`T` (``--max_t``).
        int_method: torchdiffeq solver (``--int_method``; torchdiffeq's default ``dopri5``).
        step_size: step of fixed-step solvers (``--step_size``).
        tol_scale: multiplies ``atol = 1e-7`` and ``rtol = 1e-9`` (``--tol_scale``).
        adjoint: integrate the backward pass with ``odeint_adjoint`` (``--adjoint``).

    Shapes: ``x [N, in_channels]``, ``edge_index [2, E]`` -> ``[N, out_channels]``.
    """

    def __init__(self, in_channels: int, out_channels: int, sheaf_type: SheafType = "bundle", d: int = 2,
                 hidden_channels: int = 20, dropout: float = 0.0, input_dropout: float = 0.0, add_lp: bool = False,
                 add_hp: bool = False, normalisation: Normalisation = "augmented", linear: bool = False,
                 left_weights: bool = True, right_weights: bool = True, use_act: bool = True,
                 second_linear: bool = False, sheaf_act: SheafAct = "tanh", orth_map: OrthMap = "householder",
                 edge_weights: bool = True, sheaf_decay: Optional[float] = None, max_t: float = 1.0,
                 int_method: ODEMethod = "dopri5", step_size: float = 1.0, tol_scale: float = 1.0,
                 adjoint: bool = False) -> None:
        final_d = d + int(add_lp) + int(add_hp)
        super().__init__(in_channels, out_channels, final_d, hidden_channels, dropout, input_dropout, use_act,
                         second_linear)
        if max_t <= 0:
            raise ValueError(f"max_t must be positive, got {max_t}")
        self.sheaf_type, self.d, self.sheaf_decay = sheaf_type, d, sheaf_decay
        self.max_t, self.int_method, self.step_size, self.tol_scale, self.adjoint = (
            max_t, int_method, step_size, tol_scale, adjoint)
        learner = SheafLaplacianLearner(sheaf_type, d, hidden_channels, add_lp, add_hp, normalisation, False,
                                        sheaf_act, orth_map, edge_weights)
        self.odefunc = _SheafODEFunc(learner, final_d, hidden_channels, left_weights, right_weights, use_act, linear)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.reset_encoder_decoder()
        self.odefunc.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        from torchdiffeq import odeint, odeint_adjoint

        self.odefunc.graph = self.graph(edge_index, x.size(0))
        self.odefunc.laplacian = None
        x = self.encode(x)
        times = torch.tensor([0.0, self.max_t], dtype=x.dtype, device=x.device)
        fixed = self.int_method in ("euler", "midpoint", "rk4")
        kwargs: dict[str, Any] = dict(method=self.int_method, atol=self.tol_scale * 1e-7, rtol=self.tol_scale * 1e-9)
        if fixed:
            kwargs["options"] = dict(step_size=self.step_size)
        if self.adjoint and self.training:
            x = odeint_adjoint(self.odefunc, x, times, adjoint_params=tuple(self.odefunc.parameters()), **kwargs)[-1]
        else:
            x = odeint(self.odefunc, x, times, **kwargs)[-1]
        self.odefunc.laplacian = None
        return self.decode(x)

    def optimizer_param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """Adam groups: the map learner with ``sheaf_decay``, everything else with ``weight_decay``."""
        return _sheaf_param_groups(self, weight_decay, self.sheaf_decay)


class ConnectionNSD(_SheafEncoderDecoder):
    r"""Sheaf diffusion on a connection Laplacian (Barbero, Bodnar, Sáez de Ocáriz Borde, Bronstein, Veličković,
    Liò; 2022): restriction maps are not learned but computed once from the input features.

    Each node gets a tangent basis :math:`O_u \in \mathbb{R}^{p \times d}` by local PCA of its (graph-aware)
    neighbourhood; each edge the Procrustes transport :math:`O_{uv} = U V^\top`, :math:`O_u^\top O_v = U \Sigma
    V^\top`. The fixed Laplacian :math:`\Delta` with :math:`L_{uu} = \deg(u) I`, :math:`L_{uv} = -O_{uv}`
    (augmented normalisation) then drives the discrete NSD update

    .. math::
        X_{t+1} = (1 + \tanh\varepsilon_t) \odot X_t - \mathrm{ELU}\big(\Delta (I_N \otimes W_1^t) X_t W_2^t\big).

    Node-wise: :math:`\mathbf{x}_u \leftarrow (1+\tanh\varepsilon_t)\odot\mathbf{x}_u - \mathrm{ELU}\big(
    \sum_v \Delta_{uv} W_1 \mathbf{x}_v W_2\big)`.

    Args:
        in_channels, out_channels, d, num_layers, hidden_channels, dropout, input_dropout, add_lp, add_hp,
            left_weights, right_weights, use_act, second_linear: as :class:`NeuralSheafDiffusion`.
        num_neighbours: size of the local-PCA neighbourhood (the node itself included), at least ``d + 1``.

    Shapes: ``x [N, in_channels]``, ``edge_index [2, E]`` -> ``[N, out_channels]``.
    """

    def __init__(self, in_channels: int, out_channels: int, d: int = 2, num_layers: int = 2,
                 hidden_channels: int = 20, dropout: float = 0.0, input_dropout: float = 0.0, add_lp: bool = False,
                 add_hp: bool = False, left_weights: bool = True, right_weights: bool = True, use_act: bool = True,
                 second_linear: bool = False, num_neighbours: int = 10) -> None:
        final_d = d + int(add_lp) + int(add_hp)
        super().__init__(in_channels, out_channels, final_d, hidden_channels, dropout, input_dropout, use_act,
                         second_linear)
        if num_neighbours < d + 1:
            raise ValueError(f"num_neighbours must be at least d + 1 = {d + 1}, got {num_neighbours}")
        self.d, self.num_layers, self.add_lp, self.add_hp, self.num_neighbours = d, num_layers, add_lp, add_hp, num_neighbours
        self.layers = nn.ModuleList([
            DiscreteSheafDiffusionLayer(final_d, hidden_channels, dropout, left_weights, right_weights, use_act)
            for _ in range(num_layers)
        ])
        self._connection: Optional[tuple[SheafGraph, Tensor, SheafLaplacian]] = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.reset_encoder_decoder()
        for layer in self.layers:
            layer.reset_parameters()

    def connection_laplacian(self, x: Tensor, graph: SheafGraph) -> SheafLaplacian:
        """The fixed Laplacian of ``(x, graph)``, computed on the first call and cached."""
        cached = self._connection
        if cached is not None and cached[0] is graph and cached[1].shape == x.shape and torch.equal(cached[1], x):
            return cached[2]
        bases = local_pca_bases(x.detach(), graph, self.d, self.num_neighbours)
        diag, off = connection_sheaf_laplacian(procrustes_transports(bases, graph), graph)
        diag, off = append_fixed_dims(diag, off, graph, self.add_lp, self.add_hp)
        laplacian = SheafLaplacian(diag.contiguous(), off.contiguous(), graph)
        self._connection = (graph, x.detach().clone(), laplacian)
        return laplacian

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        graph = self.graph(edge_index, x.size(0))
        laplacian = self.connection_laplacian(x, graph)
        h = self.encode(x)
        for layer in self.layers:
            h = layer(h, laplacian)
        return self.decode(h)


class SheafNN(nn.Module):
    r"""Sheaf Neural Network of Hansen & Gebhart (2020) on a given sheaf.

    Matrix form, per layer: :math:`X \leftarrow \sigma\big((I - \Delta_{\mathcal{F}}) (I_N \otimes W_1) X W_2\big)`
    (:class:`~graphlab.nn.sheaf.SheafConv`), between a linear encoder to ``d * hidden_channels`` and a linear
    decoder. Node-wise: :math:`\mathbf{x}_u \leftarrow \sigma\big(W_1\mathbf{x}_u W_2 - \sum_v
    (\Delta_\mathcal{F})_{uv} W_1 \mathbf{x}_v W_2\big)`.

    The sheaf is given, not learned: ``forward(x, edge_index, restriction_maps)`` takes the maps
    :math:`\mathcal{F}_{u \trianglelefteq e}` of each directed edge ``e = (u, v)`` of ``edge_index``
    (``[E, d, d]``, or ``[E, d]`` diagonal); without them the constant sheaf (identity maps) is used, for which
    the layer is a GCN on every stalk dimension. Given maps need an undirected, loop-free ``edge_index``;
    without them the graph is symmetrised and its self-loops dropped.

    Args:
        in_channels, out_channels: input features and classes.
        d: stalk dimension.
        hidden_channels: channels per stalk dimension.
        num_layers: sheaf convolutions.
        dropout: dropout before every convolution.
        normalisation: Laplacian normalisation (``"augmented"`` default).
        act: ``"elu"``, ``"relu"`` or ``"id"``.

    Shapes: ``x [N, in_channels]``, ``edge_index [2, E]``, ``restriction_maps [E, d, d]`` -> ``[N, out_channels]``.
    """

    def __init__(self, in_channels: int, out_channels: int, d: int = 1, hidden_channels: int = 16,
                 num_layers: int = 2, dropout: float = 0.5, normalisation: Normalisation = "augmented",
                 act: Literal["elu", "relu", "id"] = "elu") -> None:
        super().__init__()
        self.d, self.hidden_channels, self.dropout, self.normalisation = d, hidden_channels, dropout, normalisation
        self.lin1 = nn.Linear(in_channels, d * hidden_channels)
        self.convs = nn.ModuleList([SheafConv(d, hidden_channels, hidden_channels, act=act) for _ in range(num_layers)])
        self.lin2 = nn.Linear(d * hidden_channels, out_channels)
        self._graphs = SheafGraphCache(canonicalise=True)
        self._strict_graphs = SheafGraphCache(canonicalise=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lin1.reset_parameters()
        self.lin2.reset_parameters()
        for conv in self.convs:
            conv.reset_parameters()

    def laplacian(self, graph: SheafGraph, restriction_maps: Optional[Tensor], dtype: torch.dtype) -> SheafLaplacian:
        if restriction_maps is None:
            eye = torch.eye(self.d, dtype=dtype, device=graph.edge_index.device)
            restriction_maps = eye.expand(graph.edge_index.size(1), self.d, self.d)
        elif restriction_maps.size(0) != graph.edge_index.size(1) or restriction_maps.size(1) != self.d:
            raise ValueError(f"restriction_maps must be [E, d, d] or [E, d] with E={graph.edge_index.size(1)}, "
                             f"d={self.d}; got {tuple(restriction_maps.shape)}")
        else:
            restriction_maps = restriction_maps[graph.perm]  # into the sorted edge order of the graph
        build = diag_sheaf_laplacian if restriction_maps.dim() == 2 else general_sheaf_laplacian
        diag, off = build(restriction_maps.to(dtype), graph, self.normalisation)
        return SheafLaplacian(diag, off, graph)

    def forward(self, x: Tensor, edge_index: Tensor, restriction_maps: Optional[Tensor] = None) -> Tensor:
        cache = self._graphs if restriction_maps is None else self._strict_graphs
        graph = cache(edge_index, x.size(0))
        laplacian = self.laplacian(graph, restriction_maps, x.dtype)
        h = self.lin1(x).view(x.size(0), self.d, self.hidden_channels)
        for conv in self.convs:
            h = conv(F.dropout(h, p=self.dropout, training=self.training), laplacian)
        return self.lin2(h.reshape(x.size(0), -1))


class Sheaf4RecConv(nn.Module):
    r"""One Sheaf4Rec layer (Purificato et al.): a ``d = 1`` sheaf learned from both ends of each edge, then
    one explicit diffusion step through a linear map.

    Matrix form: :math:`X \leftarrow X - \alpha\, \Delta_{\mathcal{F}(X)} (X W^\top + b)`, with
    :math:`\mathcal{F}_{u \trianglelefteq (u,v)} = \tanh(w^\top [\mathbf{x}_u \Vert \mathbf{x}_v])` and
    :math:`\Delta_\mathcal{F}` the augmented normalised sheaf Laplacian.

    Node-wise: :math:`\mathbf{x}_u \leftarrow \mathbf{x}_u - \alpha \sum_v (\Delta_\mathcal{F})_{uv}
    (W \mathbf{x}_v + b)`.

    Args:
        latent_dim: embedding width.
        step_size: :math:`\alpha`.

    Shapes: ``x [N, latent_dim]``, a :class:`SheafGraph` -> ``[N, latent_dim]``.
    """

    def __init__(self, latent_dim: int, step_size: float = 1.0) -> None:
        super().__init__()
        self.latent_dim, self.step_size = latent_dim, step_size
        self.sheaf_learner = LocalConcatSheafLearner(latent_dim, (1,), sheaf_act="tanh")
        self.linear = nn.Linear(latent_dim, latent_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.sheaf_learner.reset_parameters()
        self.linear.reset_parameters()

    def forward(self, x: Tensor, graph: SheafGraph) -> Tensor:
        diag, off = diag_sheaf_laplacian(self.sheaf_learner(x, graph.edge_index), graph, "augmented")
        h = SheafLaplacian(diag, off, graph).matmul(self.linear(x).unsqueeze(1)).squeeze(1)
        return x - self.step_size * h


class Sheaf4Rec(nn.Module):
    r"""Sheaf4Rec (Purificato, Cassarà, Liò, Silvestri; ACM TORS 2025, arXiv 2304.09097).

    Embeddings :math:`E_0` (one row per user and item) go through ``num_layers`` :class:`Sheaf4RecConv`
    layers; the representation is the concatenation :math:`Z = [E_0 \Vert E_1 \Vert \dots \Vert E_L]` and a
    user-item pair scores :math:`s(u, i) = \mathbf{z}_u^\top \mathbf{z}_i`.

    The embedding table is the first linear layer applied to one-hot node features (as the MovieLens and
    ``ogbl-ddi`` DataModules provide them), so ``in_channels`` is the number of nodes. The paper trains with
    BPR plus L2 on :math:`E_0` (decay 1e-4), batch 1024, Adam 1e-3: ``LinkPrediction(loss="bpr",
    l2_decay=1e-4)`` with :class:`~graphlab.data.MovieLens100K` ``(batch_size=1024)``.

    Args:
        in_channels: node-feature width (number of nodes for one-hot features).
        out_channels: unused (scores are scalars); present for the CLI's channel linking.
        latent_dim: embedding width (paper: 64).
        num_layers: sheaf layers (paper: 5).
        step_size: diffusion step :math:`\alpha` (paper: 1.0).

    Shapes: ``encode(x [N, in], edge_index [2, E]) -> [N, (L + 1) latent_dim]``;
    ``decode(z, pairs [2, P]) -> [P]``; ``forward(x, edge_index, edge_label_index) -> [P]``.
    """

    def __init__(self, in_channels: int, out_channels: int = 1, latent_dim: int = 64, num_layers: int = 5,
                 step_size: float = 1.0) -> None:
        super().__init__()
        self.in_channels, self.latent_dim, self.num_layers = in_channels, latent_dim, num_layers
        self.embedding = nn.Linear(in_channels, latent_dim, bias=False)
        self.convs = nn.ModuleList([Sheaf4RecConv(latent_dim, step_size) for _ in range(num_layers)])
        self._graphs = SheafGraphCache(canonicalise=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embedding.weight, std=0.1)
        for conv in self.convs:
            conv.reset_parameters()

    def embed(self, x: Tensor) -> Tensor:
        """:math:`E_0`: the embedding rows of one-hot ``x`` (a linear map of general features)."""
        return self.embedding(x)

    def encode(self, x: Tensor, edge_index: Tensor) -> Tensor:
        graph = self._graphs(edge_index, x.size(0))
        h = self.embed(x)
        outs = [h]
        for conv in self.convs:
            h = conv(h, graph)
            outs.append(h)
        return torch.cat(outs, dim=-1)

    @staticmethod
    def decode(z: Tensor, pairs: Tensor, *, graph: Optional[object] = None) -> Tensor:
        """Inner-product logits ``[P]`` of the pairs ``[2, P]``; ``graph`` (the task's batch) is unused."""
        return (z[pairs[0]] * z[pairs[1]]).sum(-1)

    def forward(self, x: Tensor, edge_index: Tensor, edge_label_index: Tensor) -> Tensor:
        return self.decode(self.encode(x, edge_index), edge_label_index)
