"""The main job on any machine: the minutes said up front, and a time budget (--max_train_minutes) that stops a run
where it is, saves what it has and lets a resume with a larger budget continue it."""

import json

import pytest
from huggingface_hub import ModelCard
from transformers import AutoModelForImageClassification

import train_hf
import vit_trainer
from test_train_hf import FAST, TINY, assert_same_weights


def small_run(fashion_slice, cache_dir, output_dir, *extra):
    """64 training images in batches of 16: 4 steps an epoch, 2 epochs."""
    return ["--dataset_name", str(fashion_slice), "--cache_dir", str(cache_dir), "--config_overrides", TINY,
            "--max_train_samples", "64", "--max_eval_samples", "32", "--num_train_epochs", "2", "--seed", "7",
            "--output_dir", str(output_dir), *FAST, "--ema_decay", "0.9", *extra]


def test_a_budget_that_ends_mid_epoch_stops_there_saves_a_model_and_says_so(fashion_slice, tmp_path, capsys):
    output_dir = tmp_path / "budget"
    results = train_hf.main(small_run(fashion_slice, tmp_path / "cache", output_dir, "--max_train_minutes", "1e-9"))

    assert results["train"]["epoch"] == 0.25  # the first step is past the budget: a quarter of the first epoch
    assert results["train"]["stopped_by_budget"] and results["train"]["max_train_minutes"] == 1e-9
    all_results = json.loads((output_dir / "all_results.json").read_text())
    assert all_results["stopped_by_budget"] and all_results["epoch"] == 0.25 and all_results["num_train_epochs"] == 2
    assert "stopped by the 1e-09-minute budget at epoch 0.25 of 2" in capsys.readouterr().out
    card = ModelCard.load(output_dir / "README.md").text
    assert "epochs: 0.25 of 2, stopped by the training budget (--max_train_minutes 1e-09)" in card
    model = AutoModelForImageClassification.from_pretrained(output_dir)
    assert model.config.num_labels == 10
    assert [p.name for p in output_dir.glob("checkpoint-*")] == ["checkpoint-1"]  # where a resume continues


def test_a_budget_stop_resumed_with_a_larger_budget_ends_as_an_uninterrupted_run(fashion_slice, tmp_path):
    cache = tmp_path / "cache"
    train_hf.main(small_run(fashion_slice, cache, tmp_path / "uninterrupted"))
    stopped = train_hf.main(small_run(fashion_slice, cache, tmp_path / "resumed", "--max_train_minutes", "1e-9"))
    assert stopped["train"]["epoch"] == 0.25

    resumed = train_hf.main(small_run(fashion_slice, cache, tmp_path / "resumed", "--max_train_minutes", "100",
                                      "--resume_from_checkpoint", "true"))
    assert resumed["train"]["epoch"] == 2 and "stopped_by_budget" not in resumed["train"]
    assert_same_weights(tmp_path / "uninterrupted", tmp_path / "resumed")
    state = json.loads((tmp_path / "resumed" / "checkpoint-8" / "trainer_state.json").read_text())
    clock = state["stateful_callbacks"]["TrainingClock"]
    assert clock["attributes"]["seconds"] > 0 and resumed["train"]["train_minutes"] * 60 == pytest.approx(
        clock["attributes"]["seconds"])  # the minutes of both parts, counted across the resume


def test_the_run_says_its_minutes_once_the_rate_has_settled(fashion_slice, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(vit_trainer.TrainingClock, "warmup_steps", 2)
    monkeypatch.setattr(vit_trainer.TrainingClock, "estimate_steps", 3)
    train_hf.main(small_run(fashion_slice, tmp_path / "cache", tmp_path / "out", "--do_predict", "false"))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("training at ")]
    assert len(lines) == 1, lines
    assert "images/s: about " in lines[0] and " minutes for 2 epochs (evaluation aside); --max_train_minutes sets a " \
        "budget" in lines[0]


def test_the_estimate_says_where_a_budget_will_stop_the_run():
    clock = vit_trainer.TrainingClock(budget_minutes=1)
    clock.seconds, clock.steps, clock.warm = 30.0, 30, (10.0, 10)  # 1 s a step after the warm-up
    args = train_hf.TrainArguments(output_dir="unused", use_cpu=True, per_device_train_batch_size=100,
                                   num_train_epochs=10, max_steps=-1)
    state = type("State", (), {"max_steps": 250, "global_step": 30, "num_train_epochs": 10})()
    line = clock.estimate(args, state)
    assert line.startswith("training at 100 images/s: about 4 minutes for 10 epochs (evaluation aside)")
    assert line.endswith("the budget of 1 minutes stops it near epoch 2.4")  # 60 of 250 steps


def test_a_budget_must_be_positive(tmp_path):
    with pytest.raises(train_hf.InputError, match="--max_train_minutes must be a positive number of minutes"):
        train_hf.parse_arguments(["--output_dir", str(tmp_path), "--max_train_minutes", "0"])
