"""Configuration of vit-simple, the einops Vision Transformer of lucidrains' vit-pytorch as a transformers model."""

import math

from transformers import PretrainedConfig


def pair(value):
    """An int, or a (height, width) pair given as a list or tuple, as a (height, width) tuple."""
    return tuple(value) if isinstance(value, (list, tuple)) else (value, value)


INITIALIZATIONS = ("vit_pytorch", "transformers")
PATCH_SHIFTS = ("cardinal", "diagonal")


class ViTSimpleConfig(PretrainedConfig):
    r"""
    Configuration of a [`ViTSimpleModel`] or [`ViTSimpleForImageClassification`]. The defaults build ViT-Base/16 at
    224x224 exactly as lucidrains' `vit_pytorch.vit.ViT` builds it: LayerNorm-Linear-LayerNorm patch embedding, no
    bias on the fused qkv projection, a CLS token.

    Every size can be given in transformers' vocabulary or in vit-pytorch's: `dim` is `hidden_size`, `depth` is
    `num_hidden_layers`, `heads` is `num_attention_heads`, `dim_head` is `head_dim`, `mlp_dim` is
    `intermediate_size`, `channels` is `num_channels`, `dropout` is `hidden_dropout_prob`, `emb_dropout` is
    `embedding_dropout_prob`, `patch_dropout` is `patch_dropout_prob`, `num_classes` is `num_labels`. Both names read and write the same field.

    Args:
        image_size (`int` or `(int, int)`, defaults to 224):
            Height and width of the input images (one int for a square image). Must be divisible by `patch_size`.
        patch_size (`int` or `(int, int)`, defaults to 16):
            Height and width of each patch.
        num_channels (`int`, defaults to 3):
            Channels of the input images (1 for grayscale). Alias `channels`.
        hidden_size (`int`, defaults to 768):
            Width of the token embeddings. Alias `dim`.
        num_hidden_layers (`int`, defaults to 12):
            Number of transformer blocks. Alias `depth`.
        num_attention_heads (`int`, defaults to 12):
            Attention heads per block. Alias `heads`.
        head_dim (`int`, defaults to 64):
            Width of each attention head; `heads * head_dim` need not equal `hidden_size`. Alias `dim_head`.
        intermediate_size (`int`, defaults to 3072):
            Hidden width of the feed-forward block. Alias `mlp_dim`.
        pool (`str`, defaults to `"cls"`):
            `"cls"`: classify the CLS token. `"mean"`: no CLS token; classify the mean of the patch tokens.
        hidden_dropout_prob (`float`, defaults to 0.0):
            Dropout in the feed-forward block and after the attention output projection. Alias `dropout`.
        attention_probs_dropout_prob (`float`, *optional*):
            Dropout on the attention weights. `None` (the default) uses `hidden_dropout_prob`, as vit-pytorch does.
        embedding_dropout_prob (`float`, defaults to 0.0):
            Dropout after the position embeddings are added. Alias `emb_dropout`.
        patch_dropout_prob (`float`, defaults to 0.0):
            During training only, each image keeps a random `1 - patch_dropout_prob` of its patch tokens (at least
            one; the CLS token always) after the position embeddings are added, as vit-pytorch's
            `vit_with_patch_dropout.ViT` and timm's `patch_drop_rate`: a regulariser that also makes each step
            cheaper. Evaluation sees every patch. Alias `patch_dropout`.
        shifted_patches (`bool`, defaults to `False`):
            Shifted patch tokenization (Lee et al. 2021, "Vision Transformer for Small-Size Datasets"; vit-pytorch's
            `vit_for_small_dataset.SPT`): each patch is cut from the image and from its four copies shifted by one
            pixel (right, left, down, up; zero-filled), stacked on the channels, so the patch projection sees five
            times the channels and each token a little of its neighbours' pixels. train_hf.py turns it on for the
            models it builds from scratch.
        patch_shift (`str`, defaults to `"cardinal"`):
            Which four shifts `shifted_patches` takes: `"cardinal"`, one pixel right, left, down and up (vit-pytorch's
            SPT), or `"diagonal"`, half a patch (at least one pixel) towards each of the four corners (the paper's
            SPT), so each token sees a band of half a patch around its own pixels.
        drop_path_rate (`float`, defaults to 0.0):
            Stochastic depth (timm's `drop_path_rate`): during training each image skips each block's attention and
            MLP branches at random, at a rate rising linearly from 0 in the first block to `drop_path_rate` in the
            last; a kept branch is scaled by `1 / (1 - rate)`. Evaluation runs every branch.
        locality_attention (`bool`, defaults to `False`):
            Locality self-attention (the same paper; vit-pytorch's `vit_for_small_dataset.LSA`): each head's scale is
            a learned parameter (`temperature`, the log of the scale, starting at `log(head_dim ** -0.5)`) and no token
            attends to itself, so attention is sharper and goes to the other tokens. With `shifted_patches` the model
            is `vit_for_small_dataset.ViT` with the LayerNorm after the patch projection that `vit.ViT` has.
        qkv_bias (`bool`, defaults to `False`):
            Whether the fused query/key/value projection has a bias (True in google's and timm's ViTs).
        patch_norm (`bool`, defaults to `True`):
            Whether LayerNorms surround the patch projection (vit-pytorch); False gives the plain linear patch
            embedding of google's and timm's ViTs.
        layer_norm_eps (`float`, defaults to 1e-5):
            Epsilon of every LayerNorm (1e-5 is torch's default, used by vit-pytorch; google's ViT uses 1e-12 and
            timm's 1e-6).
        initialization (`str`, defaults to `"vit_pytorch"`):
            How new parameters start (a model built from this config, or what a checkpoint lacks, such as a new
            head). `"vit_pytorch"`: as vit-pytorch (and so plain PyTorch) builds them: each Linear with torch's
            default (uniform within 1/sqrt(fan_in)), unit-normal CLS token and position embeddings; it trains faster
            from scratch (Fashion-MNIST, dim 96, 2 epochs). `"transformers"`: as transformers' ViT: truncated
            normal weights, CLS token and position embeddings of std `initializer_range`, zero biases. LayerNorms
            start at 1 and 0 either way.
        initializer_range (`float`, defaults to 0.02):
            Standard deviation of the truncated normal initialisation with `initialization="transformers"`.
        calibration_temperature (`float`, defaults to 1.0):
            The classifier's logits are divided by it (temperature scaling, Guo et al. 2017), so that its softmax
            probabilities mean what they say: train_hf.py fits it on the validation split after training, by
            minimising the negative log-likelihood. It never changes a prediction (the argmax); at 1.0 the logits are
            exactly vit-pytorch's, undivided.
        num_labels, id2label, label2id:
            The classes of the classification head, as in every transformers config.
    """

    model_type = "vit_simple"
    _auto_class = "AutoConfig"  # save_pretrained writes the .py files beside the weights
    attribute_map = {
        "dim": "hidden_size",
        "depth": "num_hidden_layers",
        "heads": "num_attention_heads",
        "dim_head": "head_dim",
        "mlp_dim": "intermediate_size",
        "channels": "num_channels",
        "dropout": "hidden_dropout_prob",
        "emb_dropout": "embedding_dropout_prob",
        "patch_dropout": "patch_dropout_prob",
        "num_classes": "num_labels",
    }

    def __init__(
        self,
        image_size=224,
        patch_size=16,
        num_channels=3,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        head_dim=64,
        intermediate_size=3072,
        pool="cls",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=None,
        embedding_dropout_prob=0.0,
        patch_dropout_prob=0.0,
        shifted_patches=False,
        patch_shift="cardinal",
        locality_attention=False,
        drop_path_rate=0.0,
        qkv_bias=False,
        patch_norm=True,
        layer_norm_eps=1e-5,
        initialization="vit_pytorch",
        initializer_range=0.02,
        calibration_temperature=1.0,
        **kwargs,
    ):
        self.image_size = list(image_size) if isinstance(image_size, (list, tuple)) else image_size
        self.patch_size = list(patch_size) if isinstance(patch_size, (list, tuple)) else patch_size
        self.num_channels = num_channels
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.head_dim = head_dim
        self.intermediate_size = intermediate_size
        self.pool = pool
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.embedding_dropout_prob = embedding_dropout_prob
        self.patch_dropout_prob = patch_dropout_prob
        self.shifted_patches = shifted_patches
        self.patch_shift = patch_shift
        self.locality_attention = locality_attention
        self.drop_path_rate = drop_path_rate
        self.qkv_bias = qkv_bias
        self.patch_norm = patch_norm
        self.layer_norm_eps = layer_norm_eps
        self.initialization = initialization
        self.initializer_range = initializer_range
        self.calibration_temperature = calibration_temperature
        # all three Auto classes, so a saved folder loads with remote code through any of them
        kwargs.setdefault("auto_map", {
            "AutoConfig": "configuration_vit_simple.ViTSimpleConfig",
            "AutoModel": "modeling_vit_simple.ViTSimpleModel",
            "AutoModelForImageClassification": "modeling_vit_simple.ViTSimpleForImageClassification",
        })
        if kwargs.get("id2label") is None and kwargs.get("label2id") is not None:
            kwargs["id2label"] = {int(i): label for label, i in kwargs["label2id"].items()}
        # vit-pytorch names given as keyword arguments reach the fields above through `attribute_map`
        super().__init__(**kwargs)
        if self.label2id is None or len(self.label2id) != len(self.id2label):  # num_labels replaced the labels
            self.label2id = {label: i for i, label in self.id2label.items()}
        self.validate_vit()

    @property
    def attention_dropout(self):
        """Dropout on the attention weights: `attention_probs_dropout_prob`, else `hidden_dropout_prob`."""
        if self.attention_probs_dropout_prob is None:
            return self.hidden_dropout_prob
        return self.attention_probs_dropout_prob

    @property
    def grid_size(self):
        """Patches along the height and along the width."""
        (image_h, image_w), (patch_h, patch_w) = pair(self.image_size), pair(self.patch_size)
        return image_h // patch_h, image_w // patch_w

    @property
    def num_patches(self):
        grid_h, grid_w = self.grid_size
        return grid_h * grid_w

    def validate_vit(self):
        """Raise `ValueError`, saying what to change, for a configuration that cannot build a working model."""
        sizes = {"image_size": pair(self.image_size), "patch_size": pair(self.patch_size)}
        for name, value in sizes.items():
            if len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
                raise ValueError(f"{name} must be a positive int or a (height, width) pair of them, got {value!r}.")
        (image_h, image_w), (patch_h, patch_w) = sizes["image_size"], sizes["patch_size"]
        if image_h % patch_h or image_w % patch_w:
            raise ValueError(
                f"image_size {image_h}x{image_w} is not divisible by patch_size {patch_h}x{patch_w}: choose an image "
                f"size that is a multiple of the patch size (e.g. {image_h // patch_h * patch_h or patch_h}x"
                f"{image_w // patch_w * patch_w or patch_w}) or another patch size."
            )
        positive = ["num_channels", "hidden_size", "num_hidden_layers", "num_attention_heads", "head_dim",
                    "intermediate_size"]
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        if self.pool not in ("cls", "mean"):
            raise ValueError(f"pool must be 'cls' (classify the CLS token) or 'mean' (mean of patch tokens), "
                             f"got {self.pool!r}.")
        for name in ("hidden_dropout_prob", "attention_dropout", "embedding_dropout_prob", "patch_dropout_prob",
                     "drop_path_rate"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}.")
        for name in ("shifted_patches", "locality_attention"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}.")
        if self.patch_shift not in PATCH_SHIFTS:
            raise ValueError(f"patch_shift must be one of {', '.join(map(repr, PATCH_SHIFTS))}, got "
                             f"{self.patch_shift!r}.")
        if self.initialization not in INITIALIZATIONS:
            raise ValueError(f"initialization must be one of {', '.join(map(repr, INITIALIZATIONS))}, got "
                             f"{self.initialization!r}.")
        if self.layer_norm_eps <= 0 or self.initializer_range <= 0:
            raise ValueError(f"layer_norm_eps and initializer_range must be positive, got "
                             f"{self.layer_norm_eps!r} and {self.initializer_range!r}.")
        temperature = self.calibration_temperature
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 < temperature < math.inf:
            raise ValueError(f"calibration_temperature must be a positive number (1.0: uncalibrated), got "
                             f"{temperature!r}.")
        self._validate_labels()

    def _validate_labels(self):
        if self.label2id is None or self.id2label is None:
            return
        inverse = {label: int(i) for label, i in self.label2id.items()}
        expected = {label: int(i) for i, label in self.id2label.items()}
        default_maps = set(inverse) == {f"LABEL_{i}" for i in range(len(inverse))}
        if inverse != expected and not default_maps:
            raise ValueError(
                f"id2label and label2id disagree: id2label={dict(self.id2label)} but label2id={dict(self.label2id)}. "
                "Pass one of them (the other is derived), or make label2id the exact inverse of id2label."
            )
        if sorted(int(i) for i in self.id2label) != list(range(len(self.id2label))):
            raise ValueError(f"id2label keys must be 0..{len(self.id2label) - 1}, got {sorted(self.id2label)}.")


__all__ = ["ViTSimpleConfig"]
