"""DiskFeatureStore: exact round trips, PyG's multi-get contract, errors that name the file, forked workers."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset
from torch_geometric.data import TensorAttr

from graphlab.data import DiskFeatureStore, StoreCorruptedError
from graphlab.data.store import StoreNotFoundError
from graphlab.data.store import manifest as mf

DTYPES = [torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.uint16, torch.uint32,
          torch.uint64, torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64,
          torch.complex128, torch.float8_e4m3fn, torch.float8_e5m2]


def _random(dtype: torch.dtype, shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """Random bits of ``dtype`` (every bit pattern, NaNs included, must round-trip)."""
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=g).bool()
    size = torch.empty((), dtype=dtype).element_size()
    raw = torch.randint(0, 256, (*shape[:-1], shape[-1] * size) if shape else (size,), generator=g,
                        dtype=torch.int32).to(torch.uint8)
    return raw.view(dtype).reshape(shape)


def _bits(tensor: torch.Tensor) -> torch.Tensor:
    unsigned = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64, 16: torch.int64}
    if tensor.dtype == torch.bool:
        return tensor.to(torch.uint8)
    return tensor.contiguous().view(torch.uint8)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_dtype_round_trips_bit_exactly(tmp_path: Path, dtype: torch.dtype) -> None:
    x = _random(dtype, (37, 3))
    DiskFeatureStore(tmp_path / "s", mode="w").put_tensor(x, group_name="paper", attr_name="x", index=None)
    store = DiskFeatureStore(tmp_path / "s", verify="full")
    out = store.get_tensor("paper", "x", index=None)
    assert out.dtype == dtype and out.shape == x.shape
    assert torch.equal(_bits(out), _bits(x))
    index = torch.tensor([36, 0, 5, 5, 17])
    assert torch.equal(_bits(store.get_tensor("paper", "x", index=index)), _bits(x[index]))


@pytest.mark.parametrize("shape", [(0, 4), (5,), (), (6, 2, 3), (4, 0)], ids=str)
def test_odd_shapes_round_trip(tmp_path: Path, shape: tuple[int, ...]) -> None:
    x = torch.randn(shape)
    DiskFeatureStore(tmp_path / "s", mode="w").put_tensor(x, group_name=None, attr_name="x", index=None)
    store = DiskFeatureStore(tmp_path / "s")
    assert torch.equal(store.get_tensor(None, "x", index=None), x)
    assert store.get_tensor_size(None, "x") == tuple(shape)


@pytest.mark.parametrize("advice", [None, "random"])
def test_multi_get_unsorted_duplicated_ids_equals_plain_indexing(tmp_path: Path, advice) -> None:
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(500, 16, generator=g), torch.randint(0, 9, (500,), generator=g)
    writer = DiskFeatureStore(tmp_path / "s", mode="w")
    writer.put_tensor(x, group_name=None, attr_name="x", index=None)
    writer.put_tensor(y, group_name=None, attr_name="y", index=None)
    store = DiskFeatureStore(tmp_path / "s")
    store.advise(advice)  # "random": the gather first requests its pages with MADV_WILLNEED
    n_id = torch.randint(0, 500, (777,), generator=g)  # unsorted, many duplicates
    attrs = [TensorAttr(None, "x", n_id), TensorAttr(None, "y", n_id)]
    got_x, got_y = store.multi_get_tensor(attrs)
    assert torch.equal(got_x, x[n_id]) and torch.equal(got_y, y[n_id])
    # the other index kinds PyG allows
    assert torch.equal(store._multi_get_tensor([TensorAttr(None, "x", np.array([4, 2]))])[0], x[[4, 2]])  # PyG's public get rejects numpy indices of >1 element
    assert torch.equal(store.get_tensor(None, "x", index=slice(10, 20, 3)), x[10:20:3])
    assert torch.equal(store.get_tensor(None, "x", index=7), x[7])
    assert torch.equal(store.get_tensor(None, "x", index=torch.arange(3, 9)), x[3:9])
    assert store.get_tensor(None, "x", index=torch.empty(0, dtype=torch.long)).shape == (0, 16)
    assert torch.equal(store.get_tensor(None, "x", index=torch.tensor([1, 2], dtype=torch.int32)), x[1:3])
    # PyG's attribute views
    assert torch.equal(store[None, "y", n_id[:5]], y[n_id[:5]])


def test_pyg_filter_custom_store_builds_the_batch(tmp_path: Path) -> None:
    """The function PyG's NodeLoader calls on (feature_store, graph_store) batches."""
    from torch_geometric.loader.utils import filter_custom_store

    from graphlab.data import DiskGraphStore

    x, y = torch.randn(30, 4), torch.arange(30)
    store = DiskFeatureStore(tmp_path / "s", mode="w")
    store.put_tensor(x, group_name=None, attr_name="x", index=None)
    store.put_tensor(y, group_name=None, attr_name="y", index=None)
    node = torch.tensor([9, 3, 27, 3])
    row, col = torch.tensor([1, 2]), torch.tensor([0, 0])
    batch = filter_custom_store(DiskFeatureStore(tmp_path / "s"), DiskGraphStore(tmp_path / "s"), node, row, col,
                                None)
    assert torch.equal(batch.x, x[node]) and torch.equal(batch.y, y[node]) and batch.num_nodes == 4


def test_append_mode_updates_rows_and_rejects_mismatches(tmp_path: Path) -> None:
    x = torch.randn(10, 3)
    DiskFeatureStore(tmp_path / "s", mode="w").put_tensor(x, group_name=None, attr_name="x", index=None)
    store = DiskFeatureStore(tmp_path / "s", mode="a")
    new_rows = torch.ones(2, 3)
    store.put_tensor(new_rows, group_name=None, attr_name="x", index=torch.tensor([7, 2]))
    x[[7, 2]] = 1.0
    assert torch.equal(DiskFeatureStore(tmp_path / "s").get_tensor(None, "x", index=None), x)
    with pytest.raises(TypeError, match=r"holds float32, the new data is torch.float64; cast it"):
        store.put_tensor(torch.zeros(10, 3, dtype=torch.float64), group_name=None, attr_name="x", index=None)
    with pytest.raises(ValueError, match=r"holds rows of shape \[3\].*has shape \[10, 4\]"):
        store.put_tensor(torch.zeros(10, 4), group_name=None, attr_name="x", index=None)
    with pytest.raises(KeyError, match="put it whole first"):
        store.put_tensor(torch.zeros(1, 3), group_name=None, attr_name="new", index=torch.tensor([0]))
    assert store.remove_tensor(group_name=None, attr_name="x", index=None)
    assert DiskFeatureStore(tmp_path / "s").get_all_tensor_attrs() == []
    assert [p.name for p in (tmp_path / "s").glob("*.bin")] == []  # the removed version's file is gone


def test_read_only_by_default_and_bad_indices(tmp_path: Path) -> None:
    DiskFeatureStore(tmp_path / "s", mode="w").put_tensor(torch.zeros(5, 2), group_name=None, attr_name="x",
                                                         index=None)
    store = DiskFeatureStore(tmp_path / "s")
    with pytest.raises(PermissionError, match="open it with mode='a'"):
        store.put_tensor(torch.zeros(5, 2), group_name=None, attr_name="x", index=None)
    with pytest.raises(IndexError, match="index contains 5 but the tensor has 5 rows"):
        store.get_tensor(None, "x", index=torch.tensor([0, 5]))
    with pytest.raises(IndexError, match="index contains -1; row ids must be >= 0"):
        store.get_tensor(None, "x", index=torch.tensor([-1]))
    with pytest.raises(TypeError, match="row ids must be integers"):
        store.get_tensor(None, "x", index=torch.tensor([0.5]))
    with pytest.raises(TypeError, match="boolean index"):
        store.get_tensor(None, "x", index=torch.tensor([True, False, True, False, True]))
    with pytest.raises(KeyError, match=r"holds no tensor \(None, 'z'\); it holds: \(None, 'x'\)"):
        store.get_tensor(None, "z", index=None)
    with pytest.raises(ValueError, match="mode must be"):
        DiskFeatureStore(tmp_path / "s", mode="rw")


def test_missing_folder_and_manifest_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError, match="no store at .*nope: the folder does not exist"):
        DiskFeatureStore(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreNotFoundError, match=r"empty/manifest.json does not exist"):
        DiskFeatureStore(tmp_path / "empty")
    (tmp_path / "empty" / "manifest.json").write_text("{not json")
    with pytest.raises(StoreCorruptedError, match="manifest.json: not valid JSON"):
        DiskFeatureStore(tmp_path / "empty")


def _store_with_file(tmp_path: Path, rows: int = 1000, chunk_bytes: int = mf.CHUNK_BYTES) -> tuple[Path, Path]:
    store = DiskFeatureStore(tmp_path / "s", mode="w", chunk_bytes=chunk_bytes)
    store.put_tensor(torch.randn(rows, 8), group_name=None, attr_name="x", index=None)
    (file,) = (tmp_path / "s").glob("x.*.bin")
    return tmp_path / "s", file


def test_corrupted_byte_names_file_and_chunk(tmp_path: Path) -> None:
    folder, file = _store_with_file(tmp_path, chunk_bytes=4096)  # several chunks in a small file
    data = bytearray(file.read_bytes())
    data[3 * 4096 + 17] ^= 0x40
    file.write_bytes(bytes(data))
    with pytest.raises(StoreCorruptedError, match=rf"{file.name}: checksum mismatch in chunk 3 \(bytes 12288\.\."):
        DiskFeatureStore(folder)  # small file: verified on open ("auto")
    store = DiskFeatureStore(folder, verify="none")  # opens; verify() finds it
    with pytest.raises(StoreCorruptedError, match=rf"{file.name}: checksum mismatch in chunk 3"):
        store.verify()
    with pytest.raises(StoreCorruptedError, match="checksum mismatch"):
        DiskFeatureStore(folder, verify="full")


def test_auto_verification_skips_contents_of_large_files(tmp_path: Path) -> None:
    folder, file = _store_with_file(tmp_path)
    data = bytearray(file.read_bytes())
    data[5] ^= 1
    file.write_bytes(bytes(data))
    DiskFeatureStore(folder, verify_bytes=1000)  # the 32 KB file is above the threshold: sizes only
    with pytest.raises(StoreCorruptedError):
        DiskFeatureStore(folder, verify_bytes=1 << 30)


def test_truncated_and_missing_files_are_named(tmp_path: Path) -> None:
    folder, file = _store_with_file(tmp_path)
    with open(file, "r+b") as f:
        f.truncate(file.stat().st_size - 4)
    with pytest.raises(StoreCorruptedError, match=rf"{file.name}: 31996 bytes on disk, the manifest says 32000"):
        DiskFeatureStore(folder, verify="none")
    file.unlink()
    with pytest.raises(StoreCorruptedError, match=rf"{file.name}: the manifest names this file but it does not"):
        DiskFeatureStore(folder, verify="none")


def test_streaming_writer_unknown_rows_and_abort(tmp_path: Path) -> None:
    store = DiskFeatureStore(tmp_path / "s", mode="w")
    chunks = [torch.randn(n, 5) for n in (3, 0, 7, 1)]
    with store.writer("paper", "x", shape=(None, 5), dtype=torch.float32) as writer:
        for chunk in chunks:
            writer.append(chunk)
    assert torch.equal(DiskFeatureStore(tmp_path / "s").get_tensor("paper", "x", index=None), torch.cat(chunks))
    with pytest.raises(RuntimeError, match="boom"):
        with store.writer("paper", "x", shape=(4, 5), dtype=torch.float32) as writer:
            writer.append(torch.zeros(4, 5))
            raise RuntimeError("boom")
    assert torch.equal(DiskFeatureStore(tmp_path / "s").get_tensor("paper", "x", index=None), torch.cat(chunks))
    assert not list((tmp_path / "s").glob("*.tmp-*"))
    writer = store.writer(None, "y", shape=(4, 2), dtype=torch.int64)
    with pytest.raises(TypeError, match="chunk dtype torch.int32 differs from the writer's torch.int64"):
        writer.append(torch.zeros(1, 2, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"chunk shape \[1, 3\] does not fit rows of shape \[2\]"):
        writer.append(torch.zeros(1, 3, dtype=torch.int64))
    writer.append(torch.zeros(3, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="3 rows written, the shape says 4; nothing was stored"):
        writer.finalize()
    assert DiskFeatureStore(tmp_path / "s").get_tensor_size(None, "y") is None


def test_manifest_records_format(tmp_path: Path) -> None:
    folder, file = _store_with_file(tmp_path, rows=3)
    manifest = json.loads((folder / "manifest.json").read_text())
    (entry,) = manifest["tensors"].values()
    assert manifest["version"] == 1 and entry["file"] == file.name and entry["layout"] == "row-major"
    assert entry["shape"] == [3, 8] and entry["dtype"] == "float32" and entry["nbytes"] == 96
    assert entry["chunks"] == [mf.chunk_digest(file.read_bytes())]


class _Rows(Dataset):
    def __init__(self, store: DiskFeatureStore) -> None:
        self.store = store

    def __len__(self) -> int:
        return 40

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.store.get_tensor(None, "x", index=torch.tensor([i, (i * 7) % 40]))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_forked_dataloader_workers_read_their_own_maps(tmp_path: Path) -> None:
    x = torch.randn(40, 6)
    DiskFeatureStore(tmp_path / "s", mode="w").put_tensor(x, group_name=None, attr_name="x", index=None)
    store = DiskFeatureStore(tmp_path / "s")
    store.get_tensor(None, "x", index=torch.tensor([0]))  # maps opened in the parent before the fork
    loader = DataLoader(_Rows(store), batch_size=5, num_workers=2,
                        multiprocessing_context=multiprocessing.get_context("fork"))
    got = torch.cat(list(loader))
    expected = torch.stack([x[[i, (i * 7) % 40]] for i in range(40)])
    assert torch.equal(got.view(40, 2, 6), expected)
