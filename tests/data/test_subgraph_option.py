"""The ``subgraph:`` option of the graph DataModules: SubgraphPairs as a cached pre_transform."""

from __future__ import annotations

import pytest
import torch

from graphlab.data import CSLData, OGBGraphData, PyGData
from graphlab.data.subgraph import cache_key, subgraph_transform
from graphlab.transforms import SubgraphPairs

pytestmark = pytest.mark.usefixtures("one_thread")


def check_pairs(batch, policy: str, max_dis: int) -> None:
    """Pair fields of a Batch against SubgraphPairs run on each graph on its own."""
    n = batch.ptr[1:] - batch.ptr[:-1]
    assert batch.pair_dis.numel() == int((n * n).sum())
    want = [SubgraphPairs(max_dis, policy, min(3, max_dis))(batch.get_example(g).clone())
            for g in range(batch.num_graphs)]
    assert torch.equal(batch.pair_dis, torch.cat([w.pair_dis for w in want]))
    if policy == "ego":
        assert torch.equal(batch.pair_mask, torch.cat([w.pair_mask for w in want]))


def test_ogb_graph_subgraph_option_is_cached_by_its_arguments(copy_shared) -> None:
    root = copy_shared("ogbg_molesol")
    option = {"policy": "ego", "num_hops": 3, "max_dis": 5}
    dm = OGBGraphData("ogbg-molesol", root=str(root), download=False, batch_size=16, subgraph=option)
    dm.setup()
    batch = next(iter(dm.val_dataloader()))
    check_pairs(batch, "ego", 5)
    folder = root / "ogbg_molesol" / "subgraph"
    assert [p.name for p in folder.iterdir()] == [cache_key(SubgraphPairs(5, "ego", 3))]
    assert not any("pair_dis" in str(p) for p in (root / "ogbg_molesol" / "processed").iterdir())
    # the plain dataset is untouched; another option gets its own folder
    plain = OGBGraphData("ogbg-molesol", root=str(root), download=False, batch_size=16)
    plain.setup()
    assert "pair_dis" not in next(iter(plain.val_dataloader()))
    other = OGBGraphData("ogbg-molesol", root=str(root), download=False, batch_size=16,
                         subgraph={"policy": "node_marking", "max_dis": 3})
    other.setup()
    check_pairs(next(iter(other.val_dataloader())), "node_marking", 3)
    assert len(list(folder.iterdir())) == 2
    # the split and the targets are those of the plain dataset
    assert torch.equal(dm.split_index["test"], plain.split_index["test"])
    assert torch.equal(next(iter(dm.test_dataloader())).y, next(iter(plain.test_dataloader())).y)


def test_csl_subgraph_option() -> None:
    dm = CSLData(subgraph={"policy": "node_marking", "max_dis": 5})
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    check_pairs(batch, "node_marking", 5)
    assert int(batch.pair_label.sum()) == batch.num_nodes  # one root mark per subgraph


def test_pyg_tu_subgraph_option(copy_shared) -> None:
    root = copy_shared("MUTAG")
    dm = PyGData("mutag", root=str(root), download=False, batch_size=8,
                 subgraph={"policy": "ego", "num_hops": 2, "max_dis": 4})
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    n = batch.ptr[1:] - batch.ptr[:-1]
    assert batch.pair_dis.numel() == int((n * n).sum()) and batch.pair_mask.dtype == torch.bool
    assert any((root / "MUTAG").glob("all/subgraph/v2-*")) or any((root / "MUTAG").rglob("subgraph"))


def test_bad_subgraph_options() -> None:
    with pytest.raises(ValueError, match="unknown subgraph option.*'hops'"):
        CSLData(subgraph={"policy": "ego", "hops": 3})
    with pytest.raises(ValueError, match="unknown subgraph policy 'egonet'"):
        CSLData(subgraph={"policy": "egonet"})
    with pytest.raises(ValueError, match="max_dis must be an int >= 1"):
        subgraph_transform({"max_dis": 0})
    with pytest.raises(TypeError, match="subgraph must be a mapping"):
        subgraph_transform("ego")
    with pytest.raises(ValueError, match="graph-level datasets"):
        PyGData("cora", subgraph={"policy": "ego"})
    assert subgraph_transform(None) is None
