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
