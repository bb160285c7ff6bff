"""Where a training or inference step spends its time: torch.profiler, vit-simple beside its peers, by kind of op.

    .venv/bin/python benchmarks/profile_vit.py                                    # fmnist, training, float32
    .venv/bin/python benchmarks/profile_vit.py --config vit_s16_224 --precision bf16 --mode inference
    .venv/bin/python benchmarks/profile_vit.py --models vit-simple vit-pytorch --top 15 --trace /tmp/trace

Each model is built exactly as `bench_vit.py` builds it (same config, batch, optimizer, autocast), warmed up, then
profiled for `--steps` steps. The table gives each model's self CPU time per step in each kind of op: matmuls (the
work `bench_vit.py` counts in FLOPs, the explicit attention's two batched ones included), attention (the fused
kernel, or the explicit softmax), copies (layout changes: copy_, cat, clone), fills (zeroing), elementwise (GELU,
adds, scaling), norms, the optimizer and the rest, then the `--top` ops of each. The models take turns step by step, in the timing and in the profile, so that the
machine's drifts hit them alike. `--trace DIR` also writes the Chrome trace (open it in chrome://tracing or
Perfetto). The profiler's own overhead inflates small ops: read the table for where time goes, `bench_vit.py` for
how fast.
"""

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_vit  # noqa: E402

# kind of op -> the aten ops (self time) it covers; anything else is "other"
KINDS = {
    "matmul": ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::linear", "aten::matmul"),
    "attention": ("aten::_scaled_dot_product_flash_attention_for_cpu",
                  "aten::_scaled_dot_product_flash_attention_for_cpu_backward", "aten::_softmax",
                  "aten::_softmax_backward_data", "aten::_scaled_dot_product_efficient_attention",
                  "aten::_scaled_dot_product_flash_attention", "aten::_efficient_attention_backward",
                  "aten::_scaled_dot_product_flash_attention_backward"),
    "copies": ("aten::copy_", "aten::cat", "aten::clone", "aten::_to_copy", "aten::contiguous", "aten::stack"),
    "fills": ("aten::fill_", "aten::zero_", "aten::zeros"),
    "elementwise": ("aten::gelu", "aten::gelu_backward", "aten::add", "aten::add_", "aten::mul", "aten::mul_",
                    "aten::div", "aten::sum", "aten::neg", "aten::sub"),
    "norms": ("aten::native_layer_norm", "aten::native_layer_norm_backward"),
    "optimizer": ("aten::_fused_adamw_", "aten::_foreach_add_", "aten::_foreach_mul_", "aten::_foreach_lerp_",
                  "aten::_foreach_addcmul_", "aten::_foreach_sqrt", "aten::_foreach_div_", "aten::_foreach_addcdiv_"),
    "loss": ("aten::_log_softmax", "aten::_log_softmax_backward_data", "aten::nll_loss_forward",
             "aten::nll_loss_backward"),
}
KIND_OF = {op: kind for kind, ops in KINDS.items() for op in ops}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--config", choices=sorted(bench_vit.CONFIGS), default="fmnist")
    parser.add_argument("--mode", choices=["inference", "training"], default="training")
    parser.add_argument("--precision", choices=["float32", "bf16"], default="float32")
    parser.add_argument("--models", nargs="+", choices=list(bench_vit.MODELS), default=["vit-simple", "vit-pytorch"])
    parser.add_argument("--batch_size", type=int, help="default: the config's (bench_vit.py's)")
    parser.add_argument("--steps", type=int, default=3, help="profiled steps per model, after 2 of warm-up")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--top", type=int, default=10, help="also list each model's N costliest ops")
    parser.add_argument("--trace", type=Path, help="write the Chrome trace (every model) into this folder")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.threads < 1:
        parser.error("--steps and --threads must be at least 1.")
    return args


def profile_models(args):
    """{model: {"step_ms": unprofiled ms per step, "kinds": {kind: ms/step}, "ops": [(op, ms/step, calls/step)]}}.
    The models take turns (A B A B ...) in the timed and in the profiled steps, each step under a
    `record_function` label that the ops are attributed to, so that a drift of the machine's speed hits them alike."""
    bench_args = bench_vit.parse_args(["--configs", args.config, "--threads", str(args.threads)]
                                      + (["--batch_size", str(args.batch_size)] if args.batch_size else []))
    runners = {name: bench_vit.Runner(name, bench_vit.CONFIGS[args.config], bench_args, args.precision)
               for name in args.models}
    seconds = dict.fromkeys(runners, 0.0)
    for step in range(2 + args.steps):  # two warm-up rounds, then timed ones
        for name, runner in runners.items():
            started = time.perf_counter()
            runner.step(args.mode)
            seconds[name] += (time.perf_counter() - started) if step >= 2 else 0.0
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            for name, runner in runners.items():
                with record_function(LABEL + name):
                    runner.step(args.mode)
    if args.trace:
        args.trace.mkdir(parents=True, exist_ok=True)
        prof.export_chrome_trace(str(args.trace / f"{args.config}-{args.mode}-{args.precision}.json"))

    results = {name: {"step_ms": 1000 * seconds[name] / args.steps, "kinds": dict.fromkeys([*KINDS, "other"], 0.0),
                      "ops": {}} for name in runners}
    for event in prof.events():
        name = model_of(event)
        if name is None or event.name.startswith(LABEL):
            continue
        ms = event.self_cpu_time_total / 1000 / args.steps
        results[name]["kinds"][KIND_OF.get(event.name, "other")] += ms
        op = results[name]["ops"].setdefault(event.name, [0.0, 0])
        op[0] += ms
        op[1] += 1
    for r in results.values():
        r["ops"] = sorted(((op, ms, calls / args.steps) for op, (ms, calls) in r["ops"].items()), key=lambda o: -o[1])
    return results


LABEL = "profile_vit:"


def model_of(event):
    """The model whose labelled step an event ran in (None outside every step)."""
    while event is not None:
        if event.name.startswith(LABEL):
            return event.name[len(LABEL):]
        event = event.cpu_parent
    return None


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    results = profile_models(args)

    arch = bench_vit.CONFIGS[args.config]
    print(f"\n{args.config}, {args.mode}, {args.precision}, batch {args.batch_size or arch.batch_size}, "
          f"{args.threads} threads: self CPU ms per step under the profiler (unprofiled step time on the last line)\n")
    print("| kind | " + " | ".join(results) + " |")
    print("| --- |" + " ---: |" * len(results))
    for kind in [*KINDS, "other"]:
        print(f"| {kind} | " + " | ".join(f"{r['kinds'][kind]:.1f}" for r in results.values()) + " |")
    print("| **profiled total** | " + " | ".join(f"{sum(r['kinds'].values()):.1f}" for r in results.values()) + " |")
    print("| **step, unprofiled** | " + " | ".join(f"{r['step_ms']:.1f}" for r in results.values()) + " |")
    for name, r in results.items():
        print(f"\n{name}: top {args.top} ops, self CPU ms per step (calls per step)")
        for op, ms, calls in r["ops"][: args.top]:
            print(f"  {ms:8.2f}  {op} ({calls:g})")
    return results


if __name__ == "__main__":
    main()
