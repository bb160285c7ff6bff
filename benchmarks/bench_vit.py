"""Speed of vit-simple beside lucidrains' vit-pytorch, transformers' ViT and timm, on the same architecture.

    .venv/bin/python benchmarks/bench_vit.py --json speed.json          # every config, float32 and bf16 autocast
    .venv/bin/python benchmarks/bench_vit.py --quick                    # under 2 minutes
    .venv/bin/python benchmarks/bench_vit.py --configs fmnist --torch_compile
    .venv/bin/python benchmarks/bench_vit.py --device cuda
    .venv/bin/python benchmarks/bench_vit.py --threads 1 --timer cpu    # comparing models on a busy machine

What it measures, per config (`CONFIGS`), precision and mode (inference; training = forward, cross-entropy, backward,
AdamW step): images/s as the median over interleaved rounds (A B C D A B C D ...), after warm-up; the peak memory of
each model and mode in a fresh subprocess; analytic FLOPs per image (checked against `torch.utils.flop_counter` on
vit-pytorch's eager attention) and the achieved GFLOP/s as a fraction of a float32 matmul peak measured in the same run.
vit-simple over each peer is given as a ratio of medians and, less sensitive to the machine's speed drifting during
the run, as the median of the per-round ratios (`paired_ratios`).

vit-simple is built twice so that each peer meets its own architecture: "vit-simple" is the seed (vit-pytorch's
LayerNorm-Linear-LayerNorm patch embedding, no qkv bias) and is compared with vit-pytorch; "vit-simple-g" is the
google layout (plain linear patch embedding, qkv bias) and is compared with transformers' ViT and timm, whose patch
embedding is the equivalent strided convolution. The blocks, where nearly all FLOPs are, are the same in all five.

On a shared CPU a run collapses whenever another process takes a core, so each iteration records its CPU time over its
wall time and only iterations that kept (almost) every thread busy count: at least 0.925 * threads cores, 1.85 with the
2 threads of the machine this was written on. Where the machine is never free, `--threads 1 --timer cpu` times each
iteration by the CPU time of its one thread, which a neighbour barely changes; the images/s are then per core.
"""

import argparse
import json
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# the model files sit in the repo root, one level up, whether or not the project is installed
REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

MiB = 2**20


@dataclass(frozen=True)
class Arch:
    """One ViT architecture and the batch it is benchmarked with (vit-pytorch's vocabulary)."""

    image_size: int
    patch_size: int
    channels: int
    dim: int
    depth: int
    heads: int
    dim_head: int
    mlp_dim: int
    num_classes: int
    batch_size: int
    quick_batch_size: int

    @property
    def num_patches(self):
        return (self.image_size // self.patch_size) ** 2

    @property
    def tokens(self):
        return self.num_patches + 1  # the CLS token

    @property
    def patch_dim(self):
        return self.channels * self.patch_size**2


CONFIGS = {
    # ViT-S/16 at 224, the standard: 197 tokens, 9.2 GFLOP/image forward
    "vit_s16_224": Arch(224, 16, 3, 384, 12, 6, 64, 1536, 1000, batch_size=32, quick_batch_size=4),
    # train_hf.py's Fashion-MNIST default: model size "mini", RGB 28x28 in 4x4 patches (50 tokens), its batch size
    "fmnist": Arch(28, 4, 3, 128, 6, 2, 64, 256, 10, batch_size=128, quick_batch_size=32),
    # a long sequence, where attention memory matters: ViT-S/16 at 384, 577 tokens
    "vit_s16_384": Arch(384, 16, 3, 384, 12, 6, 64, 1536, 1000, batch_size=8, quick_batch_size=1),
    # small enough for the tests
    "tiny": Arch(32, 8, 3, 64, 2, 2, 32, 128, 10, batch_size=8, quick_batch_size=8),
}
DEFAULT_CONFIGS = ["vit_s16_224", "fmnist", "vit_s16_384"]

# model name -> (what builds it, the vit-simple variant with the same architecture, or None for vit-simple itself)
MODELS = {
    "vit-simple": ("seed", None),
    "vit-simple-g": ("google", None),
    "vit-pytorch": ("vit_pytorch", "vit-simple"),
    "transformers": ("transformers", "vit-simple-g"),
    "timm": ("timm", "vit-simple-g"),
}
PEERS = [name for name, (_, ours) in MODELS.items() if ours is not None]


# FLOPs


def forward_flops(arch, cls_only_last_block=False):
    """Multiply-adds * 2 of one image's forward pass: the matmuls only (norms, softmax, GELU are a few percent).
    `cls_only_last_block`: the FLOPs vit-simple's classifier executes, its last block updating only the CLS token
    (every token's keys and values, one query); the table's share of the peak counts what each model executes."""
    n, inner = arch.tokens, arch.heads * arch.dim_head

    def block(queries):
        return (
            2 * n * arch.dim * 3 * inner  # qkv
            + 2 * 2 * queries * n * inner  # q k^T and attn v
            + 2 * queries * inner * arch.dim  # out projection
            + 2 * 2 * queries * arch.dim * arch.mlp_dim  # the two MLP layers
        )

    patch = 2 * arch.num_patches * arch.patch_dim * arch.dim
    last = block(1 if cls_only_last_block else n)
    return patch + (arch.depth - 1) * block(n) + last + 2 * arch.dim * arch.num_classes


def training_flops(arch, cls_only_last_block=False):
    """Forward, then backward at twice the forward (gradients of activations and of weights). Exact for the seed
    layout, where norm_in's weights need the gradient of the pixels' patches."""
    return 3 * forward_flops(arch, cls_only_last_block)


def executes_cls_only(name):
    return MODELS[name][0] in ("seed", "google")  # vit-simple's classifier; the peers run every token to the end


def counted_flops(arch):
    """`torch.utils.flop_counter` on vit-pytorch (explicit matmul attention, which it can count), per image."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build_model("vit-pytorch", arch)
    images, labels = make_batch(arch, 1, "cpu")
    with FlopCounterMode(display=False) as forward:
        logits = model(images)
    with FlopCounterMode(display=False) as train:
        F.cross_entropy(model(images), labels).backward()
    del logits
    return forward.get_total_flops(), train.get_total_flops()


# models


class Logits(nn.Module):
    """Every model as `images -> logits`, so that the benchmark treats them alike."""

    def __init__(self, model, returns_output):
        super().__init__()
        self.model = model
        self.returns_output = returns_output

    def forward(self, images):
        out = self.model(images)
        return out.logits if self.returns_output else out


def build_model(name, arch):
    if arch.heads * arch.dim_head != arch.dim and name in ("transformers", "timm"):
        raise ValueError(f"{name} needs heads * dim_head == dim, got {arch.heads} * {arch.dim_head} != {arch.dim}.")
    kind = MODELS[name][0]
    if kind in ("seed", "google"):
        from configuration_vit_simple import ViTSimpleConfig
        from modeling_vit_simple import ViTSimpleForImageClassification

        config = ViTSimpleConfig(
            image_size=arch.image_size, patch_size=arch.patch_size, channels=arch.channels, dim=arch.dim,
            depth=arch.depth, heads=arch.heads, dim_head=arch.dim_head, mlp_dim=arch.mlp_dim,
            num_labels=arch.num_classes, qkv_bias=kind == "google", patch_norm=kind == "seed",
            attn_implementation="sdpa",
        )
        return Logits(ViTSimpleForImageClassification(config), returns_output=True)
    if kind == "vit_pytorch":
        from vit_pytorch.vit import ViT

        return Logits(ViT(
            image_size=arch.image_size, patch_size=arch.patch_size, channels=arch.channels, dim=arch.dim,
            depth=arch.depth, heads=arch.heads, dim_head=arch.dim_head, mlp_dim=arch.mlp_dim,
            num_classes=arch.num_classes,
        ), returns_output=False)
    if kind == "transformers":
        from transformers import ViTConfig, ViTForImageClassification

        config = ViTConfig(
            image_size=arch.image_size, patch_size=arch.patch_size, num_channels=arch.channels,
            hidden_size=arch.dim, num_hidden_layers=arch.depth, num_attention_heads=arch.heads,
            intermediate_size=arch.mlp_dim, num_labels=arch.num_classes, qkv_bias=True, attn_implementation="sdpa",
        )
        return Logits(ViTForImageClassification(config), returns_output=True)
    from timm.models.vision_transformer import VisionTransformer

    return Logits(VisionTransformer(
        img_size=arch.image_size, patch_size=arch.patch_size, in_chans=arch.channels, embed_dim=arch.dim,
        depth=arch.depth, num_heads=arch.heads, mlp_ratio=arch.mlp_dim / arch.dim, num_classes=arch.num_classes,
        qkv_bias=True, class_token=True, global_pool="token",
    ), returns_output=False)


def make_batch(arch, batch_size, device):
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch_size, arch.channels, arch.image_size, arch.image_size, generator=generator)
    labels = torch.randint(0, arch.num_classes, (batch_size,), generator=generator)
    return images.to(device), labels.to(device)


def batch_size_for(arch, args):
    return args.batch_size or (arch.quick_batch_size if args.quick else arch.batch_size)


def make_optimizer(model, kind):
    """AdamW; "fused" is what `Trainer` uses by default (`adamw_torch_fused`)."""
    flags = {"fused": dict(fused=True), "foreach": dict(foreach=True), "forloop": dict(foreach=False)}[kind]
    return torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05, **flags)


class Runner:
    """One model ready to run a step of a mode: "inference" or "training"."""

    def __init__(self, name, arch, args, precision):
        torch.manual_seed(0)
        self.device = args.device
        self.model = build_model(name, arch).to(args.device)
        self.forward = torch.compile(self.model) if args.torch_compile else self.model
        self.optimizer = make_optimizer(self.model, args.optimizer)
        self.images, self.labels = make_batch(arch, batch_size_for(arch, args), args.device)
        self.autocast = torch.autocast(args.device_type, dtype=torch.bfloat16, enabled=precision == "bf16")

    def step(self, mode):
        if mode == "inference":
            self.model.eval()
            with torch.inference_mode(), self.autocast:
                self.forward(self.images)
        else:
            self.model.train()
            self.optimizer.zero_grad(set_to_none=True)
            with self.autocast:
                logits = self.forward(self.images)
            F.cross_entropy(logits.float(), self.labels).backward()
            self.optimizer.step()
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()


# timing


def timed(fn, timer):
    """Run fn once: (seconds, cores busy = process CPU time / wall time). The seconds are wall time, or with
    timer "cpu" the process CPU time, which a busy neighbour barely changes when the benchmark runs one thread."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return (cpu if timer == "cpu" else wall), cpu / wall


def summarize(samples, min_cores):
    """Median time over the iterations that had the cores; all of them if none had (flagged by `valid`)."""
    valid = [seconds for seconds, cores in samples if cores >= min_cores]
    return {
        "median_s": statistics.median(valid or [seconds for seconds, _ in samples]),
        "valid": len(valid),
        "total": len(samples),
        "samples": [[round(seconds, 5), round(cores, 3)] for seconds, cores in samples],
    }


def interleaved(steps, args):
    """Run {name: step} interleaved (A B C D A B C D ...) after warm-up, until each has `rounds` valid iterations
    (or 3x `rounds` rounds have passed; just `rounds` with --quick): {name: summary}."""
    for _ in range(args.warmup):
        for step in steps.values():
            step()
    samples = {name: [] for name in steps}
    for _ in range(args.rounds if args.quick else 3 * args.rounds):
        for name, step in steps.items():
            samples[name].append(timed(step, args.timer))
        if all(sum(cores >= args.min_cores for _, cores in s) >= args.rounds for s in samples.values()):
            break
    return {name: summarize(s, args.min_cores) for name, s in samples.items()}


def matmul_peak(args, dtype):
    """Best median GFLOP/s of square matmuls, the yardstick of "% of peak"."""
    sizes = (512, 1024) if args.quick else (1024, 2048, 4096)
    steps, flops = {}, {}
    for n in sizes:
        a = torch.randn(n, n, device=args.device, dtype=dtype)
        b = torch.randn(n, n, device=args.device, dtype=dtype)

        def step(a=a, b=b):
            torch.mm(a, b)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()

        steps[n], flops[n] = step, 2 * n**3
    results = interleaved(steps, replace_rounds(args, 2 * args.rounds))
    return max(flops[n] / r["median_s"] / 1e9 for n, r in results.items())


def replace_rounds(args, rounds):
    return argparse.Namespace(**{**vars(args), "rounds": rounds})


# memory


def peak_memory(name, arch_dict, mode, args_dict):
    """Peak memory (MiB) of a few steps above the memory of the built model and its batch, measured in a fresh
    process: on CPU the RSS high-water mark (reset with /proc/self/clear_refs where Linux offers it); on CUDA
    `torch.cuda.max_memory_allocated`. Training includes gradients and AdamW state, as a real step does."""
    args = argparse.Namespace(**args_dict)
    torch.set_num_threads(args.threads)
    runner = Runner(name, Arch(**arch_dict), eager(args), "float32")
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        baseline = torch.cuda.memory_allocated()
    else:
        baseline = rss_reset_peak()
    for _ in range(2):  # the second training step is the one with AdamW state allocated
        runner.step(mode)
    if args.device.startswith("cuda"):
        return (torch.cuda.max_memory_allocated() - baseline) / MiB
    return (rss_peak() - baseline) / MiB


def eager(args):
    return argparse.Namespace(**{**vars(args), "torch_compile": False})  # memory is measured without compiling


def rss_reset_peak():
    """Reset the RSS high-water mark to the current RSS where Linux allows it; return the current RSS in bytes."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # no reset: the peak then also covers building the model, which is smaller than a step's activations
    return proc_status("VmRSS") if Path("/proc/self/status").exists() else rss_peak()


def rss_peak():
    if Path("/proc/self/status").exists():
        return proc_status("VmHWM")
    scale = 1 if platform.system() == "Darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def proc_status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} is not in /proc/self/status")


def measure_memory(arch, models, args):
    """{model: {mode: MiB}}, each in its own process, two at a time. The processes fork from a server that has
    imported the libraries but never run torch, so each starts clean without paying the imports again."""
    # glibc keeps freed blocks and moves its mmap threshold as a process runs, which makes the RSS peak depend on the
    # order of allocations (+-20 MiB between runs). A fixed threshold maps each tensor alone and unmaps it when freed:
    # the peak is then that of the live tensors, the same to 0.5 MiB from run to run. Inherited by the processes only.
    os.environ["MALLOC_MMAP_THRESHOLD_"] = str(64 * 1024)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(
        ["torch", "transformers.models.vit.modeling_vit", "timm.models.vision_transformer", "vit_pytorch.vit", "modeling_vit_simple"]
    )
    jobs = [(name, mode) for name in models for mode in args.modes]
    with context.Pool(2, maxtasksperchild=1) as pool:
        results = pool.starmap(peak_memory, [(name, asdict(arch), mode, vars(args)) for name, mode in jobs])
    memory = {name: {} for name in models}
    for (name, mode), mib in zip(jobs, results):
        memory[name][mode] = round(mib, 1)
    return memory


# the run


def graph_breaks(arch, args):
    """{model: graph breaks dynamo finds in its forward}: 0 means torch.compile sees each model as one graph."""
    breaks = {}
    for name in args.models:
        model = build_model(name, arch).to(args.device).eval()
        images, _ = make_batch(arch, 2, args.device)
        torch._dynamo.reset()
        breaks[name] = torch._dynamo.explain(model)(images).graph_break_count
    torch._dynamo.reset()
    return breaks


def bench_config(config_name, args, peaks):
    arch = CONFIGS[config_name]
    batch_size = batch_size_for(arch, args)
    counted_forward, counted_train = counted_flops(arch)
    flops = {
        "forward_per_image": forward_flops(arch),
        "training_per_image": training_flops(arch),
        "flop_counter_forward_per_image": counted_forward,
        "flop_counter_training_per_image": counted_train,
    }
    result = {"arch": asdict(arch), "batch_size": batch_size, "flops": flops, "speed": {}}
    if args.torch_compile:
        # every model runs through the same `Logits.forward`, each in two grad modes: more than dynamo's default 8
        torch._dynamo.config.recompile_limit = 4 * len(MODELS) * len(args.precisions)
        result["compile_s"], result["graph_breaks"] = {}, graph_breaks(arch, args)
    for precision in args.precisions:
        runners = {}
        for name in args.models:
            started = time.perf_counter()
            runners[name] = Runner(name, arch, args, precision)
            if args.torch_compile:  # the first calls compile; the time is reported, not benchmarked
                for mode in args.modes:
                    runners[name].step(mode)
                result["compile_s"].setdefault(name, {})[precision] = round(time.perf_counter() - started, 1)
        speed = result["speed"][precision] = {name: {} for name in args.models}
        for mode in args.modes:
            steps = {name: (lambda r=runner, m=mode: r.step(m)) for name, runner in runners.items()}
            for name, summary in interleaved(steps, args).items():
                per_image = (forward_flops if mode == "inference" else training_flops)(arch, executes_cls_only(name))
                images_per_s = batch_size / summary["median_s"]
                gflops = images_per_s * per_image / 1e9
                speed[name][mode] = {
                    "images_per_s": float(f"{images_per_s:.4g}"),
                    "executed_flops_per_image": per_image,
                    "gflop_per_s": round(gflops, 1),
                    "fraction_of_peak": round(gflops / peaks[precision], 3),
                    **summary,
                }
        del runners
    if not args.no_memory:
        result["peak_memory_mib"] = measure_memory(arch, args.models, args)
    result["ratios"] = ratios(result, args)
    result["paired_ratios"] = paired_ratios(result, args)
    return result


def paired_ratio(peer_samples, ours_samples, min_cores):
    """Median over the rounds where both iterations had the cores of peer seconds / ours seconds (None if no round
    did). The two ran back to back in each round, so a drift of the machine's speed over the minutes of a run, which
    moves both medians, largely cancels in each round's ratio."""
    ratios = [peer / ours for (peer, peer_cores), (ours, ours_cores) in zip(peer_samples, ours_samples)
              if peer_cores >= min_cores and ours_cores >= min_cores]
    return round(statistics.median(ratios), 3) if ratios else None


def paired_ratios(result, args):
    """vit-simple over each peer as the median of per-round ratios (`paired_ratio`), beside `ratios`."""
    out = {}
    for peer in PEERS:
        ours = MODELS[peer][1]
        if peer not in args.models or ours not in args.models:
            continue
        out[peer] = {"vit_simple_variant": ours}
        for precision, speed in result["speed"].items():
            for mode in args.modes:
                out[peer][f"{mode}_{precision}"] = paired_ratio(
                    speed[peer][mode]["samples"], speed[ours][mode]["samples"], args.min_cores)
    return out


def ratios(result, args):
    """vit-simple (in the peer's architecture) over each peer: images/s ratios, and peak memory ratios (lower is
    better for vit-simple)."""
    out = {}
    for peer in PEERS:
        ours = MODELS[peer][1]
        if peer not in args.models or ours not in args.models:
            continue
        entry = out[peer] = {"vit_simple_variant": ours}
        for precision, speed in result["speed"].items():
            for mode in args.modes:
                entry[f"{mode}_{precision}"] = round(speed[peer][mode]["median_s"] / speed[ours][mode]["median_s"], 3)
        for mode, mib in result.get("peak_memory_mib", {}).get(peer, {}).items():
            entry[f"memory_{mode}"] = round(result["peak_memory_mib"][ours][mode] / mib, 3) if mib > 0 else None
    return out


def machine(args):
    cpu = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").exists():
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    info = {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "torch_threads": args.threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": args.device,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if args.device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name()
    return info


# printing


def three_digits(x):
    return f"{x:.0f}" if x >= 100 else f"{x:.3g}"


def print_tables(report, args):
    """The report as markdown tables: per config, every model's speed and memory, then vit-simple over each peer."""
    peaks = report["matmul_peak_gflop_per_s"]
    print("\nmatmul peak: " + ", ".join(f"{p} {g:.0f} GFLOP/s" for p, g in peaks.items()))
    for config_name, result in report["configs"].items():
        arch, flops = result["arch"], result["flops"]
        print(
            f"\n### {config_name}: {arch['image_size']}px, patch {arch['patch_size']}, "
            f"{(arch['image_size'] // arch['patch_size']) ** 2 + 1} tokens, dim {arch['dim']}, depth {arch['depth']}, "
            f"heads {arch['heads']}x{arch['dim_head']}, mlp {arch['mlp_dim']}, batch {result['batch_size']}; "
            f"{flops['forward_per_image'] / 1e9:.3f} GFLOP/image forward "
            f"(flop_counter: {flops['flop_counter_forward_per_image'] / 1e9:.3f}); vit-simple executes "
            f"{forward_flops(Arch(**arch), cls_only_last_block=True) / 1e9:.3f}, its last block updating the CLS token "
            "alone\n"
        )
        memory = result.get("peak_memory_mib", {})
        print("| model | precision | inference img/s | % of peak | training img/s | % of peak | peak MiB inference / training |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for precision, speed in result["speed"].items():
            for name, modes in speed.items():
                cells = []
                for mode in ("inference", "training"):
                    m = modes.get(mode)
                    flag = "" if m is None or m["valid"] >= args.rounds else f" ({m['valid']}/{m['total']} valid)"
                    cells += ["-", "-"] if m is None else [f"{three_digits(m['images_per_s'])}{flag}",
                                                           f"{100 * m['fraction_of_peak']:.0f}%"]
                mem = memory.get(name, {}) if precision == "float32" else {}
                cells.append(" / ".join(f"{mem[m]:.0f}" if m in mem else "-" for m in ("inference", "training")))
                print(f"| {name} | {precision} | " + " | ".join(cells) + " |")
        if "graph_breaks" in result:
            print("\ntorch.compile: " + ", ".join(
                f"{name} {result['graph_breaks'][name]} graph breaks, compiled in "
                + "/".join(f"{s:.0f}" for s in result["compile_s"][name].values()) + " s"
                for name in result["graph_breaks"]))
        for title, table in (("ratio", result["ratios"]), ("paired", result.get("paired_ratios", {}))):
            if not table:
                continue
            if title == "paired":
                print("\nThe same speed ratios as medians of per-round ratios (each round runs the models back to back):")
            keys = [k for k in next(iter(table.values())) if k != "vit_simple_variant"]
            print(f"\n| {title} | " + " | ".join(keys) + " |")
            print("| --- |" + " ---: |" * len(keys))
            for peer, entry in table.items():
                print(f"| {entry['vit_simple_variant']} / {peer} | " + " | ".join(
                    "-" if entry.get(k) is None else f"{entry[k]:.2f}x" for k in keys) + " |")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), help=f"default: {' '.join(DEFAULT_CONFIGS)}")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--modes", nargs="+", choices=["inference", "training"], default=["inference", "training"])
    parser.add_argument("--precisions", nargs="+", choices=["float32", "bf16"], help="default: float32 bf16 "
                        "(bf16 is autocast; --quick: float32)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:n]")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads on CPU")
    parser.add_argument("--batch_size", type=int, help="one batch size for every config (default: the config's)")
    parser.add_argument("--rounds", type=int, help="valid timed iterations per model and mode (default 7, quick 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations per model and mode first")
    parser.add_argument("--min_cores", type=float, help="busy cores an iteration needs to count (default 0.925 * "
                        "threads on CPU, 0 on CUDA)")
    parser.add_argument("--timer", choices=["wall", "cpu"], default="wall", help="cpu: time by process CPU time, "
                        "for comparing models on a busy machine with --threads 1 (images/s then mean per CPU)")
    parser.add_argument("--optimizer", choices=["fused", "foreach", "forloop"], default="fused")
    parser.add_argument("--torch_compile", action="store_true", help="torch.compile every model (compile time reported)")
    parser.add_argument("--no_memory", action="store_true", help="skip the peak memory subprocesses")
    parser.add_argument("--quick", action="store_true", help="small batches, 3 rounds, fmnist and vit_s16_384: < 2 min")
    parser.add_argument("--json", type=Path, help="write the full report here")
    args = parser.parse_args(argv)

    if args.timer == "cpu" and args.device.startswith("cuda"):
        parser.error("--timer cpu times the CPU: it cannot time a GPU, use --timer wall with --device cuda.")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda was asked for but torch sees no CUDA device: use --device cpu.")
    if args.threads < 1 or (args.rounds is not None and args.rounds < 1) or args.warmup < 0:
        parser.error("--threads and --rounds must be at least 1, --warmup at least 0.")
    args.device_type = args.device.split(":")[0]
    args.configs = args.configs or (["fmnist", "vit_s16_384"] if args.quick else DEFAULT_CONFIGS)
    args.precisions = args.precisions or (["float32"] if args.quick else ["float32", "bf16"])
    args.rounds = args.rounds or (3 if args.quick else 7)
    if args.min_cores is None:
        args.min_cores = 0.0 if args.device_type == "cuda" or args.timer == "cpu" else 0.925 * args.threads
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)

    report = {"machine": machine(args), "settings": {**vars(args), "json": str(args.json) if args.json else None}}
    report["matmul_peak_gflop_per_s"] = {
        precision: round(matmul_peak(args, torch.float32 if precision == "float32" else torch.bfloat16), 1)
        for precision in args.precisions
    }
    report["configs"] = {}
    for config_name in args.configs:
        started = time.perf_counter()
        report["configs"][config_name] = bench_config(config_name, args, report["matmul_peak_gflop_per_s"])
        report["configs"][config_name]["seconds"] = round(time.perf_counter() - started, 1)
    report["machine"]["load_average_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    print_tables(report, args)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
        print(f"\nwrote {args.json}")
    return report


if __name__ == "__main__":
    main()
