import os

# Tests never reach the Hub (there is no network here): fail fast instead of retrying for ~20 s per call.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import subprocess  # noqa: E402

import numpy as np  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

import vit_simple  # noqa: E402,F401  (registers the Auto classes)
from configuration_vit_simple import ViTSimpleConfig  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TINY = "dim=32,depth=2,heads=2,dim_head=16,mlp_dim=64"  # --config_overrides of a tiny model for train_hf.py
FAST = ["--dataloader_num_workers", "0", "--per_device_train_batch_size", "16", "--per_device_eval_batch_size", "32",
        "--logging_steps", "1", "--report_to", "none", "--disable_tqdm", "true"]  # train_hf.py options of quick runs


def run_script(*args, cwd=REPO, timeout=300):
    """Run a command in a fresh process, offline; its combined output."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def assert_same_weights(expected_dir, actual_dir):
    expected, actual = load_file(expected_dir / "model.safetensors"), load_file(actual_dir / "model.safetensors")
    assert expected.keys() == actual.keys()
    different = [name for name in expected if not torch.equal(expected[name], actual[name])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[0]}: max |difference| " \
        f"{(expected[different[0]] - actual[different[0]]).abs().max().item():.3g}"


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
    from vit_simple.fashion_mnist import SPLIT_FILES, read_idx

    folder = tmp_path_factory.mktemp("fashion-mnist")
    for split, count in (("train", 160), ("test", 64)):
        for name in SPLIT_FILES[split]:
            write_idx(folder / f"{name}.gz", read_idx(Path(FASHION_MNIST) / f"{name}.gz")[:count])
    return folder


# image folders: three colours of noisy squares

COLORS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220)}


def save_image(path, color, size, mode, seed):
    """A noisy `color` square on a dark background, saved in `mode` (L, RGB, RGBA or P)."""
    rng = np.random.default_rng(seed)
    width, height = size
    pixels = rng.integers(0, 40, (height, width, 3))
    pixels[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = color
    image = Image.fromarray(pixels.astype(np.uint8))
    image = {"RGBA": lambda: image.convert("RGBA"), "P": lambda: image.convert("P"),
             "L": lambda: image.convert("L")}.get(mode, lambda: image)()
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def make_image_folder(root, per_class, seed=0):
    """root/<color>/<n>.png for three colours, in mixed modes (L, RGB, RGBA, P) and sizes (32x32, 40x30, 24x36)."""
    modes, sizes = ["RGB", "L", "RGBA", "P"], [(32, 32), (40, 30), (24, 36)]
    for c, (name, color) in enumerate(COLORS.items()):
        for n in range(per_class):
            save_image(root / name / f"{n}.png", color, sizes[n % 3], modes[(n + c) % 4], seed=seed + 100 * c + n)
    return root


@pytest.fixture(scope="session")
def image_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    return {split: make_image_folder(root / split, per_class, seed=i * 1000)
            for i, (split, per_class) in enumerate((("train", 8), ("validation", 3), ("test", 3)))}
