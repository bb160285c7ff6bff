"""vit-simple: lucidrains' einops Vision Transformer (vit_pytorch.vit.ViT) as a transformers `PreTrainedModel`.

The blocks read as in vit-pytorch; the edges behave as in transformers' ViT (ModelOutputs, `problem_type` losses,
`output_attentions`, `output_hidden_states`, `interpolate_pos_encoding`, sdpa or eager attention, checkpointing).
"""

import copy
import json
import math
import os

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from einops.layers.torch import Rearrange
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPooling, ImageClassifierOutput

try:  # as remote code (a Hub repo or a saved folder) the two files form a package
    from .configuration_vit_simple import ViTSimpleConfig, pair
except ImportError:  # installed flat, or run from the repo root
    from configuration_vit_simple import ViTSimpleConfig, pair

# helpers


def resample_position_embeddings(position_embeddings, old_grid, new_grid, num_prefix_tokens):
    """Bicubic resampling of the patch position grid (b, prefix + h*w, d), prefix (CLS) positions kept as they are."""
    if tuple(old_grid) == tuple(new_grid):
        return position_embeddings
    prefix, patches = position_embeddings[:, :num_prefix_tokens], position_embeddings[:, num_prefix_tokens:]
    patches = rearrange(patches, "b (h w) d -> b d h w", h=old_grid[0], w=old_grid[1])
    patches = F.interpolate(patches.float(), size=tuple(new_grid), mode="bicubic", align_corners=False, antialias=True)
    patches = rearrange(patches, "b d h w -> b (h w) d").to(position_embeddings.dtype)
    return torch.cat((prefix, patches), dim=1)


# classes


def shift_and_stack(pixel_values, diagonal_shift=None):
    """The image and four shifted copies of it (zero-filled), stacked on the channels in this order: by one pixel
    right, left, down and up (vit-pytorch's SPT), or with `diagonal_shift` (rows, columns) by that many pixels
    towards the four corners: down-right, down-left, up-right, up-left (the SPT paper's, by half a patch). The
    definition, as vit-pytorch writes it: `PatchEmbedding` gathers the same patches in one copy (`shifted_patch_index`,
    tested equal bit for bit)."""
    height, width = pixel_values.shape[-2:]
    if diagonal_shift is None:
        padded = F.pad(pixel_values, (1, 1, 1, 1))
        shifted = (
            padded[..., 1 : height + 1, 0:width],  # right
            padded[..., 1 : height + 1, 2 : width + 2],  # left
            padded[..., 0:height, 1 : width + 1],  # down
            padded[..., 2 : height + 2, 1 : width + 1],  # up
        )
    else:
        rows, columns = diagonal_shift
        padded = F.pad(pixel_values, (columns, columns, rows, rows))
        shifted = (
            padded[..., 0:height, 0:width],  # down-right
            padded[..., 0:height, 2 * columns : width + 2 * columns],  # down-left
            padded[..., 2 * rows : height + 2 * rows, 0:width],  # up-right
            padded[..., 2 * rows : height + 2 * rows, 2 * columns : width + 2 * columns],  # up-left
        )
    return torch.cat((pixel_values, *shifted), dim=1)


def shift_offsets(diagonal_shift=None):
    """Where `shift_and_stack` takes each of its five images from, in its order: (rows, columns) that the image is
    moved down and right (output pixel (r, c) is input pixel (r - rows, c - columns), zero outside)."""
    if diagonal_shift is None:
        return ((0, 0), (0, 1), (0, -1), (1, 0), (-1, 0))  # itself, right, left, down, up
    rows, columns = diagonal_shift
    return ((0, 0), (rows, columns), (rows, -columns), (-rows, columns), (-rows, -columns))


def shifted_patch_index(channels, height, width, patch_size, diagonal_shift=None, device=None):
    """For each patch and each of its features (vit-pytorch's order, `(p1 p2 c)` over `shift_and_stack`'s 5 * channels
    channels), the position of the pixel it holds in the image's (height, width, channels) order, or
    `height * width * channels`, a zero appended after the image, where a shift moves it outside: gathering with it
    gives `Rearrange(...)(shift_and_stack(image))` bit for bit, in one copy instead of a pad, a concatenation and a
    rearrangement (benchmarks/README.md, round 20). Shape: (patches * patch_dim,)."""
    patch_height, patch_width = patch_size
    rows = torch.arange(height, device=device).view(height // patch_height, 1, patch_height, 1)  # h, 1, p1, 1
    columns = torch.arange(width, device=device).view(1, width // patch_width, 1, patch_width)  # 1, w, 1, p2
    sources = []
    for down, right in shift_offsets(diagonal_shift):
        source_row, source_column = rows - down, columns - right
        inside = (source_row >= 0) & (source_row < height) & (source_column >= 0) & (source_column < width)
        pixel = torch.where(inside, source_row * width + source_column, -1)  # h, w, p1, p2
        sources.append(pixel)
    pixel = torch.stack(sources, dim=-1)  # h, w, p1, p2, shift
    index = pixel[..., None] * channels + torch.arange(channels, device=device)  # h, w, p1, p2, shift, c
    index = torch.where(pixel[..., None] < 0, height * width * channels, index)
    return index.flatten()


class PatchEmbedding(nn.Module):
    """Cut the image into patches, flatten each and embed it: LayerNorm, Linear, LayerNorm (vit-pytorch). With
    `shifted_patches`, the patches are cut from the image and four shifts of it (SPT; `patch_shift` says which)."""

    def __init__(self, config):
        super().__init__()
        patch_height, patch_width = pair(config.patch_size)
        self.shifted = config.shifted_patches
        # the paper's shift: half a patch (at least a pixel) each way; None is vit-pytorch's one pixel
        diagonal = config.patch_shift == "diagonal"
        self.diagonal_shift = (max(1, patch_height // 2), max(1, patch_width // 2)) if diagonal else None
        patch_dim = config.num_channels * patch_height * patch_width * (5 if self.shifted else 1)
        self.patch_size, self.patch_dim = (patch_height, patch_width), patch_dim
        self.patch_index = {}  # (channels, height, width, device) -> shifted_patch_index(...): built once per size
        self.to_patches = Rearrange("b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=patch_height, p2=patch_width)
        # without patch_norm this is the strided convolution of google's and timm's ViTs, written as a Linear
        self.norm_in = nn.LayerNorm(patch_dim, eps=config.layer_norm_eps) if config.patch_norm else nn.Identity()
        self.proj = nn.Linear(patch_dim, config.hidden_size)
        self.norm_out = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if config.patch_norm else nn.Identity()

    def forward(self, pixel_values):
        if self.shifted:
            patches = self.shifted_patches(pixel_values)
        else:
            patches = self.to_patches(pixel_values)
        return self.norm_out(self.proj(self.norm_in(patches)))

    def shifted_patches(self, pixel_values):
        """`self.to_patches(shift_and_stack(pixel_values, self.diagonal_shift))`, gathered in one copy."""
        batch, channels, height, width = pixel_values.shape
        key = (channels, height, width, pixel_values.device)
        index = self.patch_index.get(key)
        if index is None:
            index = shifted_patch_index(channels, height, width, self.patch_size, self.diagonal_shift,
                                        pixel_values.device)
            self.patch_index[key] = index
        pixels = pixel_values.permute(0, 2, 3, 1).reshape(batch, height * width * channels)  # free if channels-last
        pixels = torch.cat((pixels, pixels.new_zeros(batch, 1)), dim=1)  # the zero a shift brings in
        return pixels.index_select(1, index).view(batch, index.numel() // self.patch_dim, self.patch_dim)


class Embeddings(nn.Module):
    """Patch embeddings, a learned CLS token in front (with `pool="cls"`), learned position embeddings, patch dropout
    (training only), dropout."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.num_prefix_tokens = 1 if config.pool == "cls" else 0
        self.patch_embedding = PatchEmbedding(config)
        self.cls_token = nn.Parameter(torch.empty(1, 1, config.hidden_size)) if self.num_prefix_tokens else None
        self.position_embeddings = nn.Parameter(
            torch.empty(1, config.num_patches + self.num_prefix_tokens, config.hidden_size)
        )
        self.dropout = nn.Dropout(config.embedding_dropout_prob)

    def check_pixel_values(self, pixel_values, interpolate_pos_encoding):
        """Raise `ValueError` for input this model cannot take, saying what was expected."""
        if pixel_values.dim() != 4:
            raise ValueError(
                f"pixel_values must have shape (batch, channels, height, width), got {tuple(pixel_values.shape)}."
            )
        channels, height, width = pixel_values.shape[1:]
        if channels != self.config.num_channels:
            hint = "to grayscale, image.convert('L')" if self.config.num_channels == 1 else "to RGB, image.convert('RGB')"
            raise ValueError(
                f"The model expects {self.config.num_channels}-channel images but got {channels} channels: convert "
                f"the images ({hint}) or use a model built for {channels} channels."
            )
        expected = pair(self.config.image_size)
        if interpolate_pos_encoding:
            patch_height, patch_width = pair(self.config.patch_size)
            if height % patch_height or width % patch_width:
                raise ValueError(
                    f"Input image size ({height}*{width}) is not divisible by the patch size "
                    f"({patch_height}*{patch_width}): resize or crop the images."
                )
        elif (height, width) != expected:
            raise ValueError(
                f"Input image size ({height}*{width}) doesn't match model ({expected[0]}*{expected[1]}): resize the "
                "images, or pass interpolate_pos_encoding=True to interpolate the position embeddings."
            )

    def forward(self, pixel_values, interpolate_pos_encoding=False):
        self.check_pixel_values(pixel_values, interpolate_pos_encoding)
        x = self.patch_embedding(pixel_values)
        if self.cls_token is not None:
            cls_tokens = repeat(self.cls_token, "1 n d -> b n d", b=x.shape[0])
            x = torch.cat((cls_tokens, x), dim=1)
        position_embeddings = self.position_embeddings
        if interpolate_pos_encoding:
            patch_height, patch_width = pair(self.config.patch_size)
            new_grid = (pixel_values.shape[2] // patch_height, pixel_values.shape[3] // patch_width)
            position_embeddings = resample_position_embeddings(
                position_embeddings, self.config.grid_size, new_grid, self.num_prefix_tokens
            )
        return self.dropout(self.drop_patches(x + position_embeddings))

    def drop_patches(self, x):
        """In training, each image's tokens less a random `patch_dropout_prob` of its patch tokens, drawn as
        vit-pytorch's PatchDropout draws them (the kept ones in order of a normal sample); the prefix stays."""
        if not self.training or self.config.patch_dropout_prob == 0:
            return x
        prefix, patches = x[:, : self.num_prefix_tokens], x[:, self.num_prefix_tokens :]
        batch, num_patches = patches.shape[:2]
        keep = max(1, int(num_patches * (1 - self.config.patch_dropout_prob)))
        kept = torch.randn(batch, num_patches, device=x.device).topk(keep, dim=-1).indices
        patches = patches[torch.arange(batch, device=x.device)[:, None], kept]
        return torch.cat((prefix, patches), dim=1)


class Attention(nn.Module):
    """Pre-norm multi-head self-attention with one fused qkv projection, through sdpa or the explicit softmax."""

    def __init__(self, config):
        super().__init__()
        inner_dim = config.head_dim * config.num_attention_heads
        project_out = not (config.num_attention_heads == 1 and config.head_dim == config.hidden_size)

        self.config = config
        self.heads = config.num_attention_heads
        self.scale = config.head_dim**-0.5
        self.attention_dropout = config.attention_dropout
        # locality self-attention (vit_for_small_dataset.LSA): a learned log-scale, and no token attends to itself
        self.temperature = nn.Parameter(torch.tensor(math.log(self.scale))) if config.locality_attention else None

        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.to_qkv = nn.Linear(config.hidden_size, inner_dim * 3, bias=config.qkv_bias)
        self.to_out = nn.Linear(inner_dim, config.hidden_size) if project_out else nn.Identity()
        self.dropout = nn.Dropout(config.hidden_dropout_prob) if project_out else nn.Identity()

    def forward(self, x, output_attentions=False, cls_only=False):
        x = self.norm(x)
        # split q, k, v where they lie side by side in each token's row: the backward then stacks their gradients
        # straight into to_qkv's output layout (splitting the qkv axis first costs a strided copy of it per block)
        qkv = rearrange(self.to_qkv(x), "b n (qkv h d) -> b n qkv h d", qkv=3, h=self.heads)
        q, k, v = (rearrange(t, "b n h d -> b h n d") for t in qkv.unbind(dim=2))
        if cls_only:  # only the CLS token asks; every token still answers
            q = q[:, :, :1]
        dropout = self.attention_dropout if self.training else 0.0

        scale, itself = self.scale, None
        if self.temperature is not None:
            scale = self.temperature.exp()
            itself = torch.eye(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device)  # query i is token i

        if self.explicit_softmax(output_attentions, k):
            dots = torch.matmul(q, k.transpose(-1, -2)) * scale
            if itself is not None:
                dots = dots.masked_fill(itself, -torch.finfo(dots.dtype).max)
            attn = dots.softmax(dim=-1)
            out = torch.matmul(F.dropout(attn, p=dropout, training=self.training), v)
        elif itself is not None:  # sdpa takes a float scale: the learned one goes into q
            attn = None
            out = F.scaled_dot_product_attention((q * scale).to(q.dtype), k, v, attn_mask=~itself,
                                                 dropout_p=dropout, scale=1.0)
        else:
            attn = None
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, scale=self.scale)

        out = rearrange(out, "b h n d -> b n (h d)")
        return self.dropout(self.to_out(out)), attn

    def explicit_softmax(self, output_attentions, k):
        """Whether to compute softmax(q k^T) v step by step rather than through sdpa: when the attention weights are
        asked for (`output_attentions`, or the eager implementation), and where torch's fused CPU attention loses to
        it (torch 2.14, benchmarks/profile_vit.py and bench_vit.py): in bfloat16 (50-577 tokens: 1.2-1.5x slower
        forward, 2-4.5x forward and backward), and in training mode on short sequences (up to 64 tokens), where its
        backward, which also zero-fills its gradients, costs more than the two matmuls it replaces. In eval mode
        float32 keeps sdpa. The choice follows the module's mode, not autograd's, so that activation checkpointing
        recomputes a block with the kernel its forward used."""
        if output_attentions or self.config._attn_implementation == "eager":
            return True
        if k.device.type != "cpu":
            return False
        return k.dtype == torch.bfloat16 or (self.training and k.shape[-2] <= 64)


class FeedForward(nn.Module):
    """Pre-norm MLP: LayerNorm, Linear, GELU, Dropout, Linear, Dropout."""

    def __init__(self, config):
        super().__init__()
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x):
        return self.dropout(self.fc2(self.dropout(self.act(self.fc1(self.norm(x))))))


def drop_path(x, rate, training):
    """Stochastic depth: in training, zero a residual branch for a random `rate` of the images and scale the rest by
    `1 / (1 - rate)` (timm's `drop_path`); otherwise return it unchanged."""
    if rate == 0.0 or not training:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1.0 - rate)
    return x * keep / (1.0 - rate)


class Block(GradientCheckpointingLayer):
    """One transformer block: `x = attn(x) + x; x = ff(x) + x` (each branch under stochastic depth in training)."""

    def __init__(self, config, drop_path_rate=0.0):
        super().__init__()
        self.attn = Attention(config)
        self.ff = FeedForward(config)
        self.drop_path_rate = drop_path_rate

    def forward(self, x, output_attentions=False, cls_only=False):
        """With `cls_only`, only the CLS token (the first) is updated and returned: shape (batch, 1, dim)."""
        attn_out, attn = self.attn(x, output_attentions, cls_only)
        x = drop_path(attn_out, self.drop_path_rate, self.training) + (x[:, :1] if cls_only else x)
        x = drop_path(self.ff(x), self.drop_path_rate, self.training) + x
        return x, attn


class ViTSimplePreTrainedModel(PreTrainedModel):
    config_class = ViTSimpleConfig
    config: ViTSimpleConfig
    base_model_prefix = "vit"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["Embeddings", "Block"]
    _supports_sdpa = True
    _can_compile_fullgraph = True

    @torch.no_grad()
    def _init_weights(self, module):
        """New parameters start as `config.initialization` says: "vit_pytorch" (torch's default Linear init,
        unit-normal CLS token and position embeddings, as vit-pytorch's model starts) or "transformers" (as
        transformers' ViT: truncated normal of std `initializer_range`, zero biases). LayerNorms start at 1 and 0.
        Runs on the parameters a checkpoint did not provide (also after meta-device loading)."""
        like_transformers = self.config.initialization == "transformers"
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            if like_transformers:
                init.trunc_normal_(module.weight, mean=0.0, std=std)
                if module.bias is not None:
                    init.zeros_(module.bias)
            else:  # nn.Linear.reset_parameters, through transformers' init (which skips loaded weights)
                init.kaiming_uniform_(module.weight, a=math.sqrt(5))
                if module.bias is not None:
                    bound = module.in_features**-0.5
                    init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, Attention) and module.temperature is not None:
            init.constant_(module.temperature, math.log(module.scale))
        elif isinstance(module, Embeddings):
            for parameter in (module.position_embeddings, module.cls_token):
                if parameter is None:
                    continue
                if like_transformers:
                    init.trunc_normal_(parameter, mean=0.0, std=std)
                else:
                    init.normal_(parameter)

    def no_weight_decay(self):
        """Names of the parameters that take no weight decay: norms, biases, CLS token and position embeddings
        (every parameter that is not a weight matrix)."""
        return {name for name, param in self.named_parameters() if param.dim() < 2 or name.endswith(("cls_token",
                "position_embeddings"))}

    @torch.no_grad()
    def set_image_size(self, image_size):
        """Make `image_size` (an int, or a (height, width) pair) the model's input size: the position embeddings are
        resampled to the new patch grid (bicubic, CLS kept), as timm does when it loads weights at another size."""
        embeddings, config = self.base_model.embeddings, self.config
        old_grid, old_size = config.grid_size, config.image_size
        config.image_size = list(image_size) if isinstance(image_size, (list, tuple)) else image_size
        try:
            config.validate_vit()
        except ValueError:
            config.image_size = old_size
            raise
        resampled = resample_position_embeddings(
            embeddings.position_embeddings, old_grid, config.grid_size, embeddings.num_prefix_tokens
        )
        embeddings.position_embeddings = nn.Parameter(
            resampled, requires_grad=embeddings.position_embeddings.requires_grad
        )

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """transformers' `from_pretrained`, which also loads a checkpoint at another image size: an `image_size=`
        keyword (or a `config`) whose size differs from the checkpoint's builds the model at the checkpoint's size,
        loads every weight, then resamples the position embeddings (`set_image_size`) instead of failing on their
        shape. Through the Auto classes the keyword arrives inside `config`.

        A local path that holds no vit-simple fails in one line naming it (another model type is refused instead of
        loading as random weights); the vit_simple package's command lines check a folder whole before this."""
        path = pretrained_model_name_or_path
        local = path is not None and os.path.exists(path)
        if local:
            cls._refuse_other_model(path)
        try:
            return cls._from_pretrained_at_size(path, *model_args, **kwargs)
        except Exception as error:  # OSError, ValueError, RuntimeError, safetensors' SafetensorError
            if not local:
                raise
            lines = str(error).strip().splitlines() or [type(error).__name__]
            reason = lines[0].rstrip(".")
            if "ignore_mismatched_sizes" in reason:  # transformers printed the shapes in its load report above
                reason = ("its weights' shapes differ from those its config.json describes (the report above lists "
                          "them); pass ignore_mismatched_sizes=True only to replace a classification head")
            kind = type(error) if type(error) in (OSError, ValueError, RuntimeError, TypeError) else OSError
            raise kind(f"{path}: cannot load a vit-simple from it: {reason}.") from error

    @classmethod
    def _refuse_other_model(cls, path):
        if os.path.isfile(path):
            raise OSError(f"{path} is a file, not a model folder: give the folder save_pretrained wrote.")
        try:
            with open(os.path.join(path, "config.json"), encoding="utf-8") as file:
                model_type = json.load(file).get("model_type")
        except (OSError, ValueError, AttributeError):  # no config or a damaged one: transformers says which
            return
        if model_type != cls.config_class.model_type:
            raise ValueError(f"{path} holds a {model_type!r} model, not a vit-simple: load it with its own class (e.g. "
                             "AutoModelForImageClassification), or convert a ViT with vit-simple-convert.")

    @classmethod
    def _from_pretrained_at_size(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        config = kwargs.get("config")
        wanted = config.image_size if isinstance(config, PretrainedConfig) else kwargs.get("image_size")
        saved = None
        if pretrained_model_name_or_path is not None and wanted is not None:  # the Hub options pass through
            saved = cls.config_class.get_config_dict(pretrained_model_name_or_path, **kwargs)[0].get("image_size")
        if saved is None or pair(saved) == pair(wanted):
            return super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        if isinstance(config, PretrainedConfig):
            kwargs["config"] = copy.deepcopy(config)  # the caller's config keeps the size it asked for
            kwargs["config"].image_size = saved
        else:
            kwargs["image_size"] = saved
        model = super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        model.set_image_size(wanted)
        return model


class ViTSimpleModel(ViTSimplePreTrainedModel):
    """The ViT without a head: patch embedding, transformer blocks, final LayerNorm and pooling."""

    _auto_class = "AutoModel"

    def __init__(self, config):
        super().__init__(config)
        self.embeddings = Embeddings(config)
        depth, rate = config.num_hidden_layers, config.drop_path_rate
        self.layers = nn.ModuleList([Block(config, rate * i / max(depth - 1, 1)) for i in range(depth)])
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings.patch_embedding

    def pool(self, x):
        """The CLS token, or the mean of the patch tokens with `pool="mean"`."""
        return x[:, 0] if self.config.pool == "cls" else x[:, self.embeddings.num_prefix_tokens :].mean(dim=1)

    def forward(
        self,
        pixel_values=None,
        output_attentions=None,
        output_hidden_states=None,
        interpolate_pos_encoding=False,
        return_dict=None,
        pooled_only=False,
        **kwargs,
    ):
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`): the images.
        output_attentions (`bool`): return each block's attention weights `(batch, heads, tokens, tokens)`.
        output_hidden_states (`bool`): return the embeddings and each block's output.
        interpolate_pos_encoding (`bool`): accept another image size, interpolating the position embeddings.
        pooled_only (`bool`): the caller reads only `pooler_output`. With `pool="cls"` the last block then updates the
            CLS token alone (the same result, 1/depth less work) and `last_hidden_state` holds just that token.
        """
        if pixel_values is None:
            raise ValueError("pixel_values is required: a (batch, channels, height, width) tensor of images.")
        output_attentions = self.config.output_attentions if output_attentions is None else output_attentions
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        return_dict = self.config.return_dict if return_dict is None else return_dict

        pixel_values = pixel_values.to(self.embeddings.patch_embedding.proj.weight.dtype)
        x = self.embeddings(pixel_values, interpolate_pos_encoding=interpolate_pos_encoding)

        hidden_states = (x,) if output_hidden_states else None
        attentions = () if output_attentions else None
        cls_only = pooled_only and self.config.pool == "cls" and not (output_hidden_states or output_attentions)
        for i, block in enumerate(self.layers):
            x, attn = block(x, output_attentions, cls_only=cls_only and i == len(self.layers) - 1)
            if output_hidden_states:
                hidden_states += (x,)
            if output_attentions:
                attentions += (attn,)

        x = self.norm(x)
        pooled = self.pool(x)
        if not return_dict:
            return tuple(v for v in (x, pooled, hidden_states, attentions) if v is not None)
        return BaseModelOutputWithPooling(
            last_hidden_state=x, pooler_output=pooled, hidden_states=hidden_states, attentions=attentions
        )


class ViTSimpleForImageClassification(ViTSimplePreTrainedModel):
    """ViTSimpleModel with a Linear head on the pooled token. The loss follows `config.problem_type`
    (single-label, multi-label or regression), as in transformers' classifiers."""

    _auto_class = "AutoModelForImageClassification"

    def __init__(self, config):
        super().__init__(config)
        self.vit = ViTSimpleModel(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels) if config.num_labels > 0 else nn.Identity()
        self.post_init()

    def forward(
        self,
        pixel_values=None,
        labels=None,
        output_attentions=None,
        output_hidden_states=None,
        interpolate_pos_encoding=False,
        return_dict=None,
        **kwargs,
    ):
        r"""
        labels (`torch.LongTensor` of shape `(batch_size,)`, or float `(batch_size, num_labels)` for multi-label
        and regression): targets for the loss. Trainer's `num_items_in_batch` keeps the loss right under gradient
        accumulation.
        """
        return_dict = self.config.return_dict if return_dict is None else return_dict
        outputs = self.vit(
            pixel_values,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            interpolate_pos_encoding=interpolate_pos_encoding,
            return_dict=True,
            pooled_only=True,
        )
        logits = self.classifier(outputs.pooler_output)
        if self.config.calibration_temperature != 1.0:  # temperature scaling; at 1.0 the logits stay untouched
            logits = logits / self.config.calibration_temperature

        loss = None
        if labels is not None:
            loss = self.loss_function(labels, logits, self.config, num_items_in_batch=kwargs.get("num_items_in_batch"))

        if not return_dict:
            rest = tuple(v for v in (outputs.hidden_states, outputs.attentions) if v is not None)
            return ((loss,) if loss is not None else ()) + (logits,) + rest
        return ImageClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


__all__ = ["ViTSimplePreTrainedModel", "ViTSimpleModel", "ViTSimpleForImageClassification"]
