"""benchmarks/calibrate_saved.py: the run's own seed, hence its own validation split, or a refusal."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import calibrate_saved  # noqa: E402


def test_the_seed_comes_from_the_model_cards_list(tmp_path):
    (tmp_path / "README.md").write_text("## Training\n\n- label smoothing: 0\n- seed: 7\n- training time: 3 min\n")
    assert calibrate_saved.run_seed(tmp_path) == 7


@pytest.mark.parametrize("card", [None, "a card without the list\n", "- seed: seven\n"])
def test_a_folder_without_its_seed_is_refused_rather_than_read_with_another_split(tmp_path, card):
    if card is not None:
        (tmp_path / "README.md").write_text(card)
    with pytest.raises(SystemExit, match="names no seed"):
        calibrate_saved.run_seed(tmp_path)


def test_the_validation_size_is_the_one_the_run_recorded_and_every_held_out_image_before_it_did(tmp_path):
    assert calibrate_saved.run_validation_size(tmp_path) == 0  # a round-8 run: no all_results.json count
    (tmp_path / "all_results.json").write_text('{"eval_accuracy": 0.9}')
    assert calibrate_saved.run_validation_size(tmp_path) == 0
    (tmp_path / "all_results.json").write_text('{"eval_accuracy": 0.9, "eval_samples": 2000}')
    assert calibrate_saved.run_validation_size(tmp_path) == 2000


def test_subset_temperatures_spread_with_fewer_images_and_the_whole_split_gives_the_full_fit():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 600)
    logits = rng.normal(size=(600, 4)).astype(np.float32)
    logits[np.arange(600), labels] += 3.0  # right 9 times out of 10 or so, with confidence to calibrate
    splits = {"eval": (logits[:400] * 2, labels[:400]), "test": (logits[400:] * 2, labels[400:])}
    rows = calibrate_saved.subset_temperatures(splits, [40, 400], draws=8)
    full = calibrate_saved.fit_temperature(*splits["eval"])
    assert rows[400]["temperature_std"] < 1e-6 and abs(rows[400]["temperature_mean"] - full) < 1e-6
    assert rows[40]["temperature_std"] > 0.01 and rows[40]["test_ece_max"] >= rows[400]["test_ece_mean"]
    assert abs(full - 2 * calibrate_saved.fit_temperature(logits[:400], labels[:400])) < 1e-3  # T undoes the doubling
    with pytest.raises(SystemExit, match="the validation split has 400 images"):
        calibrate_saved.subset_temperatures(splits, [401])
