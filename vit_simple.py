"""`import vit_simple` registers vit-simple with transformers' Auto classes, so saved folders load without remote code,
and gives the image processor that travels with a model.
"""

from transformers import AutoConfig, AutoModel, AutoModelForImageClassification, ViTImageProcessorPil

from configuration_vit_simple import ViTSimpleConfig, pair
from modeling_vit_simple import ViTSimpleForImageClassification, ViTSimpleModel, ViTSimplePreTrainedModel

AutoConfig.register(ViTSimpleConfig.model_type, ViTSimpleConfig, exist_ok=True)
AutoModel.register(ViTSimpleConfig, ViTSimpleModel, exist_ok=True)
AutoModelForImageClassification.register(ViTSimpleConfig, ViTSimpleForImageClassification, exist_ok=True)

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


__all__ = [
    "ViTSimpleConfig",
    "ViTSimpleModel",
    "ViTSimpleForImageClassification",
    "ViTSimplePreTrainedModel",
    "image_processor_for",
]
