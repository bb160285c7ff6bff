"""Every entry point refuses a checkpoint folder that cannot be a model in one line (vit_simple.checkpoints): the same
hostile folders against training, evaluation, prediction, export, both conversions, the demo page and from_pretrained.
Each line names the folder, what is wrong and what to give instead; no traceback; the output folder is untouched."""

import hashlib
import json
import sys

import pytest
import torch
from safetensors.torch import save_file

import app
import train_hf
from conftest import FAST, HOSTILE, make_hostile_folders, tiny_config
from modeling_vit_simple import ViTSimpleForImageClassification
from vit_simple import convert, export
from vit_simple.checkpoints import CheckpointError, check_checkpoint

WHAT_IS_WRONG = {  # the words that say what is wrong with each folder
    "other_model_type": "holds a 'bert' model",
    "config_not_json": "is not valid JSON",
    "field_of_wrong_type": "'wide'",
    "config_but_no_weights": "no weights (model.safetensors",
    "weights_of_other_shapes": "do not fit",
    "truncated_weights": "cannot be read (Error while deserializing header: incomplete metadata",
    "empty_folder": "is an empty folder",
    "path_is_a_file": "is a file",
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    return {"vit_simple": make_hostile_folders(root / "vit_simple"), "vit": make_hostile_folders(root / "vit", "vit")}


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def train(folder, out, data, *extra):
    return ["train_hf.py", "--model_name_or_path", str(folder), "--train_dir", str(data["train"]), "--validation_dir",
            str(data["validation"]), "--test_dir", str(data["test"]), "--output_dir", str(out), *extra, *FAST]


ENTRY_POINTS = {  # name: (program, the hostile folders it gets, how it runs on a folder writing to out)
    "train_hf.py training": ("train_hf.py", "vit_simple", lambda f, out, data: train(f, out, data, "--max_steps", "1")),
    "train_hf.py evaluation": ("train_hf.py", "vit_simple", lambda f, out, data: train(f, out, data, "--do_train",
                                                                                       "false", "--do_predict", "false")),
    "train_hf.py prediction": ("train_hf.py", "vit_simple", lambda f, out, data: train(
        f, out, data, "--do_train", "false", "--do_eval", "false", "--do_predict", "true")),
    "vit-simple-export": ("vit-simple-export", "vit_simple", lambda f, out, data: [str(f), "--onnx", "--output_dir",
                                                                                  str(out)]),
    "vit-simple-convert --source": ("vit-simple-convert", "vit", lambda f, out, data: [
        "--source", str(f), "--output_dir", str(out)]),
    "vit-simple-convert --export": ("vit-simple-convert", "vit_simple", lambda f, out, data: [
        "--export", str(f), "--output_dir", str(out)]),
    "app.py": ("app.py", "vit_simple", lambda f, out, data: [str(f)]),
}


def run(entry, argv, monkeypatch):
    """The entry point's command line in this process: the SystemExit it ends with."""
    if entry.startswith("train_hf.py"):
        monkeypatch.setattr(sys, "argv", argv)
        main = train_hf.cli
    else:
        main = {"vit-simple-export": export.main, "vit-simple-convert": convert.main, "app.py": app.main}[
            ENTRY_POINTS[entry][0]]
        main = (lambda main=main: main(argv))
    with pytest.raises(SystemExit) as stop:
        main()
    return stop.value.code


@pytest.mark.parametrize("case", HOSTILE)
@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_every_entry_point_refuses_a_hostile_folder_in_one_line(entry, case, hostile, image_folders, tmp_path,
                                                                monkeypatch):
    program, kind, argv = ENTRY_POINTS[entry]
    folder = hostile[kind][case]
    out = tmp_path / "out"
    out.mkdir()
    (out / "kept.txt").write_text("a user's earlier work")
    message = run(entry, argv(folder, out, image_folders), monkeypatch)
    assert isinstance(message, str) and message.startswith(f"{program}: error: "), message  # exit status 1
    assert "\n" not in message and "Traceback" not in message, message
    assert str(folder) in message, message  # names the folder
    assert WHAT_IS_WRONG[case] in message, message  # what is wrong with it
    assert any(word in message.lower() for word in ("give", "pass")), message  # and what to do instead
    assert snapshot(out) == {"kept.txt": hashlib.sha256(b"a user's earlier work").hexdigest()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


FROM_PRETRAINED = {  # ViTSimpleForImageClassification.from_pretrained: transformers' words, prefixed with the folder
    "other_model_type": "holds a 'bert' model, not a vit-simple",
    "config_not_json": "is not a valid JSON file",
    "field_of_wrong_type": "'wide'",
    "config_but_no_weights": "no file named model.safetensors",
    "weights_of_other_shapes": "its weights' shapes differ from those its config.json describes",
    "truncated_weights": "incomplete metadata",
    "empty_folder": "no file named model.safetensors",
    "path_is_a_file": "is a file, not a model folder",
}


@pytest.mark.parametrize("case", HOSTILE)
def test_from_pretrained_refuses_a_hostile_folder_naming_it(case, hostile):
    folder = hostile["vit_simple"][case]
    with pytest.raises((OSError, ValueError, RuntimeError)) as error:  # the type transformers raised
        ViTSimpleForImageClassification.from_pretrained(folder)
    message = str(error.value)
    assert message.startswith(str(folder)) and "\n" not in message, message
    assert FROM_PRETRAINED[case] in message, message


def test_another_model_type_is_never_loaded_as_random_weights(hostile):
    """transformers would load a bert folder into a vit-simple, warning that every weight is new."""
    with pytest.raises(ValueError, match="holds a 'bert' model, not a vit-simple"):
        ViTSimpleForImageClassification.from_pretrained(hostile["vit_simple"]["other_model_type"])


def test_a_transformers_vit_given_for_fine_tuning_points_to_the_converter(hostile):
    vit = hostile["vit"]["other_model_type"].parent / "good"
    with pytest.raises(CheckpointError, match=r"is transformers' ViT \(model_type 'vit'\), not a vit-simple: convert "
                                              rf"it first, vit-simple-convert --source {vit} --output_dir "
                                              r"good-vit-simple, and give that folder\.$"):
        check_checkpoint(vit, "vit_simple")
    assert check_checkpoint(vit, "image_classifier")["model_type"] == "vit"  # the demo and export take it as it is
    assert check_checkpoint(vit, "vit")["model_type"] == "vit"  # and the converter


def test_a_head_of_another_shape_needs_ignore_mismatched_sizes_the_body_never_does(tmp_path):
    torch.manual_seed(0)
    ViTSimpleForImageClassification(tiny_config()).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    labels = {str(i): f"class {i}" for i in range(5)}
    (tmp_path / "config.json").write_text(json.dumps({**config, "id2label": labels,
                                                      "label2id": {v: int(k) for k, v in labels.items()}}))
    with pytest.raises(CheckpointError, match=r"classifier\.(weight|bias) is \[3.*\] in the weights but \[5.*\] by the "
                                              r"config .*pass --ignore_mismatched_sizes to replace the classification "
                                              "head"):
        check_checkpoint(tmp_path)
    assert check_checkpoint(tmp_path, ignore_mismatched_sizes=True)["num_labels" if "num_labels" in config
                                                                     else "model_type"]
    weights = {key: torch.zeros(2) for key in ("a", "b")}  # a file of other tensors altogether
    save_file(weights, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="none of its 2 weights is one of the vit_simple model its config.json "
                                              "describes"):
        check_checkpoint(tmp_path, ignore_mismatched_sizes=True)


def test_a_sharded_checkpoint_with_a_missing_shard_is_refused(tmp_path):
    torch.manual_seed(0)
    ViTSimpleForImageClassification(tiny_config()).save_pretrained(tmp_path, max_shard_size="20KB")
    shards = sorted(tmp_path.glob("model-*.safetensors"))
    assert len(shards) > 1 and (tmp_path / "model.safetensors.index.json").is_file()
    check_checkpoint(tmp_path)  # whole: fine
    shards[-1].unlink()
    with pytest.raises(CheckpointError, match=rf"1 of the {len(shards)} weight shards its "
                                              r"model\.safetensors\.index\.json lists are missing"):
        check_checkpoint(tmp_path)
