"""train_hf.py's options (vit_simple.options): parsed, checked and resolved in one place; what the recipe decides is
recorded; options are never abbreviated."""

import json
from types import SimpleNamespace

import pytest
import torch

import train_hf
from conftest import tiny_config
from modeling_vit_simple import ViTSimpleForImageClassification
from vit_simple import hardware, recipe
from vit_simple.errors import InputError
from vit_simple.options import DataArguments, parse_arguments, resolve_validation_split


def parse(tmp_path, *args):
    return parse_arguments(["--output_dir", str(tmp_path / "out"), *args])


def test_from_scratch_the_recipe_decides_muon_a_constant_rate_flips_patch_dropout_and_shifted_patches(tmp_path):
    run = parse(tmp_path)
    assert run.training.muon is True and run.training.lr_scheduler_type == "constant_with_warmup"
    assert run.training.warmup_steps == 0
    assert (run.data.augmentation, run.data.horizontal_flip) == ("flip", True)  # Fashion-MNIST: mirror-safe
    assert run.chosen == {"muon": True, "lr_scheduler_type": "constant_with_warmup", "warmup_steps": 0,
                          "bf16": run.training.bf16, "dataloader_num_workers": run.training.dataloader_num_workers,
                          "dataloader_pin_memory": torch.cuda.is_available(),
                          "newton_schulz": "bfloat16" if run.training.bf16 else "float32", "patch_dropout": 0.25,
                          "shifted_patches": True,
                          "horizontal_flip": True, "augmentation": "flip"}
    json.dumps(run.chosen)  # the model card records it


def test_augmentation_none_trains_and_averages_over_no_mirror_even_where_flips_are_the_default(tmp_path):
    plain = parse(tmp_path, "--augmentation", "none")  # Fashion-MNIST, where flips are otherwise on
    assert (plain.data.augmentation, plain.data.horizontal_flip) == ("none", False)  # TTA's views follow it
    assert "horizontal_flip" not in plain.chosen
    asked = parse(tmp_path, "--augmentation", "none", "--horizontal_flip", "true")
    assert asked.data.horizontal_flip is False  # none means the images as they are, as --augmentation's help says
    assert parse(tmp_path, "--augmentation", "pad_crop").data.horizontal_flip is True


def test_what_the_command_line_gives_is_kept_and_the_rest_follows_the_optimizer(tmp_path):
    told = parse(tmp_path, "--lr-scheduler-type", "cosine")
    assert (told.training.lr_scheduler_type, told.training.warmup_steps) == ("cosine", 0)
    assert "lr_scheduler_type" not in told.chosen and told.chosen["warmup_steps"] == 0
    adamw = parse(tmp_path, "--muon", "false")
    assert (adamw.training.lr_scheduler_type, adamw.training.warmup_steps) == ("cosine", 0.05)
    assert "newton_schulz" not in adamw.chosen and "muon" not in adamw.chosen  # no Muon, and it was given
    assert "patch_dropout" not in parse(tmp_path, "--config_overrides", "patch_dropout=0.5").chosen
    on = parse(tmp_path, "--muon", "true", "--warmup_steps=0.1")
    assert (on.training.muon, on.training.lr_scheduler_type, on.training.warmup_steps) == (True, "constant_with_warmup",
                                                                                          0.1)


def test_fine_tuning_defaults_to_adamw_with_warm_up_cosine_and_a_crop_by_the_checkpoints_image_size(tmp_path):
    checkpoint = tmp_path / "checkpoint"
    ViTSimpleForImageClassification(tiny_config(image_size=96, patch_size=16)).save_pretrained(checkpoint)
    run = parse(tmp_path, "--model_name_or_path", str(checkpoint), "--train_dir", str(tmp_path))
    assert run.training.muon is False and (run.training.lr_scheduler_type, run.training.warmup_steps) == ("cosine",
                                                                                                         0.05)
    assert (run.data.augmentation, run.data.horizontal_flip) == ("resized_crop", False)  # not known to be mirror-safe
    ViTSimpleForImageClassification(tiny_config(image_size=32, patch_size=8)).save_pretrained(checkpoint)
    assert parse(tmp_path, "--model_name_or_path", str(checkpoint)).data.augmentation == "pad_crop"


def test_do_eval_false_leaves_out_the_final_evaluation_while_eval_strategy_still_evaluates_each_epoch(tmp_path):
    run = parse(tmp_path, "--do_eval", "false")  # TrainingArguments alone would turn do_eval back on
    assert run.training.do_eval is False and run.training.eval_strategy == "epoch"
    assert parse(tmp_path).training.do_eval is True


@pytest.mark.parametrize("given, meant", [("--warmup_step", "--warmup_steps"), ("--lr_scheduler_typ",
                                                                                "--lr_scheduler_type")])
def test_an_abbreviated_option_is_refused_with_one_line_naming_the_option(tmp_path, given, meant):
    """argparse would take --warmup_step for --warmup_steps; the recipe would then not know it was given."""
    with pytest.raises(InputError) as error:
        parse(tmp_path, given, "50" if "warmup" in given else "cosine")
    assert str(error.value) == f"{given} is not an option (options are spelled in full): did you mean {meant}?"


def test_an_option_spelled_with_dashes_is_the_same_option_and_counts_as_given(tmp_path):
    run = parse(tmp_path, "--warmup-steps", "50", "--lr-scheduler-type", "cosine")
    assert (run.training.warmup_steps, run.training.lr_scheduler_type) == (50, "cosine")  # kept, with Muon on
    assert "warmup_steps" not in run.chosen and "lr_scheduler_type" not in run.chosen


def test_options_also_come_from_a_json_file_and_its_unknown_names_are_refused(tmp_path):
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"output_dir": str(tmp_path / "out"), "num_train_epochs": 3, "warmup_steps": 5}))
    run = parse_arguments([str(path)])
    assert (run.training.num_train_epochs, run.training.warmup_steps, run.training.muon) == (3, 5, True)
    path.write_text(json.dumps({"warmup_step": 5}))
    with pytest.raises(InputError, match="--warmup_step is not an option .* did you mean --warmup_steps"):
        parse_arguments([str(path)])


@pytest.mark.parametrize("native", [False, True])
def test_bf16_defaults_to_what_the_machine_runs_natively(tmp_path, monkeypatch, native):
    monkeypatch.setattr(hardware, "native_bfloat16", lambda: native)
    run = parse(tmp_path)
    assert run.training.bf16 is native and run.chosen["newton_schulz"] == ("bfloat16" if native else "float32")
    if native and not torch.cuda.is_available():
        assert run.training.use_cpu  # TrainingArguments allows bf16 without an accelerator only when told it is the CPU
    off = parse(tmp_path, "--bf16", "false")
    assert off.training.bf16 is False and "bf16" not in off.chosen and off.chosen["newton_schulz"] == "float32"
    on = parse(tmp_path, "--bf16", "true")
    assert on.training.bf16 and (on.training.use_cpu or torch.cuda.is_available())


def test_a_new_model_trains_with_the_recipes_patch_dropout_unless_the_overrides_set_one(tmp_path):
    labels, size = ["a", "b"], (28, 28)

    def built(*args):
        run = parse(tmp_path, *args)
        return train_hf.build_model(run.model, labels, size, run.chosen)[0].config

    assert built().patch_dropout_prob == 0.25
    for overrides in ("patch_dropout=0", "depth=2,patch_dropout_prob=0.0"):  # either name, anywhere in the list
        assert built("--config_overrides", overrides).patch_dropout_prob == 0.0
    assert built("--config_overrides", "patch_dropout=0.5").patch_dropout_prob == 0.5
    assert built().shifted_patches is True  # the recipe's, for a new model
    off = built("--config_overrides", "shifted_patches=false")
    assert (off.shifted_patches, off.patch_dropout_prob) == (False, 0.25)  # each recipe value stands alone
    diagonal = built("--config_overrides", "patch_shift=diagonal")
    assert (diagonal.shifted_patches, diagonal.patch_shift) == (True, "diagonal")  # the recipe's shifts, the paper's way
    with pytest.raises(InputError) as error:  # the message quotes what the user gave, not the recipe's text
        built("--config_overrides", "patch_size=5")
    assert "--config_overrides 'patch_size=5'" in str(error.value) and "patch_dropout" not in str(error.value)


@pytest.mark.parametrize("args, message", [
    (["--crop_padding", "0"], "--crop_padding must be a whole number of pixels, at least 1"),
    (["--random_erasing", "1.5"], "--random_erasing is a probability between 0 and 1, got 1.5"),
    (["--mixup", "-0.5"], "--mixup is the alpha of a Beta distribution, 0 .off. or more .* got -0.5"),
    (["--cutmix", "nan"], "--cutmix is the alpha of a Beta distribution"),
    (["--train_val_split", "1"], "--train_val_split must be a fraction between 0 and 1"),
    (["--max_validation_size", "-1"], "--max_validation_size must be a number of images, or 0 to keep every"),
    (["--max_train_minutes", "0"], "--max_train_minutes must be a positive number of minutes"),
    (["--do_train", "false"], "--do_train false needs --model_name_or_path"),
    (["--streaming", "true"], "--streaming needs --max_steps"),
    (["--dataloader_persistent_workers", "true"], "--dataloader_persistent_workers keeps each loader worker's copy"),
    (["--resume_from_checkpoint", "true"], "holds no complete checkpoint .* drop the option to start afresh"),
    (["--model_name_or_path", "./nowhere"], "--model_name_or_path ./nowhere is no local folder"),
])
def test_options_that_cannot_work_are_one_line_errors_before_anything_is_read(tmp_path, args, message):
    with pytest.raises(InputError, match=message):
        parse(tmp_path, *args)


def test_a_checkpoints_own_validation_split_is_the_default_and_another_one_given_is_kept_and_named(caplog):
    checkpoint = SimpleNamespace(validation_split={"validation_seed": 2, "train_val_split": 0.2,
                                                   "max_validation_size": 500})
    own = DataArguments()
    with caplog.at_level("WARNING"):
        resolve_validation_split(own, checkpoint, 42, "run-2")
    assert (own.validation_seed, own.train_val_split, own.max_validation_size) == (2, 0.2, 500)
    assert not caplog.records
    new = DataArguments()  # from scratch, or a checkpoint saved before the record: --seed and the recipe's
    resolve_validation_split(new, None, 7, None)
    edited = DataArguments()  # a hand-edited record's values out of range count as none
    resolve_validation_split(edited, SimpleNamespace(validation_split={"validation_seed": "two",
                                                                       "train_val_split": 1.5}), 7, None)
    assert (edited.validation_seed, edited.train_val_split) == (7, recipe.VALIDATION_SPLIT)
    assert (new.validation_seed, new.train_val_split, new.max_validation_size) == (
        7, recipe.VALIDATION_SPLIT, recipe.MAX_VALIDATION_SIZE)
    told = DataArguments(validation_seed=42, max_validation_size=500)
    with caplog.at_level("WARNING"):
        resolve_validation_split(told, checkpoint, 42, "run-2")
    assert (told.validation_seed, told.train_val_split, told.max_validation_size) == (42, 0.2, 500)
    [record] = caplog.records
    message = record.getMessage()
    assert "\n" not in message and "run-2" in message and "--validation_seed 2 --train_val_split 0.2" in message
    assert "--validation_seed 42 draws others, some of which it trained on" in message
    assert "Leave --validation_seed out" in message and "--max_validation_size" not in message.split(";")[1]
