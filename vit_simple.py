"""`import vit_simple` registers vit-simple with transformers' Auto classes, so saved folders load without remote code,
and gives the config of a new model (`new_config`, train_hf.py's from scratch) and the image processor that travels
with a model.
"""

import ast
import re
from inspect import signature

from transformers import AutoConfig, AutoModel, AutoModelForImageClassification, ViTImageProcessorPil

from configuration_vit_simple import ViTSimpleConfig, pair
from modeling_vit_simple import ViTSimpleForImageClassification, ViTSimpleModel, ViTSimplePreTrainedModel

AutoConfig.register(ViTSimpleConfig.model_type, ViTSimpleConfig, exist_ok=True)
AutoModel.register(ViTSimpleConfig, ViTSimpleModel, exist_ok=True)
AutoModelForImageClassification.register(ViTSimpleConfig, ViTSimpleForImageClassification, exist_ok=True)

IMAGE_MEAN = IMAGE_STD = (0.5, 0.5, 0.5)  # transformers' IMAGENET_STANDARD_*, as google's ViTs use

# Named sizes: width, blocks, heads, MLP width (heads are 64 wide). tiny/small/base are DeiT's and ViT's (large and
# huge ViT's); "mini" is the Fashion-MNIST default, DeiT-tiny cut to 2 heads, 6 blocks and a 2x MLP so that it
# trains on a CPU in minutes.
MODEL_SIZES = {
    "mini": dict(dim=128, depth=6, heads=2, mlp_dim=256),
    "tiny": dict(dim=192, depth=12, heads=3, mlp_dim=768),
    "small": dict(dim=384, depth=12, heads=6, mlp_dim=1536),
    "base": dict(dim=768, depth=12, heads=12, mlp_dim=3072),
    "large": dict(dim=1024, depth=24, heads=16, mlp_dim=4096),
    "huge": dict(dim=1280, depth=32, heads=16, mlp_dim=5120),
}
SMALL_IMAGE = 64  # images up to this size train at their own size with padded random crops; larger ones at 224
MIN_GRID = 7  # patches along each side of a small image, at least


def new_config(model_size, label_names, data_image_size, overrides=None):
    """The config of a new model: a named size (MODEL_SIZES), the data's image size ((height, width)) and class
    names, then `overrides`, the text of train_hf.py's --config_overrides (e.g. 'depth=4,dim=128'). The image size
    is the data's up to SMALL_IMAGE pixels and 224 above; the patch size `default_patch_size`'s.

        config = vit_simple.new_config("mini", ["cat", "dog"], (28, 28))
        model = AutoModelForImageClassification.from_config(config)

    A bad size or override raises ValueError.
    """
    if model_size not in MODEL_SIZES:
        raise ValueError(f"--model_size {model_size!r}: not one of {', '.join(MODEL_SIZES)}.")
    size = {ViTSimpleConfig.attribute_map.get(key, key): value for key, value in MODEL_SIZES[model_size].items()}
    if max(data_image_size) <= SMALL_IMAGE:
        image_size = data_image_size[0] if data_image_size[0] == data_image_size[1] else list(data_image_size)
    else:
        image_size = 224
    kwargs = {"image_size": image_size, "num_channels": 3, **size, **parse_config_overrides(overrides)}
    kwargs.setdefault("patch_size", default_patch_size(kwargs["image_size"]))
    try:
        return ViTSimpleConfig(**kwargs, id2label=dict(enumerate(label_names)))
    except ValueError as error:
        raise ValueError(f"--model_size {model_size} with --config_overrides {overrides!r}: {error}") from error


def parse_config_overrides(text):
    """'depth=4,dim=128,pool=mean' as {'num_hidden_layers': 4, 'hidden_size': 128, 'pool': 'mean'}."""
    allowed = set(signature(ViTSimpleConfig.__init__).parameters) - {"self", "kwargs"}
    allowed |= set(ViTSimpleConfig.attribute_map)
    overrides = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        key, sep, value = (s.strip() for s in item.partition("="))
        if not sep or key not in allowed:
            raise ValueError(f"--config_overrides: {item!r} is not key=value with a known key; keys: "
                             f"{', '.join(sorted(allowed))}.")
        overrides[ViTSimpleConfig.attribute_map.get(key, key)] = parse_value(value)
    return overrides


def parse_value(text):
    """A (height, width) pair written 32x48, a Python literal (4, 0.1, None, True, true), else the text itself (a
    bare word such as mean)."""
    lowered = {"true": True, "false": False, "none": None, "null": None}
    if text.lower() in lowered:
        return lowered[text.lower()]
    if re.fullmatch(r"\d+x\d+", text):
        return [int(side) for side in text.split("x")]
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def default_patch_size(image_size):
    """16 (ViT's) for 224-pixel models; for small images the largest patch (up to 16) that still cuts them into at
    least MIN_GRID x MIN_GRID (7x7) patches. Coarser grids train faster but generalise worse: on Fashion-MNIST,
    7x7-pixel patches (16 tokens) stalled at 89.7% test accuracy (12 epochs, validation loss rising from epoch 8)."""
    height, width = pair(image_size)
    if min(height, width) > SMALL_IMAGE:
        return 16
    for patch in range(16, 1, -1):
        if height % patch == 0 and width % patch == 0 and min(height, width) // patch >= MIN_GRID:
            return patch
    raise ValueError(f"No patch size cuts {height}x{width} images into at least {MIN_GRID}x{MIN_GRID} patches: give "
                     "image_size and patch_size in --config_overrides (e.g. 'image_size=32,patch_size=4').")


def image_processor_for(config, image_mean=None, image_std=None, resample=None):
    """transformers' ViT image processor for `config`: resize to the model's image size, rescale to [0, 1], normalise.

    A 3-channel model converts every PIL mode (L, P, RGBA, ...) to RGB; a 1-channel model takes grayscale images.
    Saved beside the model (`preprocessor_config.json`), it makes `pipeline("image-classification")` work.
    """
    channels = config.num_channels
    image_mean = list(image_mean if image_mean is not None else IMAGE_MEAN[:1] * channels)
    image_std = list(image_std if image_std is not None else IMAGE_STD[:1] * channels)
    if len(image_mean) != channels or len(image_std) != channels:
        raise ValueError(
            f"image_mean {image_mean} and image_std {image_std} need one value per channel ({channels})."
        )
    height, width = pair(config.image_size)
    kwargs = {} if resample is None else {"resample": resample}
    return ViTImageProcessorPil(
        size={"height": height, "width": width},
        image_mean=image_mean,
        image_std=image_std,
        do_convert_rgb=channels == 3,
        **kwargs,
    )


__all__ = [
    "ViTSimpleConfig",
    "ViTSimpleModel",
    "ViTSimpleForImageClassification",
    "ViTSimplePreTrainedModel",
    "image_processor_for",
    "new_config",
    "MODEL_SIZES",
]
