"""The profiling script runs and accounts for each model's step by kind of op (what it reports, not how fast)."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import profile_vit  # noqa: E402


@pytest.fixture
def keep_threads():
    """main() sets torch's thread count for the whole process; later tests compare runs across processes bitwise."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("mode", ["training", "inference"])
def test_profile_splits_each_models_step_into_kinds_of_ops(mode, tmp_path, capsys, keep_threads):
    results = profile_vit.main(["--config", "tiny", "--mode", mode, "--steps", "1", "--threads", "1",
                                "--models", "vit-simple", "vit-pytorch", "--trace", str(tmp_path)])
    out = capsys.readouterr().out
    assert set(results) == {"vit-simple", "vit-pytorch"}
    for name, r in results.items():
        assert r["kinds"]["matmul"] > 0  # the Linear layers are found and classified
        assert sum(r["kinds"].values()) == pytest.approx(sum(ms for _, ms, _ in r["ops"]))  # every op counted once
    assert (tmp_path / f"tiny-{mode}-float32.json").stat().st_size > 0
    if mode == "training":  # the optimizer step and the backward are in the profile
        assert all(r["kinds"]["optimizer"] > 0 for r in results.values())
        assert any("backward" in op for op, _, _ in results["vit-pytorch"]["ops"])
    for row in ("| matmul |", "| attention |", "| copies |", "| **step, unprofiled** |", "vit-pytorch: top"):
        assert row in out


def test_profile_refuses_zero_steps():
    with pytest.raises(SystemExit):
        profile_vit.parse_args(["--steps", "0"])
