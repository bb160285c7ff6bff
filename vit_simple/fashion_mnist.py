"""Fashion-MNIST from its IDX files (Debian's `dataset-fashion-mnist`, no network) as a `datasets.DatasetDict`.

`load_fashion_mnist()` reads the four IDX files once, turns them into `train` (60,000) and `test` (10,000) splits
with an `image` column (`datasets.Image`, 28x28 grayscale) and a `label` column (`datasets.ClassLabel` with the ten
official class names), the same columns as the Hub's `zalando-datasets/fashion_mnist`, and caches the result with
`save_to_disk`, so later runs start in well under a second.
"""

import gzip
import hashlib
import os
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, config, load_from_disk

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]
SPLIT_FILES = {  # split -> (images, labels), each found with or without the .gz suffix
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
CACHE_VERSION = 1  # bump when the cached layout changes


def is_idx_dir(path):
    """Whether `path` is a folder holding the Fashion-MNIST IDX files (compressed or not)."""
    return all(find_idx_file(path, name) for names in SPLIT_FILES.values() for name in names)


def find_idx_file(data_dir, name):
    for candidate in (Path(data_dir) / f"{name}.gz", Path(data_dir) / name):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path):
    """An IDX file (http://yann.lecun.com/exdb/mnist/) as a numpy array: 2 zero bytes, a dtype code, the number of
    dimensions, one big-endian uint32 per dimension, then the data."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zeros, dtype_code, ndim = struct.unpack_from(">HBB", data)
    if zeros != 0 or dtype_code not in IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (header {data[:4].hex()}): reinstall dataset-fashion-mnist.")
    shape = struct.unpack_from(f">{ndim}I", data, 4)
    array = np.frombuffer(data, dtype=IDX_DTYPES[dtype_code], offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path} holds {array.size} values but its header says {shape}: the file is truncated.")
    return array.reshape(shape)


def read_split(data_dir, split):
    """The (images, labels) arrays of one split: uint8 (n, 28, 28) and (n,)."""
    images_name, labels_name = SPLIT_FILES[split]
    images, labels = read_idx(find_idx_file(data_dir, images_name)), read_idx(find_idx_file(data_dir, labels_name))
    if len(images) != len(labels):
        raise ValueError(f"{data_dir}: {len(images)} {split} images but {len(labels)} labels.")
    return images, labels


def features():
    return Features({"image": Image(), "label": ClassLabel(names=CLASS_NAMES)})


def to_dataset(images, labels):
    # datasets encodes each (28, 28) uint8 array as a grayscale PNG
    return Dataset.from_dict({"image": list(images), "label": labels.astype(np.int64)}, features=features())


def cache_key(data_dir):
    """Changes when the IDX files change (path, size, modification time) or the cached layout does."""
    stats = [CACHE_VERSION, str(Path(data_dir).resolve())]
    for names in SPLIT_FILES.values():
        for name in names:
            stat = find_idx_file(data_dir, name).stat()
            stats += [name, stat.st_size, stat.st_mtime_ns]
    return hashlib.sha256(repr(stats).encode()).hexdigest()[:16]


def load_fashion_mnist(data_dir=DEFAULT_DIR, cache_dir=None):
    """Fashion-MNIST as a `DatasetDict` with `train` and `test` splits, built once and cached under `cache_dir`
    (default: the `datasets` cache, `$HF_DATASETS_CACHE`)."""
    if not is_idx_dir(data_dir):
        missing = [name for names in SPLIT_FILES.values() for name in names if not find_idx_file(data_dir, name)]
        raise FileNotFoundError(
            f"Fashion-MNIST IDX files not found in {data_dir} (missing: {', '.join(missing)}). Install them with "
            "`sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or pass --dataset_name with a folder "
            "holding the four files, or a Hub data set such as zalando-datasets/fashion_mnist."
        )
    cache_root = Path(cache_dir or config.HF_DATASETS_CACHE) / "vit_simple"
    cached = cache_root / f"fashion_mnist-{cache_key(data_dir)}"
    if cached.is_dir():
        return load_from_disk(str(cached))

    dataset = DatasetDict({split: to_dataset(*read_split(data_dir, split)) for split in SPLIT_FILES})
    cache_root.mkdir(parents=True, exist_ok=True)
    # write beside the final name and rename, so a concurrent or interrupted run never sees half a cache
    partial = Path(tempfile.mkdtemp(prefix=f"{cached.name}.partial-", dir=cache_root))
    try:
        dataset.save_to_disk(str(partial))
        os.replace(partial, cached)
    except OSError:
        if not cached.is_dir():
            raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return load_from_disk(str(cached))
