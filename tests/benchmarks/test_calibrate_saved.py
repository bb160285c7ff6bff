"""benchmarks/calibrate_saved.py: the run's own seed, hence its own validation split, or a refusal."""

import sys
from pathlib import Path

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
