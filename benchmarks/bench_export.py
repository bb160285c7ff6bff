"""Inference speed of vit-simple as shipped: PyTorch (float32 eager, bf16 autocast, torch.compile) against the
onnxruntime files vit-simple-export writes (float32, int8 weights), on bench_vit.py's configs and batch sizes.

    .venv/bin/python benchmarks/bench_export.py                            # fmnist, vit_s16_224, vit_s16_384
    .venv/bin/python benchmarks/bench_export.py --configs fmnist --torch_compile --json export_speed.json
    .venv/bin/python benchmarks/bench_export.py --quick                    # the tiny config, 2 rounds: seconds

Each config's model (vit-simple, random weights) is exported once; the variants then run interleaved (A B C D E A B
C D E ...) after warm-up, each iteration timed with its CPU time over its wall time, and only iterations that kept
(almost) every thread busy count (bench_vit.py's rules). Reported: images/s (median), the speed-up over torch float32
eager as a ratio of medians and as the median of per-round ratios, and each variant's max |logit diff| and
predicted-class agreement with torch float32 on the benchmark batch (random images: the agreement of int8 there is a
lower bound, see vit-simple-export --evaluate for accuracy on real images).
"""

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_vit  # noqa: E402  (also puts the repo root on sys.path)
from vit_simple import export  # noqa: E402

BASELINE = "torch float32"


def variants(arch, args, folder):
    """{name: step} for one config, and {name: logits of the benchmark batch}."""
    torch.manual_seed(0)
    wrapped = bench_vit.build_model("vit-simple", arch).eval()  # Logits(ViTSimpleForImageClassification)
    model = wrapped.model
    images, _ = bench_vit.make_batch(arch, bench_vit.batch_size_for(arch, args), "cpu")
    export.export_onnx(model, folder / "model.onnx")
    export.quantize_int8(folder / "model.onnx", folder / "model_int8.onnx")

    def torch_step(forward, precision):
        def step():
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                return forward(images).float().numpy()
        return step

    def onnx_step(path):
        session = export.onnx_session(path, threads=args.threads)
        return lambda: session.run(["logits"], {"pixel_values": images.numpy()})[0]

    steps = {BASELINE: torch_step(wrapped, "float32"), "torch bf16 autocast": torch_step(wrapped, "bf16")}
    compile_s = None
    if args.torch_compile:
        started = time.perf_counter()
        steps["torch.compile float32"] = torch_step(torch.compile(wrapped), "float32")
        steps["torch.compile float32"]()  # the first call compiles; its time is reported, not benchmarked
        compile_s = round(time.perf_counter() - started, 1)
    steps["onnxruntime float32"] = onnx_step(folder / "model.onnx")
    steps["onnxruntime int8"] = onnx_step(folder / "model_int8.onnx")
    return steps, {name: step() for name, step in steps.items()}, compile_s


def bench_config(config_name, args):
    arch = bench_vit.CONFIGS[config_name]
    batch_size = bench_vit.batch_size_for(arch, args)
    with tempfile.TemporaryDirectory() as folder:
        steps, logits, compile_s = variants(arch, args, Path(folder))
        timings = bench_vit.interleaved(steps, args)
    base, base_logits = timings[BASELINE], logits[BASELINE]
    result = {"arch": asdict(arch), "batch_size": batch_size,
              "compile_s": compile_s, "variants": {}}
    for name, summary in timings.items():
        result["variants"][name] = {
            "images_per_s": float(f"{batch_size / summary['median_s']:.4g}"),
            "speedup": round(base["median_s"] / summary["median_s"], 3),
            "paired_speedup": bench_vit.paired_ratio(base["samples"], summary["samples"], args.min_cores),
            "max_abs_logit_diff": float(np.abs(logits[name] - base_logits).max()),
            "class_agreement": float((logits[name].argmax(-1) == base_logits.argmax(-1)).mean()),
            **summary,
        }
    return result


def print_table(report, args):
    for config_name, result in report["configs"].items():
        arch = bench_vit.CONFIGS[config_name]
        compiled = f"; torch.compile took {result['compile_s']:.0f} s" if result["compile_s"] is not None else ""
        print(f"\n### {config_name}: {arch.image_size}px, patch {arch.patch_size}, dim {arch.dim}, depth {arch.depth}, "
              f"batch {result['batch_size']}, {args.threads} threads{compiled}\n")
        print(f"| variant | images/s | vs {BASELINE} (medians) | paired | max abs logit diff | same class |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for name, v in result["variants"].items():
            flag = "" if v["valid"] >= args.rounds else f" ({v['valid']}/{v['total']} valid)"
            paired = "-" if v["paired_speedup"] is None else f"{v['paired_speedup']:.2f}x"
            print(f"| {name} | {bench_vit.three_digits(v['images_per_s'])}{flag} | {v['speedup']:.2f}x | {paired} | "
                  f"{v['max_abs_logit_diff']:.1e} | {v['class_agreement']:.0%} |")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", choices=sorted(bench_vit.CONFIGS),
                        help=f"default: {' '.join(bench_vit.DEFAULT_CONFIGS)} (--quick: tiny)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch and onnxruntime threads")
    parser.add_argument("--batch_size", type=int, help="one batch size for every config (default: the config's)")
    parser.add_argument("--rounds", type=int, help="valid timed iterations per variant (default 7, quick 2)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations per variant first")
    parser.add_argument("--min_cores", type=float, help="busy cores an iteration needs to count (default 0.925 * "
                        "threads)")
    parser.add_argument("--torch_compile", action="store_true", help="also torch.compile (slow to compile)")
    parser.add_argument("--quick", action="store_true", help="the tiny config, its small batch, 2 rounds")
    parser.add_argument("--json", type=Path, help="write the full report here")
    args = parser.parse_args(argv)
    if args.threads < 1 or (args.rounds is not None and args.rounds < 1) or args.warmup < 0:
        parser.error("--threads and --rounds must be at least 1, --warmup at least 0.")
    args.configs = args.configs or (["tiny"] if args.quick else bench_vit.DEFAULT_CONFIGS)
    args.rounds = args.rounds or (2 if args.quick else 7)
    args.min_cores = 0.925 * args.threads if args.min_cores is None else args.min_cores
    args.timer = "wall"  # what bench_vit.interleaved reads
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    report = {"machine": bench_vit.machine(argparse.Namespace(threads=args.threads, device="cpu")),
              "settings": {**vars(args), "json": str(args.json) if args.json else None}, "configs": {}}
    for config_name in args.configs:
        report["configs"][config_name] = bench_config(config_name, args)
    print_table(report, args)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
        print(f"\nwrote {args.json}")
    return report


if __name__ == "__main__":
    main()
