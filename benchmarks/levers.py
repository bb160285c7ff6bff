#!/usr/bin/env python
"""A/B the default run's levers on the validation split: each variant is `train_hf.py` with the default options
plus its own, run one after the other (never side by side: 2 cores), the test split left unseen (--do_predict
false). Prints a markdown table of validation accuracy (plain and with test-time augmentation), wall time and
training images/s, and keeps every result in a JSON file, so a run that stops resumes where it was.

    python benchmarks/levers.py --epochs 4                             # every lever at a short budget
    python benchmarks/levers.py --epochs 4 --only default previous     # some of them
    python benchmarks/levers.py --epochs 15 --seeds 42 1 2 --only default --test   # round 5's default, with test
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# name: (what it is, train_hf.py options over BASELINE: round 5's default run, which the levers were measured against:
# batch 128, no patch dropout, no shifted patches, all 6,000 held-out images validating (54,000 train); a lever's own
# --config_overrides are added to BASELINE_OVERRIDES)
BASELINE = ["--per_device_train_batch_size", "128", "--max_validation_size", "0"]
BASELINE_OVERRIDES = "patch_dropout=0,shifted_patches=false"
SHIFT = ["--augmentation", "pad_crop", "--crop_padding", "1"]  # ±1 px random shifts, with the flips
LEVERS = {
    "default": ("round 5's default: Muon + AdamW at a constant rate, weight EMA 0.999, flips, batch 128", []),
    "previous": ("the previous default: AdamW alone, flips", ["--muon", "false", "--ema_decay", "0"]),
    "adamw_ema": ("AdamW alone, flips, weight EMA", ["--muon", "false"]),
    "adamw_shift": ("AdamW alone, flips, ±1 px shifts", ["--muon", "false", "--ema_decay", "0", *SHIFT]),
    "muon": ("Muon + AdamW, flips, no EMA", ["--ema_decay", "0"]),
    "muon_shift": ("Muon + AdamW, flips, ±1 px shifts, no EMA", ["--ema_decay", "0", *SHIFT]),
    "muon_shift_ema": ("Muon + AdamW, flips, ±1 px shifts, weight EMA", SHIFT),
    "shift2": ("± 2 px shifts", ["--augmentation", "pad_crop", "--crop_padding", "2"]),
    "smoothing0.2": ("label smoothing 0.2", ["--label_smoothing_factor", "0.2"]),
    "muon_lr4e-3": ("Muon learning rate 4e-3", ["--muon_learning_rate", "4e-3"]),
    "muon_lr1e-3": ("Muon learning rate 1e-3", ["--muon_learning_rate", "1e-3"]),
    "ema0.9995": ("weight EMA 0.9995", ["--ema_decay", "0.9995"]),
    "mean_pool": ("mean pooling instead of the CLS token", ["--config_overrides", "pool=mean"]),
    "batch256": ("batch 256", ["--per_device_train_batch_size", "256"]),
    "cosine": ("cosine decay after a 5% warm-up (what round 4 meant to run)",
               ["--lr_scheduler_type", "cosine", "--warmup_steps", "0.05"]),
    "mlp4x": ("MLP 4x wide (512)", ["--config_overrides", "mlp_dim=512"]),
    "heads4": ("4 heads of 32", ["--config_overrides", "heads=4,dim_head=32"]),
    "dropout0.1": ("dropout 0.1", ["--config_overrides", "dropout=0.1"]),
    "grayscale": ("1 channel instead of 3", ["--config_overrides", "channels=1"]),
    "no_clip": ("no gradient clipping (Trainer clips the norm at 1 by default)", ["--max_grad_norm", "0"]),
    "patch_drop0.25": ("patch dropout 0.25 (36 of 49 patches in training)", ["--config_overrides", "patch_dropout=0.25"]),
    "patch_drop0.5": ("patch dropout 0.5 (24 of 49 patches in training)", ["--config_overrides", "patch_dropout=0.5"]),
    "erasing0.5": ("random erasing, p 0.5", ["--random_erasing", "0.5"]),
    "wide_shallow": ("dim 192, depth 3, 3 heads, MLP 384 (1.1x the parameters)",
                     ["--config_overrides", "dim=192,depth=3,heads=3,mlp_dim=384"]),
    "narrow_deep": ("dim 96, depth 10, 2 heads of 48, MLP 192 (0.9x the parameters)",
                    ["--config_overrides", "dim=96,depth=10,heads=2,dim_head=48,mlp_dim=192"]),
    "adamw_lr2e-3": ("AdamW learning rate 2e-3 (the non-matrix parameters)", ["--learning_rate", "2e-3"]),
    "warmup0.15": ("warm-up 15% of the steps, then cosine", ["--lr_scheduler_type", "cosine", "--warmup_steps", "0.15"]),
    "batch64": ("batch 64", ["--per_device_train_batch_size", "64"]),
    "erasing0.25": ("random erasing, p 0.25", ["--random_erasing", "0.25"]),
    "shifted_patches": ("shifted patch tokenization (vit-pytorch's SPT)", ["--config_overrides", "shifted_patches=true"]),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=float, default=4, help="--num_train_epochs of every run (default 4)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42], help="one run per lever and seed")
    parser.add_argument("--only", nargs="+", choices=list(LEVERS), help="these levers (default: all)")
    parser.add_argument("--test", action="store_true",
                        help="also evaluate the test split (for the final default only, never to choose a lever)")
    parser.add_argument("--output_dir", default="outputs/levers", help="runs and levers.json go here")
    parser.add_argument("--dry_run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("train_hf_args", nargs="*", help="more train_hf.py options for every run, after --")
    return parser.parse_args(argv)


def command(name, seed, args):
    run_dir = Path(args.output_dir) / f"{name}-e{args.epochs:g}-s{seed}"
    options = list(LEVERS[name][1])
    if "--config_overrides" in options:  # later keys win: the lever's own patch_dropout, if any, over the baseline's
        at = options.index("--config_overrides") + 1
        options[at] = f"{BASELINE_OVERRIDES},{options[at]}"
    else:
        options += ["--config_overrides", BASELINE_OVERRIDES]
    return [sys.executable, str(ROOT / "train_hf.py"), *BASELINE, *options, "--num_train_epochs", f"{args.epochs:g}",
            "--seed", str(seed), "--save_strategy", "no", "--do_predict", str(args.test).lower(),
            "--disable_tqdm", "true", "--output_dir", str(run_dir), *args.train_hf_args], run_dir


def main(argv=None):
    args = parse_args(argv)
    results_file = Path(args.output_dir) / "levers.json"
    done = json.loads(results_file.read_text()) if results_file.exists() else {}
    for name in args.only or LEVERS:
        for seed in args.seeds:
            key = f"{name} e{args.epochs:g} s{seed}{' test' if args.test else ''}"
            cmd, run_dir = command(name, seed, args)
            print(f"$ {' '.join(cmd[1:])}", flush=True)
            if args.dry_run or key in done:
                continue
            run_dir.mkdir(parents=True, exist_ok=True)
            with open(run_dir / "log.txt", "w") as log:
                subprocess.run(cmd, check=True, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
            metrics = json.loads((run_dir / "all_results.json").read_text())
            done[key] = {"lever": name, "epochs": args.epochs, "seed": seed, **metrics}
            results_file.parent.mkdir(parents=True, exist_ok=True)
            results_file.write_text(json.dumps(done, indent=2))
    print(table(done))
    return done


def table(done):
    percent = lambda value: "" if value is None else f"{100 * value:.2f}%"  # noqa: E731
    rows = ["| lever | change | epochs | seed | validation | validation, TTA | test | wall time | images/s |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for result in done.values():
        minutes, seconds = divmod(round(result["wall_seconds"]), 60)
        rows.append(f"| {result['lever']} | {LEVERS[result['lever']][0]} | {result['epochs']:g} | {result['seed']} | "
                    f"{percent(result.get('eval_accuracy'))} | {percent(result.get('eval_tta_accuracy'))} | "
                    f"{percent(result.get('test_accuracy'))} | {minutes}m{seconds:02d}s | "
                    f"{result['train_images_per_second']:.0f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
