"""The data of a run (vit_simple.data): Fashion-MNIST by default, image folders, saved and Hub data sets, a validation
split held out where there is none; every problem with the data is one line that says what to do."""

from collections import Counter

import pytest
from datasets import Dataset, Features, Value, load_from_disk
from datasets import Image as ImageFeature
from PIL import Image

import train_hf
from conftest import COLORS, FAST, make_image_folder, save_image
from vit_simple import data, fashion_mnist
from vit_simple.errors import InputError
from vit_simple.fashion_mnist import CLASS_NAMES
from vit_simple.options import DataArguments, resolve_validation_split


def loaded(cache_dir=None, **options):
    data_args = DataArguments(**options)
    resolve_validation_split(data_args, None, 0, None)  # as a run from scratch with --seed 0 resolves it
    return data.load_data(data_args, cache_dir, seed=0)


def test_fashion_mnist_splits_keep_a_stratified_validation_split_out_of_training(fashion_slice, tmp_path):
    dataset, label_names = loaded(tmp_path / "cache", dataset_name=str(fashion_slice))
    assert label_names == CLASS_NAMES and set(dataset) == {"train", "validation", "test"}
    assert (len(dataset["train"]), len(dataset["validation"]), len(dataset["test"])) == (144, 16, 64)
    again, _ = loaded(tmp_path / "cache", dataset_name=str(fashion_slice))
    assert again["validation"]["label"] == dataset["validation"]["label"]  # the same split each time


def pixels(split):
    return [image.tobytes() for image in split["image"]]


def test_the_validation_cap_keeps_a_stratified_subset_of_the_held_out_images_and_trains_on_the_rest(fashion_slice):
    options = dict(dataset_name=str(fashion_slice), train_val_split=0.25)
    whole, _ = loaded(**options, max_validation_size=0)  # every held-out image validates
    capped, _ = loaded(**options, max_validation_size=20)
    assert (len(whole["train"]), len(whole["validation"])) == (120, 40)
    assert (len(capped["train"]), len(capped["validation"])) == (140, 20)
    held_out, kept = Counter(whole["validation"]["label"]), Counter(capped["validation"]["label"])
    assert all(abs(kept[label] - count / 2) <= 1 for label, count in held_out.items())  # stratified: half of each class
    # nested: the capped run validates on images the uncapped run held out too, and trains on the others
    assert set(pixels(capped["validation"])) <= set(pixels(whole["validation"]))
    assert not set(pixels(capped["validation"])) & set(pixels(capped["train"]))
    assert sorted(pixels(capped["train"]) + pixels(capped["validation"])) == sorted(
        pixels(whole["train"]) + pixels(whole["validation"]))
    larger, _ = loaded(**options, max_validation_size=100)  # above what is held out: all of it
    assert pixels(larger["validation"]) == pixels(whole["validation"])


def test_fashion_mnist_is_converted_once_then_read_from_the_cache(fashion_slice, tmp_path, monkeypatch):
    loaded(tmp_path / "cache", dataset_name=str(fashion_slice))

    def rebuild(*args):
        raise AssertionError("Fashion-MNIST was converted again instead of read from the cache")

    monkeypatch.setattr(fashion_mnist, "to_dataset", rebuild)
    dataset, label_names = loaded(tmp_path / "cache", dataset_name=str(fashion_slice))
    assert label_names == CLASS_NAMES and len(dataset["test"]) == 64


def test_a_data_set_saved_with_save_to_disk_loads_by_its_folder(fashion_slice, tmp_path):
    dataset, _ = loaded(tmp_path / "cache", dataset_name=str(fashion_slice))
    dataset.save_to_disk(tmp_path / "saved")
    reloaded, labels = loaded(dataset_name=str(tmp_path / "saved"))
    assert labels == CLASS_NAMES and set(reloaded) == set(dataset)
    assert len(reloaded["train"]) == len(load_from_disk(tmp_path / "saved")["train"])


def test_missing_column_names_the_columns_and_the_option(image_folders):
    with pytest.raises(InputError, match=r"no column 'labels' .*label \(ClassLabel\).*--label_column_name"):
        loaded(train_dir=str(image_folders["train"]), label_column_name="labels")


def test_label_column_that_is_not_a_class_label_says_how_to_encode_it(tmp_path):
    images = [Image.new("RGB", (8, 8), color) for color in COLORS.values()] * 2
    features = Features({"image": ImageFeature(), "label": Value("string")})
    (tmp_path / "data").mkdir()
    Dataset.from_dict({"image": images, "label": list(COLORS) * 2}, features=features).to_parquet(
        str(tmp_path / "data" / "train.parquet"))
    with pytest.raises(InputError, match=r"not a ClassLabel.*class_encode_column\('label'\)"):
        loaded(dataset_name=str(tmp_path / "data"))


def test_empty_split_is_an_error(image_folders, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="No images found"):
        loaded(train_dir=str(image_folders["train"]), validation_dir=str(tmp_path / "empty"))
    with pytest.raises(InputError, match="The train split is empty"):
        loaded(train_dir=str(image_folders["train"]), max_train_samples=0)


def test_missing_fashion_mnist_says_which_package_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "DEFAULT_DIR", str(tmp_path))
    with pytest.raises(InputError, match="not found in .*apt-get install dataset-fashion-mnist"):
        loaded()


def one_class_folder(root):
    for n in range(3):
        save_image(root / "train" / "cat" / f"{n}.png", COLORS["red"], (32, 32), "RGB", seed=n)
    return root / "train"


@pytest.mark.parametrize("case", ["missing local data", "hub data offline", "one class folder", "hub model offline"])
def test_a_data_source_that_fails_is_one_line_that_says_what_to_do(case, tmp_path):
    options, expected = {
        "missing local data": (["--dataset_name", str(tmp_path / "no" / "such" / "data")],
                               "no such file or folder. Give an existing data set folder"),
        "hub data offline": (["--dataset_name", "someone/some-images"],
                             "the Hugging Face Hub could not be reached (offline, or no network) and no copy is "
                             "cached. Use a local copy instead: a folder of images with --train_dir"),
        "one class folder": (["--train_dir", str(one_class_folder(tmp_path))],
                             "holds only the sub-folder 'cat': classification needs at least two classes"),
        "hub model offline": (["--train_dir", str(make_image_folder(tmp_path / "images", per_class=2)),
                               "--model_name_or_path", "someone/vit-simple-model"],
                              "is no local folder, and the Hugging Face Hub could not supply it"),
    }[case]
    with pytest.raises(InputError) as error:
        train_hf.main([*options, "--output_dir", str(tmp_path / "out"), *FAST])
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_a_predicted_split_must_be_there_unless_left_open(fashion_slice, tmp_path):
    dataset, _ = loaded(tmp_path / "cache", dataset_name=str(fashion_slice))
    del dataset["test"]
    open_run = train_hf.parse_arguments(["--output_dir", str(tmp_path)]).training
    assert data.prediction_split(dataset, DataArguments(), open_run) == "test" and open_run.do_predict is False
    asked = train_hf.parse_arguments(["--output_dir", str(tmp_path), "--do_predict"]).training
    with pytest.raises(InputError, match="the data has no test split .* --predict_split"):
        data.prediction_split(dataset, DataArguments(), asked)
    left_open = train_hf.parse_arguments(["--output_dir", str(tmp_path)]).training
    with pytest.raises(InputError, match="the data has no tset split"):  # a split named wrong
        data.prediction_split(dataset, DataArguments(predict_split="tset"), left_open)
