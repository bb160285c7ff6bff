"""Pretrained weights for vit-simple: transformers' (google/vit-*) and timm's ViT checkpoints in, native ViT out.

With `qkv_bias=True, patch_norm=False, pool="cls"` vit-simple computes the same function as transformers'
`ViTForImageClassification` and timm's `VisionTransformer`, so converting is renaming, plus two layouts:
- the strided convolution that embeds patches, weight (dim, c, p1, p2), is vit-simple's Linear over each flattened
  patch '(p1 p2 c)';
- transformers' separate query, key and value projections are stacked into `to_qkv`; timm's fused `qkv` already has
  vit-simple's layout, (qkv heads head_dim) along its output.

    vit-simple-convert --source google/vit-base-patch16-224 --output_dir vit-simple-b16
    vit-simple-convert --source timm/vit_small_patch16_224.augreg_in21k_ft_in1k --output_dir vit-simple-s16
    vit-simple-convert --source weights.pth --timm_model vit_small_patch16_224 --output_dir vit-simple-s16
    vit-simple-convert --source google/vit-base-patch16-224 --image_size 384 --output_dir vit-simple-b16-384
    vit-simple-convert --export vit-simple-b16 --output_dir vit-b16-native

Weights are read with safetensors, or with `torch.load(weights_only=True)` where a source has only a pickle. A headless
source (transformers' `ViTModel`, such as google/vit-base-patch16-224-in21k, or a timm model with `num_classes=0`)
gives a headless `ViTSimpleModel`; a classifier loaded from it starts with a new head. The tanh pooler of `ViTModel`
checkpoints is left out: neither transformers' nor vit-simple's classifier uses it. Converting timm weights needs timm,
which describes their architecture; nothing else here does.
"""

import argparse
import json
import re
import sys
from pathlib import Path

import torch
from einops import rearrange
from PIL import Image
from safetensors.torch import load_file
from transformers import AutoConfig, AutoImageProcessor, ViTConfig, ViTForImageClassification

from configuration_vit_simple import ViTSimpleConfig, pair
from modeling_vit_simple import ViTSimpleForImageClassification, ViTSimpleModel
from vit_simple.checkpoints import (CheckpointError, check_checkpoint, loading, read_config, weight_files,
                                    weight_shapes)
from vit_simple.model_card import write_converted_card
from vit_simple.processing import add_image_size_argument, image_processor_for, image_size_of
from vit_simple.sources import is_local

PATCH_WEIGHT = "vit.embeddings.patch_embedding.proj.weight"
POSITIONS = "vit.embeddings.position_embeddings"
QKV = re.compile(r"vit\.layers\.(\d+)\.attn\.to_qkv\.(weight|bias)")

# vit-simple parameter -> transformers ViT parameter (transformers 5 names); names that match none are the same in both
TRANSFORMERS_NAMES = [
    (r"^vit\.embeddings\.patch_embedding\.proj\.", "vit.embeddings.patch_embeddings.projection."),
    (r"^vit\.layers\.(\d+)\.attn\.norm\.", r"vit.layers.\1.layernorm_before."),
    (r"^vit\.layers\.(\d+)\.attn\.to_out\.", r"vit.layers.\1.attention.o_proj."),
    (r"^vit\.layers\.(\d+)\.ff\.norm\.", r"vit.layers.\1.layernorm_after."),
    (r"^vit\.layers\.(\d+)\.ff\.", r"vit.layers.\1.mlp."),
    (r"^vit\.norm\.", "vit.layernorm."),
]
# Checkpoints from before transformers 5 (google/vit-* on the Hub), and its save_pretrained still, use older names.
# Applied in this order: `attention.output.dense` must be renamed before the MLP's `output.dense`.
LEGACY_TRANSFORMERS_NAMES = [
    (r"\.encoder\.layer\.", ".layers."),
    (r"\.attention\.attention\.query\.", ".attention.q_proj."),
    (r"\.attention\.attention\.key\.", ".attention.k_proj."),
    (r"\.attention\.attention\.value\.", ".attention.v_proj."),
    (r"\.attention\.output\.dense\.", ".attention.o_proj."),
    (r"\.intermediate\.dense\.", ".mlp.fc1."),
    (r"\.output\.dense\.", ".mlp.fc2."),
]
# vit-simple parameter -> timm VisionTransformer parameter
TIMM_NAMES = [
    (r"^vit\.embeddings\.cls_token$", "cls_token"),
    (r"^vit\.embeddings\.position_embeddings$", "pos_embed"),
    (r"^vit\.embeddings\.patch_embedding\.proj\.", "patch_embed.proj."),
    (r"^vit\.layers\.(\d+)\.attn\.norm\.", r"blocks.\1.norm1."),
    (r"^vit\.layers\.(\d+)\.attn\.to_qkv\.", r"blocks.\1.attn.qkv."),
    (r"^vit\.layers\.(\d+)\.attn\.to_out\.", r"blocks.\1.attn.proj."),
    (r"^vit\.layers\.(\d+)\.ff\.norm\.", r"blocks.\1.norm2."),
    (r"^vit\.layers\.(\d+)\.ff\.", r"blocks.\1.mlp."),
    (r"^vit\.norm\.", "norm."),
    (r"^classifier\.", "head."),
]


# helpers


def _rename(name, table):
    """`name` through the first rule of `table` that matches it, unchanged if none does."""
    for pattern, replacement in table:
        renamed, count = re.subn(pattern, replacement, name)
        if count:
            return renamed
    return name


def _as_is(tensor):
    return tensor


def _stack(*tensors):
    return torch.cat(tensors)


def _conv_to_linear(weight):
    return rearrange(weight, "o c p1 p2 -> o (p1 p2 c)")


def _prepend_zero_position(position_embeddings):
    """timm's `no_embed_class`: the CLS token gets no position embedding, which is a zero one in vit-simple."""
    return torch.cat((torch.zeros_like(position_embeddings[:, :1]), position_embeddings), dim=1)


def _read_json(path):
    return json.loads(Path(path).read_text()) if Path(path).is_file() else {}


def _local_copy(source):
    """A local file or folder as it is; otherwise the Hub repo `source`, fetched by huggingface_hub (which honours
    HF_HUB_OFFLINE and its cache): its JSON configs and safetensors weights, or its pickled weights if it has none."""
    path = Path(source).expanduser()
    if is_local(source):
        if not path.exists():
            raise FileNotFoundError(f"No such file or folder: {source}.")
        return path
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    try:
        folder = Path(snapshot_download(str(source), allow_patterns=["*.json", "*.safetensors"]))
        if not any(folder.glob("*.safetensors")):
            folder = Path(snapshot_download(str(source), allow_patterns=["*.json", "*.bin"]))
    except HFValidationError as error:
        raise FileNotFoundError(f"No such file or folder: {source} (nor is it a Hub repo id).") from error
    except OSError as error:
        raise FileNotFoundError(
            f"{source} is not a local file or folder, and the Hub repo of that name could not be fetched: {error}"
        ) from error
    return folder


def _read_tensors(path):
    """Every tensor of a weights file, or of a folder's (sharded or not) weights: safetensors where there are any,
    else the pickle through `torch.load(weights_only=True)`, which refuses anything but tensors and plain data."""
    path = Path(path)
    files = [path]
    if path.is_dir():
        for name in ("model.safetensors", "pytorch_model.bin"):
            index = path / f"{name}.index.json"
            if index.is_file():
                files = sorted({path / file for file in json.loads(index.read_text())["weight_map"].values()})
                break
            if (path / name).is_file():
                files = [path / name]
                break
        else:
            raise FileNotFoundError(f"{path} has no model.safetensors or pytorch_model.bin (nor a sharded index).")
    tensors = {}
    for file in files:
        if file.suffix == ".safetensors":
            tensors.update(load_file(file))
            continue
        checkpoint = torch.load(file, map_location="cpu", weights_only=True)
        # training checkpoints (timm's train.py and most others) keep the weights under one key, DDP adds `module.`
        for key in ("state_dict", "model"):
            if isinstance(checkpoint.get(key), dict):
                checkpoint = checkpoint[key]
                break
        tensors.update({name.removeprefix("module."): tensor for name, tensor in checkpoint.items()})
    return tensors


def _build(config, headless):
    """vit-simple for `config`, on the meta device: the converted weights replace every parameter."""
    if config.num_attention_heads == 1 and config.head_dim == config.hidden_size:
        raise ValueError(
            "The source has one attention head as wide as the model; vit-simple (like vit-pytorch) has no attention "
            "output projection then, so the source's cannot be carried over."
        )
    with torch.device("meta"):
        return (ViTSimpleModel if headless else ViTSimpleForImageClassification)(config)


def _load_converted(model, tensors, recipe, ignored=(), hint="", file_names=None):
    """Fill the meta-device `model` with the source `tensors`. `recipe(name)` gives the source tensors that make
    vit-simple's parameter `name` and how they combine. Every source tensor is used or `ignored` (name prefixes):
    a missing or unused one, or a shape that does not fit, is a `ValueError` that names it (unused ones by their
    name in the file, `file_names`, where the tensors were renamed)."""
    file_names = file_names or {}
    prefix = "vit." if isinstance(model, ViTSimpleModel) else ""  # a headless model's names lack it
    expected = {prefix + name: tensor.shape for name, tensor in model.state_dict().items()}
    plan = {name: recipe(name) for name in expected}
    needed = {source for sources, _ in plan.values() for source in sources}
    missing = sorted(needed - tensors.keys())
    unused = sorted(file_names.get(name, name) for name in tensors.keys() - needed
                    if not name.startswith(tuple(ignored)))
    if missing or unused:
        raise ValueError(
            "The source checkpoint does not fit the architecture read from its configuration: "
            + "; ".join(f"{what}: {', '.join(names)}" for what, names in
                        (("missing", missing), ("unexpected", unused)) if names)
            + f". {hint}"
        )
    state, wrong = {}, []
    for name, (sources, combine) in plan.items():
        tensor = combine(*(tensors[source] for source in sources))
        if tensor.shape != expected[name]:
            wrong.append(f"{name} (from {', '.join(sources)}) has shape {tuple(tensor.shape)}, "
                         f"expected {tuple(expected[name])}")
        state[name.removeprefix(prefix)] = tensor.contiguous()
    if wrong:
        more = f"; and {len(wrong) - 2} more" if len(wrong) > 2 else ""
        raise ValueError(f"The source checkpoint's shapes do not fit its configuration: {'; '.join(wrong[:2])}{more}. "
                         f"{hint}")
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()


# transformers' ViT


def _transformers_recipe(name):
    qkv = QKV.fullmatch(name)
    if qkv:
        block, kind = qkv.groups()
        return [f"vit.layers.{block}.attention.{p}_proj.{kind}" for p in "qkv"], _stack
    return [_rename(name, TRANSFORMERS_NAMES)], _conv_to_linear if name == PATCH_WEIGHT else _as_is


def _transformers_5_names(tensors):
    """The tensors of a transformers ViT checkpoint under transformers 5's full names (`vit.layers.N...`), and a
    map from those names back to the file's."""
    headless = not any(name.startswith("vit.") for name in tensors)  # a ViTModel checkpoint: the base model alone
    renamed, file_names = {}, {}
    for file_name, tensor in tensors.items():
        name = f"vit.{file_name}" if headless else file_name
        for pattern, replacement in LEGACY_TRANSFORMERS_NAMES:
            name = re.sub(pattern, replacement, name)
        renamed[name], file_names[name] = tensor, file_name
    return renamed, file_names


def _from_transformers(path):
    vit_config = AutoConfig.from_pretrained(path)
    if vit_config.model_type != "vit":
        hint = " (a vit-simple folder exports to transformers with --export)" * (vit_config.model_type == "vit_simple")
        raise ValueError(
            f"{path} holds a {vit_config.model_type!r} model: only transformers' ViT (model_type 'vit', "
            f"ViTForImageClassification or ViTModel) and timm's VisionTransformer convert to vit-simple{hint}."
        )
    if vit_config.hidden_act != "gelu":
        raise ValueError(f"{path} uses hidden_act={vit_config.hidden_act!r}; vit-simple's MLP has the exact GELU "
                         "('gelu') only.")
    tensors, file_names = _transformers_5_names(_read_tensors(path))
    heads = vit_config.num_attention_heads
    config = ViTSimpleConfig(
        image_size=vit_config.image_size,
        patch_size=vit_config.patch_size,
        num_channels=vit_config.num_channels,
        hidden_size=vit_config.hidden_size,
        num_hidden_layers=vit_config.num_hidden_layers,
        num_attention_heads=heads,
        head_dim=getattr(vit_config, "head_dim", None) or vit_config.hidden_size // heads,  # as transformers' ViT
        intermediate_size=vit_config.intermediate_size,
        pool="cls",
        hidden_dropout_prob=vit_config.hidden_dropout_prob,
        attention_probs_dropout_prob=vit_config.attention_probs_dropout_prob,
        embedding_dropout_prob=vit_config.hidden_dropout_prob,
        qkv_bias=vit_config.qkv_bias,
        patch_norm=False,
        layer_norm_eps=vit_config.layer_norm_eps,
        initializer_range=vit_config.initializer_range,
        id2label=vit_config.id2label,
        problem_type=vit_config.problem_type,
    )
    model = _build(config, headless="classifier.weight" not in tensors)
    _load_converted(model, tensors, _transformers_recipe, ignored=("vit.pooler.",), file_names=file_names,
                    hint="Missing names are transformers 5's. Give a folder whose config.json and weights were saved "
                         "together (save_pretrained).")
    processor = _read_json(path / "preprocessor_config.json")
    preprocessing = {key: processor[key] for key in ("image_mean", "image_std", "resample") if key in processor}
    return model, preprocessing, "transformers ViT"


# timm's VisionTransformer


def _import_timm():
    try:
        import timm
    except ImportError as error:
        raise ImportError("Converting timm weights needs timm, which describes their architecture: pip install timm "
                          "(transformers ViT checkpoints convert without it).") from error
    return timm


def _config_from_timm(model, id2label):
    """vit-simple's configuration of the timm `model`; a `ValueError` names what vit-simple cannot represent."""
    from timm.layers import Attention, Mlp, PatchEmbed
    from timm.models.vision_transformer import Block, VisionTransformer

    parts = [model, model.patch_embed, *model.blocks, *(block.attn for block in model.blocks),
             *(block.mlp for block in model.blocks)]
    others = sorted({type(part).__name__ for part in parts
                     if type(part) not in (VisionTransformer, PatchEmbed, Block, Attention, Mlp)})
    if others:
        raise ValueError(f"The timm model is built from {', '.join(others)}; vit-simple converts timm's plain "
                         "VisionTransformer (its PatchEmbed, Block, Attention and Mlp) only.")
    identity = torch.nn.Identity
    blocks = list(model.blocks)
    norms = [model.norm] + [norm for block in blocks for norm in (block.norm1, block.norm2)]
    pool = {"token": "cls", "avg": "mean"}.get(model.global_pool)
    unsupported = {
        f"global_pool={model.global_pool!r} (vit-simple pools the CLS token or the token mean)": pool is None,
        "global_pool='avg' beside a class token (vit-simple's mean pooling has no CLS token)":
            pool == "mean" and model.cls_token is not None,
        "register tokens (reg_tokens)": model.reg_token is not None,
        "no position embeddings (pos_embed='none')": model.pos_embed is None,
        "a LayerNorm after pooling (fc_norm, timm's default with global_pool='avg'; vit-simple normalises the tokens "
        "before pooling)": not isinstance(model.fc_norm, identity),
        "no final LayerNorm (final_norm=False)":
            isinstance(model.norm, identity) and isinstance(model.fc_norm, identity),
        "a LayerNorm before the blocks (pre_norm)": not isinstance(model.norm_pre, identity),
        "attention pooling (global_pool='map' or 'prr')": model.attn_pool is not None,
        "a norm in the patch embedding (embed_norm_layer)": not isinstance(model.patch_embed.norm, identity),
        "no bias in the patch embedding": model.patch_embed.proj.bias is None,
        "layer scale (init_values)": any(not isinstance(ls, identity) for b in blocks for ls in (b.ls1, b.ls2)),
        "query/key normalisation (qk_norm)": any(not isinstance(b.attn.q_norm, identity) for b in blocks),
        "a norm inside attention or the MLP (scale_attn_norm, scale_mlp_norm)":
            any(not isinstance(b.attn.norm, identity) or not isinstance(b.mlp.norm, identity) for b in blocks),
        "gated attention": any(getattr(b.attn, "gate", None) is not None for b in blocks),
        "projections without bias (proj_bias=False)":
            any(layer.bias is None for b in blocks for layer in (b.attn.proj, b.mlp.fc1, b.mlp.fc2)),
        "an activation other than the exact GELU":
            any(type(b.mlp.act) is not torch.nn.GELU or b.mlp.act.approximate != "none" for b in blocks),
        "a normalisation other than LayerNorm with weight and bias":
            any(not isinstance(norm, torch.nn.LayerNorm) or not norm.elementwise_affine or norm.bias is None
                for norm in norms if not isinstance(norm, identity)),
        "LayerNorms with different eps": len({norm.eps for norm in norms if isinstance(norm, torch.nn.LayerNorm)}) > 1,
    }
    found = [what for what, present in unsupported.items() if present]
    if found:
        raise ValueError(f"The timm model uses {'; '.join(found)}, which vit-simple cannot represent.")
    attn = blocks[0].attn
    height, width = model.patch_embed.img_size
    labels = {"id2label": id2label} if id2label else {"num_labels": model.num_classes} if model.num_classes else {}
    return ViTSimpleConfig(
        image_size=height if height == width else [height, width],
        patch_size=list(model.patch_embed.patch_size),
        num_channels=model.patch_embed.proj.in_channels,
        hidden_size=model.embed_dim,
        num_hidden_layers=len(blocks),
        num_attention_heads=attn.num_heads,
        head_dim=attn.head_dim,
        intermediate_size=blocks[0].mlp.fc1.out_features,
        pool=pool,
        qkv_bias=attn.qkv.bias is not None,
        patch_norm=False,
        layer_norm_eps=model.norm.eps,
        **labels,
    )


def _timm_labels(pretrained_cfg, num_classes):
    """Class names from the timm config (its label names, described where it describes them); for an ImageNet
    classifier without them, ImageNet's, as timm's own inference script does. None when there are none."""
    from timm.data import ImageNetInfo, infer_imagenet_subset

    names = pretrained_cfg.get("label_names")
    if not names and pretrained_cfg.get("num_classes") == num_classes and infer_imagenet_subset(pretrained_cfg):
        info = ImageNetInfo(infer_imagenet_subset(pretrained_cfg))
        return {i: info.index_to_description(i) for i in range(num_classes)}
    if not names or len(names) != num_classes:
        return None
    descriptions = pretrained_cfg.get("label_descriptions") or {}
    names = names.items() if isinstance(names, dict) else enumerate(names)
    return {int(i): descriptions.get(name, name) for i, name in names}


def _from_timm(path, timm_model, timm_model_args):
    timm = _import_timm()
    hub_config = _read_json(path / "config.json") if path.is_dir() else {}
    name = timm_model or hub_config.get("architecture")
    if name is None:
        raise ValueError(f"{path} is not a timm model folder (its config.json names no architecture): give the timm "
                         "architecture with --timm_model (e.g. vit_small_patch16_224).")
    # timm's Hub config: architecture, model_args, label names at the top, preprocessing in pretrained_cfg (older
    # exports keep all in one flat dict)
    pretrained_cfg = dict(hub_config.get("pretrained_cfg", hub_config))
    pretrained_cfg.update({key: hub_config[key] for key in ("num_classes", "label_names", "label_descriptions")
                           if key in hub_config})
    model_args = {**hub_config.get("model_args", {}), **(timm_model_args or {})}
    tensors = _read_tensors(path)
    model_args["num_classes"] = len(tensors["head.weight"]) if "head.weight" in tensors else 0
    with torch.device("meta"):  # the architecture only; the weights come from the checkpoint
        timm_vit = timm.create_model(name, pretrained=False, **model_args)
    pretrained_cfg = {**timm_vit.pretrained_cfg, **pretrained_cfg}  # the folder's own preprocessing and labels win
    config = _config_from_timm(timm_vit, _timm_labels(pretrained_cfg, timm_vit.num_classes))
    model = _build(config, headless=timm_vit.num_classes == 0)

    def recipe(name):
        if name == PATCH_WEIGHT:
            return ["patch_embed.proj.weight"], _conv_to_linear
        if name == POSITIONS and timm_vit.no_embed_class and timm_vit.cls_token is not None:
            return ["pos_embed"], _prepend_zero_position
        return [_rename(name, TIMM_NAMES)], _as_is

    hint = (f"Check that the timm architecture ({name}, arguments {model_args}) is the checkpoint's: --timm_model, "
            "--timm_model_args.")
    _load_converted(model, tensors, recipe, hint=hint)
    resample = Image.Resampling.__members__.get(str(pretrained_cfg.get("interpolation")).upper())
    preprocessing = {"image_mean": pretrained_cfg.get("mean"), "image_std": pretrained_cfg.get("std"),
                     "resample": resample}
    return model, preprocessing, f"timm {name}"


# conversion and export


def check_source(source, timm_model=None):
    """Refuse, in one line, a local --source that cannot convert (vit_simple.checkpoints): a folder that is no
    transformers or timm ViT, or whose config or weights are damaged; a file that is no timm weights file. A Hub repo
    is checked as it is fetched."""
    if not is_local(source):
        return
    name, path = f"--source {source}", Path(source).expanduser()
    if path.is_file():
        if path.suffix not in (".safetensors", ".pth", ".pt", ".bin"):
            raise CheckpointError(f"{name} is a file, not a model folder or weights file: give the folder of a "
                                  "transformers or timm ViT, or a timm weights file (.safetensors, .pth, .bin) with "
                                  "--timm_model.")
        if path.suffix == ".safetensors":
            weight_shapes([path], path.parent, name)  # complete, or refused
        if timm_model is None:
            raise CheckpointError(f"{name} is a file: a timm weights file converts with --timm_model <architecture> "
                                  "(e.g. vit_small_patch16_224); a transformers ViT is given as its folder.")
        return
    config = read_config(path, name)
    if timm_model is not None or "architecture" in config:  # a timm folder: its config is timm's own
        weight_shapes(weight_files(path, name), path, name)
    else:
        check_checkpoint(source, "vit", name)


def convert_vit_weights(source, output_dir=None, image_size=None, timm_model=None, timm_model_args=None):
    """Convert a ViT checkpoint to vit-simple and return the model; with `output_dir`, write a complete vit-simple
    folder (config, model.safetensors, the .py files, the image processor, a model card).

    source: a transformers ViT (a Hub id such as google/vit-base-patch16-224, or a folder), or a timm ViT (a Hub id
        such as timm/vit_small_patch16_224.augreg_in21k_ft_in1k, a folder in timm's Hub format, or a weights file
        .safetensors/.pth/.bin together with `timm_model`).
    image_size: an int or (height, width) divisible by the patch size; the position embeddings are resampled to it.
    timm_model, timm_model_args: timm's architecture name and `create_model` arguments, for a weights file (or to
        override those of a timm folder).
    """
    path = _local_copy(source)
    if timm_model is not None or path.is_file() or "architecture" in _read_json(path / "config.json"):
        model, preprocessing, kind = _from_timm(path, timm_model, timm_model_args)
    elif (path / "config.json").is_file():
        model, preprocessing, kind = _from_transformers(path)
    else:
        raise ValueError(f"{path} has no config.json: give a transformers or timm model folder (or Hub id), or a timm "
                         "weights file together with --timm_model.")
    source_size = model.config.image_size
    if image_size is not None:
        model.set_image_size(image_size)
    if output_dir is not None:
        model.save_pretrained(output_dir)
        image_processor_for(model.config, **preprocessing).save_pretrained(output_dir)
        write_converted_card(output_dir, model=model, source=source, kind=kind, source_size=source_size)
    return model


def export_to_transformers(model, output_dir=None, image_processor=None):
    """Write a vit-simple classifier (a model, or a folder of one) as a native transformers `ViTForImageClassification`
    folder, which loads with `AutoModelForImageClassification` without remote code, and return that model. Only a
    model with `patch_norm=False`, `pool="cls"`, `shifted_patches=False` and `locality_attention=False` has a
    transformers equivalent."""
    if not isinstance(model, torch.nn.Module):
        folder = Path(model)
        with loading(folder):
            model, info = ViTSimpleForImageClassification.from_pretrained(folder, output_loading_info=True)
        if info["missing_keys"]:
            raise ValueError(f"{folder} is a vit-simple model without a classification head ("
                             f"{', '.join(sorted(info['missing_keys']))} missing): fine-tune a classifier first.")
        if image_processor is None and (folder / "preprocessor_config.json").is_file():
            image_processor = AutoImageProcessor.from_pretrained(folder)
    config = model.config
    if type(model).__name__ != "ViTSimpleForImageClassification":
        raise ValueError(f"Expected a ViTSimpleForImageClassification, got {type(model).__name__}.")
    unsupported = [why for present, why in (
        (config.patch_norm, "patch_norm=True (LayerNorms around the patch projection)"),
        (config.pool != "cls", f"pool={config.pool!r} (transformers' ViT classifies the CLS token)"),
        (config.shifted_patches, "shifted_patches=True (patches cut from the image and its shifts)"),
        (config.locality_attention, "locality_attention=True (a learned attention scale, no token attending to "
                                    "itself)"),
    ) if present]
    if unsupported:
        raise ValueError(f"transformers' ViTForImageClassification has no equivalent of {' and '.join(unsupported)}: "
                         "only a vit-simple model with patch_norm=False, pool='cls', shifted_patches=False and "
                         "locality_attention=False exports.")
    heads, head_dim = config.num_attention_heads, config.head_dim
    vit_config = ViTConfig(
        image_size=config.image_size,
        patch_size=config.patch_size,
        num_channels=config.num_channels,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=heads,
        intermediate_size=config.intermediate_size,
        hidden_act="gelu",
        hidden_dropout_prob=config.hidden_dropout_prob,
        attention_probs_dropout_prob=config.attention_dropout,
        layer_norm_eps=config.layer_norm_eps,
        initializer_range=config.initializer_range,
        qkv_bias=config.qkv_bias,
        id2label=config.id2label,
        problem_type=config.problem_type,
        # transformers' ViT reads head_dim when the config has one, else hidden_size // heads
        **({} if heads * head_dim == config.hidden_size else {"head_dim": head_dim}),
    )
    (patch_height, patch_width) = pair(config.patch_size)
    state = {}
    for name, tensor in model.state_dict().items():
        qkv = QKV.fullmatch(name)
        if qkv:
            block, kind = qkv.groups()
            for p, part in zip("qkv", tensor.chunk(3)):
                state[f"vit.layers.{block}.attention.{p}_proj.{kind}"] = part
        elif name == PATCH_WEIGHT:
            state[_rename(name, TRANSFORMERS_NAMES)] = rearrange(
                tensor, "o (p1 p2 c) -> o c p1 p2", p1=patch_height, p2=patch_width)
        else:
            state[_rename(name, TRANSFORMERS_NAMES)] = tensor
    if heads == 1 and head_dim == config.hidden_size:  # vit-simple skips the output projection: the identity
        for block in range(config.num_hidden_layers):
            eye = torch.eye(config.hidden_size, dtype=model.dtype)
            state[f"vit.layers.{block}.attention.o_proj.weight"] = eye
            state[f"vit.layers.{block}.attention.o_proj.bias"] = torch.zeros(config.hidden_size, dtype=model.dtype)
    with torch.device("meta"):
        vit = ViTForImageClassification(vit_config)
    vit.load_state_dict({name: tensor.contiguous() for name, tensor in state.items()}, strict=True, assign=True)
    vit.eval()
    if output_dir is not None:
        vit.save_pretrained(output_dir)
        (image_processor or image_processor_for(config)).save_pretrained(output_dir)
    return vit


# command line


def _json_object(text):
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON ({error}); e.g. '{{\"img_size\": 384}}'") from error
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object of timm.create_model arguments, got {text!r}")
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--source", help="transformers or timm ViT: a Hub id, a folder, or a timm weights file")
    what.add_argument("--export", metavar="VIT_SIMPLE", help="a vit-simple folder to write as a native transformers "
                      "ViTForImageClassification (patch_norm=False, pool='cls', shifted_patches=False, "
                      "locality_attention=False)")
    parser.add_argument("--output_dir", required=True, help="the folder to write")
    add_image_size_argument(parser, "convert")
    parser.add_argument("--timm_model", help="timm architecture of a weights file, e.g. vit_small_patch16_224")
    parser.add_argument("--timm_model_args", type=_json_object, metavar="JSON",
                        help='timm.create_model arguments of that architecture, e.g. \'{"img_size": 384}\'')
    args = parser.parse_args(argv)
    if args.export and (args.image_size or args.timm_model or args.timm_model_args):
        parser.error("--export writes the model as it is: --image_size and --timm_model* go with --source.")
    try:
        if args.export:
            check_checkpoint(args.export, "vit_simple", f"--export {args.export}")
            vit = export_to_transformers(args.export, args.output_dir)
            print(f"Wrote {args.output_dir}: transformers ViTForImageClassification ({vit.num_parameters():,} "
                  f"parameters) from {args.export}.")
            return
        image_size = image_size_of(args.image_size)
        check_source(args.source, args.timm_model)
        model = convert_vit_weights(args.source, args.output_dir, image_size, args.timm_model, args.timm_model_args)
    except (ValueError, FileNotFoundError, ImportError) as error:
        given = f"--export {args.export}" if args.export else f"--source {args.source}"
        named = isinstance(error, CheckpointError) or str(args.export or args.source) in str(error)
        sys.exit(f"vit-simple-convert: error: {'' if named else given + ': '}{' '.join(str(error).split())}")
    height, width = pair(model.config.image_size)
    print(f"Wrote {args.output_dir}: vit-simple {type(model).__name__} ({model.num_parameters():,} parameters, "
          f"{height}x{width} images, {model.config.num_labels} labels) from {args.source}.")


if __name__ == "__main__":
    main()
