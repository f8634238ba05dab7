r"""``Dropout`` with the mask drawn as a uniform threshold, a drop-in for :class:`torch.nn.Dropout`.

.. math:: \mathrm{dropout}_p(x) = x \odot m / (1 - p), \qquad m = [u \ge p],\; u \sim U[0, 1)

is the same random function as ``F.dropout`` (:math:`P(u \ge p) = 1 - p`, up to the :math:`2^{-24}` grid of
float32 uniforms). On CPU it is 2-3x faster: ``F.dropout`` draws its mask with ``bernoulli_``, which on one
thread costs ~14 ms for a ``2708 x 256`` matrix, against ~5 ms for ``rand_like`` + an in-place threshold and
scale (NCN's encoder and predictor MLPs call dropout ~8 times per step). Evaluation and ``p = 0`` return ``x``
unchanged, as ``nn.Dropout`` does.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["UniformDropout", "uniform_dropout"]


def uniform_dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """``x * [u >= p] / (1 - p)`` with ``u ~ U[0, 1)`` drawn per element (``x`` itself when not training or
    ``p == 0``); differentiable in ``x`` (the gradient is the same mask times the upstream gradient)."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability p must lie in [0, 1), got {p}")
    if not training or p == 0.0:
        return x
    mask = x.new_empty(x.shape).uniform_().ge_(p).mul_(1.0 / (1.0 - p))  # 1/(1-p) where kept, 0 where dropped
    return x * mask


class UniformDropout(nn.Dropout):
    """:class:`torch.nn.Dropout` (same ``p``, same ``train()``/``eval()`` behaviour, no parameters) whose mask is
    :func:`uniform_dropout`'s uniform threshold instead of ``bernoulli_``. ``inplace`` is not supported."""

    def __init__(self, p: float = 0.5) -> None:
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability p must lie in [0, 1), got {p}")
        super().__init__(p)

    def forward(self, x: Tensor) -> Tensor:
        return uniform_dropout(x, self.p, self.training)
