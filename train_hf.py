#!/usr/bin/env python
"""Train a vit-simple image classifier from scratch or fine-tune one, with transformers' Trainer; share it on the Hub.

    python train_hf.py                        # from scratch on Fashion-MNIST, offline; prints the test accuracy
    python train_hf.py --train_dir pets/train --model_name_or_path outputs/vit-simple --ignore_mismatched_sizes \
        --learning_rate 1e-4 --output_dir outputs/pets
    python train_hf.py args.json              # the same options from a JSON file
    torchrun --nproc_per_node 2 train_hf.py --use_cpu ...     # data-parallel (DDP); `accelerate launch` works too

Installed, `vit-simple-train` (or `python -m train_hf`) is this script. The options follow transformers'
examples/pytorch/image-classification/run_image_classification.py: the data and model options of
vit_simple/options.py plus every `TrainingArguments` option; `--help` lists them all with their defaults, and
vit_simple/recipe.py says why each default is what it is.
"""

import logging
import os
import shlex
import sys
import time
from collections.abc import Sized

import datasets
import transformers
from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification, set_seed

import vit_simple  # registers vit-simple with the Auto classes, so saved folders load without remote code
from configuration_vit_simple import pair
from vit_simple.augmentation import ImageTransform, collate, with_transform
from vit_simple.calibration import calibration_metrics, calibration_results, fit_temperature
from vit_simple.checkpoints import loading
from vit_simple.data import check_label_set, describe_data, first_image_size, load_data, prediction_split
from vit_simple.demo import save_examples
from vit_simple.errors import InputError
from vit_simple.metrics import metrics_function
from vit_simple.model_card import write_model_card
from vit_simple.options import checkpoint_config, parse_arguments, validation_record
from vit_simple.saving import check_finite_metric, check_finite_weights, create_repo, describe_saved_model, staged, \
    upload, write_results
from vit_simple.trainer import AugmentationEpoch, TrainingClock, ViTSimpleTrainer, tta_accuracy

logger = logging.getLogger(__name__)


# model


def build_model(model_args, label_names, data_image_size, chosen=None, training=True):
    """The model and its image processor: new (from scratch, with the recipe's patch dropout and shifted patches
    where `chosen`, `Options.chosen`, has them: the config overrides did not set them) or from a checkpoint, with the
    data's labels (for `training`, its calibration temperature reset to 1)."""
    if model_args.from_scratch:
        try:
            config = vit_simple.new_config(model_args.model_size, label_names, data_image_size,
                                           model_args.config_overrides)
        except ValueError as error:  # its messages name the options
            raise InputError(str(error)) from error
        chosen = chosen or {}
        if "patch_dropout" in chosen:
            config.patch_dropout_prob = chosen["patch_dropout"]
        if "shifted_patches" in chosen:
            config.shifted_patches = chosen["shifted_patches"]
        return AutoModelForImageClassification.from_config(config), vit_simple.image_processor_for(config)

    name, hub = model_args.model_name_or_path, model_args.hub_kwargs()
    check_label_set(checkpoint_config(model_args), label_names, model_args)
    # fine-tuning starts from the raw logits: the checkpoint's temperature fitted its old head (refitted after training)
    reset = {"calibration_temperature": 1.0} if training else {}
    with loading(f"--model_name_or_path {name}"):
        config = AutoConfig.from_pretrained(name, num_labels=len(label_names), id2label=dict(enumerate(label_names)),
                                            label2id={label: i for i, label in enumerate(label_names)}, **reset, **hub)
        model = AutoModelForImageClassification.from_pretrained(
            name, config=config, ignore_mismatched_sizes=model_args.ignore_mismatched_sizes, **hub)
    try:
        processor = AutoImageProcessor.from_pretrained(name, **hub)
    except OSError:  # a checkpoint saved without preprocessor_config.json
        processor = vit_simple.image_processor_for(model.config)
    return model, processor


def describe(model, image_size):
    config = model.config
    parameters = sum(p.numel() for p in model.parameters())
    (height, width), (patch_h, patch_w) = pair(config.image_size), pair(config.patch_size)
    return (f"vit-simple: {parameters / 1e6:.2f}M parameters, dim {config.hidden_size}, depth "
            f"{config.num_hidden_layers}, heads {config.num_attention_heads}, {height}x{width}x{config.num_channels} "
            f"images (data: {image_size[0]}x{image_size[1]}) in {patch_h}x{patch_w} patches "
            f"({config.num_patches} tokens), {config.num_labels} classes")


# training


def setup_logging(training_args):
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", datefmt="%H:%M:%S",
                        handlers=[logging.StreamHandler(sys.stdout)])
    log_level = training_args.get_process_log_level()
    for name in (__name__, "vit_simple"):
        logging.getLogger(name).setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    logger.warning(f"Process rank {training_args.process_index} of {training_args.world_size}, device "
                   f"{training_args.device}, distributed: {training_args.parallel_mode.value}")


def main(args=None, callbacks=()):
    """Parse the options (`args`, default sys.argv); train, evaluate, predict and report, save, write the card,
    push; return the results. `callbacks` are extra `TrainerCallback`s."""
    start = time.perf_counter()
    options = parse_arguments(args)
    model_args, data_args, training_args = options
    setup_logging(training_args)
    set_seed(training_args.seed)
    held = describe_saved_model(training_args.output_dir) if training_args.do_train else None
    if held and training_args.process_index == 0:
        print(f"{training_args.output_dir} holds a model ({held}): " + (
            "this run continues its checkpoints, and replaces the model once it is complete"
            if training_args.resume_from_checkpoint else "a successful run replaces it; --resume_from_checkpoint true "
            "continues its checkpoints instead"), flush=True)

    with training_args.main_process_first(desc="loading the data"):  # one process converts and caches
        dataset, label_names = load_data(data_args, model_args.cache_dir, training_args.seed, training_args.do_train)
    predict_split = prediction_split(dataset, data_args, training_args)
    data_image_size = first_image_size(next(iter(dataset.values())), data_args.image_column_name)
    model, processor = build_model(model_args, label_names, data_image_size, options.chosen,
                                   training_args.do_train)
    if training_args.do_train:  # how its validation images were held out, for its evaluation and fine-tuning
        model.config.validation_split = validation_record(data_args)
    if training_args.process_index == 0:
        print(describe(model, data_image_size))

    evaluation = {split: with_transform(dataset[split], ImageTransform.for_run(processor, model.config, data_args,
                                                                               train=False),
                                        training_args.per_device_eval_batch_size)
                  for split in ("validation", predict_split) if split in dataset}
    train, clock = None, TrainingClock(training_args.max_train_minutes)
    if training_args.do_train:
        augmentation = ImageTransform.for_run(processor, model.config, data_args, train=True,
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
        muon_learning_rate=training_args.muon_learning_rate if training_args.muon else None,
        muon_split_qkv=training_args.muon_split_qkv,
        ema_decay=training_args.ema_decay if training_args.do_train else 0.0,
        mixup=data_args.mixup,
        cutmix=data_args.cutmix,
    )

    results = {}
    if training_args.do_train:
        train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
        check_finite_weights(trainer.model, trainer.divergence_advice())
        results["train"] = {**train_result.metrics, "train_images_per_second": clock.images_per_second(training_args),
                            "train_minutes": clock.total_seconds / 60, "num_train_epochs": training_args.num_train_epochs,
                            **sample_count("train", train)}
        if clock.stopped_at is not None:
            results["train"].update(max_train_minutes=training_args.max_train_minutes, stopped_by_budget=True)
    predictions = {}  # evaluated once each, at the end; the test split only here
    splits = (["validation"] if training_args.do_eval else []) + ([predict_split] if training_args.do_predict else [])
    calibrating = training_args.do_train and training_args.calibrate
    if calibrating and "validation" not in evaluation:
        logger.warning("No validation split: no calibration temperature was fitted, the scores are the model's own.")
        calibrating = False
    temperature = None
    for split in dict.fromkeys((["validation"] if calibrating else []) + splits):
        if split in evaluation:
            prefix = "eval" if split == "validation" else split
            predictions[split] = trainer.predict(evaluation[split], metric_key_prefix=prefix)
            if split in splits:
                results[prefix] = {**predictions[split].metrics, **sample_count(prefix, evaluation[split])}
            if training_args.do_train and split in splits:
                check_finite_metric(f"{prefix} loss", results[prefix].get(f"{prefix}_loss"), trainer.divergence_advice())
            if training_args.test_time_augmentation and split in splits:  # beside the saved model's own accuracy
                results[prefix][f"{prefix}_tta_accuracy"] = tta_accuracy(trainer, evaluation[split],
                                                                         data_args.horizontal_flip)
            if calibrating and split == "validation":  # before any other split is predicted, with the temperature
                temperature = calibrate(trainer.model, predictions["validation"])
    if temperature is not None:
        results["calibration"] = calibration_results(temperature, {
            prefix: (predictions[split].predictions * temperature, predictions[split].label_ids)
            for split, prefix in (("validation", "eval"), (predict_split, predict_split)) if split in predictions})
    wall_seconds = time.perf_counter() - start
    results.setdefault("train", {})["wall_seconds"] = wall_seconds
    for split, metrics in results.items():
        if split != "train" or training_args.do_train:
            trainer.log_metrics(split, metrics)

    repo_id = None
    if not training_args.do_train:  # an evaluation: its results and reports beside the checkpoint, no model
        if trainer.is_world_process_zero():
            for split, metrics in results.items():
                if split != "train":
                    trainer.save_metrics(split, metrics, combined=False)
            write_reports(trainer, training_args.output_dir, evaluation, predictions, predict_split, label_names,
                          data_args)
    elif trainer.is_world_process_zero():
        hub_repo, hub_error = reach_hub(options.hub)  # the repo's full id goes into the model card
        with staged(training_args.output_dir) as folder:  # in place only once complete
            trainer.save_model(folder)  # model.safetensors, config.json, the .py files, preprocessor_config.json
            write_results(folder, results)
            save_examples(folder, dataset[predict_split] if predict_split in dataset else dataset["validation"],
                          data_args.image_column_name, data_args.label_column_name, label_names)  # for its demo page
            trainer.state.save_to_json(os.path.join(folder, "trainer_state.json"))
            report = write_reports(trainer, folder, evaluation, predictions, predict_split, label_names, data_args,
                                   temperature)
            dataset_name, dataset_id = describe_data(data_args)
            write_model_card(
                folder, model=trainer.model, results=results, training_args=training_args, dataset_name=dataset_name,
                dataset_id=dataset_id, base_model=model_args.model_name_or_path, reports=report, chosen=options.chosen,
                repo_id=hub_repo or (options.hub and options.hub["repo_id"]), saved_as=training_args.output_dir,
                command=shlex.join(["python", "train_hf.py", *(sys.argv[1:] if args is None else args)]))
        if options.hub:
            repo_id = push(training_args.output_dir, options.hub, hub_repo, hub_error)

    if trainer.is_world_process_zero():
        print(summary(results, wall_seconds, training_args, repo_id))
    return results


def calibrate(model, validation):
    """Fit the temperature on the validation split's logits and store it in the model's config: the model now gives
    calibrated logits, and `validation`'s are divided by it to match. Returns it."""
    temperature = fit_temperature(validation.predictions, validation.label_ids)
    model.config.calibration_temperature = temperature
    validation.predictions[...] = validation.predictions / temperature
    before, after = (calibration_metrics(validation.predictions * temperature, validation.label_ids, t)["ece"]
                     for t in (1.0, temperature))
    logger.warning(f"Calibration: temperature {temperature:.3f} fitted on the validation split (expected "
                   f"calibration error {100 * before:.2f}% -> {100 * after:.2f}%).")
    return temperature


def reach_hub(hub):
    """(the Hub repo's full id, None), or (None, the error) when the Hub cannot be reached; (None, None) without
    --push_to_hub. The local save goes ahead either way."""
    if not hub:
        return None, None
    try:
        return create_repo(hub), None
    except Exception as error:  # offline, no token, no permission: huggingface_hub raises many kinds
        return None, error


def push(folder, hub, repo_id, error=None):
    """Upload the saved model folder; when the Hub cannot be reached, the model stays here and one line says how to
    upload it later."""
    try:
        if error is not None:
            raise error
        upload(folder, repo_id, hub)
        return repo_id
    except Exception as failure:
        reason = " ".join(str(failure).split())[:300]
        raise InputError(f"the model is saved in {os.path.abspath(folder)}, but the upload to {hub['repo_id']} "
                         f"failed ({type(failure).__name__}: {reason}). Upload it later with: hf upload "
                         f"{repo_id or hub['repo_id']} {os.path.abspath(folder)} . --exclude 'checkpoint-*' --exclude 'runs/*'") \
            from failure


def write_reports(trainer, folder, evaluation, predictions, predict_split, label_names, data_args, temperature=None):
    """The reports (vit_simple.reports) in `folder`/reports, where the reports extra is installed."""
    try:
        from vit_simple.reports import write_run_reports  # matplotlib and scikit-learn: the reports extra
    except ImportError as error:
        logger.warning(f"No reports ({error}): pip install 'vit-simple[reports]' to get them.")
        return None
    return write_run_reports(trainer, folder, evaluation, predictions, predict_split, label_names,
                             data_args.image_column_name, temperature)


def sample_count(prefix, part):
    """{'<prefix>_samples': its size}, as transformers' example scripts record it (which validation images a run
    held out depends on it: benchmarks/calibrate_saved.py reads it); nothing for a stream, which has no size."""
    return {f"{prefix}_samples": len(part)} if isinstance(part, Sized) else {}


def summary(results, wall_seconds, training_args, repo_id=None):
    def percent(split, name):
        value = results.get(split, {}).get(f"{split}_{name}")
        return "n/a" if value is None else f"{100 * value:.2f}%"

    where = os.path.abspath(training_args.output_dir)
    if repo_id:
        where += f" and https://huggingface.co/{repo_id}"
    minutes, seconds = divmod(round(wall_seconds), 60)
    split = next((prefix for prefix in results if prefix not in ("train", "eval", "calibration")), "eval")
    test = split if split != "eval" else "validation (test split not evaluated)"
    tta = f", with test-time augmentation {percent(split, 'tta_accuracy')}" if f"{split}_tta_accuracy" in \
        results.get(split, {}) else ""
    train = results["train"]
    calibration = results.get("calibration", {})
    ece = (f", calibration error {100 * calibration[f'{split}_ece_before_calibration']:.2f}% -> "
           f"{100 * calibration[f'{split}_ece_after_calibration']:.2f}% (temperature "
           f"{calibration['calibration_temperature']:.3f})" if f"{split}_ece_after_calibration" in calibration else "")
    budget = (f"stopped by the {train['max_train_minutes']:g}-minute budget at epoch {train['epoch']:.2f} of "
              f"{train['num_train_epochs']:g} | " if train.get("stopped_by_budget") else "")
    return (f"\n{test} accuracy {percent(split, 'accuracy')} (macro F1 {percent(split, 'macro_f1')}, top-5 "
            f"{percent(split, 'top_5_accuracy')}{tta}{ece}), validation accuracy {percent('eval', 'accuracy')} | wall time "
            f"{minutes}m{seconds:02d}s | " + budget + (f"training {train['train_images_per_second']:.0f} images/s | "
            if "train_images_per_second" in train else "no training | ") + f"saved to {where}")


def cli():
    """The command line: `main`, with a problem in the options or data reported in one line, without a traceback."""
    try:
        main()
    except InputError as error:
        sys.exit(f"train_hf.py: error: {error}")


if __name__ == "__main__":
    cli()
