r"""The ``subgraph:`` option of graph-level DataModules: :class:`graphlab.transforms.SubgraphPairs` run once per
graph as a PyG ``pre_transform`` and cached on disk.

A DataModule given ``subgraph={"policy": "ego", "num_hops": 3, "max_dis": 5}`` serves batches with the pair fields
the subgraph models read (``pair_dis``, ``pair_mask``, ``pair_label``, ``deleted_edge_index``). The processed
pairs live in ``<dataset folder>/subgraph/<key>/processed/``, where ``<key>`` spells out the transform's ``repr``
(every argument), so a changed option never reuses a stale cache and never touches the dataset's own
``processed/`` folder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

from torch_geometric.data import Dataset, InMemoryDataset

from graphlab.transforms.subgraph import SubgraphPairs

SUBGRAPH_KEYS = ("policy", "num_hops", "max_dis")
#: the batch fields SubgraphPairs adds, which the subgraph models take as keyword arguments
PAIR_FIELDS = ("pair_dis", "pair_mask", "pair_label", "deleted_edge_index")
CACHE_VERSION = 2  # bump when SubgraphPairs' output changes for the same arguments (2: exact ego masks at
# num_hops == max_dis)


def subgraph_transform(option: Optional[Mapping[str, Any]]) -> Optional[SubgraphPairs]:
    """The :class:`SubgraphPairs` of a DataModule's ``subgraph`` option (``None``: off); errors name bad keys."""
    if option is None:
        return None
    if not isinstance(option, Mapping):
        raise TypeError(f"subgraph must be a mapping like {{policy: ego, num_hops: 3, max_dis: 5}} or null, got "
                        f"{type(option).__name__}")
    unknown = sorted(set(option) - set(SUBGRAPH_KEYS))
    if unknown:
        raise ValueError(f"unknown subgraph option(s) {', '.join(map(repr, unknown))}; valid keys are "
                         f"{', '.join(SUBGRAPH_KEYS)}")
    return SubgraphPairs(**dict(option))


def cache_key(transform: SubgraphPairs) -> str:
    """A folder name that spells out the transform's ``repr``, e.g. ``v2-max_dis=5-policy=ego-num_hops=3``."""
    body = re.sub(r"^\w+\(|\)$|['\"]", "", repr(transform))
    return f"v{CACHE_VERSION}-" + re.sub(r"[^A-Za-z0-9=_.]+", "-", body).strip("-")


class SubgraphPairsDataset(InMemoryDataset):
    """Every graph of ``base`` through ``pre_transform`` (a :class:`SubgraphPairs`), processed once into
    ``root/processed/data.pt``. ``base`` is read without its ``transform`` (``base.get(i)``)."""

    def __init__(self, root: str | Path, base: Dataset, pre_transform: SubgraphPairs) -> None:
        self._base = base
        super().__init__(str(root), transform=None, pre_transform=pre_transform, log=False)
        self.load(self.processed_paths[0])

    @property
    def raw_file_names(self) -> list[str]:
        return []

    @property
    def processed_file_names(self) -> list[str]:
        return ["data.pt"]

    def download(self) -> None:  # the base dataset holds the raw data
        pass

    def process(self) -> None:
        self.save([self.pre_transform(self._base.get(i).clone()) for i in range(len(self._base))],
                  self.processed_paths[0])


def with_subgraph_pairs(base: Dataset, transform: Optional[SubgraphPairs], folder: str | Path) -> Dataset:
    """``base`` unchanged when ``transform`` is ``None``, else its :class:`SubgraphPairsDataset` cached under
    ``folder/subgraph/<cache_key>``."""
    if transform is None:
        return base
    return SubgraphPairsDataset(Path(folder) / "subgraph" / cache_key(transform), base, transform)
