"""Differentiable graph primitives with one dispatch per op: reference, CPU, and Triton (CUDA) paths.

Public API::

    to_csr(edge_index, num_nodes, edge_weight=None) -> (rowptr, col, perm)
    rowptr_from_sorted(sorted_row, num_rows) -> [num_rows + 1]   # CSR pointers of a sorted row index
    gather_reduce(x, rowptr, col, reduce="sum", edge_weight=None) -> [N, F]
    segment_reduce(src, ptr, reduce="sum") -> [N, F]
    segment_softmax(src, ptr) -> like src
    set_backend("auto" | "reference" | "cpu" | "triton")    # call or context manager
    set_validation(True | False)                             # call or context manager
    spd_inv_sqrt(matrix)                                     # batched SPD A^{-1/2}, stable gradients
    block_spmm(diag_blocks, edge_blocks, index, x)           # sheaf Laplacian products, d x d blocks
    tree_reduce(x, ptr, combine, empty=None) -> [S, F]      # balanced pairwise reduction per segment (LCM)
    tree_reduce_schedule(ptr) -> TreeSchedule                # its integer schedule, cached per ptr
    sorted_csr(edge_index, num_nodes) -> CSR                 # columns sorted and unique per row, cached
    neighbor_sets(rowptr, col, src, dst, *, sets=("cn",), max_neighbors=None, generator=None)
        -> {"cn" | "src_only" | "dst_only": PairSets(ptr, index, weight)}   # N(i) ∩ N(j), N(i) − N(j), N(j) − N(i)
    common_neighbors(rowptr, col, src, dst, x=None, *, max_neighbors=None, generator=None) -> [B, F] or [B]
    pair_index(node_ptr, rowptr, col, perm=None, pair_mask=None) -> PairIndex   # subgraph GNN pair rows (Σ n_g²)
    pair_atom(h, index, "uv"|"vu"|"uu"|"vv"|"uL"|"vL"|"uG"|"vG", edge_attr=None) -> [R, F]
    edge_deleted_index(node_ptr, rowptr, col, perm, deleted_edge_index) -> PairIndex  # one subgraph per edge
    column_sum(h, index) -> [N, F];  pool_pairs(h, index, reduce) -> ([N, F], [B, F])
    dropout(x, p=0.5, training=True, *, seed=None, offset=0, generator=None, save_mask=False)  # Philox mask, native
    dropout_mask(numel, p, seed, offset=0) -> [numel] bool   # the keep mask dropout uses for (seed, offset)
    selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                   return_last_state=False, *, lengths=None, mask=None, chunk_size=None) -> [B, D, L]  # Mamba S6

See :mod:`graphlab.ops._backend` for the dispatch rules and :mod:`graphlab.ops.reference` for the semantics.
"""

from graphlab.ops._backend import (
    get_backend,
    last_path,
    path_count,
    reset_path_log,
    resolve_backend,
    set_backend,
    set_validation,
    validation_enabled,
)
from graphlab.ops.csr import (
    CSR,
    IdentityCache,
    cached_csr,
    cached_transpose,
    csr_transpose,
    rowptr_from_sorted,
    to_csr,
)
from graphlab.ops.dropout import dropout, dropout_mask
from graphlab.ops.gather_reduce import gather_reduce
from graphlab.ops.common_neighbors import PairSets, common_neighbors, neighbor_sets, sorted_csr
from graphlab.ops.pairs import (
    PairCSR,
    PairIndex,
    check_edge_attr_rows,
    column_sum,
    edge_deleted_index,
    pair_atom,
    pair_index,
    pool_pairs,
)
from graphlab.ops.segment import segment_reduce, segment_softmax
from graphlab.ops.selective_scan import selective_scan
from graphlab.ops.sheaf import BlockIndex, block_spmm
from graphlab.ops.linalg import spd_inv_sqrt
from graphlab.ops.tree_reduce import TreeLevel, TreeSchedule, tree_reduce, tree_reduce_schedule

__all__ = [
    "BlockIndex",
    "CSR",
    "IdentityCache",
    "PairCSR",
    "PairIndex",
    "PairSets",
    "cached_csr",
    "cached_transpose",
    "check_edge_attr_rows",
    "column_sum",
    "common_neighbors",
    "csr_transpose",
    "dropout",
    "dropout_mask",
    "edge_deleted_index",
    "block_spmm",
    "gather_reduce",
    "get_backend",
    "last_path",
    "neighbor_sets",
    "pair_atom",
    "pair_index",
    "path_count",
    "pool_pairs",
    "reset_path_log",
    "rowptr_from_sorted",
    "resolve_backend",
    "selective_scan",
    "set_backend",
    "segment_reduce",
    "segment_softmax",
    "set_validation",
    "sorted_csr",
    "spd_inv_sqrt",
    "to_csr",
    "TreeLevel",
    "TreeSchedule",
    "tree_reduce",
    "tree_reduce_schedule",
    "validation_enabled",
]
