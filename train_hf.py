#!/usr/bin/env python
"""Train a vit-simple image classifier from scratch or fine-tune one, with transformers' Trainer; share it on the Hub.

    python train_hf.py                        # from scratch on Fashion-MNIST, offline; prints the test accuracy
    python train_hf.py --train_dir pets/train --model_name_or_path outputs/vit-simple --ignore_mismatched_sizes \
        --learning_rate 1e-4 --output_dir outputs/pets
    python train_hf.py args.json              # the same options from a JSON file
    torchrun --nproc_per_node 2 train_hf.py --use_cpu ...     # data-parallel (DDP); `accelerate launch` works too

The options follow transformers' examples/pytorch/image-classification/run_image_classification.py: the data and
model options below plus every `TrainingArguments` option; `--help` lists them all with their defaults.
"""

import ast
import io
import logging
import math
import os
import re
import shlex
import sys
import time
from dataclasses import dataclass, field
from inspect import signature
from pathlib import Path
from typing import Literal

import datasets
import evaluate
import numpy as np
import PIL.Image
import torch
import transformers
from datasets import ClassLabel, Image, IterableDatasetDict, load_dataset
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModelForImageClassification,
    HfArgumentParser,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)
from transformers.image_transforms import convert_to_rgb
from transformers.trainer_utils import IntervalStrategy, SaveStrategy, SchedulerType
from transformers.utils import is_torch_bf16_gpu_available

import data_fashion_mnist
import vit_simple  # registers vit-simple with the Auto classes, so saved folders load without remote code
from configuration_vit_simple import ViTSimpleConfig, pair
from model_card import write_model_card

logger = logging.getLogger(__name__)

METRICS_DIR = Path(__file__).resolve().parent / "metrics"  # evaluate modules shipped with the repo, loaded by path

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
STREAM_SHUFFLE_BUFFER = 10_000  # examples a stream is shuffled through (a stream arrives in storage order)
IMAGEFOLDER_LAYOUT = "put the images of each class in a sub-folder named after it, e.g. train/cat/1.jpg, train/dog/2.jpg"
VALIDATION_ALIASES = ("val", "valid", "dev")


class InputError(ValueError):
    """A problem with the user's data or options: reported as one message, without a traceback."""


# options


@dataclass
class DataArguments:
    dataset_name: str | None = field(default=None, metadata={"help": (
        "A data set on the Hub (e.g. 'beans'), a local data set folder, or 'fashion_mnist': the built-in offline "
        "Fashion-MNIST, read from /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist) or from any "
        "folder given here that holds its four IDX files. Default: fashion_mnist, unless --train_dir is given.")})
    dataset_config_name: str | None = field(default=None, metadata={"help": "The data set's configuration name."})
    train_dir: str | None = field(default=None, metadata={
        "help": "A folder of training images, one sub-folder per class (the `imagefolder` layout)."})
    validation_dir: str | None = field(default=None, metadata={"help": "A folder of validation images, as --train_dir."})
    test_dir: str | None = field(default=None, metadata={"help": "A folder of test images, as --train_dir."})
    image_column_name: str = field(default="image", metadata={"help": "The column holding the images."})
    label_column_name: str = field(default="label", metadata={"help": "The column holding the class labels."})
    train_val_split: float = field(default=0.1, metadata={
        "help": "Fraction of the training split held out for validation when the data set has no validation split."})
    max_train_samples: int | None = field(default=None, metadata={
        "help": "Train on only this many (shuffled) training examples: for quick runs and debugging."})
    max_eval_samples: int | None = field(default=None, metadata={
        "help": "Evaluate on only the first this many validation and test examples."})
    streaming: bool = field(default=False, metadata={"help": (
        "Read the data as a stream (an IterableDataset) instead of downloading it first; needs --max_steps. Without "
        "a validation split, the first --max_eval_samples (default 1000) training examples are held out.")})
    augmentation: Literal["auto", "none", "flip", "pad_crop", "resized_crop"] = field(default="auto", metadata={
        "help": (
            "Training augmentation. flip: a random horizontal flip (see --horizontal_flip); pad_crop: pad by 1/8 of "
            "the size, crop at random and flip (small images); resized_crop: random resized crop and flip (large "
            "images); none: the images as they are. auto: when fine-tuning a checkpoint (which otherwise overfits a "
            f"small data set), pad_crop up to {SMALL_IMAGE} pixels and resized_crop above; from scratch flip only, "
            "because a CPU-length run from scratch underfits under crops (Fashion-MNIST, dim 96: 84%% validation "
            "accuracy after one epoch without augmentation, 76%% with pad_crop and flips) yet overfits without any "
            "(7x7-pixel patches: validation loss rising from epoch 8 of 12). Long runs from scratch gain from "
            "pad_crop or resized_crop.")})
    horizontal_flip: bool = field(default=True, metadata={
        "help": "With an augmentation, also flip training images left-right at random (turn off for digits, text "
                "and other classes that are not mirror-symmetric)."})

    def __post_init__(self):
        if not 0 < self.train_val_split < 1:
            raise InputError(f"--train_val_split must be a fraction between 0 and 1, got {self.train_val_split}.")
        if self.augmentation not in ("auto", "none", "flip", "pad_crop", "resized_crop"):
            raise InputError("--augmentation must be auto, none, flip, pad_crop or resized_crop, got "
                             f"{self.augmentation!r}.")


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(default=None, metadata={"help": (
        "A vit-simple checkpoint to fine-tune: a folder saved by this script or a Hub model id. Unset: train from "
        "scratch a model of --model_size.")})
    model_size: Literal[tuple(MODEL_SIZES)] = field(default="mini", metadata={"help": (
        "From scratch: the model's size. " + "; ".join(
            f"{name}: dim {s['dim']}, depth {s['depth']}, heads {s['heads']}, mlp_dim {s['mlp_dim']}"
            for name, s in MODEL_SIZES.items()) + ".")})
    config_overrides: str | None = field(default=None, metadata={"help": (
        "From scratch: config values over --model_size, e.g. 'depth=4,dim=128,patch_size=7,pool=mean,dropout=0.1' "
        "(vit-pytorch or transformers names; a height x width pair as image_size=32x48). By default image_size is "
        f"the data's (224 for images larger than {SMALL_IMAGE} pixels), patch_size 16 at 224 and otherwise the largest "
        f"that still cuts at least {MIN_GRID}x{MIN_GRID} patches, channels 3 (images are converted to RGB; "
        "channels=1 trains on grayscale).")})
    trust_remote_code: bool = field(default=False, metadata={
        "help": "Allow the checkpoint's own code (its .py files) to run: needed for vit-simple repos on the Hub."})
    ignore_mismatched_sizes: bool = field(default=False, metadata={
        "help": "Replace the checkpoint's classification head when the data has another label set."})
    model_revision: str = field(default="main", metadata={"help": "The checkpoint's branch, tag or commit."})
    cache_dir: str | None = field(default=None, metadata={
        "help": "Where downloaded models and data sets, and the converted Fashion-MNIST, are stored."})


def native_bfloat16():
    """Whether this machine multiplies bfloat16 matrices natively: a CUDA GPU that supports it, or a CPU with
    AVX512-BF16 or AMX. There bf16 autocast trains about twice as fast (the Fashion-MNIST default on a 2-core AMD
    EPYC with AVX512-BF16: 1117 against 563 images/s for the training step); elsewhere it is emulated and slower."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private, hence the care
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


@dataclass
class TrainArguments(TrainingArguments):
    """`TrainingArguments` with the defaults of the default run: Fashion-MNIST from scratch, on a CPU."""

    output_dir: str | None = field(default="outputs/vit-simple", metadata={
        "help": "Where the model, its model card, results and checkpoints are written."})
    num_train_epochs: float = field(default=11.0, metadata={"help": "Total number of training epochs."})
    per_device_train_batch_size: int = field(default=128, metadata={"help": "Training batch size per device."})
    per_device_eval_batch_size: int = field(default=256, metadata={"help": "Evaluation batch size per device."})
    learning_rate: float = field(default=1e-3, metadata={
        "help": "Peak learning rate of AdamW (1e-3 suits training from scratch; fine-tuning wants less, e.g. 1e-4)."})
    weight_decay: float = field(default=0.05, metadata={
        "help": "AdamW weight decay, on weight matrices only (the model's no_weight_decay() list takes none)."})
    lr_scheduler_type: SchedulerType | str = field(default="cosine", metadata={
        "help": "Learning rate schedule after the warm-up (see transformers' SchedulerType)."})
    label_smoothing_factor: float = field(default=0.1, metadata={
        "help": "Label smoothing of the cross-entropy: the true class gets 1 - x + x/classes, the others x/classes."})
    bf16: bool = field(default=native_bfloat16(), metadata={"help": (
        "Train (and evaluate) under bfloat16 autocast, the weights staying float32. Default: whether this machine "
        "has native bfloat16 matrix multiplication (a recent GPU, or a CPU with AVX512-BF16 or AMX); --bf16 false "
        "turns it off.")})
    warmup_steps: float = field(default=0.05, metadata={
        "help": "Linear warm-up: a number of steps, or a fraction in [0, 1) of all steps."})
    eval_strategy: IntervalStrategy | str = field(default="epoch", metadata={
        "help": "When to evaluate on the validation split: 'no', 'steps' or 'epoch'."})
    save_strategy: SaveStrategy | str = field(default="epoch", metadata={
        "help": "When to write a checkpoint (for --resume_from_checkpoint): 'no', 'steps', 'epoch' or 'best'."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Keep at most this many checkpoints."})
    logging_steps: float = field(default=50, metadata={"help": "Log the training loss every this many steps."})
    remove_unused_columns: bool = field(default=False, metadata={
        "help": "Must stay False: the image column feeds the transforms, Trainer would drop it."})
    dataloader_num_workers: int = field(default=max(1, min(4, (os.cpu_count() or 1) // 4)), metadata={
        "help": "Processes decoding and augmenting images while the model trains (0: in the training process). "
                "Default: a quarter of the CPU cores, from 1 to 4."})
    dataloader_pin_memory: bool = field(default=torch.cuda.is_available(), metadata={
        "help": "Copy batches to page-locked memory, for faster transfers to a GPU (default: whether there is one)."})

    def __post_init__(self):
        if (self.bf16 or self.bf16_full_eval) and not self.use_cpu and not is_torch_bf16_gpu_available():
            self.use_cpu = True  # the run is on the CPU anyway; TrainingArguments wants that said to allow bf16 there
        super().__post_init__()


def parse_arguments(args=None):
    args = sys.argv[1:] if args is None else list(args)
    parser = HfArgumentParser((ModelArguments, DataArguments, TrainArguments), description=__doc__.split("\n")[0])
    if len(args) == 1 and args[0].endswith(".json"):
        return parser.parse_json_file(json_file=os.path.abspath(args[0]))
    return parser.parse_args_into_dataclasses(args)


# data


def load_data(data_args, cache_dir, seed):
    """The data as a `DatasetDict` (an `IterableDatasetDict` with --streaming): train, validation and, where the
    data has one, test."""
    dataset = load_splits(data_args, cache_dir)
    for alias in VALIDATION_ALIASES:
        if alias in dataset and "validation" not in dataset:
            dataset["validation"] = dataset.pop(alias)
    if "train" not in dataset:
        raise InputError(f"The data has no train split (splits: {', '.join(dataset) or 'none'}).")
    label_names = check_columns(dataset, data_args)

    if "validation" not in dataset:
        dataset["train"], dataset["validation"] = hold_out_validation(dataset["train"], data_args, seed)
    if data_args.streaming:  # imagefolder streams class after class: shuffle through a buffer, anew each epoch
        dataset["train"] = dataset["train"].shuffle(seed=seed, buffer_size=STREAM_SHUFFLE_BUFFER)
    if data_args.max_train_samples is not None:
        train = dataset["train"] if data_args.streaming else dataset["train"].shuffle(seed=seed)
        dataset["train"] = take(train, data_args.max_train_samples)
    if data_args.max_eval_samples is not None:
        for split in ("validation", "test"):
            if split in dataset:
                dataset[split] = take(dataset[split], data_args.max_eval_samples)
    for split in ("train", "validation", "test"):
        if split in dataset and not data_args.streaming and len(dataset[split]) == 0:
            raise InputError(f"The {split} split is empty: add images to it (or check --max_train_samples and "
                             "--max_eval_samples), or leave it out.")
    return dataset, label_names


def load_splits(data_args, cache_dir):
    if data_args.train_dir is not None:
        folders = {"train": data_args.train_dir, "validation": data_args.validation_dir, "test": data_args.test_dir}
        folders = {split: folder for split, folder in folders.items() if folder is not None}
        for split, folder in folders.items():
            if not Path(folder).is_dir() or not any(path.is_file() for path in Path(folder).rglob("*")):
                raise InputError(f"No images found in --{split}_dir {folder}: {IMAGEFOLDER_LAYOUT}.")
        data_files = {split: str(Path(folder) / "**") for split, folder in folders.items()}
        try:
            return load_dataset("imagefolder", data_files=data_files, cache_dir=cache_dir, streaming=data_args.streaming)
        except (FileNotFoundError, datasets.exceptions.DataFilesNotFoundError) as error:
            raise InputError(f"No images found in {', '.join(folders.values())} ({error}): {IMAGEFOLDER_LAYOUT}.") \
                from error
    if data_args.validation_dir or data_args.test_dir:
        raise InputError("--validation_dir and --test_dir need --train_dir.")

    name = data_args.dataset_name or "fashion_mnist"
    idx_dir = data_fashion_mnist.DEFAULT_DIR if name == "fashion_mnist" else name
    if name == "fashion_mnist" or data_fashion_mnist.is_idx_dir(idx_dir):
        try:
            dataset = data_fashion_mnist.load_fashion_mnist(idx_dir, cache_dir)
        except FileNotFoundError as error:
            raise InputError(str(error)) from error
        if data_args.streaming:
            return IterableDatasetDict({split: part.to_iterable_dataset() for split, part in dataset.items()})
        return dataset
    return load_dataset(name, data_args.dataset_config_name, cache_dir=cache_dir, streaming=data_args.streaming)


def check_columns(dataset, data_args):
    """The class names, after checking every split has an Image column and the same ClassLabel column."""
    image_column, label_column = data_args.image_column_name, data_args.label_column_name
    label_names = None
    for split, part in dataset.items():
        features = part.features
        if features is None:
            raise InputError(f"The {split} split does not declare its features (columns and types): cast them with "
                             "dataset.cast(Features({...})) or load the data without --streaming.")
        columns = ", ".join(f"{name} ({type(kind).__name__})" for name, kind in features.items())
        for option, column in (("image", image_column), ("label", label_column)):
            if column not in features:
                raise InputError(f"The {split} split has no column {column!r} (its columns: {columns}): name the "
                                 f"{option} column with --{option}_column_name.")
        if not isinstance(features[image_column], Image):
            raise InputError(f"Column {image_column!r} holds {features[image_column]}, not images: pass the image "
                             "column with --image_column_name, or cast it with dataset.cast_column(name, Image()).")
        if not isinstance(features[label_column], ClassLabel):
            raise InputError(
                f"Column {label_column!r} holds {features[label_column]}, not a ClassLabel, so the class names are "
                f"unknown: encode it with dataset.class_encode_column({label_column!r}) (or cast it to "
                "ClassLabel(names=[...])), use the imagefolder layout (one sub-folder per class), or pass the right "
                "column with --label_column_name.")
        names = features[label_column].names
        if label_names is not None and names != label_names:
            raise InputError(f"The {split} split's classes {names} differ from the train split's {label_names}: "
                             "every split needs the same ClassLabel.")
        label_names = names
    return label_names


def hold_out_validation(train, data_args, seed):
    """Split a validation set off the training data: --train_val_split of it, stratified by class when possible
    (--streaming: the first --max_eval_samples examples, default 1000)."""
    if data_args.streaming:
        count = data_args.max_eval_samples or 1000
        return train.skip(count), train.take(count)
    if len(train) < 2:
        raise InputError(f"The train split has {len(train)} example(s): too few to hold out a validation split. Add "
                         "images, or give a validation split (--validation_dir).")
    split = dict(test_size=data_args.train_val_split, seed=seed)
    try:
        parts = train.train_test_split(stratify_by_column=data_args.label_column_name, **split)
    except ValueError:  # a class too rare to stratify (fewer than 2 examples, or fewer than classes held out)
        parts = train.train_test_split(**split)
    return parts["train"], parts["test"]


def take(part, count):
    return part.take(count) if isinstance(part, datasets.IterableDataset) else part.select(range(min(count, len(part))))


def first_image_size(part, image_column):
    """(height, width) of the split's first image."""
    first = next(iter(part.cast_column(image_column, Image(decode=False))))
    return decode_image(first[image_column], None).size[::-1]


def describe_data(data_args):
    """(name, Hub id or None) of the data, for the model card."""
    if data_args.train_dir is not None:
        return f"the images in {Path(data_args.train_dir).name}", None
    name = data_args.dataset_name or "fashion_mnist"
    if name == "fashion_mnist" or data_fashion_mnist.is_idx_dir(name):
        return "Fashion-MNIST", "zalando-datasets/fashion_mnist"
    return name, None if Path(name).exists() else name


# model


def parse_config_overrides(text):
    """'depth=4,dim=128,pool=mean' as {'num_hidden_layers': 4, 'hidden_size': 128, 'pool': 'mean'}."""
    allowed = set(signature(ViTSimpleConfig.__init__).parameters) - {"self", "kwargs"}
    allowed |= set(ViTSimpleConfig.attribute_map)
    overrides = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        key, sep, value = (s.strip() for s in item.partition("="))
        if not sep or key not in allowed:
            raise InputError(f"--config_overrides: {item!r} is not key=value with a known key; keys: "
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
    raise InputError(f"No patch size cuts {height}x{width} images into at least {MIN_GRID}x{MIN_GRID} patches: give "
                     "image_size and patch_size in --config_overrides (e.g. 'image_size=32,patch_size=4').")


def scratch_config(model_args, label_names, data_image_size):
    """The config of a new model: --model_size, the data's image size and labels, then --config_overrides."""
    size = {ViTSimpleConfig.attribute_map.get(key, key): value for key, value in MODEL_SIZES[model_args.model_size].items()}
    if max(data_image_size) <= SMALL_IMAGE:
        image_size = data_image_size[0] if data_image_size[0] == data_image_size[1] else list(data_image_size)
    else:
        image_size = 224
    overrides = parse_config_overrides(model_args.config_overrides)
    kwargs = {"image_size": image_size, "num_channels": 3, **size, **overrides}
    kwargs.setdefault("patch_size", default_patch_size(kwargs["image_size"]))
    try:
        return ViTSimpleConfig(**kwargs, id2label=dict(enumerate(label_names)))
    except ValueError as error:
        raise InputError(f"--model_size {model_args.model_size} with --config_overrides "
                         f"{model_args.config_overrides!r}: {error}") from error


def init_like_vit_pytorch(model):
    """Initialise a new model as vit-pytorch does: PyTorch's default Linear init, unit-normal CLS token and position
    embeddings. From scratch it learned faster than transformers' 0.02 truncated normal in a short Fashion-MNIST
    comparison (2 epochs, dim 96). Here rather than in the model's _init_weights, which also initialises what a
    checkpoint lacks and follows transformers' ViT; moving it there as a config option is still to do."""
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.reset_parameters()
    embeddings = model.vit.embeddings
    with torch.no_grad():
        embeddings.position_embeddings.normal_()
        if embeddings.cls_token is not None:
            embeddings.cls_token.normal_()
    return model


def check_label_set(config, label_names, model_args):
    """Refuse to fine-tune a head trained for other classes unless --ignore_mismatched_sizes replaces it."""
    old_names = [config.id2label[i] for i in range(config.num_labels)]
    unnamed = old_names == [f"LABEL_{i}" for i in range(len(old_names))]
    if old_names == list(label_names) or (unnamed and len(old_names) == len(label_names)):
        return
    if not model_args.ignore_mismatched_sizes:
        raise InputError(
            f"{model_args.model_name_or_path} classifies {len(old_names)} classes ({preview(old_names)}) but the "
            f"data has {len(label_names)} ({preview(label_names)}): pass --ignore_mismatched_sizes to replace the "
            "classification head with a new one for these classes.")


def preview(names, count=5):
    return ", ".join(names[:count]) + (f", ... ({len(names)} in all)" if len(names) > count else "")


def build_model(model_args, label_names, data_image_size):
    """The model and its image processor: from a checkpoint (with the data's labels) or new (from scratch)."""
    if model_args.model_name_or_path is None:
        config = scratch_config(model_args, label_names, data_image_size)
        model = init_like_vit_pytorch(AutoModelForImageClassification.from_config(config))
        return model, vit_simple.image_processor_for(config)

    if model_args.config_overrides:
        raise InputError("--config_overrides applies to a model trained from scratch; a checkpoint keeps its own "
                         "config (edit its config.json to change it).")
    hub = dict(trust_remote_code=model_args.trust_remote_code, revision=model_args.model_revision,
               cache_dir=model_args.cache_dir)
    check_label_set(AutoConfig.from_pretrained(model_args.model_name_or_path, **hub), label_names, model_args)
    config = AutoConfig.from_pretrained(
        model_args.model_name_or_path, num_labels=len(label_names), id2label=dict(enumerate(label_names)),
        label2id={name: i for i, name in enumerate(label_names)}, **hub)
    model = AutoModelForImageClassification.from_pretrained(
        model_args.model_name_or_path, config=config, ignore_mismatched_sizes=model_args.ignore_mismatched_sizes, **hub)
    try:
        processor = AutoImageProcessor.from_pretrained(model_args.model_name_or_path, **hub)
    except OSError:  # a checkpoint saved without preprocessor_config.json
        processor = vit_simple.image_processor_for(model.config)
    return model, processor


# transforms


def decode_image(value, mode):
    """A PIL image from a `datasets.Image(decode=False)` value ({"bytes", "path"}), converted to `mode` ("RGB"
    composites transparency on white, as the image processor does; None keeps the image's own mode)."""
    try:
        image = PIL.Image.open(io.BytesIO(value["bytes"]) if value.get("bytes") else value["path"])
        image.load()
    except Exception as error:  # PIL raises OSError, SyntaxError, ValueError, zlib and struct errors for bad files
        where = value.get("path") or f"an embedded image of {len(value.get('bytes') or b'')} bytes"
        raise InputError(f"Cannot read image {where} ({type(error).__name__}: {error}): delete or replace that file "
                         "(or drop its row) and run again.") from error
    if mode == "RGB":
        return PIL.Image.fromarray(convert_to_rgb(image, return_numpy=True))
    return image if mode is None else image.convert(mode)


def random_resized_crop_box(width, height, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """torchvision's RandomResizedCrop box (left, top, right, bottom): a random area fraction and aspect ratio."""
    area, log_ratio = width * height, (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(*scale).item()
        aspect = math.exp(torch.empty(1).uniform_(*log_ratio).item())
        crop_w, crop_h = round(math.sqrt(target_area * aspect)), round(math.sqrt(target_area / aspect))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            top = torch.randint(0, height - crop_h + 1, ()).item()
            left = torch.randint(0, width - crop_w + 1, ()).item()
            return left, top, left + crop_w, top + crop_h
    # fall back to the central crop with the aspect ratio clamped to `ratio`
    crop_w, crop_h = width, height
    if width / height < ratio[0]:
        crop_h = round(width / ratio[0])
    elif width / height > ratio[1]:
        crop_w = round(height * ratio[1])
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    return left, top, left + crop_w, top + crop_h


def training_augmentation(choice, model_args):
    """--augmentation auto means flip from scratch and is left to ImageTransform (by image size) when fine-tuning."""
    return "flip" if choice == "auto" and model_args.model_name_or_path is None else choice


class ImageTransform:
    """Decode a batch of images and convert them to the model's mode; then normalise them with the saved image
    processor, exactly as `pipeline` will (evaluation), or augment and normalise them (training).

    Runs lazily on each batch as it is read (`with_transform`). The pixel work is numpy: on a small CPU, torch's
    multi-threaded kernels stall on tiny tensors while training holds the cores. Random numbers come from torch, so
    Trainer's seed and its checkpoints (which save the RNG state) cover the augmentation."""

    def __init__(self, processor, config, data_args, train):
        self.processor = processor
        self.image_column, self.label_column = data_args.image_column_name, data_args.label_column_name
        self.mode = "L" if config.num_channels == 1 else "RGB"
        self.height, self.width = pair(config.image_size)
        self.train = train
        self.augmentation = data_args.augmentation
        if self.augmentation == "auto":
            self.augmentation = "pad_crop" if max(self.height, self.width) <= SMALL_IMAGE else "resized_crop"
        self.flip = data_args.horizontal_flip and self.augmentation != "none"
        self.mean = np.array(processor.image_mean, dtype=np.float32).reshape(1, -1, 1, 1)
        self.std = np.array(processor.image_std, dtype=np.float32).reshape(1, -1, 1, 1)
        self.resample = PIL.Image.Resampling(processor.resample)

    def __call__(self, batch):
        images = [decode_image(value, self.mode) for value in batch[self.image_column]]
        if self.train:
            pixel_values = self.augment(images)
        else:
            pixel_values = np.stack(self.processor(images, return_tensors="np")["pixel_values"])
        return {"pixel_values": pixel_values, "labels": np.asarray(batch[self.label_column])}

    def augment(self, images):
        """(batch, channels, height, width) float32: random crop (resized, or padded, or none) and flip, then
        normalised."""
        size, count = (self.width, self.height), len(images)
        if self.augmentation == "resized_crop":
            images = [image.resize(size, self.resample, box=random_resized_crop_box(*image.size)) for image in images]
        else:
            images = [image if image.size == size else image.resize(size, self.resample) for image in images]
        pixels = np.stack([np.asarray(image) for image in images])
        pixels = pixels.reshape(*pixels.shape[:3], -1)  # (b, h, w, c), also for grayscale
        if self.augmentation == "pad_crop":  # zero padding of 1/8 of the size, then one random window per image
            pad = max(1, min(self.height, self.width) // 8)
            padded = np.pad(pixels, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
            tops, lefts = torch.randint(0, 2 * pad + 1, (2, count)).numpy()
            rows = tops[:, None] + np.arange(self.height)
            columns = lefts[:, None] + np.arange(self.width)
            pixels = padded[np.arange(count)[:, None, None], rows[:, :, None], columns[:, None, :]]
        if self.flip:
            flipped = (torch.rand(count) < 0.5).numpy()
            pixels[flipped] = pixels[flipped, :, ::-1]
        pixels = pixels.transpose(0, 3, 1, 2).astype(np.float32) * np.float32(self.processor.rescale_factor)
        return (pixels - self.mean) / self.std


def with_transform(part, transform, batch_size):
    """Apply `transform` lazily: on each batch as it is read (map-style) or as it streams (iterable)."""
    part = part.cast_column(transform.image_column, Image(decode=False))  # decode_image reports broken files
    if isinstance(part, datasets.IterableDataset):
        return part.map(transform, batched=True, batch_size=batch_size, remove_columns=list(part.features))
    return part.with_transform(transform)


def collate(examples):
    return {
        "pixel_values": torch.from_numpy(np.stack([example["pixel_values"] for example in examples])),
        "labels": torch.from_numpy(np.stack([example["labels"] for example in examples])),
    }


# training


def metrics_function(num_labels):
    """Trainer's compute_metrics: accuracy, macro F1 and (over 5 classes) top-5 accuracy, from ./metrics."""
    load = lambda name: evaluate.load(str(METRICS_DIR / name), keep_in_memory=True)  # noqa: E731
    accuracy, f1, top_k = load("accuracy"), load("f1"), load("top_k_accuracy")

    def compute_metrics(eval_prediction):
        logits, references = eval_prediction.predictions, eval_prediction.label_ids
        predictions = logits.argmax(-1)
        results = accuracy.compute(predictions=predictions, references=references)
        results["macro_f1"] = f1.compute(predictions=predictions, references=references, num_labels=num_labels)["f1"]
        if num_labels > 5:
            results.update(top_k.compute(predictions=logits, references=references, k=5))
        return results

    return compute_metrics


class ViTSimpleTrainer(Trainer):
    """Trainer that decays only what the model's `no_weight_decay()` allows, and leaves README.md to this script."""

    def get_decay_parameter_names(self, model):
        no_decay = getattr(self.accelerator.unwrap_model(model), "no_weight_decay", None)
        if no_decay is None:  # not a vit-simple model: Trainer's rule (no decay on biases and norms)
            return super().get_decay_parameter_names(model)
        skip = no_decay()
        # wrappers (DDP, FSDP, torch.compile) only prefix the names
        return [name for name, _ in model.named_parameters()
                if not any(name == s or name.endswith("." + s) for s in skip)]

    def create_model_card(self, *args, **kwargs):
        """The script writes README.md itself (test results, usage); keep push_to_hub() from replacing it."""


class TrainingThroughput(TrainerCallback):
    """Seconds spent in training steps, data loading included; evaluation and checkpointing left out."""

    def __init__(self):
        self.seconds, self.steps, self.since = 0.0, 0, None

    def restart(self, *args, **kwargs):
        self.since = time.perf_counter()

    on_epoch_begin = on_evaluate = on_save = restart

    def on_step_end(self, args, state, control, **kwargs):
        now = time.perf_counter()
        self.seconds += now - self.since
        self.steps += 1
        self.since = now

    def images_per_second(self, args):
        images = self.steps * args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
        return images / self.seconds if self.seconds else float("nan")


def setup_logging(training_args):
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", datefmt="%H:%M:%S",
                        handlers=[logging.StreamHandler(sys.stdout)])
    log_level = training_args.get_process_log_level()
    logger.setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    logger.warning(f"Process rank {training_args.process_index} of {training_args.world_size}, device "
                   f"{training_args.device}, distributed: {training_args.parallel_mode.value}")


def describe(model, image_size):
    config = model.config
    parameters = sum(p.numel() for p in model.parameters())
    (height, width), (patch_h, patch_w) = pair(config.image_size), pair(config.patch_size)
    return (f"vit-simple: {parameters / 1e6:.2f}M parameters, dim {config.hidden_size}, depth "
            f"{config.num_hidden_layers}, heads {config.num_attention_heads}, {height}x{width}x{config.num_channels} "
            f"images (data: {image_size[0]}x{image_size[1]}) in {patch_h}x{patch_w} patches "
            f"({config.num_patches} tokens), {config.num_labels} classes")


def main(args=None, callbacks=()):
    """Parse the options (`args`, default sys.argv), train, evaluate, save, write the card, push; return the results.
    `callbacks` are extra `TrainerCallback`s."""
    start = time.perf_counter()
    model_args, data_args, training_args = parse_arguments(args)
    setup_logging(training_args)
    if data_args.streaming and training_args.max_steps <= 0:
        raise InputError("--streaming needs --max_steps: a stream has no length to count epochs in.")
    if training_args.resume_from_checkpoint and not Path(training_args.resume_from_checkpoint).is_dir():
        raise InputError(f"--resume_from_checkpoint {training_args.resume_from_checkpoint} is not a folder: give a "
                         f"checkpoint folder, e.g. {training_args.output_dir}/checkpoint-500.")
    set_seed(training_args.seed)

    with training_args.main_process_first(desc="loading the data"):  # one process converts and caches
        dataset, label_names = load_data(data_args, model_args.cache_dir, training_args.seed)
    data_image_size = first_image_size(dataset["train"], data_args.image_column_name)
    model, processor = build_model(model_args, label_names, data_image_size)
    if training_args.process_index == 0:
        print(describe(model, data_image_size))

    data_args.augmentation = training_augmentation(data_args.augmentation, model_args)
    train = with_transform(dataset["train"], ImageTransform(processor, model.config, data_args, train=True),
                           training_args.per_device_train_batch_size)
    evaluation = {split: with_transform(dataset[split], ImageTransform(processor, model.config, data_args, train=False),
                                        training_args.per_device_eval_batch_size)
                  for split in ("validation", "test") if split in dataset}
    throughput = TrainingThroughput()
    trainer = ViTSimpleTrainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=evaluation["validation"],
        processing_class=processor,
        data_collator=collate,
        compute_metrics=metrics_function(len(label_names)),
        callbacks=[throughput, *callbacks],
    )

    train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model()  # model.safetensors, config.json, the .py files, preprocessor_config.json
    results = {"train": {**train_result.metrics, "train_images_per_second": throughput.images_per_second(training_args)}}
    results["eval"] = trainer.evaluate()
    if "test" in evaluation:  # evaluated once, at the end
        results["test"] = trainer.evaluate(evaluation["test"], metric_key_prefix="test")
    wall_seconds = time.perf_counter() - start
    results["train"]["wall_seconds"] = wall_seconds
    for split, metrics in results.items():
        trainer.log_metrics(split, metrics)
        trainer.save_metrics(split, metrics)  # <split>_results.json and all_results.json
    trainer.save_state()

    if trainer.is_world_process_zero():
        dataset_name, dataset_id = describe_data(data_args)
        write_model_card(
            training_args.output_dir, model=trainer.model, results=results, training_args=training_args,
            dataset_name=dataset_name, dataset_id=dataset_id, base_model=model_args.model_name_or_path,
            repo_id=trainer.hub_model_id if training_args.push_to_hub else None,
            command=shlex.join(["python", "train_hf.py", *(sys.argv[1:] if args is None else args)]))
    if training_args.push_to_hub:
        trainer.push_to_hub(commit_message="End of training")

    if trainer.is_world_process_zero():
        print(summary(results, wall_seconds, training_args, trainer))
    return results


def summary(results, wall_seconds, training_args, trainer):
    def percent(split, name):
        value = results.get(split, {}).get(f"{split}_{name}")
        return "n/a" if value is None else f"{100 * value:.2f}%"

    where = os.path.abspath(training_args.output_dir)
    if training_args.push_to_hub:
        where += f" and https://huggingface.co/{trainer.hub_model_id}"
    minutes, seconds = divmod(round(wall_seconds), 60)
    test = "test" if "test" in results else "validation (no test split)"
    split = "test" if "test" in results else "eval"
    return (f"\n{test} accuracy {percent(split, 'accuracy')} (macro F1 {percent(split, 'macro_f1')}, top-5 "
            f"{percent(split, 'top_5_accuracy')}), validation accuracy {percent('eval', 'accuracy')} | wall time "
            f"{minutes}m{seconds:02d}s | training {results['train']['train_images_per_second']:.0f} images/s | "
            f"saved to {where}")


if __name__ == "__main__":
    try:
        main()
    except InputError as error:
        sys.exit(f"train_hf.py: error: {error}")
