"""Is train_hf.py's default run bound by its data loading or by its model? Three numbers, same machine, one run:

    .venv/bin/python benchmarks/bench_train_hf.py            # Fashion-MNIST, train_hf.py's defaults (~2 min)
    .venv/bin/python benchmarks/bench_train_hf.py --quick    # a few batches each, for the tests

- data: images/s of one data-loading process (the training transform: decode, convert, augment, normalise, collate),
  as one `dataloader_num_workers` worker produces them, on one thread;
- model: images/s of the training step alone (forward, loss, backward, and the step of the run's optimizer: Muon with
  AdamW from scratch; bf16 autocast when the run uses it) on batches already in memory, with the threads training gets;
- trainer: images/s of `train_hf.main` itself for `--steps` steps (Trainer, its dataloader worker, logging), the
  same figure its summary prints, warm-up steps excluded.

Training is not data-bound when `trainer` is close to `model` and `data` (per worker) is well above `model`.
Extra arguments go to train_hf.py, e.g. `-- --augmentation pad_crop` or `-- --config_overrides depth=4`.
"""

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import train_hf  # noqa: E402
from vit_simple import augmentation, data  # noqa: E402
from vit_simple.hardware import native_bfloat16  # noqa: E402
from vit_simple.options import parse_arguments  # noqa: E402
from vit_simple.trainer import TrainingClock, ViTSimpleTrainer  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=40, help="batches timed for data and model (default 40)")
    parser.add_argument("--steps", type=int, default=120, help="Trainer steps, the first 20%% not counted (default 120)")
    parser.add_argument("--quick", action="store_true", help="3 batches, 10 steps: checks that it runs")
    parser.add_argument("--json", help="also write the numbers to this file")
    parser.add_argument("train_hf_args", nargs="*", help="arguments for train_hf.py (after --)")
    args = parser.parse_args(argv)
    if args.quick:
        args.batches, args.steps = 3, 10
    return args


def setup(train_hf_args, output_dir):
    options = parse_arguments(["--output_dir", output_dir, *train_hf_args])
    model_args, data_args, training_args = options
    dataset, label_names = data.load_data(data_args, model_args.cache_dir, training_args.seed)
    image_size = data.first_image_size(dataset["train"], data_args.image_column_name)
    model, processor = train_hf.build_model(model_args, label_names, image_size, options.chosen)
    transform = augmentation.ImageTransform.for_run(processor, model.config, data_args, train=True)
    train = augmentation.with_transform(dataset["train"], transform, training_args.per_device_train_batch_size)
    return model, train, training_args


def data_images_per_second(train, batch_size, batches):
    """One worker's rate: the dataloader in this process, on one thread, as a worker process runs it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        loader = torch.utils.data.DataLoader(train, batch_size=batch_size, shuffle=True, collate_fn=augmentation.collate)
        iterator = iter(loader)
        next(iterator)  # first batch: opening files
        start, images = time.perf_counter(), 0
        for _, batch in zip(range(batches), iterator):
            images += len(batch["labels"])
        return images / (time.perf_counter() - start), batch
    finally:
        torch.set_num_threads(threads)


def model_images_per_second(model, batch, batches, training_args):
    """The training step alone, on one batch kept in memory: forward and loss, backward, and the step of the
    optimizer the run uses (Muon with AdamW from scratch, AdamW when fine-tuning; built by the run's Trainer), under
    bf16 autocast when the run uses it."""
    muon = training_args.muon
    args = copy.copy(training_args)
    args.eval_strategy = "no"  # the model stage has no evaluation
    trainer = ViTSimpleTrainer(model=model, args=args,
                                        muon_learning_rate=training_args.muon_learning_rate if muon else None)
    optimizer = trainer.create_optimizer()
    model.train()
    device = training_args.device
    pixel_values, labels = batch["pixel_values"].to(device), batch["labels"].to(device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=training_args.bf16):
            loss = model(pixel_values=pixel_values, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(batches):
        step()
    name = "Muon + AdamW" if muon else "AdamW"
    if muon:
        name += f" (Newton-Schulz in {str(optimizer.muon.ns_dtype).removeprefix('torch.')})"
    return batches * len(labels) / (time.perf_counter() - start), name


class SteadyThroughput(TrainingClock):
    """train_hf's training clock, counting only the steps after the first `skip` (start-up, worker spawn)."""

    def __init__(self, skip):
        super().__init__()
        self.skip = skip

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step <= self.skip:
            self.since = time.perf_counter()
            return
        super().on_step_end(args, state, control, **kwargs)


def trainer_images_per_second(train_hf_args, output_dir, steps, training_args):
    counter = SteadyThroughput(skip=max(1, steps // 5))
    train_hf.main(["--output_dir", output_dir, "--max_steps", str(steps), "--eval_strategy", "no",
                   "--save_strategy", "no", "--max_eval_samples", "64", "--report_to", "none",
                   "--disable_tqdm", "true", *train_hf_args], callbacks=[counter])
    return counter.images_per_second(training_args)


def main(argv=None):
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as output_dir:
        model, train, training_args = setup(args.train_hf_args, output_dir)
        batch_size = training_args.per_device_train_batch_size
        data, batch = data_images_per_second(train, batch_size, args.batches)
        step, optimizer = model_images_per_second(model, batch, args.batches, training_args)
        trainer = trainer_images_per_second(args.train_hf_args, output_dir, args.steps, training_args)
    native = native_bfloat16()
    results = {"data_images_per_second_per_worker": data, "model_images_per_second": step,
               "trainer_images_per_second": trainer, "dataloader_num_workers": training_args.dataloader_num_workers,
               "torch_threads": torch.get_num_threads(), "batch_size": batch_size, "bf16": training_args.bf16,
               "native_bfloat16": native, "optimizer": optimizer, "device": str(training_args.device),
               "cpu_count": os.cpu_count(), "train_hf_args": args.train_hf_args}
    print(f"\ntrain_hf.py {' '.join(args.train_hf_args) or '(defaults)'}: {training_args.device}, batch {batch_size}, "
          f"{training_args.dataloader_num_workers} dataloader worker(s), {torch.get_num_threads()} torch threads, "
          f"{'bf16 autocast' if training_args.bf16 else 'float32'}, {optimizer}; bfloat16 is "
          f"{'native' if native else 'emulated'} here\n")
    print("| stage | images/s | vs model |\n| --- | ---: | ---: |")
    for name, value in [("data (one worker, 1 thread)", data), ("model (training step)", step),
                        ("trainer (end to end)", trainer)]:
        print(f"| {name} | {value:.0f} | {value / step:.2f}x |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
