"""benchmarks/levers.py: each lever is train_hf.py's default run with its own options, the test split unseen."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import levers  # noqa: E402
import train_hf  # noqa: E402
from vit_simple.options import parse_arguments  # noqa: E402


@pytest.mark.parametrize("name", list(levers.LEVERS))
def test_every_lever_is_a_train_hf_command_that_keeps_the_test_split_unseen(name, tmp_path):
    args = levers.parse_args(["--epochs", "4", "--output_dir", str(tmp_path)])
    command, run_dir = levers.command(name, 42, args)
    _, data_args, training_args = parse_arguments(command[2:])
    assert training_args.num_train_epochs == 4 and training_args.seed == 42 and training_args.do_predict is False
    assert Path(training_args.output_dir) == run_dir and run_dir.parent == tmp_path


def test_the_measured_levers_change_what_their_names_say(tmp_path):
    args = levers.parse_args(["--epochs", "4", "--output_dir", str(tmp_path), "--test"])
    parsed = {name: parse_arguments(levers.command(name, 1, args)[0][2:])
              for name in ("default", "previous", "adamw_ema", "muon_shift")}
    default, previous = parsed["default"].training, parsed["previous"].training
    assert parsed["default"].data.max_validation_size == 0  # all 6,000 held-out images validate, as they did then
    assert default.muon is True and default.ema_decay == 0.999 and default.do_predict is True  # --test
    assert default.per_device_train_batch_size == 128 == parse_arguments([]).training.per_device_train_batch_size
    batch256 = parse_arguments(levers.command("batch256", 1, args)[0][2:]).training
    assert batch256.per_device_train_batch_size == 256
    assert previous.muon is False and previous.ema_decay == 0
    assert parsed["adamw_ema"].training.muon is False and parsed["adamw_ema"].training.ema_decay == 0.999
    def config(name):
        run = parse_arguments(levers.command(name, 1, args)[0][2:])
        return train_hf.build_model(run.model, [str(i) for i in range(10)], (28, 28),
                                    run.chosen)[0].config

    default_config = config("default")  # the baseline the levers were measured against
    assert (default_config.patch_dropout_prob, default_config.shifted_patches) == (0.0, False)
    assert config("shifted_patches").shifted_patches is True
    assert (config("mean_pool").pool, config("mean_pool").patch_dropout_prob) == ("mean", 0.0)  # both overrides
    assert config("patch_drop0.25").patch_dropout_prob == 0.25  # the lever's own value wins
    shifted = parsed["muon_shift"].data
    assert (shifted.augmentation, shifted.crop_padding) == ("pad_crop", 1) and parsed["muon_shift"].training.ema_decay == 0


def test_dry_run_prints_the_commands_and_the_table_of_what_was_measured(tmp_path, capsys):
    (tmp_path / "levers.json").write_text(
        '{"default e4 s42": {"lever": "default", "epochs": 4, "seed": 42, "eval_accuracy": 0.907, '
        '"eval_tta_accuracy": 0.912, "wall_seconds": 237, "train_images_per_second": 1006}}')
    levers.main(["--dry_run", "--only", "default", "previous", "--output_dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert out.count("train_hf.py") == 2 and "--muon false --ema_decay 0" in out
    assert "| default | round 5's default: Muon + AdamW at a constant rate, weight EMA 0.999, flips, batch 128 | 4 | 42 | 90.70% | 91.20% |  | 3m57s | 1006 |" \
        in out
