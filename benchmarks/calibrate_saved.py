#!/usr/bin/env python
"""Calibration of models train_hf.py saved before it calibrated (or with --calibrate false): the temperature the run
would have fitted on its validation split, and ECE (15 bins), NLL and Brier score before and after on the validation
and test splits, as JSON lines. The split is the run's own (its config's `validation_split` from round 17 on;
before, the same --seed and --train_val_split hold out the same images: as many as its all_results.json records as
eval_samples, and every held-out image, 6,000 of Fashion-MNIST, for the runs before round 10, which recorded none);
evaluation runs as the run did (bf16 autocast where bfloat16 is native).

    .venv/bin/python benchmarks/calibrate_saved.py RUN_FOLDER [RUN_FOLDER ...]

`--calibration_sizes 500,1000,2000` also fits the temperature on random subsets of the validation split of each size
(20 draws each) and reports the spread of T and of the test ECE it gives: how many validation images a temperature
needs (--max_validation_size).
"""

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from transformers import AutoImageProcessor, AutoModelForImageClassification, TrainingArguments  # noqa: E402

import vit_simple  # noqa: E402,F401  (registers vit-simple with the Auto classes)
from vit_simple import hardware  # noqa: E402
from vit_simple.augmentation import ImageTransform, collate, with_transform  # noqa: E402
from vit_simple.calibration import calibration_metrics, calibration_results, fit_temperature  # noqa: E402
from vit_simple.data import load_data  # noqa: E402
from vit_simple.options import DataArguments, resolve_validation_split  # noqa: E402
from vit_simple.trainer import ViTSimpleTrainer  # noqa: E402


def run_seed(folder):
    """The --seed the run in `folder` trained with, from its model card's hyperparameter list ('- seed: N')."""
    card = (folder / "README.md").read_text() if (folder / "README.md").is_file() else ""
    found = re.search(r"^- seed: (\d+)$", card, re.MULTILINE)
    if found is None:  # another seed holds out other images: its "validation" would be training images
        raise SystemExit(f"{folder}: its README.md names no seed (a '- seed: N' line), so the run's validation split "
                         "is unknown: give a folder train_hf.py saved.")
    return int(found.group(1))


def run_validation_size(folder):
    """The --max_validation_size that holds out the run's own validation images: the count its all_results.json
    records, or 0 (every held-out image: 6,000 of Fashion-MNIST) for the runs before round 10, which recorded none."""
    results = folder / "all_results.json"
    return json.loads(results.read_text()).get("eval_samples", 0) if results.is_file() else 0


def subset_temperatures(splits, sizes, draws=20, seed=0):
    """For each size, the temperature fitted on `draws` random subsets of that many validation images (without
    replacement): T's mean and standard deviation, and the mean and largest test ECE those temperatures give."""
    logits, labels = splits["eval"]
    rng = np.random.default_rng(seed)
    rows = {}
    for size in sizes:
        if not 0 < size <= len(labels):
            raise SystemExit(f"--calibration_sizes {size}: the validation split has {len(labels)} images.")
        temperatures = [fit_temperature(logits[chosen], labels[chosen])
                        for chosen in (rng.choice(len(labels), size, replace=False) for _ in range(draws))]
        eces = [calibration_metrics(*splits["test"], temperature)["ece"] for temperature in temperatures]
        rows[size] = {"temperature_mean": float(np.mean(temperatures)), "temperature_std": float(np.std(temperatures)),
                      "test_ece_mean": float(np.mean(eces)), "test_ece_max": float(np.max(eces))}
    return rows


def calibrate_saved(folder, calibration_sizes=()):
    folder = Path(folder)
    state = json.loads((folder / "trainer_state.json").read_text()) if (folder / "trainer_state.json").is_file() else {}
    seed = run_seed(folder)
    model = AutoModelForImageClassification.from_pretrained(folder, calibration_temperature=1.0).eval()
    processor = AutoImageProcessor.from_pretrained(folder)
    recorded = getattr(model.config, "validation_split", None)  # runs from round 17 on record their split
    data_args = DataArguments(horizontal_flip=True,
                              max_validation_size=None if recorded else run_validation_size(folder))
    resolve_validation_split(data_args, model.config, seed, str(folder))
    dataset, _ = load_data(data_args, None, seed)
    with tempfile.TemporaryDirectory() as scratch:
        args = TrainingArguments(output_dir=scratch, per_device_eval_batch_size=512, bf16=hardware.native_bfloat16(),
                                 use_cpu=True, report_to="none", disable_tqdm=True, dataloader_num_workers=1)
        trainer = ViTSimpleTrainer(model=model, args=args, data_collator=collate)
        splits = {}
        for split, prefix in (("validation", "eval"), ("test", "test")):
            transform = ImageTransform.for_run(processor, model.config, data_args, train=False)
            output = trainer.predict(with_transform(dataset[split], transform, 512))
            splits[prefix] = (output.predictions, output.label_ids)
    temperature = fit_temperature(*splits["eval"])
    results = calibration_results(temperature, splits)
    results.update({f"{prefix}_accuracy": calibration_metrics(*split)["accuracy"] for prefix, split in splits.items()})
    if calibration_sizes:
        results["calibration_sizes"] = subset_temperatures(splits, calibration_sizes)
    return {"folder": str(folder), "seed": seed, "epochs": state.get("epoch"), **results}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", metavar="RUN_FOLDER")
    parser.add_argument("--calibration_sizes", type=lambda text: [int(size) for size in text.split(",")], default=[],
                        help="comma-separated subset sizes, e.g. 500,1000,2000")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    for run in arguments.folders:
        print(json.dumps(calibrate_saved(run, arguments.calibration_sizes)), flush=True)
