"""train_hf.py, end to end on tiny data: a slice of Fashion-MNIST and generated image folders, a tiny model.

The trained folders are module fixtures shared by the tests that read them, so the suite trains only a handful of
times. Runs that must be separate processes (reload, kill and resume, DDP) are subprocesses; the rest call
`train_hf.main(args)` in this process.
"""

import hashlib
import json
import re
import shutil
import sys
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import HfApi, ModelCard
from huggingface_hub.hf_api import RepoUrl
from huggingface_hub.utils import filter_repo_objects
from PIL import Image
from safetensors.torch import load_file
from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification, TrainerCallback

import train_hf
from conftest import COLORS, FAST, TINY, drawn_figures, make_image_folder, run_script, save_image
from vit_simple.augmentation import ImageTransform
from vit_simple.data import load_data
from vit_simple.errors import InputError
from vit_simple.fashion_mnist import CLASS_NAMES
from vit_simple.options import parse_arguments
from vit_simple.saving import RunDiverged


# data


# a fake Hub


class FakeHub:
    """Stands in for the Hub: patches HfApi so that creating a repo and uploading record what would be sent."""

    def __init__(self, monkeypatch):
        self.uploads = []
        hub = self

        def create_repo(api, repo_id, **kwargs):
            return RepoUrl(f"https://huggingface.co/{repo_id if '/' in repo_id else 'tester/' + repo_id}")

        def upload_folder(api, *, repo_id, folder_path, path_in_repo=None, ignore_patterns=None, run_as_future=False,
                          **kwargs):
            files = [str(p.relative_to(folder_path)) for p in Path(folder_path).rglob("*") if p.is_file()]
            files = sorted(filter_repo_objects(files, ignore_patterns=ignore_patterns))
            hub.uploads.append({"repo_id": repo_id, "files": files, "path_in_repo": path_in_repo})
            if not run_as_future:
                return f"https://huggingface.co/{repo_id}/commit/0"
            future = Future()
            future.set_result(f"https://huggingface.co/{repo_id}/commit/0")
            return future

        def create_commit(api, repo_id, operations, **kwargs):
            raise AssertionError("train_hf.py uploads through upload_folder")

        monkeypatch.setattr(HfApi, "create_repo", create_repo)
        monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
        monkeypatch.setattr(HfApi, "create_commit", create_commit)


# shared runs


@pytest.fixture(scope="module")
def scratch(fashion_slice, tmp_path_factory):
    """A tiny model trained from scratch on the Fashion-MNIST slice and pushed to the fake Hub."""
    output_dir = tmp_path_factory.mktemp("scratch") / "vit-simple-fmnist"
    cache_dir = tmp_path_factory.mktemp("cache")
    args = ["--dataset_name", str(fashion_slice), "--cache_dir", str(cache_dir), "--output_dir", str(output_dir),
            "--config_overrides", TINY, "--num_train_epochs", "2", "--push_to_hub", *FAST]
    with pytest.MonkeyPatch.context() as monkeypatch, drawn_figures():  # its tests open the pictures
        hub = FakeHub(monkeypatch)
        results = train_hf.main(args)
    return {"dir": output_dir, "results": results, "hub": hub, "cache_dir": cache_dir, "args": args}


def test_help_lists_script_and_trainer_options(capsys):
    with pytest.raises(SystemExit):
        parse_arguments(["--help"])
    text = capsys.readouterr().out
    for option in ("--dataset_name", "--train_dir", "--validation_dir", "--image_column_name", "--label_column_name",
                   "--train_val_split", "--max_train_samples", "--max_eval_samples", "--streaming",
                   "--model_name_or_path", "--model_size", "--config_overrides", "--trust_remote_code",
                   "--ignore_mismatched_sizes", "--output_dir", "--num_train_epochs", "--learning_rate",
                   "--per_device_train_batch_size", "--bf16", "--torch_compile", "--push_to_hub", "--hub_model_id",
                   "--resume_from_checkpoint", "--seed", "--use_cpu"):
        assert option in text
    assert "(default: mini)" in text and "(default: outputs/vit-simple)" in text


def test_scratch_run_reports_validation_and_test_apart(scratch):
    results = scratch["results"]
    assert set(results) == {"train", "eval", "test", "calibration"}
    assert 0 <= results["test"]["test_accuracy"] <= 1 and 0 <= results["eval"]["eval_accuracy"] <= 1
    assert {"test_macro_f1", "test_top_5_accuracy"} <= set(results["test"])  # 10 classes: top-5 too
    assert results["train"]["train_images_per_second"] > 0
    saved = json.loads((scratch["dir"] / "all_results.json").read_text())
    assert saved["test_accuracy"] == results["test"]["test_accuracy"]
    # 160 images, 10% held out for validation, stratified: 144 train, 16 validation; the 64 official test images
    assert saved["eval_samples_per_second"] > 0 and results["test"]["test_runtime"] > 0
    assert (saved["train_samples"], saved["eval_samples"], saved["test_samples"]) == (144, 16, 64)
    assert "- images: 144 training, 16 validation, 64 test\n" in (scratch["dir"] / "README.md").read_text()
    state = json.loads((scratch["dir"] / "trainer_state.json").read_text())
    assert state["global_step"] == 2 * 9  # 144 / 16 per epoch, 2 epochs


def test_scratch_run_saves_what_the_hub_needs(scratch):
    files = {p.name for p in scratch["dir"].iterdir()}
    assert {"model.safetensors", "config.json", "configuration_vit_simple.py", "modeling_vit_simple.py",
            "preprocessor_config.json", "all_results.json", "README.md", "examples"} <= files
    examples = sorted(p.name for p in (scratch["dir"] / "examples").iterdir())  # for its demo page: the test split's
    assert len(examples) == 10 and len({name[3:] for name in examples}) == 10  # one of each class
    assert {"00-ankle-boot.png", "03-shirt.png"} <= set(examples)
    assert f"examples/{examples[0]}" in scratch["hub"].uploads[-1]["files"]
    config = json.loads((scratch["dir"] / "config.json").read_text())
    assert set(config["auto_map"]) == {"AutoConfig", "AutoModel", "AutoModelForImageClassification"}
    assert [config["id2label"][str(i)] for i in range(10)] == CLASS_NAMES
    assert (config["image_size"], config["patch_size"], config["num_channels"], config["hidden_size"]) == (28, 4, 3, 32)
    processor = json.loads((scratch["dir"] / "preprocessor_config.json").read_text())
    assert processor["do_convert_rgb"] and processor["size"] == {"height": 28, "width": 28}


def test_model_card_has_hub_metadata_results_and_usage(scratch):
    card = ModelCard.load(scratch["dir"] / "README.md")
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "image-classification"
    assert card.data.datasets == ["zalando-datasets/fashion_mnist"] and set(card.data.metrics) == {"accuracy", "f1"}
    (result, *_) = card.data.eval_results
    assert result.dataset_split == "test"
    assert result.metric_value == round(scratch["results"]["test"]["test_accuracy"], 4)
    assert 'pipeline("image-classification", model="tester/vit-simple-fmnist", trust_remote_code=True)' in card.text
    assert "learning rate 0.001" in card.text and "--config_overrides" in card.text
    assert "vit-simple-export tester/vit-simple-fmnist --trust_remote_code --onnx" in card.text
    # the options the recipe decided are on record: Muon, its precision, the constant rate, flips, patch dropout
    assert "Left open on the command line and decided by vit-simple's recipe: `muon` True" in card.text
    assert "`newton_schulz` float32" in card.text or "`newton_schulz` bfloat16" in card.text
    assert "`lr_scheduler_type` constant_with_warmup" in card.text and "`patch_dropout` 0.25" in card.text
    # shifted patches: in the recipe's record, the card's model description and the saved config
    assert "`shifted_patches` True" in card.text and "patches of the image and its four 1-pixel shifts" in card.text
    assert AutoConfig.from_pretrained(scratch["dir"], trust_remote_code=True).shifted_patches is True
    for picture in ("test_confusion_matrix.png", "test_mistakes.png", "test_attention.png", "training_curves.png"):
        assert f"](reports/{picture})" in card.text  # the Hub renders the card's images from the repo


def test_every_run_writes_reports_a_person_opens(scratch):
    reports = scratch["dir"] / "reports"
    for picture in ("test_confusion_matrix.png", "test_mistakes.png", "test_attention.png", "training_curves.png"):
        with Image.open(reports / picture) as image:
            assert image.format == "PNG" and min(image.size) >= 200
    rows = (reports / "test_predictions.csv").read_text().splitlines()
    assert rows[0].startswith("id,label,prediction,probability,top_5") and len(rows) == 1 + 64  # one per image
    assert all(row.split(",")[1] in CLASS_NAMES and row.split(",")[2] in CLASS_NAMES for row in rows[1:])
    report = json.loads((reports / "test_classification_report.json").read_text())
    assert set(CLASS_NAMES) <= set(report) and report["macro avg"]["support"] == 64
    assert report["accuracy"] == pytest.approx(scratch["results"]["test"]["test_accuracy"])
    assert "reports/test_confusion_matrix.png" in scratch["hub"].uploads[-1]["files"]  # pushed with the model


def test_evaluation_and_prediction_without_training_leave_the_checkpoint_unchanged(scratch, tmp_path, capsys):
    before = {p.name: p.read_bytes() for p in scratch["dir"].iterdir() if p.is_file()}
    out = tmp_path / "evaluated"
    results = train_hf.main(["--model_name_or_path", str(scratch["dir"]), "--do_train", "false", "--do_predict",
                             "--dataset_name", scratch["args"][1], "--cache_dir", str(scratch["cache_dir"]),
                             "--output_dir", str(out), *FAST])
    assert set(results) == {"train", "eval", "test"} and "train_runtime" not in results["train"]
    assert results["test"]["test_accuracy"] == pytest.approx(scratch["results"]["test"]["test_accuracy"])
    assert not (out / "model.safetensors").exists() and (out / "reports" / "test_predictions.csv").is_file()
    assert not (out / "reports" / "training_curves.png").exists()  # nothing trained, no curves
    assert "no training" in capsys.readouterr().out
    # predicting into the checkpoint's own folder adds reports but changes none of its files
    train_hf.main(["--model_name_or_path", str(scratch["dir"]), "--do_train", "false", "--do_eval", "false",
                   "--dataset_name", scratch["args"][1], "--cache_dir", str(scratch["cache_dir"]),
                   "--predict_split", "validation", "--output_dir", str(scratch["dir"]), *FAST])
    after = {p.name: p.read_bytes() for p in scratch["dir"].iterdir() if p.is_file()}
    assert {name: after[name] for name in before if name not in ("eval_results.json",)} == \
        {name: data for name, data in before.items() if name != "eval_results.json"}
    assert (scratch["dir"] / "reports" / "validation_predictions.csv").is_file()


def test_a_model_is_evaluated_and_fine_tuned_on_its_own_validation_split_whatever_the_seed(scratch, tmp_path):
    config = json.loads((scratch["dir"] / "config.json").read_text())
    assert config["validation_split"] == {"validation_seed": 42, "train_val_split": 0.1, "max_validation_size": 0}
    data = ["--dataset_name", scratch["args"][1], "--cache_dir", str(scratch["cache_dir"])]
    evaluation = ["--model_name_or_path", str(scratch["dir"]), "--do_train", "false", "--seed", "2", *data,
                  "--output_dir", str(tmp_path / "evaluated"), *FAST]
    results = train_hf.main(evaluation)  # seed 2 would hold out other images, some of which the model trained on
    assert results["eval"]["eval_accuracy"] == pytest.approx(scratch["results"]["eval"]["eval_accuracy"])

    def validation_images(args):
        options = parse_arguments(args)
        dataset, _ = load_data(options.data, options.model.cache_dir, options.training.seed, options.training.do_train)
        return sorted(image.tobytes() for image in dataset["validation"]["image"])

    trained_on = validation_images([*data, "--output_dir", str(tmp_path / "new")])  # the scratch run's, seed 42
    assert validation_images(evaluation) == trained_on
    fine_tuning = ["--model_name_or_path", str(scratch["dir"]), "--seed", "3", *data, "--output_dir",
                   str(tmp_path / "tuned")]
    assert validation_images(fine_tuning) == trained_on
    assert validation_images([*data, "--seed", "2", "--output_dir", str(tmp_path / "new")]) != trained_on


def test_evaluation_only_runs_need_a_checkpoint_and_prediction_needs_its_split(scratch, image_folders, tmp_path):
    with pytest.raises(InputError, match="--do_train false needs --model_name_or_path"):
        train_hf.main(["--do_train", "false", "--output_dir", str(tmp_path), *FAST])
    with pytest.raises(InputError, match="the data has no test split .* --predict_split"):
        train_hf.main(["--model_name_or_path", str(scratch["dir"]), "--do_train", "false", "--do_predict",
                       "--train_dir", str(image_folders["train"]), "--ignore_mismatched_sizes",
                       "--output_dir", str(tmp_path), *FAST])
    with pytest.raises(InputError, match="the data has no tset split"):  # a split named wrong
        train_hf.main(["--model_name_or_path", str(scratch["dir"]), "--do_train", "false", "--predict_split", "tset",
                       "--dataset_name", scratch["args"][1], "--cache_dir", str(scratch["cache_dir"]),
                       "--output_dir", str(tmp_path), *FAST])


def test_push_to_hub_uploads_the_folder_with_its_code(scratch):
    final = scratch["hub"].uploads[-1]
    assert final["repo_id"] == "tester/vit-simple-fmnist"
    assert {"model.safetensors", "config.json", "configuration_vit_simple.py", "modeling_vit_simple.py",
            "preprocessor_config.json", "README.md", "all_results.json"} <= set(final["files"])
    assert not any(name.startswith("checkpoint-") for name in final["files"])


def test_the_saved_folder_runs_in_pipeline_with_the_preprocessing_of_evaluation(scratch, tmp_path):
    """(Loading such a folder by remote code in a fresh process: test_hub_folder.py.)"""
    from transformers import pipeline

    images = []
    for mode in ("L", "RGB", "RGBA", "P"):
        path = tmp_path / f"{mode}.png"
        save_image(path, COLORS["red"], (30, 40), mode, seed=1)
        images.append(str(path))
    classifier = pipeline("image-classification", model=str(scratch["dir"]))
    reloaded = {"outputs": [classifier(Image.open(path), top_k=10) for path in images]}
    # the pipeline's scores are those of the trained model on the evaluation transform: same preprocessing
    model = AutoModelForImageClassification.from_pretrained(scratch["dir"])
    transform = ImageTransform(AutoImageProcessor.from_pretrained(scratch["dir"]), model.config)
    batch = {"image": [{"path": path, "bytes": None} for path in images], "label": [0] * len(images)}
    with torch.no_grad():
        probabilities = model(torch.from_numpy(transform(batch)["pixel_values"])).logits.softmax(-1)
    for output, expected in zip(reloaded["outputs"], probabilities):
        assert {o["label"] for o in output} == set(CLASS_NAMES)
        scores = {o["label"]: o["score"] for o in output}
        assert np.allclose([scores[name] for name in CLASS_NAMES], expected.numpy(), atol=1e-5)


def test_end_of_run_summary_and_a_card_that_names_the_folder_the_model_ends_up_in(scratch, fashion_slice, tmp_path,
                                                                                  capsys):
    train_hf.main(["--dataset_name", str(fashion_slice), "--cache_dir", str(scratch["cache_dir"]), "--output_dir",
                   str(tmp_path / "out"), "--config_overrides", TINY, "--max_steps", "1", *FAST])
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("test accuracy ") and "validation accuracy" in summary
    assert "wall time" in summary and "images/s" in summary and f"saved to {tmp_path / 'out'}" in summary
    card = ModelCard.load(tmp_path / "out" / "README.md")  # written where the model was staged, then moved
    assert card.data.model_name == "out" and f'model="{tmp_path / "out"}"' in card.text and "staging" not in card.text


# fine-tuning


@pytest.fixture(scope="module")
def finetuned(scratch, image_folders, tmp_path_factory):
    """The Fashion-MNIST model fine-tuned (learning rate 0, so the backbone stays as loaded) on 3 colour classes."""
    output_dir = tmp_path_factory.mktemp("finetuned")
    results = train_hf.main([
        "--model_name_or_path", str(scratch["dir"]), "--ignore_mismatched_sizes", "--train_dir",
        str(image_folders["train"]), "--validation_dir", str(image_folders["validation"]), "--test_dir",
        str(image_folders["test"]), "--output_dir", str(output_dir), "--learning_rate", "0", "--num_train_epochs",
        "1", *FAST])
    return {"dir": output_dir, "results": results}


def test_finetune_replaces_the_head_for_the_new_labels(scratch, finetuned):
    config = json.loads((finetuned["dir"] / "config.json").read_text())
    assert config["id2label"] == {"0": "blue", "1": "green", "2": "red"}
    before, after = load_file(scratch["dir"] / "model.safetensors"), load_file(finetuned["dir"] / "model.safetensors")
    assert after["classifier.weight"].shape == (3, 32) and before["classifier.weight"].shape == (10, 32)
    backbone = [name for name in before if not name.startswith("classifier")]
    assert backbone and all(torch.equal(before[name], after[name]) for name in backbone)
    # mixed modes and sizes (L, RGB, RGBA, P; 32x32, 40x30, 24x36) became 28x28 RGB; 3 classes: no top-5
    assert set(finetuned["results"]["test"]) >= {"test_accuracy", "test_macro_f1"}
    assert "test_top_5_accuracy" not in finetuned["results"]["test"]


def test_finetune_to_other_labels_without_ignore_mismatched_sizes_says_how(scratch, image_folders, tmp_path):
    with pytest.raises(InputError, match="classifies 10 classes .* pass --ignore_mismatched_sizes"):
        train_hf.main(["--model_name_or_path", str(scratch["dir"]), "--train_dir", str(image_folders["train"]),
                       "--output_dir", str(tmp_path), *FAST])


# bad input


def test_corrupt_image_is_one_clear_error(image_folders, tmp_path):
    train_dir = make_image_folder(tmp_path / "train", per_class=2)
    (train_dir / "red" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(InputError) as error:
        train_hf.main(["--train_dir", str(train_dir), "--validation_dir", str(image_folders["validation"]),
                       "--config_overrides", f"{TINY},image_size=32", "--output_dir", str(tmp_path / "out"),
                       "--max_steps", "2", *FAST])
    assert f"Cannot read image {train_dir / 'red' / 'broken.png'}" in str(error.value)
    assert "delete or replace that file" in str(error.value)


# nothing silently wrong


def snapshot(folder):
    """{relative path: sha256} of every file under `folder`."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


class Diverge(TrainerCallback):
    """Makes step `step` non-finite on any CPU, whatever its float arithmetic: "training loss" by a NaN weight (the
    loss, and then the gradients, are NaN), "gradient norm" by an infinite gradient (the loss stays finite)."""

    def __init__(self, step, what):
        self.step, self.what = step, what

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step != self.step - 1:
            return
        if self.what == "training loss":
            with torch.no_grad():
                model.classifier.weight[0, 0] = float("nan")
        else:
            model.classifier.bias.register_hook(lambda grad: grad + float("inf"))


@pytest.mark.parametrize("what", ["training loss", "gradient norm"])
def test_a_run_that_diverges_stops_at_that_step_in_one_line_and_leaves_the_earlier_model_byte_for_byte(
        scratch, fashion_slice, tmp_path, what):
    output = tmp_path / "trained"
    shutil.copytree(scratch["dir"], output)  # a trained model, its checkpoints, reports and card
    before = snapshot(output)
    with pytest.raises(RunDiverged) as error:  # cli() prints it as one line, exit status 1 (below)
        train_hf.main(["--dataset_name", str(fashion_slice), "--cache_dir", str(scratch["cache_dir"]),
                       "--config_overrides", TINY, "--max_train_samples", "64", "--num_train_epochs", "1",
                       "--push_to_hub", "--output_dir", str(output), *FAST], callbacks=[Diverge(3, what)])
    message = str(error.value)
    assert message.startswith(f"step 3: training diverged: the {what} is ") and "\n" not in message, message
    assert "so training stopped before the weights took it" in message and "--resume_from_checkpoint true" in message
    assert snapshot(output) == before  # nothing written, nothing pushed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trained"]


def test_the_script_stops_a_diverging_run_in_one_line_whatever_turned_non_finite_first(scratch, fashion_slice,
                                                                                        tmp_path):
    """The script as a user runs it, with a rate no run survives: exit status 1, one line, no traceback, nothing
    written or pushed. Which quantity turns first (the loss, or the gradient norm on bf16-native CPUs) and at which
    step depends on the CPU's arithmetic; the line names it."""
    output = tmp_path / "trained"
    shutil.copytree(scratch["dir"], output)
    before = snapshot(output)
    result = run_script(sys.executable, "train_hf.py", "--dataset_name", str(fashion_slice), "--cache_dir",
                        str(scratch["cache_dir"]), "--config_overrides", TINY, "--max_train_samples", "64",
                        "--num_train_epochs", "1", "--learning_rate", "1e6", "--push_to_hub", "--output_dir",
                        str(output), *FAST)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert re.match(r"train_hf\.py: error: (step \d+: )?training diverged: the (training loss|gradient norm|trained "
                    r"weights|eval loss) ", last), last
    assert "Try a lower --learning_rate (now 1e+06)" in last and "--resume_from_checkpoint true" in last
    assert f"{output} holds a model (Fashion-MNIST, " in result.stdout  # said at the start
    assert snapshot(output) == before  # no upload either: offline, an upload would have failed with another line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trained"]


def test_a_failure_while_the_final_model_is_written_leaves_the_earlier_model(scratch, fashion_slice, tmp_path,
                                                                              monkeypatch):
    output = tmp_path / "trained"
    shutil.copytree(scratch["dir"], output)
    before = snapshot(output)

    def full_disk(*args, **kwargs):  # the weights, config and results are written; then the card fails
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(train_hf, "write_model_card", full_disk)
    with pytest.raises(OSError, match="No space left on device"):
        train_hf.main(["--dataset_name", str(fashion_slice), "--cache_dir", str(scratch["cache_dir"]),
                       "--config_overrides", TINY, "--max_train_samples", "32", "--max_steps", "2",
                       "--max_eval_samples", "16", "--do_predict", "false", "--output_dir", str(output), *FAST])
    model_files = lambda files: {k: v for k, v in files.items() if not k.startswith("checkpoint-")}  # noqa: E731
    after = snapshot(output)  # the earlier model whole, the new run's checkpoint beside it to resume from
    assert model_files(after) == model_files(before) and "checkpoint-2/model.safetensors" in after
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trained"]


def test_a_failed_upload_keeps_the_saved_model_and_says_how_to_upload_it_later(scratch, fashion_slice, tmp_path,
                                                                                monkeypatch):
    def offline(api, **kwargs):
        raise ConnectionError("the Hub cannot be reached")

    FakeHub(monkeypatch)
    monkeypatch.setattr(HfApi, "upload_folder", offline)
    output = tmp_path / "run"
    with pytest.raises(InputError) as error:
        train_hf.main(["--dataset_name", str(fashion_slice), "--cache_dir", str(scratch["cache_dir"]),
                       "--config_overrides", TINY, "--max_train_samples", "32", "--max_steps", "2",
                       "--max_eval_samples", "16", "--do_predict", "false", "--push_to_hub", "--output_dir",
                       str(output), *FAST])
    message = str(error.value)
    assert f"the model is saved in {output}, but the upload to run failed (ConnectionError" in message
    assert f"Upload it later with: hf upload tester/run {output}" in message and "\n" not in message
    assert AutoModelForImageClassification.from_pretrained(output).config.num_labels == 10  # saved, complete


def test_bad_config_overrides_are_clear_errors(fashion_slice, scratch, tmp_path):
    base = ["--dataset_name", str(fashion_slice), "--cache_dir", str(scratch["cache_dir"]), "--output_dir",
            str(tmp_path), *FAST]
    with pytest.raises(InputError, match="'detph=2' is not key=value with a known key"):
        train_hf.main([*base, "--config_overrides", "detph=2"])
    with pytest.raises(InputError, match="not divisible by patch_size"):
        train_hf.main([*base, "--config_overrides", "patch_size=5"])


# streaming, resume, several processes


def test_streaming_trains_from_an_iterable_dataset(fashion_slice, scratch, tmp_path):
    results = train_hf.main(["--dataset_name", str(fashion_slice), "--cache_dir", str(scratch["cache_dir"]),
                             "--streaming", "--max_steps", "3", "--max_eval_samples", "24", "--config_overrides", TINY,
                             "--output_dir", str(tmp_path), *FAST])
    assert json.loads((tmp_path / "trainer_state.json").read_text())["global_step"] == 3
    assert results["eval"]["eval_samples_per_second"] > 0 and "test_accuracy" in results["test"]


def test_resume_true_without_a_checkpoint_is_a_clear_error(fashion_slice, scratch, tmp_path):
    with pytest.raises(InputError, match="holds no complete checkpoint .* drop the option to start afresh"):
        train_hf.main(["--dataset_name", str(fashion_slice), "--cache_dir", str(scratch["cache_dir"]),
                       "--output_dir", str(tmp_path), "--resume_from_checkpoint", "true", *FAST])


