"""SubgraphPairs: BFS distances and policy masks against networkx, PyG batching, bad input."""

from __future__ import annotations

import networkx as nx
import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.utils import to_undirected

from graphlab.transforms import SubgraphPairs


def random_graph(n: int, p: float, seed: int) -> Data:
    g = nx.gnp_random_graph(n, p, seed=seed)
    ei = torch.tensor(list(g.edges), dtype=torch.long).reshape(-1, 2).T
    return Data(edge_index=to_undirected(ei, num_nodes=n), num_nodes=n)


def to_nx(data: Data) -> nx.Graph:
    g = nx.Graph()
    g.add_nodes_from(range(data.num_nodes))
    g.add_edges_from(data.edge_index.T.tolist())
    return g


GRAPHS = [random_graph(9, 0.3, 0), random_graph(12, 0.15, 1),  # the second is disconnected
          Data(edge_index=torch.empty(2, 0, dtype=torch.long), num_nodes=1),
          Data(edge_index=torch.tensor([[0, 1], [1, 0]]), num_nodes=4)]  # two isolated nodes


@pytest.mark.parametrize("data", GRAPHS)
@pytest.mark.parametrize("max_dis", [1, 3, 8])
def test_distances_match_networkx(data: Data, max_dis: int) -> None:
    out = SubgraphPairs(max_dis=max_dis)(data.clone())
    n = data.num_nodes
    lengths = dict(nx.all_pairs_shortest_path_length(to_nx(data)))
    want = torch.full((n, n), max_dis + 1, dtype=torch.long)
    for u, row in lengths.items():
        for v, d in row.items():
            want[u, v] = min(d, max_dis)
    assert out.pair_dis.dtype == torch.long
    assert torch.equal(out.pair_dis, want.reshape(-1))


def test_disconnected_graph_has_the_unreachable_index() -> None:
    out = SubgraphPairs(max_dis=4)(GRAPHS[3].clone())
    assert out.pair_dis.view(4, 4)[0, 2] == 5 and out.pair_dis.view(4, 4)[2, 3] == 5
    assert out.pair_dis.view(4, 4)[2, 2] == 0


@pytest.mark.parametrize("data", GRAPHS)
@pytest.mark.parametrize("num_hops", [1, 2])
@pytest.mark.parametrize("policy", ["ego", "ego_plus"])
def test_ego_mask_matches_networkx_ego_graph(data: Data, num_hops: int, policy: str) -> None:
    out = SubgraphPairs(max_dis=3, policy=policy, num_hops=num_hops)(data.clone())
    g, n = to_nx(data), data.num_nodes
    want = torch.zeros(n, n, dtype=torch.bool)
    for u in range(n):
        want[u, list(nx.ego_graph(g, u, radius=num_hops).nodes)] = True
    assert torch.equal(out.pair_mask, want.reshape(-1))
    if policy == "ego_plus":
        assert torch.equal(out.pair_label, torch.eye(n, dtype=torch.long).reshape(-1))
    else:
        assert "pair_label" not in out


@pytest.mark.parametrize("data", GRAPHS)
def test_node_deletion_and_marking(data: Data) -> None:
    n = data.num_nodes
    deleted = SubgraphPairs(policy="node_deletion")(data.clone())
    want = torch.ones(n, n, dtype=torch.bool)
    for u in range(n):  # networkx reference: the subgraph of u is G minus u
        h = to_nx(data)
        h.remove_node(u)
        want[u] = torch.tensor([v in h for v in range(n)])
    assert torch.equal(deleted.pair_mask, want.reshape(-1))
    marked = SubgraphPairs(policy="node_marking")(data.clone())
    assert torch.equal(marked.pair_label.view(n, n), torch.eye(n, dtype=torch.long))
    assert "pair_mask" not in marked


def test_batch_concatenates_pair_attributes_without_increment() -> None:
    t = SubgraphPairs(max_dis=3, policy="ego_plus", num_hops=2)
    graphs = [t(g.clone()) for g in GRAPHS]
    batch = Batch.from_data_list(graphs)
    for key in ("pair_dis", "pair_mask", "pair_label"):
        assert torch.equal(batch[key], torch.cat([g[key] for g in graphs]))
    assert batch.pair_dis.numel() == sum(g.num_nodes ** 2 for g in graphs)
    back = batch.get_example(1)
    assert torch.equal(back.pair_dis, graphs[1].pair_dis)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown subgraph policy 'ego_net'.*node_marking, node_deletion, edge_deletion, ego, ego_plus"):
        SubgraphPairs(policy="ego_net")
    with pytest.raises(ValueError, match="max_dis must be an int >= 1"):
        SubgraphPairs(max_dis=0)
    with pytest.raises(ValueError, match="num_hops must be an int >= 1"):
        SubgraphPairs(policy="ego", num_hops=0)
    with pytest.raises(ValueError, match="num_hops=4 exceeds max_dis=2"):
        SubgraphPairs(max_dis=2, policy="ego", num_hops=4)
    bad = Data(edge_index=torch.tensor([[0, 5], [5, 0]]), num_nodes=3)
    with pytest.raises(ValueError, match="edge_index has values in \\[0, 5\\] but the graph has 3 nodes"):
        SubgraphPairs()(bad)
    assert repr(SubgraphPairs(policy="ego", num_hops=2)) == "SubgraphPairs(max_dis=5, policy='ego', num_hops=2)"


@pytest.mark.parametrize("data", GRAPHS)
def test_edge_deletion_lists_each_undirected_edge_once(data: Data) -> None:
    out = SubgraphPairs(policy="edge_deletion")(data.clone())
    want = sorted(tuple(sorted(e)) for e in to_nx(data).edges)
    got = [tuple(e) for e in out.deleted_edge_index.T.tolist()]
    assert got == (want or [(0, 0)])  # a graph without edges: one subgraph, nothing deleted
    assert out.pair_dis.numel() == data.num_nodes ** 2 and "pair_mask" not in out


def test_edge_deletion_batches_with_node_increments() -> None:
    t = SubgraphPairs(policy="edge_deletion")
    graphs = [t(g.clone()) for g in GRAPHS]
    batch = Batch.from_data_list(graphs)
    offsets = torch.cumsum(torch.tensor([0] + [g.num_nodes for g in graphs[:-1]]), 0)
    want = torch.cat([g.deleted_edge_index + o for g, o in zip(graphs, offsets)], dim=1)
    assert torch.equal(batch.deleted_edge_index, want)


@pytest.mark.parametrize("edge_index", [None, torch.tensor([0, 1]), torch.tensor([[0, 1], [1, 0], [0, 0]]),
                                        torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.ones(2, 2, dtype=torch.bool)])
def test_malformed_edge_index_is_named(edge_index) -> None:
    """A missing, 1-D, 3-row, float or bool edge_index used to fail deep inside (AttributeError, unpacking) or, for
    floats, be read as node numbers silently."""
    with pytest.raises(ValueError, match=r"SubgraphPairs needs data.edge_index as an integer tensor \[2, E\]"):
        SubgraphPairs(policy="ego")(Data(edge_index=edge_index, num_nodes=2))


@pytest.mark.parametrize("policy", ["ego", "ego_plus"])
def test_ego_mask_at_num_hops_equal_to_max_dis_matches_networkx(policy: str) -> None:
    """num_hops == max_dis is allowed, but the mask used to be read from the capped distances, where every node
    farther than max_dis reads max_dis: the "3-hop" ego nets of a 10-node path were its whole component."""
    n, k = 10, 3
    g = nx.path_graph(n)
    g.add_node(n)  # an isolated node: unreachable, outside every other ego net
    edge_index = to_undirected(torch.tensor(list(g.edges)).T, num_nodes=n + 1)
    data = SubgraphPairs(max_dis=k, policy=policy, num_hops=k)(Data(edge_index=edge_index, num_nodes=n + 1))
    want = torch.tensor([[v in nx.ego_graph(g, u, radius=k) for v in range(n + 1)] for u in range(n + 1)])
    assert torch.equal(data.pair_mask.view(n + 1, n + 1), want)
    assert int(data.pair_dis.view(n + 1, n + 1)[0, n - 1]) == k  # the stored distance is still capped
