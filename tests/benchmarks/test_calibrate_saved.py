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
