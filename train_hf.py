#!/usr/bin/env python
"""Train a vit-simple image classifier from scratch or fine-tune one, with transformers' Trainer; share it on the Hub.

    python train_hf.py                        # from scratch on Fashion-MNIST, offline; prints the test accuracy
    python train_hf.py --train_dir pets/train --model_name_or_path outputs/vit-simple --ignore_mismatched_sizes \
        --learning_rate 1e-4 --output_dir outputs/pets
    python train_hf.py args.json              # the same options from a JSON file
    torchrun --nproc_per_node 2 train_hf.py --use_cpu ...     # data-parallel (DDP); `accelerate launch` works too

The options follow transformers' examples/pytorch/image-classification/run_image_classification.py: the data and
model options below plus every `TrainingArguments` option; `--help` lists them all with their defaults.
"""

import json
import logging
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import datasets
import torch
import transformers
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModelForImageClassification,
    HfArgumentParser,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_utils import IntervalStrategy, SaveStrategy, SchedulerType

import vit_simple  # registers vit-simple with the Auto classes, so saved folders load without remote code
from configuration_vit_simple import pair
from data_images import (
    DataArguments,
    ImageTransform,
    InputError,
    check_label_set,
    collate,
    describe_data,
    first_image_size,
    load_data,
    prediction_split,
    resolve_augmentation,
    with_transform,
)
from model_card import write_model_card
from vit_simple import MIN_GRID, MODEL_SIZES, SMALL_IMAGE
from vit_trainer import (
    AugmentationEpoch,
    TrainingClock,
    ViTSimpleTrainer,
    checkpoint_to_resume,
    metrics_function,
    native_bfloat16,
    tta_accuracy,
    write_run_reports,
)

logger = logging.getLogger(__name__)

# A new model trains on a random three quarters of each image's patches (patch dropout; evaluation sees them all):
# each step costs less (1.27x the images/s without it), so the same minutes hold 20 epochs instead of 15, and
# at a constant rate those paid more than the dropped patches cost: 92.3% validation against 91.6% (benchmarks/
# README.md, where dropping half lost to this). --config_overrides patch_dropout=0 turns it off.
SCRATCH_PATCH_DROPOUT = 0.25


# options


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(default=None, metadata={"help": (
        "A vit-simple checkpoint to fine-tune: a folder saved by this script or a Hub model id. Unset: train from "
        "scratch a model of --model_size.")})
    model_size: Literal[tuple(MODEL_SIZES)] = field(default="mini", metadata={"help": (
        "From scratch: the model's size. " + "; ".join(
            f"{name}: dim {s['dim']}, depth {s['depth']}, heads {s['heads']}, mlp_dim {s['mlp_dim']}"
            for name, s in MODEL_SIZES.items()) + ".")})
    config_overrides: str | None = field(default=None, metadata={"help": (
        "From scratch: config values over --model_size, e.g. 'depth=4,dim=128,patch_size=7,pool=mean,dropout=0.1' "
        "(vit-pytorch or transformers names; a height x width pair as image_size=32x48). By default image_size is "
        f"the data's (224 for images larger than {SMALL_IMAGE} pixels), patch_size 16 at 224 and otherwise the largest "
        f"that still cuts at least {MIN_GRID}x{MIN_GRID} patches, channels 3 (images are converted to RGB; "
        f"channels=1 trains on grayscale), patch_dropout {SCRATCH_PATCH_DROPOUT} (each training step drops that share "
        "of each image's patches at random, evaluation sees them all: cheaper steps, which the default number of "
        "epochs counts on; 0 turns it off).")})
    trust_remote_code: bool = field(default=False, metadata={
        "help": "Allow the checkpoint's own code (its .py files) to run: needed for vit-simple repos on the Hub."})
    ignore_mismatched_sizes: bool = field(default=False, metadata={
        "help": "Replace the checkpoint's classification head when the data has another label set."})
    model_revision: str = field(default="main", metadata={"help": "The checkpoint's branch, tag or commit."})
    cache_dir: str | None = field(default=None, metadata={
        "help": "Where downloaded models and data sets, and the converted Fashion-MNIST, are stored."})


@dataclass
class TrainArguments(TrainingArguments):
    """`TrainingArguments` with the defaults of the default run: Fashion-MNIST from scratch, on a CPU."""

    output_dir: str | None = field(default="outputs/vit-simple", metadata={
        "help": "Where the model, its model card, results and checkpoints are written."})
    num_train_epochs: float = field(default=20.0, metadata={"help": "Total number of training epochs."})
    per_device_train_batch_size: int = field(default=128, metadata={"help": "Training batch size per device."})
    per_device_eval_batch_size: int = field(default=256, metadata={"help": "Evaluation batch size per device."})
    learning_rate: float = field(default=1e-3, metadata={
        "help": "Peak learning rate of AdamW (1e-3 suits training from scratch; fine-tuning wants less, e.g. 1e-4)."})
    muon: bool | None = field(default=None, metadata={"help": (
        "Train the blocks' weight matrices with Muon (torch.optim.Muon's update, batched by shape; at "
        "--muon_learning_rate) and the rest (patch embedding, head, norms, biases, CLS token, positions) with AdamW. Default: Muon from scratch, AdamW alone "
        "when fine-tuning a checkpoint. With the weight average (--ema_decay) it is the default run's largest "
        "lever: 90.70%% validation accuracy after 4 epochs on Fashion-MNIST, against 88.60%% for AdamW.")})
    max_train_minutes: float | None = field(default=None, metadata={"help": (
        "A time budget: stop training at the first step past this many minutes of training (evaluation and "
        "checkpoints not counted, earlier parts of a resumed run counted), then evaluate, report and save as after "
        "the last epoch, with the weight average. The summary, all_results.json and the model card say where it "
        "stopped; --resume_from_checkpoint true with a larger budget continues the run.")})
    ema_decay: float = field(default=0.999, metadata={"help": (
        "Keep an exponential moving average of the weights with this decay (0: none), evaluate it during training "
        "and save it as the final model. With Muon it added 2 points of validation accuracy after 4 epochs on "
        "Fashion-MNIST (with AdamW alone, nothing).")})
    do_train: bool = field(default=True, metadata={"help": (
        "Train. --do_train false evaluates or predicts with the checkpoint of --model_name_or_path as it is, and "
        "writes no model.")})
    do_eval: bool = field(default=True, metadata={"help": "Evaluate on the validation split at the end."})
    do_predict: bool = field(default=True, metadata={"help": (
        "Predict on --predict_split (test) once, at the end, and write the reports (predictions CSV, per-class "
        "report, confusion matrix, mistakes, attention maps) to <output_dir>/reports: by default when the data has "
        "that split, and an error without it when --do_predict is given. --do_predict false keeps the test split "
        "unseen, for runs that compare recipes.")})
    test_time_augmentation: bool = field(default=True, metadata={"help": (
        "After training, also report the validation and test accuracy averaged over 1-pixel shifts (and flips, "
        "where training flipped) of each image (eval_tta_accuracy, test_tta_accuracy), beside the saved model's "
        "own accuracy.")})
    muon_learning_rate: float = field(default=2e-3, metadata={
        "help": "Peak learning rate of Muon (its updates scaled to AdamW's size: adjust_lr_fn='match_rms_adamw')."})
    weight_decay: float = field(default=0.05, metadata={
        "help": "AdamW weight decay, on weight matrices only (the model's no_weight_decay() list takes none)."})
    lr_scheduler_type: SchedulerType | str = field(default="cosine", metadata={
        "help": ("Learning rate schedule after the warm-up (see transformers' SchedulerType). With Muon (from "
                 "scratch) the default is constant, with no warm-up: with the weight EMA, cosine decay lost 0.6 "
                 "points of validation accuracy at full length.")})
    label_smoothing_factor: float = field(default=0.1, metadata={
        "help": "Label smoothing of the cross-entropy: the true class gets 1 - x + x/classes, the others x/classes."})
    bf16: bool | None = field(default=None, metadata={"help": (
        "Train (and evaluate) under bfloat16 autocast, the weights staying float32; Muon's Newton-Schulz iterations "
        "run in bfloat16 too where it is native. Default: whether this machine has native bfloat16 matrix "
        "multiplication (a GPU of compute capability 8.0 or later, or a CPU with AVX512-BF16 or AMX); elsewhere "
        "bfloat16 is emulated and slower than float32. --bf16 false gives the float32 path on any machine.")})
    warmup_steps: float = field(default=0.05, metadata={
        "help": "Linear warm-up: a number of steps, or a fraction in [0, 1) of all steps (default 0 with Muon)."})
    eval_strategy: IntervalStrategy | str = field(default="epoch", metadata={
        "help": "When to evaluate on the validation split: 'no', 'steps' or 'epoch'."})
    save_strategy: SaveStrategy | str = field(default="epoch", metadata={
        "help": "When to write a checkpoint (for --resume_from_checkpoint): 'no', 'steps', 'epoch' or 'best'."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Keep at most this many checkpoints."})
    logging_steps: float = field(default=50, metadata={"help": "Log the training loss every this many steps."})
    remove_unused_columns: bool = field(default=False, metadata={
        "help": "Must stay False: the image column feeds the transforms, Trainer would drop it."})
    dataloader_num_workers: int = field(default=max(1, min(4, (os.cpu_count() or 1) // 4)), metadata={
        "help": "Processes decoding and augmenting images while the model trains (0: in the training process). "
                "Default: a quarter of the CPU cores, from 1 to 4."})
    dataloader_pin_memory: bool = field(default=torch.cuda.is_available(), metadata={
        "help": "Copy batches to page-locked memory, for faster transfers to a GPU (default: whether there is one)."})

    def __post_init__(self):
        if self.max_train_minutes is not None and self.max_train_minutes <= 0:
            raise InputError(f"--max_train_minutes must be a positive number of minutes, got {self.max_train_minutes}.")
        if self.bf16 is None:
            self.bf16 = native_bfloat16()
        if (self.bf16 or self.bf16_full_eval) and not self.use_cpu and not torch.accelerator.is_available():
            self.use_cpu = True  # the run is on the CPU anyway; TrainingArguments wants that said to allow bf16 there
        super().__post_init__()


# With Muon and the weight EMA, a decaying rate overfits: at full length under cosine decay the validation loss rose
# from epoch 9 and the accuracy fell 0.6 points (benchmarks/README.md). So Muon runs keep a constant rate, unless told.
MUON_SCHEDULE = {"lr_scheduler_type": SchedulerType.CONSTANT_WITH_WARMUP, "warmup_steps": 0}


def uses_muon(training_args, from_scratch):
    """--muon, by default on from scratch; made concrete in `training_args` for the model card. With Muon the
    schedule options not given take MUON_SCHEDULE's values."""
    if training_args.muon is None:
        training_args.muon = from_scratch
    if training_args.muon:
        for name, value in MUON_SCHEDULE.items():
            if name not in getattr(training_args, "asked", ()):
                setattr(training_args, name, value)
    return training_args.muon


def parse_arguments(args=None):
    args = sys.argv[1:] if args is None else list(args)
    parser = HfArgumentParser((ModelArguments, DataArguments, TrainArguments), description=__doc__.split("\n")[0])
    if len(args) == 1 and args[0].endswith(".json"):
        parsed = parser.parse_json_file(json_file=os.path.abspath(args[0]))
        asked = set(json.loads(Path(args[0]).read_text()))
    else:
        parsed = parser.parse_args_into_dataclasses(args)
        asked = {arg.split("=")[0][2:].replace("-", "_") for arg in args if arg.startswith("--")}
    parsed[2].asked = asked  # the options given, not defaulted
    parsed[2].do_predict_asked = "do_predict" in asked  # a missing split for an explicit --do_predict is an error
    return parsed


# model


def scratch_config(model_args, label_names, data_image_size):
    """The config of a new model (vit_simple.new_config): --model_size, the data's image size and labels, then
    --config_overrides, with the recipe's patch dropout (SCRATCH_PATCH_DROPOUT) unless they set one."""
    try:
        config = vit_simple.new_config(model_args.model_size, label_names, data_image_size, model_args.config_overrides)
    except ValueError as error:  # its messages name the options
        raise InputError(str(error)) from error
    if "patch_dropout_prob" not in vit_simple.parse_config_overrides(model_args.config_overrides):
        config.patch_dropout_prob = SCRATCH_PATCH_DROPOUT
    return config


def checkpoint_config(name, hub):
    """The checkpoint's config, or one line that says why it cannot be had."""
    try:
        return AutoConfig.from_pretrained(name, **hub)
    except OSError as error:
        if Path(name).exists():
            reason = str(error).strip().splitlines()[0]
            raise InputError(f"--model_name_or_path {name}: cannot read the checkpoint ({reason}). Give a folder "
                             "saved by train_hf.py or save_pretrained (config.json and model.safetensors).") from error
        raise InputError(f"--model_name_or_path {name} is no local folder, and the Hugging Face Hub could not "
                         "supply it (offline, no network, or no such model). Give a folder saved by train_hf.py or "
                         "save_pretrained, or download the model where the Hub is reachable "
                         "(hf download <id> --local-dir <folder>).") from error


def build_model(model_args, label_names, data_image_size):
    """The model and its image processor: from a checkpoint (with the data's labels) or new (from scratch)."""
    if model_args.model_name_or_path is None:
        config = scratch_config(model_args, label_names, data_image_size)
        model = AutoModelForImageClassification.from_config(config)
        return model, vit_simple.image_processor_for(config)

    if model_args.config_overrides:
        raise InputError("--config_overrides applies to a model trained from scratch; a checkpoint keeps its own "
                         "config (edit its config.json to change it).")
    hub = dict(trust_remote_code=model_args.trust_remote_code, revision=model_args.model_revision,
               cache_dir=model_args.cache_dir)
    check_label_set(checkpoint_config(model_args.model_name_or_path, hub), label_names, model_args)
    config = AutoConfig.from_pretrained(
        model_args.model_name_or_path, num_labels=len(label_names), id2label=dict(enumerate(label_names)),
        label2id={name: i for i, name in enumerate(label_names)}, **hub)
    model = AutoModelForImageClassification.from_pretrained(
        model_args.model_name_or_path, config=config, ignore_mismatched_sizes=model_args.ignore_mismatched_sizes, **hub)
    try:
        processor = AutoImageProcessor.from_pretrained(model_args.model_name_or_path, **hub)
    except OSError:  # a checkpoint saved without preprocessor_config.json
        processor = vit_simple.image_processor_for(model.config)
    return model, processor


# training


def setup_logging(training_args):
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", datefmt="%H:%M:%S",
                        handlers=[logging.StreamHandler(sys.stdout)])
    log_level = training_args.get_process_log_level()
    logger.setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    logger.warning(f"Process rank {training_args.process_index} of {training_args.world_size}, device "
                   f"{training_args.device}, distributed: {training_args.parallel_mode.value}")


def describe(model, image_size):
    config = model.config
    parameters = sum(p.numel() for p in model.parameters())
    (height, width), (patch_h, patch_w) = pair(config.image_size), pair(config.patch_size)
    return (f"vit-simple: {parameters / 1e6:.2f}M parameters, dim {config.hidden_size}, depth "
            f"{config.num_hidden_layers}, heads {config.num_attention_heads}, {height}x{width}x{config.num_channels} "
            f"images (data: {image_size[0]}x{image_size[1]}) in {patch_h}x{patch_w} patches "
            f"({config.num_patches} tokens), {config.num_labels} classes")


def main(args=None, callbacks=()):
    """Parse the options (`args`, default sys.argv); train, evaluate, predict and report, save, write the card,
    push; return the results. `callbacks` are extra `TrainerCallback`s."""
    start = time.perf_counter()
    model_args, data_args, training_args = parse_arguments(args)
    setup_logging(training_args)
    check_options(model_args, data_args, training_args)
    set_seed(training_args.seed)

    with training_args.main_process_first(desc="loading the data"):  # one process converts and caches
        dataset, label_names = load_data(data_args, model_args.cache_dir, training_args.seed, training_args.do_train)
    predict_split = prediction_split(dataset, data_args, training_args)
    data_image_size = first_image_size(next(iter(dataset.values())), data_args.image_column_name)
    model, processor = build_model(model_args, label_names, data_image_size)
    if training_args.process_index == 0:
        print(describe(model, data_image_size))

    evaluation = {split: with_transform(dataset[split], ImageTransform(processor, model.config, data_args, train=False),
                                        training_args.per_device_eval_batch_size)
                  for split in ("validation", predict_split) if split in dataset}
    train, clock, from_scratch = None, TrainingClock(training_args.max_train_minutes), model_args.model_name_or_path is None
    if training_args.do_train:
        resolve_augmentation(data_args, from_scratch, model.config.image_size)
        augmentation = ImageTransform(processor, model.config, data_args, train=True,
                                      seed=training_args.data_seed or training_args.seed)
        train = with_transform(dataset["train"], augmentation, training_args.per_device_train_batch_size)
        callbacks = [clock, AugmentationEpoch(augmentation), *callbacks]
    trainer = ViTSimpleTrainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=evaluation.get("validation"),
        processing_class=processor,
        data_collator=collate,
        compute_metrics=metrics_function(len(label_names)),
        callbacks=list(callbacks),
        muon_learning_rate=training_args.muon_learning_rate if uses_muon(training_args, from_scratch) else None,
        ema_decay=training_args.ema_decay if training_args.do_train else 0.0,
    )

    results = {}
    if training_args.do_train:
        train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
        trainer.save_model()  # model.safetensors, config.json, the .py files, preprocessor_config.json
        results["train"] = {**train_result.metrics, "train_images_per_second": clock.images_per_second(training_args),
                            "train_minutes": clock.total_seconds / 60, "num_train_epochs": training_args.num_train_epochs}
        if clock.stopped_at is not None:
            results["train"].update(max_train_minutes=training_args.max_train_minutes, stopped_by_budget=True)
    predictions = {}  # evaluated once each, at the end; the test split only here
    splits = (["validation"] if training_args.do_eval else []) + ([predict_split] if training_args.do_predict else [])
    for split in dict.fromkeys(splits):
        if split in evaluation:
            prefix = "eval" if split == "validation" else split
            predictions[split] = trainer.predict(evaluation[split], metric_key_prefix=prefix)
            results[prefix] = predictions[split].metrics
            if training_args.test_time_augmentation:  # reported beside the saved model's own accuracy
                results[prefix][f"{prefix}_tta_accuracy"] = tta_accuracy(trainer, evaluation[split], data_args)
    wall_seconds = time.perf_counter() - start
    results.setdefault("train", {})["wall_seconds"] = wall_seconds
    for split, metrics in results.items():
        if split != "train" or training_args.do_train:  # an evaluation alone leaves train_results.json alone
            trainer.log_metrics(split, metrics)
            trainer.save_metrics(split, metrics, combined=training_args.do_train)

    report = None
    if trainer.is_world_process_zero():
        report = write_run_reports(trainer, evaluation, predictions, predict_split, label_names, data_args)
    if training_args.do_train:
        trainer.save_state()
        if trainer.is_world_process_zero():
            dataset_name, dataset_id = describe_data(data_args)
            write_model_card(
                training_args.output_dir, model=trainer.model, results=results, training_args=training_args,
                dataset_name=dataset_name, dataset_id=dataset_id, base_model=model_args.model_name_or_path,
                repo_id=trainer.hub_model_id if training_args.push_to_hub else None, reports=report,
                command=shlex.join(["python", "train_hf.py", *(sys.argv[1:] if args is None else args)]))
        if training_args.push_to_hub:
            trainer.push_to_hub(commit_message="End of training")

    if trainer.is_world_process_zero():
        print(summary(results, wall_seconds, training_args, trainer))
    return results


def check_options(model_args, data_args, training_args):
    """Refuse option combinations that cannot work, before any data is read; resolve --resume_from_checkpoint."""
    if not training_args.do_train and model_args.model_name_or_path is None:
        raise InputError("--do_train false needs --model_name_or_path: the checkpoint (a folder or Hub id) to "
                         "evaluate or predict with.")
    if not training_args.do_train:
        training_args.eval_strategy = IntervalStrategy.NO  # Trainer checks evaluation plans only when it trains
    if training_args.do_train and training_args.dataloader_persistent_workers and training_args.dataloader_num_workers:
        raise InputError("--dataloader_persistent_workers keeps each loader worker's copy of the data from the first "
                         "epoch, so the workers would repeat its augmentation: leave it off (workers start afresh "
                         "each epoch, and the data set's images load lazily).")
    if data_args.streaming and training_args.max_steps <= 0 and training_args.do_train:
        raise InputError("--streaming needs --max_steps: a stream has no length to count epochs in.")
    training_args.resume_from_checkpoint = checkpoint_to_resume(training_args)
    if training_args.resume_from_checkpoint and not Path(training_args.resume_from_checkpoint).is_dir():
        raise InputError(f"--resume_from_checkpoint {training_args.resume_from_checkpoint} is not a folder: give a "
                         f"checkpoint folder, e.g. {training_args.output_dir}/checkpoint-500.")


def summary(results, wall_seconds, training_args, trainer):
    def percent(split, name):
        value = results.get(split, {}).get(f"{split}_{name}")
        return "n/a" if value is None else f"{100 * value:.2f}%"

    where = os.path.abspath(training_args.output_dir)
    if training_args.push_to_hub:
        where += f" and https://huggingface.co/{trainer.hub_model_id}"
    minutes, seconds = divmod(round(wall_seconds), 60)
    split = next((prefix for prefix in results if prefix not in ("train", "eval")), "eval")
    test = split if split != "eval" else "validation (test split not evaluated)"
    tta = f", with test-time augmentation {percent(split, 'tta_accuracy')}" if f"{split}_tta_accuracy" in \
        results.get(split, {}) else ""
    train = results["train"]
    budget = (f"stopped by the {train['max_train_minutes']:g}-minute budget at epoch {train['epoch']:.2f} of "
              f"{train['num_train_epochs']:g} | " if train.get("stopped_by_budget") else "")
    return (f"\n{test} accuracy {percent(split, 'accuracy')} (macro F1 {percent(split, 'macro_f1')}, top-5 "
            f"{percent(split, 'top_5_accuracy')}{tta}), validation accuracy {percent('eval', 'accuracy')} | wall time "
            f"{minutes}m{seconds:02d}s | " + budget + (f"training {train['train_images_per_second']:.0f} images/s | "
            if "train_images_per_second" in train else "no training | ") + f"saved to {where}")


if __name__ == "__main__":
    try:
        main()
    except InputError as error:
        sys.exit(f"train_hf.py: error: {error}")
