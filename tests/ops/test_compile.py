"""torch.compile traces around graphlab's kernels: the custom ops have consistent fake implementations, and a
compiled model gives eager's output and gradients without graph breaks.

Backend ``aot_eager``: it runs Dynamo and AOTAutograd (which trace the autograd.Function and the ops' fake
implementations, forward and backward: the part this test is about) and then executes the captured graphs
eagerly. Inductor would add C++ code generation, which takes minutes on the 2-core CI machine and tests nothing
of graphlab's.
"""

from __future__ import annotations

import pytest
import torch

import graphlab.ops as ops
from graphlab.ops import _library, _native

KERNELS = ("cpu-native", "cpu-torch")


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _kernel_or_skip(kernel: str) -> None:
    if kernel == "cpu-native" and not _native.available():
        pytest.skip(f"native kernels unavailable: {_native.unavailable_reason()}")


def _graph(num_nodes: int = 12, num_edges: int = 40, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=gen)
    rowptr, col, _ = ops.to_csr(edge_index, num_nodes)
    return rowptr, col, gen


@pytest.mark.parametrize("kernel", KERNELS)
def test_custom_ops_pass_opcheck(kernel):
    """Schema, fake (meta) implementation and dispatcher registration of every op, on real inputs."""
    _kernel_or_skip(kernel)
    rowptr, col, gen = _graph()
    x = torch.randn(12, 5, generator=gen)
    w = torch.rand(col.numel(), generator=gen)
    grad = torch.randn(12, 5, generator=gen)
    for reduce in ("sum", "max"):
        torch.library.opcheck(_library.gather_reduce_fwd.op, (x, rowptr, col, w, reduce, True, kernel))
    ptr = torch.tensor([0, 3, 3, 12])
    torch.library.opcheck(_library.gather_reduce_fwd.op, (x, ptr, None, None, "min", True, kernel))
    torch.library.opcheck(_library.gather_reduce_bwd_x.op, (rowptr, col, w, grad, 12, True, kernel))
    torch.library.opcheck(_library.gather_reduce_sddmm.op, (rowptr, col, grad, x, False, kernel))
    _, arg = _library.gather_reduce_fwd(x, rowptr, col, w, "max", True, kernel)
    torch.library.opcheck(_library.gather_reduce_arg_bwd.op, (rowptr, col, w, arg, grad, x, True, True, kernel))
    torch.library.opcheck(_library.segment_softmax_fwd.op, (x, ptr, kernel))
    torch.library.opcheck(_library.segment_softmax_bwd.op, (x.softmax(0), grad, ptr, kernel))


class AggregationMLP(torch.nn.Module):
    """Two rounds of neighbourhood aggregation (sum, then mean and max) with linear layers between them, and an
    attention-style segment softmax: every op that goes through the custom ops."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int) -> None:
        super().__init__()
        self.lin1 = torch.nn.Linear(in_channels, hidden)
        self.lin2 = torch.nn.Linear(2 * hidden, out_channels)
        self.score = torch.nn.Linear(hidden, 1)

    def forward(self, x, rowptr, col, weight):  # noqa: ANN001, ANN201
        h = torch.relu(self.lin1(ops.gather_reduce(x, rowptr, col, "sum", weight, validate=False)))
        alpha = ops.segment_softmax(self.score(h).index_select(0, col), rowptr, validate=False)
        h_att = ops.segment_reduce(alpha * h.index_select(0, col), rowptr, "sum", validate=False)
        h2 = torch.cat([ops.gather_reduce(h, rowptr, col, "mean", validate=False), h_att], 1)
        return self.lin2(h2) + ops.gather_reduce(h2, rowptr, col, "max", weight, validate=False).sum(1, keepdim=True)


# Dynamo 2.13 itself instantiates torch.autograd.Function while tracing any autograd.Function (side_effects.py,
# track_object_new) and torch then warns about that instantiation; nothing in graphlab instantiates one.
@pytest.mark.filterwarnings("ignore:<class 'torch.autograd.function.Function'> should not be instantiated")
@pytest.mark.parametrize("kernel", KERNELS)
def test_compiled_model_matches_eager_output_and_gradients(kernel):
    _kernel_or_skip(kernel)
    torch.manual_seed(0)
    rowptr, col, gen = _graph()
    model = AggregationMLP(5, 8, 3)
    x = torch.randn(12, 5, generator=gen, requires_grad=True)
    weight = (torch.rand(col.numel(), generator=gen) + 0.5).requires_grad_(True)
    params = [x, weight, *model.parameters()]
    with _native.use_native(kernel == "cpu-native"), ops.set_backend("cpu"):
        eager = model(x, rowptr, col, weight)
        eager_grads = torch.autograd.grad(eager.square().sum(), params)
        compiled_model = torch.compile(model, backend="aot_eager", fullgraph=True)  # fullgraph: a break fails
        compiled = compiled_model(x, rowptr, col, weight)
        compiled_grads = torch.autograd.grad(compiled.square().sum(), params)
    torch.testing.assert_close(compiled, eager)
    for got, want in zip(compiled_grads, eager_grads):
        torch.testing.assert_close(got, want)
    assert ops.last_path("gather_reduce.cpu_impl") == kernel.removeprefix("cpu-")
