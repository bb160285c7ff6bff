"""The image processor that travels with a model, and image sizes as the command lines take them."""

from transformers import ViTImageProcessorPil

from configuration_vit_simple import pair

IMAGE_MEAN = IMAGE_STD = (0.5, 0.5, 0.5)  # transformers' IMAGENET_STANDARD_*, as google's ViTs use


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


def add_image_size_argument(parser, what):
    """`--image_size SIZE [SIZE]` on an argparse parser: one side, or height and width; `image_size_of` reads it."""
    parser.add_argument("--image_size", type=int, nargs="+", metavar="SIZE", help=f"{what} for this image size (one "
                        "int, or height width), resampling the position embeddings")


def image_size_of(sides):
    """--image_size's values as a config's image_size (an int, or [height, width]); None when not given."""
    if not sides:
        return None
    if len(sides) > 2 or min(sides) < 1:
        raise ValueError(f"--image_size takes one size or height and width, each a positive number of pixels, got "
                         f"{' '.join(map(str, sides))}.")
    return sides[0] if len(sides) == 1 else list(sides)
