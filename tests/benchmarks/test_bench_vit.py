"""The speed benchmark runs end to end in quick mode and reports every model and peer; its FLOP formula is exact.

These tests check what the benchmark reports, never how fast anything was: timings on a shared CPU prove nothing.
"""

import contextlib
import dataclasses
import io
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_vit  # noqa: E402


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    """One quick run on the tiny config, as `bench_vit.py --quick --configs tiny --rounds 1 --json speed.json` runs
    (in this process: the peak memory still comes from processes of its own): the printed tables and the report."""
    out = tmp_path_factory.mktemp("bench") / "speed.json"
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as monkeypatch, contextlib.redirect_stdout(printed):
        monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "")  # restored after: the benchmark sets it for its processes
        bench_vit.main(["--quick", "--configs", "tiny", "--rounds", "1", "--json", str(out)])
    return printed.getvalue(), json.loads(out.read_text())


def test_quick_run_prints_every_model_and_each_ratio_to_a_peer(quick_report):
    stdout, _ = quick_report
    for name in bench_vit.MODELS:
        assert f"| {name} | float32 |" in stdout
    for peer in bench_vit.PEERS:
        assert f"/ {peer} |" in stdout
    assert "matmul peak" in stdout


def test_quick_run_writes_speed_memory_flops_and_ratios_for_every_model(quick_report):
    _, report = quick_report
    assert report["machine"]["torch_threads"] >= 1 and report["machine"]["cpu"]
    assert report["matmul_peak_gflop_per_s"]["float32"] > 0
    tiny = report["configs"]["tiny"]
    assert tiny["batch_size"] == bench_vit.CONFIGS["tiny"].quick_batch_size
    for name in bench_vit.MODELS:
        for mode in ("inference", "training"):
            result = tiny["speed"]["float32"][name][mode]
            # rounded timings on a shared 2-core machine: a slow moment may round them to 0, never below
            assert result["images_per_s"] > 0 and result["gflop_per_s"] >= 0 and result["fraction_of_peak"] >= 0
            assert result["total"] >= 1 and 0 <= result["valid"] <= result["total"] == len(result["samples"])
            assert tiny["peak_memory_mib"][name][mode] >= 0
    for peer in bench_vit.PEERS:
        ratios = tiny["ratios"][peer]
        assert ratios["vit_simple_variant"] == bench_vit.MODELS[peer][1]
        assert set(ratios) == {"vit_simple_variant", "inference_float32", "training_float32",
                               "memory_inference", "memory_training"}
        assert ratios["inference_float32"] > 0 and ratios["training_float32"] > 0
        paired = tiny["paired_ratios"][peer]
        assert set(paired) == {"vit_simple_variant", "inference_float32", "training_float32"}
    stdout, _ = quick_report
    assert "| paired | inference_float32 | training_float32 |" in stdout


def test_paired_ratio_is_the_median_of_round_by_round_ratios_over_rounds_that_had_the_cores():
    speed = (1.0, 2.0, 1.0, 3.0, 2.0)  # the machine's speed drifts from round to round: the medians move with it
    ours = [(s, 2.0) for s in speed]
    peer = [(r * s, 2.0) for r, s in zip((1.2, 1.1, 1.3, 1.2, 1.25), speed)]
    assert bench_vit.paired_ratio(peer, ours, min_cores=1.85) == 1.2
    peer[0], ours[3] = (peer[0][0], 1.0), (ours[3][0], 1.2)  # two rounds lose a core: they do not count
    assert bench_vit.paired_ratio(peer, ours, min_cores=1.85) == 1.25
    assert bench_vit.paired_ratio(peer, [(1.0, 1.0)] * 5, min_cores=1.85) is None


@pytest.mark.parametrize("overrides", [{}, {"heads": 4, "dim_head": 16}, {"patch_size": 4, "channels": 1}])
def test_analytic_flops_equal_torch_flop_counter_on_eager_attention(overrides):
    arch = dataclasses.replace(bench_vit.CONFIGS["tiny"], **overrides)
    counted_forward, counted_training = bench_vit.counted_flops(arch)
    assert bench_vit.forward_flops(arch) == counted_forward
    assert bench_vit.training_flops(arch) == counted_training


def test_cuda_without_a_gpu_is_refused_with_a_clear_message(monkeypatch, capsys):
    monkeypatch.setattr(bench_vit.torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit):
        bench_vit.parse_args(["--device", "cuda"])
    assert "no CUDA device" in capsys.readouterr().err


def test_fmnist_config_is_the_architecture_and_batch_train_hf_trains_by_default():
    from vit_simple import recipe

    config = recipe.new_config(recipe.MODEL_SIZE, [str(i) for i in range(10)], (28, 28))
    batch_size = recipe.BATCH_SIZE
    fmnist = bench_vit.CONFIGS["fmnist"]
    assert (fmnist.image_size, fmnist.patch_size, fmnist.channels) == (config.image_size, config.patch_size,
                                                                       config.num_channels)
    assert (fmnist.dim, fmnist.depth, fmnist.heads, fmnist.dim_head, fmnist.mlp_dim, fmnist.num_classes) == (
        config.hidden_size, config.num_hidden_layers, config.num_attention_heads, config.head_dim,
        config.intermediate_size, config.num_labels)
    assert fmnist.batch_size == batch_size
