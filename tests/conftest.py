import os

# Tests never reach the Hub (there is no network here): fail fast instead of retrying for ~20 s per call.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

import vit_simple  # noqa: E402,F401  (registers the Auto classes)
from configuration_vit_simple import ViTSimpleConfig  # noqa: E402


def tiny_config(**overrides):
    """A model small enough for tests: 32x32 images, 8x8 patches, width 32, two blocks."""
    kwargs = dict(image_size=32, patch_size=8, dim=32, depth=2, heads=4, dim_head=8, mlp_dim=64, num_labels=3)
    kwargs.update(overrides)
    return ViTSimpleConfig(**kwargs)


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return tiny_config


FASHION_MNIST = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist, installed by setup.sh


def write_idx(path, array, compress=True):
    """An IDX file: two zero bytes, dtype 0x08 (uint8), ndim, big-endian dims, then the data; gzip unless told."""
    import gzip

    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(header + array.astype("uint8").tobytes())


@pytest.fixture(scope="session")
def fashion_slice(tmp_path_factory):
    """The first 160 training and 64 test images of the real Fashion-MNIST, as IDX files."""
    from pathlib import Path

    from data_fashion_mnist import SPLIT_FILES, read_idx

    folder = tmp_path_factory.mktemp("fashion-mnist")
    for split, count in (("train", 160), ("test", 64)):
        for name in SPLIT_FILES[split]:
            write_idx(folder / f"{name}.gz", read_idx(Path(FASHION_MNIST) / f"{name}.gz")[:count])
    return folder
