#!/usr/bin/env python
"""Calibration of models train_hf.py saved before it calibrated (or with --calibrate false): the temperature the run
would have fitted on its validation split, and ECE (15 bins), NLL and Brier score before and after on the validation
and test splits, as JSON lines. The split is the run's own (the same --seed and --train_val_split hold out the same
images: 6,000 of Fashion-MNIST before round 10, the 2,000 its all_results.json records after); evaluation runs as
the run did (bf16 autocast where bfloat16 is native).

    .venv/bin/python benchmarks/calibrate_saved.py RUN_FOLDER [RUN_FOLDER ...]
"""

import json
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from transformers import AutoImageProcessor, AutoModelForImageClassification, TrainingArguments  # noqa: E402

import vit_simple  # noqa: E402,F401  (registers vit-simple with the Auto classes)
from vit_simple import hardware  # noqa: E402
from vit_simple.augmentation import ImageTransform, collate, with_transform  # noqa: E402
from vit_simple.calibration import calibration_metrics, calibration_results, fit_temperature  # noqa: E402
from vit_simple.data import load_data  # noqa: E402
from vit_simple.options import DataArguments  # noqa: E402
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


def calibrate_saved(folder):
    folder = Path(folder)
    state = json.loads((folder / "trainer_state.json").read_text()) if (folder / "trainer_state.json").is_file() else {}
    seed = run_seed(folder)
    model = AutoModelForImageClassification.from_pretrained(folder, calibration_temperature=1.0).eval()
    processor = AutoImageProcessor.from_pretrained(folder)
    data_args = DataArguments(horizontal_flip=True, max_validation_size=run_validation_size(folder))
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
    return {"folder": str(folder), "seed": seed, "epochs": state.get("epoch"), **results}


if __name__ == "__main__":
    for run in sys.argv[1:]:
        print(json.dumps(calibrate_saved(run)), flush=True)
