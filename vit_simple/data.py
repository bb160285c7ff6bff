"""Image-classification data for a run: the built-in Fashion-MNIST, an image folder, a Hub or saved data set, with a
validation split held out of the training data where it has none, its columns checked and its images decoded.

Every problem with the user's data raises `InputError`, a one-line message that says what to change."""

import io
from pathlib import Path

import datasets
import PIL.Image
from datasets import ClassLabel, Image, IterableDatasetDict, load_dataset
from datasets.exceptions import DatasetNotFoundError
from huggingface_hub.errors import OfflineModeIsEnabled

from vit_simple import fashion_mnist
from vit_simple.errors import InputError
from vit_simple.sources import hub_id, is_local

STREAM_SHUFFLE_BUFFER = 10_000  # examples a stream is shuffled through (a stream arrives in storage order)
IMAGEFOLDER_LAYOUT = "put the images of each class in a sub-folder named after it, e.g. train/cat/1.jpg, train/dog/2.jpg"
VALIDATION_ALIASES = ("val", "valid", "dev")


# data


def load_data(data_args, cache_dir, seed, training=True):
    """The data as a `DatasetDict` (an `IterableDatasetDict` with --streaming): train, validation and, where the
    data has one, test. Without `training` (evaluation or prediction only) a train split is optional. A validation
    split the data lacks is held out of its train split by --validation_seed (`hold_out_validation`); `seed` shuffles
    a stream and picks --max_train_samples."""
    dataset = load_splits(data_args, cache_dir, training)
    for alias in VALIDATION_ALIASES:
        if alias in dataset and "validation" not in dataset:
            dataset["validation"] = dataset.pop(alias)
    if "train" not in dataset and training:
        raise InputError(f"The data has no train split (splits: {', '.join(dataset) or 'none'}).")
    label_names = check_columns(dataset, data_args)

    if "validation" not in dataset and "train" in dataset:  # the model's own (options.resolve_validation_split)
        dataset["train"], dataset["validation"] = hold_out_validation(dataset["train"], data_args)
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
    idx_dir = fashion_mnist.DEFAULT_DIR if name == "fashion_mnist" else name
    if name == "fashion_mnist" or fashion_mnist.is_idx_dir(idx_dir):
        try:
            dataset = fashion_mnist.load_fashion_mnist(idx_dir, cache_dir)
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
    if not path.exists() and is_local(name):
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


def hold_out_validation(train, data_args):
    """Split a validation set off the training data: --train_val_split of it, drawn by --validation_seed, stratified by
    class when possible, of which at most --max_validation_size images are kept (a stratified subset, chosen by the
    same seed) and the rest go back to training. The cap's validation images are among those of a larger cap or of
    none, so runs with different caps can be compared on the smaller one's images. (--streaming: the first
    --max_eval_samples examples, default 1000.)"""
    if data_args.streaming:
        count = data_args.max_eval_samples or 1000
        return train.skip(count), train.take(count)
    if len(train) < 2:
        raise InputError(f"The train split has {len(train)} example(s): too few to hold out a validation split. Add "
                         "images, or give a validation split (--validation_dir).")
    seed = data_args.validation_seed
    train, validation = split_off(train, data_args.train_val_split, data_args.label_column_name, seed)
    cap = data_args.max_validation_size
    if cap and len(validation) > cap:
        returned, validation = split_off(validation, cap, data_args.label_column_name, seed)
        train = datasets.concatenate_datasets([train, returned])
    return train, validation


def split_off(part, size, label_column, seed):
    """(the rest, `size` of `part`): a fraction or a count, stratified by class when possible."""
    split = dict(test_size=size, seed=seed)
    try:
        parts = part.train_test_split(stratify_by_column=label_column, **split)
    except ValueError:  # a class too rare to stratify (fewer than 2 examples, or fewer than classes held out)
        parts = part.train_test_split(**split)
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
    return data_args.train_dir is None and (name == "fashion_mnist" or fashion_mnist.is_idx_dir(name))


def describe_data(data_args):
    """(name, Hub id or None) of the data, for the model card."""
    if data_args.train_dir is not None:
        return f"the images in {Path(data_args.train_dir).name}", None
    if is_fashion_mnist(data_args):
        return "Fashion-MNIST", "zalando-datasets/fashion_mnist"
    return data_args.dataset_name, hub_id(data_args.dataset_name)


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
        return to_rgb(image)
    return image if mode is None else image.convert(mode)


def to_rgb(image):
    """`image` in RGB, any transparency composited on white: the pixels of transformers' (>= 5.21)
    `convert_to_rgb(image, return_numpy=True)`, which this reproduces so that any transformers 5 gives them (older
    ones drop the alpha channel, so that transparent pixels keep whatever colour they hide)."""
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        image = image.convert("RGBA")
        return PIL.Image.alpha_composite(PIL.Image.new("RGBA", image.size, (255, 255, 255, 255)), image).convert("RGB")
    return image.convert("RGB")


def prediction_split(dataset, data_args, training_args):
    """The split --do_predict reports on, --do_predict made definite: left open, it predicts where the data has that
    split (a missing test split is no error; another split named by --predict_split must be there)."""
    split, wanted = data_args.predict_split, training_args.do_predict
    if wanted is None:
        wanted = split in dataset or split != "test"
    if wanted and split not in dataset:
        raise InputError(f"--do_predict: the data has no {split} split (splits: {', '.join(dataset)}): name one with "
                         "--predict_split (e.g. validation), or give a test split (--test_dir).")
    training_args.do_predict = wanted
    return split
