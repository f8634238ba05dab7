r"""The 2nd-minimum benchmarks of the LCM paper, generated in memory: a set task and its graph version.

Ong & Veličković, *Learnable Commutative Monoids for Graph Neural Networks* (LoG 2022), take from Cohen-Karlik et
al. (2020) a task that sum and max aggregators cannot solve for larger sets than they were trained on: given a
multiset :math:`X = \{\!\{x_1, \dots, x_n\}\!\}` of ``num_bits``-bit integers, output the bits of its **2nd
minimum**

.. math::
    \mathrm{min}_2(X) = \mathrm{sort}(x_1, \dots, x_n)_2 ,

the second element of the sorted multiset. Duplicates count: :math:`\mathrm{min}_2(\{\!\{3, 3, 7\}\!\}) = 3`. This
is the convention of PyG's example ``examples/lcm_aggr_2nd_min.py`` (``topk(k=2, largest=False)`` then its last
index). Every integer is fed as its bits, most significant first; a prediction is right when **all** bits are
(metric ``exact_acc``).

* :class:`SecondMinimumData` (set level, one sample = one multiset, as PyG's example): train on multisets of
  size uniform in ``train_sizes`` (2..16), validate on size ``val_size`` (32), test on every size of
  ``test_sizes`` (32 and 64): one test loader per size, so one run reports both (the task logs
  ``test_exact_acc`` for the first size and ``test_exact_acc@64`` for the others; ``test_names``).
* :class:`SecondMinimumGraphData` (node level): random directed graphs in which every node holds an integer and
  must output the 2nd minimum of the integers of its in-neighbours. See the class for the construction.

All draws come from ``numpy.random.default_rng`` seeded by ``(seed, split)`` (``(seed, test, size)`` for the
test set of one size): a split never depends on the sizes or counts of the other splits, the test sets of two
sizes are independent, and the global random state is never touched.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader as PyGDataLoader

from graphlab.data.base import DatasetInfo, GraphDataModule

__all__ = ["SecondMinimumData", "SecondMinimumGraphData", "int_to_bits", "second_minimum"]

_SPLIT_STREAM = {"train": 0, "val": 1, "test": 2}


# --------------------------------------------------------------------------- definitions
def int_to_bits(values: Tensor, num_bits: int) -> Tensor:
    """``[..., num_bits]`` 0/1 int64 bits of ``values``, most significant first (``5 -> 0b101``)."""
    shifts = torch.arange(num_bits - 1, -1, -1, device=values.device)
    return (values.unsqueeze(-1) >> shifts) & 1


def second_minimum(values: Tensor, ptr: Tensor) -> Tensor:
    r"""``[S]`` second smallest element of each multiset ``values[ptr[s]:ptr[s+1]]``, duplicates counted
    (:math:`\mathrm{sort}(X)_2`). Every multiset needs at least two elements."""
    sizes = ptr[1:] - ptr[:-1]
    if bool((sizes < 2).any()):
        raise ValueError("every multiset needs at least 2 elements to have a 2nd minimum")
    segment = torch.repeat_interleave(torch.arange(sizes.numel()), sizes)
    span = int(values.max()) + 1 if values.numel() else 1
    order = torch.argsort(segment * span + values)  # sorted by multiset, then by value
    return values[order][ptr[:-1] + 1]


def _rng(seed: int, split: str, size: Optional[int] = None) -> np.random.Generator:
    return np.random.default_rng([seed, _SPLIT_STREAM[split]] + ([] if size is None else [size]))


def _check_test_sizes(name: str, sizes: Any) -> list[int]:
    if isinstance(sizes, (int, str)) or not isinstance(sizes, Sequence) or len(sizes) == 0:
        raise ValueError(f"{name} must be a non-empty list of ints, e.g. [32, 64]; got {sizes!r}")
    out = []
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, int) or size < 2:
            raise ValueError(f"every entry of {name} must be an int >= 2 (a 2nd minimum needs two elements), "
                             f"got {sizes!r}")
        out.append(int(size))
    if len(set(out)) != len(out):
        raise ValueError(f"{name} has a repeated entry: {sizes!r}; list each test size once")
    return out


def _check_sizes(name: str, sizes: Sequence[int]) -> tuple[int, int]:
    if len(sizes) != 2 or any(isinstance(s, bool) or not isinstance(s, int) for s in sizes):
        raise ValueError(f"{name} must be [min, max] (two ints), got {sizes!r}")
    low, high = int(sizes[0]), int(sizes[1])
    if not 2 <= low <= high:
        raise ValueError(f"{name} must satisfy 2 <= min <= max (a 2nd minimum needs two elements), got {sizes!r}")
    return low, high


def _test_size(split: str, size: Optional[int], sizes: list[int], arg: str) -> int:
    """The test size a ``split(name, size)`` call means (0 for train/val, whose size is fixed by the module)."""
    if split != "test":
        if size is not None:
            raise ValueError(f"size is only for the test split (one set per entry of {arg}), got split {split!r}")
        return 0
    if size is None:
        return sizes[0]
    if size not in sizes:
        raise ValueError(f"no test set of size {size}: {arg} is {sizes}")
    return size


def _check_common(num_bits: int, batch_size: int, num_workers: int, counts: dict[str, int]) -> None:
    if not 1 <= num_bits <= 30:
        raise ValueError(f"num_bits must be in 1..30, got {num_bits}")
    if batch_size < 1 or num_workers < 0:
        raise ValueError(f"need batch_size >= 1 and num_workers >= 0, got {batch_size} and {num_workers}")
    for name, count in counts.items():
        if count < 1:
            raise ValueError(f"{name} must be >= 1, got {count}")


# --------------------------------------------------------------------------- set version
class MultisetStore(torch.utils.data.Dataset):
    """Multisets stored flat (``values`` ``[M]`` and offsets ``ptr`` ``[S+1]``), with their 2nd minima.

    ``store[i]`` is one sample as a PyG ``Data`` (``x`` ``[n, num_bits]`` bits, ``y`` ``[1, num_bits]``,
    ``value``, no edges); :meth:`collate` builds a ``Batch`` of many at once without per-sample objects (the
    loaders use it: a training epoch of 2^16 samples is then not dominated by collation).
    """

    def __init__(self, values: Tensor, ptr: Tensor, num_bits: int) -> None:
        self.values, self.ptr, self.num_bits = values, ptr, num_bits
        self.target = second_minimum(values, ptr)

    def __len__(self) -> int:
        return self.ptr.numel() - 1

    @property
    def sizes(self) -> Tensor:
        return self.ptr[1:] - self.ptr[:-1]

    def __getitem__(self, index: int) -> Data:
        if not -len(self) <= index < len(self):
            raise IndexError(f"multiset {index} out of range for {len(self)} samples")
        index = index % len(self)
        values = self.values[self.ptr[index]:self.ptr[index + 1]]
        return Data(x=int_to_bits(values, self.num_bits), value=values, edge_index=torch.zeros(2, 0, dtype=torch.long),
                    y=int_to_bits(self.target[index:index + 1], self.num_bits).float())

    def collate(self, indices: list[int]) -> Batch:
        index = torch.as_tensor(indices, dtype=torch.long)
        sizes = self.sizes[index]
        batch = torch.repeat_interleave(torch.arange(index.numel()), sizes)
        start = torch.repeat_interleave(self.ptr[index] - torch.cumsum(sizes, 0) + sizes, sizes)
        values = self.values[start + torch.arange(batch.numel())]
        return Batch(x=int_to_bits(values, self.num_bits), value=values,
                     y=int_to_bits(self.target[index], self.num_bits).float(),
                     edge_index=torch.zeros(2, 0, dtype=torch.long), batch=batch,
                     ptr=torch.cat([sizes.new_zeros(1), torch.cumsum(sizes, 0)]))
        return out


def random_multisets(num_samples: int, min_size: int, max_size: int, num_bits: int,
                     rng: np.random.Generator) -> MultisetStore:
    """``num_samples`` multisets of sizes uniform in ``min_size..max_size``, elements uniform in
    ``0..2**num_bits - 1`` (independent, so duplicates occur)."""
    sizes = torch.from_numpy(rng.integers(min_size, max_size + 1, size=num_samples))
    values = torch.from_numpy(rng.integers(0, 2**num_bits, size=int(sizes.sum())))
    ptr = torch.cat([sizes.new_zeros(1), torch.cumsum(sizes, 0)])
    return MultisetStore(values, ptr, num_bits)


class SecondMinimumData(GraphDataModule):
    r"""2nd minimum of a multiset of integers (set level): the generalisation benchmark of the LCM paper.

    A sample is a multiset of ``num_bits``-bit integers, one node per element with ``x`` = its bits (``[n,
    num_bits]`` int64, most significant first), no edges; the target ``y`` (``[1, num_bits]``, float 0/1) is the
    bits of :math:`\mathrm{sort}(X)_2` (see :mod:`graphlab.data.multiset`). Batches are PyG ``Batch`` objects, so a
    model aggregates each set through ``batch.batch`` (sorted, as recurrent aggregators need). Task type
    ``binary``, metric ``exact_acc`` (all bits right), as PyG's example.

    Args:
        test_sizes: sizes of the test multisets, one test set and one test loader each (default ``[32, 64]``, the
            paper's); the first is the headline ``test_exact_acc``, the others ``test_exact_acc@<size>``.
        num_train: training multisets (PyG's example: 2^16 = 65536).
        train_sizes: ``[min, max]`` size of the training multisets, drawn uniformly (2..16).
        val_size: size of the validation multisets (32, as PyG's example: larger than in training).
        num_val, num_test: validation and test multisets (1024 each).
        num_bits: bits per integer (8).
        batch_size: multisets per batch (128).
        seed: data seed; each split draws from its own stream ``(seed, split)``.
        num_workers: DataLoader worker processes.
        root: unused (the data is generated); accepted so configs can share a ``root``.
    """

    def __init__(
        self,
        test_sizes: Sequence[int] = (32, 64),
        num_train: int = 2**16,
        train_sizes: tuple[int, int] = (2, 16),
        val_size: int = 32,
        num_val: int = 1024,
        num_test: int = 1024,
        num_bits: int = 8,
        batch_size: int = 128,
        seed: int = 0,
        num_workers: int = 0,
        root: Optional[str] = None,
    ) -> None:
        super().__init__(root)
        _check_common(num_bits, batch_size, num_workers,
                      {"num_train": num_train, "num_val": num_val, "num_test": num_test})
        self.train_sizes = _check_sizes("train_sizes", list(train_sizes))
        if val_size < 2:
            raise ValueError(f"val_size must be >= 2 (a 2nd minimum needs two elements), got {val_size}")
        self.test_sizes, self.val_size = _check_test_sizes("test_sizes", test_sizes), val_size
        self.num_train, self.num_val, self.num_test = num_train, num_val, num_test
        self.num_bits, self.batch_size, self.seed, self.num_workers = num_bits, batch_size, seed, num_workers
        self._stores: dict[tuple[str, int], MultisetStore] = {}
        self.save_hyperparameters()

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(name="second-min", level="graph", task_type="binary",
                           num_features=self.num_bits, num_outputs=self.num_bits, metric="exact_acc",
                           categorical_features=True)

    @property
    def test_names(self) -> list[str]:
        """One name per test loader (the size), read by the task for ``test_<metric>@<name>``."""
        return [str(size) for size in self.test_sizes]

    def split(self, name: str, size: Optional[int] = None) -> MultisetStore:
        """The multisets of split ``train``, ``val`` or ``test`` (generated on first use); for ``test``, those of
        test size ``size`` (default: the first of ``test_sizes``)."""
        if name not in _SPLIT_STREAM:
            raise ValueError(f"unknown split {name!r}; use 'train', 'val' or 'test'")
        size = _test_size(name, size, self.test_sizes, "test_sizes")
        if (name, size) not in self._stores:
            low, high = {"train": self.train_sizes, "val": (self.val_size,) * 2, "test": (size, size)}[name]
            count = {"train": self.num_train, "val": self.num_val, "test": self.num_test}[name]
            rng = _rng(self.seed, name, size if name == "test" else None)
            self._stores[(name, size)] = random_multisets(count, low, high, self.num_bits, rng)
        return self._stores[(name, size)]

    def _loader(self, name: str, shuffle: bool, size: Optional[int] = None) -> DataLoader:
        store = self.split(name, size)
        return DataLoader(range(len(store)), batch_size=self.batch_size, shuffle=shuffle, collate_fn=store.collate,
                          num_workers=self.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> list[DataLoader]:
        """One loader per test size, in the order of ``test_sizes``."""
        return [self._loader("test", shuffle=False, size=size) for size in self.test_sizes]

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.predict_split, shuffle=False)


# --------------------------------------------------------------------------- graph version
def random_in_neighbourhoods(num_nodes: int, degrees: Tensor, rng: np.random.Generator) -> Tensor:
    """``[2, E]`` edges ``(u, v)`` of one graph where node ``v`` gets ``degrees[v]`` distinct in-neighbours
    ``u != v``, uniform without replacement; sorted by target ``v`` (sources in random order)."""
    scores = torch.from_numpy(rng.random((num_nodes, num_nodes)))
    scores.fill_diagonal_(2.0)  # never pick oneself: sorts after every other node
    order = torch.argsort(scores, dim=1)  # row v: a random permutation of the other nodes, v last
    take = torch.arange(num_nodes).view(1, -1) < degrees.view(-1, 1)
    src = order[take]
    dst = torch.repeat_interleave(torch.arange(num_nodes), degrees)
    return torch.stack([src, dst])


def random_second_minimum_graphs(num_graphs: int, num_nodes: int, min_degree: int, max_degree: int,
                                 num_bits: int, mask_name: str, rng: np.random.Generator) -> list[Data]:
    """Graphs of :class:`SecondMinimumGraphData`; every node is labelled and flagged in ``mask_name``."""
    graphs = []
    for _ in range(num_graphs):
        values = torch.from_numpy(rng.integers(0, 2**num_bits, size=num_nodes))
        degrees = torch.from_numpy(rng.integers(min_degree, max_degree + 1, size=num_nodes))
        edge_index = random_in_neighbourhoods(num_nodes, degrees, rng)
        ptr = torch.cat([degrees.new_zeros(1), torch.cumsum(degrees, 0)])
        target = second_minimum(values[edge_index[0]], ptr)
        graph = Data(x=int_to_bits(values, num_bits), value=values, edge_index=edge_index,
                     y=int_to_bits(target, num_bits).float(), num_nodes=num_nodes)
        graph[mask_name] = torch.ones(num_nodes, dtype=torch.bool)
        graphs.append(graph)
    return graphs


class SecondMinimumGraphData(GraphDataModule):
    r"""Graph version of the 2nd-minimum task (node level): each node outputs the 2nd minimum of its
    in-neighbours' integers.

    Construction (documented here because the paper's text of its graph variant could not be checked): a graph
    has ``num_nodes`` nodes, each holding an integer :math:`x_v` uniform in :math:`0..2^b-1` (node features: its
    bits). Each node :math:`v` draws an in-degree :math:`d_v` (uniform in ``train_degrees`` = 2..16 for training;
    exactly ``val_degree`` = 32 / each of ``test_degrees`` = 32, 64 for evaluation) and :math:`d_v` distinct
    in-neighbours :math:`u \ne v`, uniformly without replacement. Neighbourhoods therefore overlap and a node is
    both a value and a query, unlike in the set task. The target of every node is

    .. math::
        y_v = \mathrm{bits}\big(\mathrm{sort}(\{\!\{x_u : (u, v) \in E\}\!\})_2\big),

    duplicates counted; :math:`x_v` itself is not in the multiset (no self loop). One message-passing step
    with the aggregator under test (:class:`graphlab.models.NeighbourhoodModel`) can solve it exactly.
    ``edge_index`` is sorted by target, as recurrent aggregators need. All nodes of a split's graphs are labelled
    (``train_mask`` / ``val_mask`` / ``test_mask``, each graph carrying its own split's mask). Task
    :class:`~graphlab.tasks.NodeClassification` with task type ``binary``, metric ``exact_acc``.

    Args:
        test_degrees: in-degree of every test node, one test set and loader per entry (default ``[32, 64]``);
            the first is the headline ``test_exact_acc``, the others ``test_exact_acc@<degree>``.
        num_train_graphs: training graphs (default 512 graphs x 128 nodes = 2^16 labelled nodes, as the set
            task's 2^16 multisets).
        train_degrees: ``[min, max]`` in-degree of training nodes (2..16).
        val_degree: in-degree of validation nodes (32).
        num_val_graphs, num_test_graphs: evaluation graphs (8 x 128 = 1024 nodes each).
        num_nodes: nodes per graph; must exceed every degree.
        num_bits: bits per integer (8).
        batch_size: graphs per batch (1 graph of 128 nodes = 128 neighbourhoods, as the set task's batch).
        seed: data seed; each split draws from its own stream ``(seed, split)``.
        num_workers: DataLoader worker processes.
        root: unused (the data is generated).
    """

    def __init__(
        self,
        test_degrees: Sequence[int] = (32, 64),
        num_train_graphs: int = 512,
        train_degrees: tuple[int, int] = (2, 16),
        val_degree: int = 32,
        num_val_graphs: int = 8,
        num_test_graphs: int = 8,
        num_nodes: int = 128,
        num_bits: int = 8,
        batch_size: int = 1,
        seed: int = 0,
        num_workers: int = 0,
        root: Optional[str] = None,
    ) -> None:
        super().__init__(root)
        _check_common(num_bits, batch_size, num_workers, {"num_train_graphs": num_train_graphs,
                                                          "num_val_graphs": num_val_graphs,
                                                          "num_test_graphs": num_test_graphs})
        self.train_degrees = _check_sizes("train_degrees", list(train_degrees))
        if val_degree < 2:
            raise ValueError(f"val_degree must be >= 2 (a 2nd minimum needs two neighbours), got {val_degree}")
        self.test_degrees = _check_test_sizes("test_degrees", test_degrees)
        largest = max(self.train_degrees[1], val_degree, *self.test_degrees)
        if num_nodes <= largest:
            raise ValueError(f"num_nodes={num_nodes} cannot give a node {largest} distinct in-neighbours other than "
                             f"itself: set num_nodes >= {largest + 1}")
        self.val_degree, self.num_nodes = val_degree, num_nodes
        self.num_train_graphs, self.num_val_graphs, self.num_test_graphs = num_train_graphs, num_val_graphs, \
            num_test_graphs
        self.num_bits, self.batch_size, self.seed, self.num_workers = num_bits, batch_size, seed, num_workers
        self._graphs: dict[tuple[str, int], list[Data]] = {}
        self.save_hyperparameters()

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(name="second-min-graph", level="node", task_type="binary",
                           num_features=self.num_bits, num_outputs=self.num_bits, metric="exact_acc",
                           categorical_features=True)

    @property
    def test_names(self) -> list[str]:
        """One name per test loader (the in-degree), read by the task for ``test_<metric>@<name>``."""
        return [str(degree) for degree in self.test_degrees]

    def split(self, name: str, degree: Optional[int] = None) -> list[Data]:
        """The graphs of split ``train``, ``val`` or ``test`` (generated on first use); for ``test``, those of
        test in-degree ``degree`` (default: the first of ``test_degrees``)."""
        if name not in _SPLIT_STREAM:
            raise ValueError(f"unknown split {name!r}; use 'train', 'val' or 'test'")
        degree = _test_size(name, degree, self.test_degrees, "test_degrees")
        if (name, degree) not in self._graphs:
            low, high = {"train": self.train_degrees, "val": (self.val_degree,) * 2, "test": (degree, degree)}[name]
            count = {"train": self.num_train_graphs, "val": self.num_val_graphs, "test": self.num_test_graphs}[name]
            rng = _rng(self.seed, name, degree if name == "test" else None)
            self._graphs[(name, degree)] = random_second_minimum_graphs(count, self.num_nodes, low, high,
                                                                        self.num_bits, f"{name}_mask", rng)
        return self._graphs[(name, degree)]

    def _loader(self, name: str, shuffle: bool, degree: Optional[int] = None) -> Any:
        return PyGDataLoader(self.split(name, degree), batch_size=self.batch_size, shuffle=shuffle,
                             num_workers=self.num_workers)

    def train_dataloader(self) -> Any:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> Any:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> list[Any]:
        """One loader per test in-degree, in the order of ``test_degrees``."""
        return [self._loader("test", shuffle=False, degree=degree) for degree in self.test_degrees]

    def predict_dataloader(self) -> Any:
        return self._loader(self.predict_split, shuffle=False)
