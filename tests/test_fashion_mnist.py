"""fashion_mnist.py: IDX files to a cached `datasets.DatasetDict` with Image and ClassLabel features."""

import gzip

import numpy as np
import pytest
from datasets import ClassLabel, Image

from vit_simple import fashion_mnist
from conftest import write_idx
from vit_simple.fashion_mnist import CLASS_NAMES, SPLIT_FILES, load_fashion_mnist, read_idx


def make_idx_dir(folder, counts=(("train", 12), ("test", 5)), compress=True, seed=0):
    """Random Fashion-MNIST-shaped IDX files: (n, 28, 28) images and n labels per split."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in counts:
        images, labels = rng.integers(0, 256, (count, 28, 28)), rng.integers(0, 10, count)
        images_name, labels_name = SPLIT_FILES[split]
        suffix = ".gz" if compress else ""
        write_idx(folder / f"{images_name}{suffix}", images, compress)
        write_idx(folder / f"{labels_name}{suffix}", labels, compress)
        arrays[split] = images, labels
    return arrays


@pytest.mark.parametrize("compress", [True, False])
def test_idx_files_become_image_and_class_label_splits(tmp_path, compress):
    (tmp_path / "idx").mkdir()
    arrays = make_idx_dir(tmp_path / "idx", compress=compress)
    dataset = load_fashion_mnist(tmp_path / "idx", cache_dir=tmp_path / "cache")
    assert set(dataset) == {"train", "test"}
    for split, (images, labels) in arrays.items():
        part = dataset[split]
        assert isinstance(part.features["image"], Image) and isinstance(part.features["label"], ClassLabel)
        assert part.features["label"].names == CLASS_NAMES
        assert part["label"] == labels.tolist()
        first, last = part[0]["image"], part[len(part) - 1]["image"]
        assert first.mode == "L" and first.size == (28, 28)
        assert np.array_equal(np.asarray(first), images[0]) and np.array_equal(np.asarray(last), images[-1])


def test_second_load_reads_the_cache_and_a_changed_file_rebuilds_it(tmp_path, monkeypatch):
    (tmp_path / "idx").mkdir()
    make_idx_dir(tmp_path / "idx")
    load_fashion_mnist(tmp_path / "idx", cache_dir=tmp_path / "cache")
    built = fashion_mnist.to_dataset
    calls = []
    monkeypatch.setattr(fashion_mnist, "to_dataset", lambda *a: calls.append(1) or built(*a))
    assert len(load_fashion_mnist(tmp_path / "idx", cache_dir=tmp_path / "cache")["train"]) == 12
    assert calls == []
    make_idx_dir(tmp_path / "idx", counts=(("train", 7), ("test", 5)), seed=1)  # new files: size and mtime change
    assert len(load_fashion_mnist(tmp_path / "idx", cache_dir=tmp_path / "cache")["train"]) == 7
    assert calls == [1, 1]
    assert not list((tmp_path / "cache" / "vit_simple").glob("*.partial-*"))


def test_missing_files_name_the_package(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing: .*t10k-labels-idx1-ubyte.*apt-get install dataset-fashion"):
        load_fashion_mnist(tmp_path, cache_dir=tmp_path / "cache")


def test_broken_idx_files_are_reported(tmp_path):
    (tmp_path / "bad.gz").write_bytes(gzip.compress(b"\x01\x02\x08\x01" + bytes(8)))
    with pytest.raises(ValueError, match="is not an IDX file"):
        read_idx(tmp_path / "bad.gz")
    write_idx(tmp_path / "short", np.zeros((3, 2, 2)), compress=False)
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"holds 11 values but its header says \(3, 2, 2\): the file is truncated"):
        read_idx(tmp_path / "short")
