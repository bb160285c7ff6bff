"""benchmarks/bench_train_hf.py runs train_hf.py's pipeline piece by piece and reports each stage (not its numbers)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_train_hf  # noqa: E402

TINY = "dim=32,depth=2,heads=2,dim_head=16,mlp_dim=64"


def test_quick_run_reports_data_model_and_trainer_images_per_second(fashion_slice, tmp_path, capsys):
    out = tmp_path / "pipeline.json"
    results = bench_train_hf.main(["--quick", "--json", str(out), "--", "--dataset_name", str(fashion_slice),
                                   "--cache_dir", str(tmp_path / "cache"), "--config_overrides", TINY,
                                   "--per_device_train_batch_size", "16", "--dataloader_num_workers", "0"])
    table = capsys.readouterr().out
    for stage in ("data (one worker, 1 thread)", "model (training step)", "trainer (end to end)"):
        assert f"| {stage} |" in table
    for key in ("data_images_per_second_per_worker", "model_images_per_second", "trainer_images_per_second"):
        assert results[key] > 0 and results[key] == json.loads(out.read_text())[key]
    assert results["batch_size"] == 16 and results["dataloader_num_workers"] == 0
    # the model stage steps the optimizer the run uses: Muon from scratch, its iterations in bf16 only where native
    expected = "bfloat16" if results["bf16"] and results["native_bfloat16"] else "float32"
    assert results["optimizer"] == f"Muon + AdamW (Newton-Schulz in {expected})"
    assert f"bfloat16 is {'native' if results['native_bfloat16'] else 'emulated'} here" in table
