"""benchmarks/bench_export.py: the exported files' speed against torch's, each variant reported (not its numbers)."""

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_export  # noqa: E402


def test_bench_export_quick_prints_every_variant_against_torch_float32(tmp_path, capsys):
    threads = torch.get_num_threads()
    try:
        bench_export.main(["--quick", "--threads", "1", "--json", str(tmp_path / "speed.json")])
    finally:
        torch.set_num_threads(threads)
    names = ["torch float32", "torch bf16 autocast", "onnxruntime float32", "onnxruntime int8"]
    stdout = capsys.readouterr().out
    for name in names:
        assert f"| {name} | " in stdout
    tiny = json.loads((tmp_path / "speed.json").read_text())["configs"]["tiny"]
    assert list(tiny["variants"]) == names
    assert all(v["images_per_s"] > 0 and v["speedup"] > 0 and v["total"] == 2 for v in tiny["variants"].values())
    assert tiny["variants"]["torch float32"]["speedup"] == 1.0
    assert tiny["variants"]["onnxruntime float32"]["max_abs_logit_diff"] <= 1e-4
