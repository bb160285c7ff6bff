"""The data side of train_hf.py: load image-classification data (the built-in Fashion-MNIST, an image folder, a Hub
or saved data set), hold out a validation split, check its columns, decode images, augment and normalise them.

Every problem with the user's data raises `InputError`, a one-line message that says what to change."""

import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import datasets
import numpy as np
import PIL.Image
import torch
from datasets import ClassLabel, Image, IterableDatasetDict, load_dataset
from datasets.exceptions import DatasetNotFoundError
from huggingface_hub.errors import OfflineModeIsEnabled
from transformers.image_transforms import convert_to_rgb

import data_fashion_mnist
from configuration_vit_simple import pair
from vit_simple import SMALL_IMAGE  # images up to this size train at their own size with padded random crops

STREAM_SHUFFLE_BUFFER = 10_000  # examples a stream is shuffled through (a stream arrives in storage order)
IMAGEFOLDER_LAYOUT = "put the images of each class in a sub-folder named after it, e.g. train/cat/1.jpg, train/dog/2.jpg"
VALIDATION_ALIASES = ("val", "valid", "dev")


class InputError(ValueError):
    """A problem with the user's data or options: reported as one message, without a traceback."""



# data


def load_data(data_args, cache_dir, seed, training=True):
    """The data as a `DatasetDict` (an `IterableDatasetDict` with --streaming): train, validation and, where the
    data has one, test. Without `training` (evaluation or prediction only) a train split is optional."""
    dataset = load_splits(data_args, cache_dir, training)
    for alias in VALIDATION_ALIASES:
        if alias in dataset and "validation" not in dataset:
            dataset["validation"] = dataset.pop(alias)
    if "train" not in dataset and training:
        raise InputError(f"The data has no train split (splits: {', '.join(dataset) or 'none'}).")
    label_names = check_columns(dataset, data_args)

    if "validation" not in dataset and "train" in dataset:  # the same held-out split as when the model trained
        dataset["train"], dataset["validation"] = hold_out_validation(dataset["train"], data_args, seed)
    if data_args.streaming:  # imagefolder streams class after class: shuffle through a buffer, anew each epoch
        dataset["train"] = dataset["train"].shuffle(seed=seed, buffer_size=STREAM_SHUFFLE_BUFFER)
    if data_args.max_train_samples is not None and "train" in dataset:
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


def load_splits(data_args, cache_dir, training=True):
    if data_args.train_dir is not None or (not training and (data_args.validation_dir or data_args.test_dir)):
        folders = {"train": data_args.train_dir, "validation": data_args.validation_dir, "test": data_args.test_dir}
        folders = {split: folder for split, folder in folders.items() if folder is not None}
        for split, folder in folders.items():
            if not Path(folder).is_dir() or not any(path.is_file() for path in Path(folder).rglob("*")):
                raise InputError(f"No images found in --{split}_dir {folder}: {IMAGEFOLDER_LAYOUT}.")
        check_class_folders(*next(iter(folders.items())))
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
    return load_named_dataset(name, data_args, cache_dir)


def check_class_folders(split, folder):
    """Refuse an image folder without two class sub-folders (imagefolder then gives no label column), unless a
    metadata file names the labels."""
    folder = Path(folder)
    if any(folder.glob("metadata.*")):
        return
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and any(f.is_file() for f in p.rglob("*")))
    if len(classes) < 2:
        found = f"only the sub-folder {classes[0]!r}" if classes else "no sub-folder, only loose files"
        raise InputError(f"--{split}_dir {folder} holds {found}: classification needs at least two classes, the "
                         f"images of each in a sub-folder named after it (e.g. {folder}/cat/1.jpg, "
                         f"{folder}/dog/2.jpg).")


def load_named_dataset(name, data_args, cache_dir):
    """--dataset_name: a folder saved with save_to_disk, a local data set folder or file, or a Hub data set."""
    path = Path(name).expanduser()
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        dataset = datasets.load_from_disk(str(path))
        if isinstance(dataset, datasets.Dataset):  # a single split saved alone is the training data
            dataset = datasets.DatasetDict({"train": dataset})
        if data_args.streaming:
            return IterableDatasetDict({split: part.to_iterable_dataset() for split, part in dataset.items()})
        return dataset
    if not path.exists() and (name.startswith(("/", ".", "~")) or (len(path.parts) > 1 and path.parent.is_dir())):
        raise InputError(f"--dataset_name {name}: no such file or folder. Give an existing data set folder (or one "
                         "saved with dataset.save_to_disk), a folder of images with --train_dir, or a Hub data set "
                         "id such as 'beans'.")
    try:
        return load_dataset(name, data_args.dataset_config_name, cache_dir=cache_dir, streaming=data_args.streaming)
    except (ConnectionError, OfflineModeIsEnabled) as error:
        raise InputError(f"--dataset_name {name}: the Hugging Face Hub could not be reached (offline, or no network) "
                         "and no copy is cached. Use a local copy instead: a folder of images with --train_dir (one "
                         "sub-folder per class), a folder saved with dataset.save_to_disk as --dataset_name, or the "
                         "built-in Fashion-MNIST (leave out --dataset_name).") from error
    except DatasetNotFoundError as error:
        raise InputError(f"--dataset_name {name}: no such data set on the Hub or on disk ({error}).") from error


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


def image_ids(part, image_column):
    """Each image's file path where the data has one (image folders), else its index in the split: the rows of the
    predictions file. Reads only the path field, decoding no image."""
    column = part.cast_column(image_column, Image(decode=False)).with_format("arrow")[image_column]
    paths = [path for chunk in column.chunks for path in chunk.field("path").to_pylist()]
    return [path or index for index, path in enumerate(paths)]


def first_image_size(part, image_column):
    """(height, width) of the split's first image."""
    first = next(iter(part.cast_column(image_column, Image(decode=False))))
    return decode_image(first[image_column], None).size[::-1]


def is_fashion_mnist(data_args):
    """Whether the data is the built-in Fashion-MNIST (the default, or a folder of its IDX files)."""
    name = data_args.dataset_name or "fashion_mnist"
    return data_args.train_dir is None and (name == "fashion_mnist" or data_fashion_mnist.is_idx_dir(name))


def describe_data(data_args):
    """(name, Hub id or None) of the data, for the model card."""
    if data_args.train_dir is not None:
        return f"the images in {Path(data_args.train_dir).name}", None
    if is_fashion_mnist(data_args):
        return "Fashion-MNIST", "zalando-datasets/fashion_mnist"
    name = data_args.dataset_name
    return name, None if Path(name).exists() else name


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


def random_resized_crop_box(width, height, rng, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """torchvision's RandomResizedCrop box (left, top, right, bottom): a random area fraction and aspect ratio,
    drawn from the numpy Generator `rng`."""
    area, log_ratio = width * height, (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        crop_w, crop_h = round(math.sqrt(target_area * aspect)), round(math.sqrt(target_area / aspect))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            top = int(rng.integers(0, height - crop_h + 1))
            left = int(rng.integers(0, width - crop_w + 1))
            return left, top, left + crop_w, top + crop_h
    # fall back to the central crop with the aspect ratio clamped to `ratio`
    crop_w, crop_h = width, height
    if width / height < ratio[0]:
        crop_h = round(width / ratio[0])
    elif width / height > ratio[1]:
        crop_w = round(height * ratio[1])
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    return left, top, left + crop_w, top + crop_h


def random_erasing_box(height, width, rng, scale=(0.02, 0.33), ratio=(0.3, 3.3)):
    """torchvision's RandomErasing rectangle (top, left, height, width), drawn from the numpy Generator `rng`; None
    when ten tries find none that fits inside the image."""
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        area = height * width * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        box_h, box_w = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < box_h < height and 0 < box_w < width:
            return int(rng.integers(0, height - box_h + 1)), int(rng.integers(0, width - box_w + 1)), box_h, box_w
    return None


def resolve_augmentation(data_args, from_scratch, image_size):
    """Make --augmentation auto, --crop_padding and --horizontal_flip concrete for this run (in `data_args`).

    auto: from scratch, flips alone (so nothing at all where flips are not known to be safe): a run of minutes from
    scratch underfits, and every crop or shift measured on Fashion-MNIST cost validation accuracy (±1 pixel: -0.7
    points after 4 epochs, with AdamW and with Muon); when fine-tuning, pad_crop (1/8 of the side) up to SMALL_IMAGE
    pixels and resized_crop above. Flips only where they are known to keep the label: the built-in Fashion-MNIST,
    or when --horizontal_flip true asks (digits, text and arrows change class in a mirror)."""
    side = min(pair(image_size))
    if data_args.augmentation == "auto":
        data_args.augmentation = "flip" if from_scratch else "pad_crop" if side <= SMALL_IMAGE else "resized_crop"
    if data_args.crop_padding is None:
        data_args.crop_padding = max(1, side // 8)
    if data_args.horizontal_flip is None:
        data_args.horizontal_flip = is_fashion_mnist(data_args)
    return data_args


class ImageTransform:
    """Decode a batch of images and convert them to the model's mode; then normalise them with the saved image
    processor, exactly as `pipeline` will (evaluation), or augment and normalise them (training).

    Runs lazily on each batch as it is read (`with_transform`). The pixel work is numpy: on a small CPU, torch's
    multi-threaded kernels stall on tiny tensors while training holds the cores.

    Each example's augmentation is a function of (seed, epoch, example index) alone: its own numpy Generator, not a
    global random stream. So it does not depend on which process draws it (a loader worker or the training
    process), on batches fetched ahead, or on where a run was interrupted: a run resumed from a checkpoint in the
    middle of an epoch augments every later example exactly as the uninterrupted run does."""

    def __init__(self, processor, config, data_args, train, seed=0):
        self.processor = processor
        self.image_column, self.label_column = data_args.image_column_name, data_args.label_column_name
        self.mode = "L" if config.num_channels == 1 else "RGB"
        self.height, self.width = pair(config.image_size)
        self.train = train
        self.augmentation = data_args.augmentation
        if self.augmentation == "auto":
            self.augmentation = "pad_crop" if max(self.height, self.width) <= SMALL_IMAGE else "resized_crop"
        self.flip = bool(data_args.horizontal_flip) and self.augmentation != "none"
        self.padding = data_args.crop_padding or max(1, min(self.height, self.width) // 8)
        self.erasing = data_args.random_erasing
        self.mean = np.array(processor.image_mean, dtype=np.float32).reshape(1, -1, 1, 1)
        self.std = np.array(processor.image_std, dtype=np.float32).reshape(1, -1, 1, 1)
        self.resample = PIL.Image.Resampling(processor.resample)
        self.seed = seed
        self.epoch = 0  # loader workers get it with their copy of the data set, made anew each epoch

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def __call__(self, batch, indices=None):
        """`indices`: the examples' indices in their split (default 0, 1, ...), which key their augmentation."""
        images = [decode_image(value, self.mode) for value in batch[self.image_column]]
        if self.train:
            indices = range(len(images)) if indices is None else indices
            pixel_values = self.augment(images, [np.random.default_rng((self.seed, self.epoch, i)) for i in indices])
        else:
            pixel_values = np.stack(self.processor(images, return_tensors="np")["pixel_values"])
        return {"pixel_values": pixel_values, "labels": np.asarray(batch[self.label_column])}

    def augment(self, images, rngs):
        """(batch, channels, height, width) float32: random crop (resized, or padded, or none) and flip, then
        normalised; each image's random numbers from its own Generator in `rngs`."""
        size, count = (self.width, self.height), len(images)
        if self.augmentation == "resized_crop":
            images = [image.resize(size, self.resample, box=random_resized_crop_box(*image.size, rng))
                      for image, rng in zip(images, rngs)]
        else:
            images = [image if image.size == size else image.resize(size, self.resample) for image in images]
        pixels = np.stack([np.asarray(image) for image in images])
        pixels = pixels.reshape(*pixels.shape[:3], -1)  # (b, h, w, c), also for grayscale
        if self.augmentation == "pad_crop":  # zero padding, then one random window per image: a random shift
            pad = self.padding
            padded = np.pad(pixels, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
            tops, lefts = np.array([rng.integers(0, 2 * pad + 1, 2) for rng in rngs]).T
            rows = tops[:, None] + np.arange(self.height)
            columns = lefts[:, None] + np.arange(self.width)
            pixels = padded[np.arange(count)[:, None, None], rows[:, :, None], columns[:, None, :]]
        if self.flip:
            flipped = np.array([rng.random() < 0.5 for rng in rngs])
            pixels[flipped] = pixels[flipped, :, ::-1]
        pixels = pixels.transpose(0, 3, 1, 2).astype(np.float32) * np.float32(self.processor.rescale_factor)
        pixels = (pixels - self.mean) / self.std
        if self.erasing:  # after the other draws, so turning it on leaves their random numbers as they were
            for image, rng in zip(pixels, rngs):
                box = random_erasing_box(self.height, self.width, rng) if rng.random() < self.erasing else None
                if box is not None:
                    top, left, height, width = box
                    image[:, top : top + height, left : left + width] = 0  # the mean, once normalised
        return pixels


def with_transform(part, transform, batch_size):
    """Apply `transform` lazily: on each batch as it is read (map-style) or as it streams (iterable), with the
    examples' indices."""
    part = part.cast_column(transform.image_column, Image(decode=False))  # decode_image reports broken files
    if isinstance(part, datasets.IterableDataset):
        return part.map(transform, batched=True, batch_size=batch_size, with_indices=True,
                        remove_columns=list(part.features))
    return IndexedSplit(part, transform)


class IndexedSplit(torch.utils.data.Dataset):
    """A map-style split whose `transform` gets each batch with its examples' indices (datasets' with_transform
    passes none), and `set_epoch`, which Trainer's loop calls through accelerate and train_hf.py at each epoch."""

    def __init__(self, part, transform):
        self.part, self.transform = part, transform

    def __len__(self):
        return len(self.part)

    def set_epoch(self, epoch):
        self.transform.set_epoch(epoch)

    def __getitems__(self, indices):
        batch = self.transform(self.part[indices], indices)
        return [dict(zip(batch, values)) for values in zip(*batch.values())]

    def __getitem__(self, index):
        return self.__getitems__([index])[0]


def collate(examples):
    return {
        "pixel_values": torch.from_numpy(np.stack([example["pixel_values"] for example in examples])),
        "labels": torch.from_numpy(np.stack([example["labels"] for example in examples])),
    }


# the data options of train_hf.py


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
            "Training augmentation. pad_crop: zero-pad by --crop_padding pixels and crop at random (a random shift); "
            "resized_crop: random resized crop (large images); flip: flips alone; none: the images as they are. "
            "Each draws from (seed, epoch, image index), so a resumed run repeats it exactly. auto: from scratch, "
            "flips alone (a run of minutes from scratch underfits: on Fashion-MNIST a ±1-pixel shift cost 0.7 points "
            "of validation accuracy after 4 epochs); fine-tuning a checkpoint, pad_crop up to "
            f"{SMALL_IMAGE} pixels and resized_crop above. Flips with every choice but none, as --horizontal_flip "
            "says.")})
    crop_padding: int | None = field(default=None, metadata={
        "help": "pad_crop's padding in pixels, the largest shift. Default: 1/8 of the image side."})
    random_erasing: float = field(default=0.0, metadata={"help": (
        "With this probability, blank one random rectangle (2-33%% of the image, aspect 0.3-3.3) of each training "
        "image to the mean, as torchvision's RandomErasing. Label-preserving; off by default.")})
    predict_split: str = field(default="test", metadata={
        "help": "The split --do_predict predicts on and reports (test, validation or train)."})
    horizontal_flip: bool | None = field(default=None, metadata={"help": (
        "Also flip training images left-right at random. Default: on for the built-in Fashion-MNIST (clothes are "
        "mirror-symmetric), off for other data, where a mirror can change the class (digits, letters, arrows: on "
        "a folder of handwritten digits, flips cost 6 points of validation accuracy); --horizontal_flip true asks "
        "for them.")})

    def __post_init__(self):
        if not 0 < self.train_val_split < 1:
            raise InputError(f"--train_val_split must be a fraction between 0 and 1, got {self.train_val_split}.")
        if self.augmentation not in ("auto", "none", "flip", "pad_crop", "resized_crop"):
            raise InputError("--augmentation must be auto, none, flip, pad_crop or resized_crop, got "
                             f"{self.augmentation!r}.")
        if not 0 <= self.random_erasing <= 1:
            raise InputError(f"--random_erasing is a probability between 0 and 1, got {self.random_erasing}.")
        if self.crop_padding is not None and self.crop_padding < 1:
            raise InputError(f"--crop_padding must be a whole number of pixels, at least 1, got {self.crop_padding}.")


def prediction_split(dataset, data_args, training_args):
    """The split --do_predict reports on; --do_predict named without that split in the data is an error."""
    split = data_args.predict_split
    if split not in dataset:
        if training_args.do_predict and (training_args.do_predict_asked or split != "test"):
            raise InputError(f"--do_predict: the data has no {split} split (splits: {', '.join(dataset)}): name "
                             "one with --predict_split (e.g. validation), or give a test split (--test_dir).")
        training_args.do_predict = False
    return split
