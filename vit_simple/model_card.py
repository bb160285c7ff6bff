"""Model cards (README.md with the Hub's YAML metadata), written through huggingface_hub's `ModelCard` by one writer,
`save_card`: the card of a trained model (results, figures, usage, the options of its run) and that of a converted
checkpoint."""

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from configuration_vit_simple import pair
from vit_simple.sources import hub_id

METRICS = {"accuracy": "Accuracy", "macro_f1": "Macro F1", "top_5_accuracy": "Top-5 accuracy"}
SPLIT_NAMES = {"train": "training", "eval": "validation"}  # a results prefix as the card names its split
HUB_METRIC_TYPES = {"accuracy": "accuracy", "macro_f1": "f1", "top_5_accuracy": "accuracy"}


def calibration_section(calibration):
    """The card's paragraph on calibrated scores: the temperature, and ECE, NLL and Brier score before and after on
    each split (from `vit_simple.calibration.calibration_results`); "" for a model that was not calibrated."""
    if not calibration:
        return ""
    rows = []
    for prefix, title in (("eval", "validation"), ("test", "test")):
        if f"{prefix}_ece_after_calibration" in calibration:
            value = lambda name, when: calibration[f"{prefix}_{name}_{when}_calibration"]  # noqa: E731
            rows.append(f"| {title} | {100 * value('ece', 'before'):.2f}% | {100 * value('ece', 'after'):.2f}% | "
                        f"{value('nll', 'before'):.4f} | {value('nll', 'after'):.4f} | {value('brier', 'before'):.4f} | "
                        f"{value('brier', 'after'):.4f} |")
    return (f"""
The scores are calibrated: one temperature, T = {calibration['calibration_temperature']:.3f}, was fitted on the
validation split after training (minimising the negative log-likelihood) and is stored in `config.json`
(`calibration_temperature`: the logits are divided by it), so that a top probability of 0.9 is right about 90% of the
time, in `pipeline`, the exported files and the demo page alike. It changes no prediction. Expected calibration error
(15 equal-width bins), negative log-likelihood and Brier score before and after:

| split | ECE before | ECE after | NLL before | NLL after | Brier before | Brier after |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
""" + "\n".join(rows) + "\n")


def shift_text(config):
    """How the card's input line names shifted patches ('' without them)."""
    if not config.shifted_patches:
        return ""
    if config.patch_shift == "diagonal":
        return "of the image and its four diagonal half-patch shifts "
    return "of the image and its four 1-pixel shifts "


def save_card(folder, metadata, body):
    """Write `folder`/README.md: `metadata` (a huggingface_hub `ModelCardData`) as the YAML header, then `body`."""
    ModelCard(f"---\n{metadata.to_yaml()}\n---\n{body}").save(Path(folder) / "README.md")


def write_model_card(output_dir, *, model, results, training_args, dataset_name, dataset_id, base_model, repo_id,
                     command, chosen=None, reports=None, saved_as=None):
    """Write `output_dir`/README.md for a trained model.

    results: {"train": {...}, "eval": {"eval_accuracy": ...}, "test": {"test_accuracy": ...}} as train_hf.py saves
    them; dataset_id: the data set's Hub id (None for local data); base_model: the checkpoint fine-tuned (None from
    scratch); repo_id: the Hub repo pushed to (None: the usage snippet loads the local folder); chosen: the options
    the recipe decided for the run (`vit_simple.options.Options.chosen`); reports: what
    `vit_simple.reports.write_run_reports` returned (figures and per-class numbers, embedded below the results);
    saved_as: the folder the model is moved to once complete, when `output_dir` is where it is staged.
    """
    config = model.config
    saved_as = saved_as or output_dir  # the folder the model ends up in: output_dir may be where it is staged
    model_name = Path(repo_id or saved_as).name
    test_split = "test" if "test" in results else "eval"
    eval_results = [
        EvalResult(task_type="image-classification", dataset_type=dataset_id or dataset_name, dataset_name=dataset_name,
                   dataset_split="test" if test_split == "test" else "validation", metric_type=HUB_METRIC_TYPES[key],
                   metric_name=name, metric_value=round(results[test_split][f"{test_split}_{key}"], 4))
        for key, name in METRICS.items() if f"{test_split}_{key}" in results.get(test_split, {})
    ]
    chosen = chosen or {}
    metadata = ModelCardData(
        library_name="transformers",
        pipeline_tag="image-classification",
        tags=["vit-simple", "vision", "image-classification", "custom_code"],
        datasets=[dataset_id] if dataset_id else None,
        metrics=["accuracy", "f1"],
        base_model=hub_id(base_model),
        model_name=model_name,
        eval_results=eval_results,
    )

    origin = f"fine-tuned from `{base_model}`" if base_model else "trained from scratch"
    (height, width), (patch_h, patch_w) = pair(config.image_size), pair(config.patch_size)
    parameters = sum(p.numel() for p in model.parameters())
    train = results["train"]
    rows = []
    for split, title in (("eval", "validation"), ("test", "test")):
        if split in results:
            values = [results[split].get(f"{split}_{key}") for key in METRICS]
            rows.append(f"| {title} | " + " | ".join("-" if v is None else f"{100 * v:.2f}%" for v in values) + " |")
    counts = ", ".join(f"{metrics[f'{prefix}_samples']:,} {SPLIT_NAMES.get(prefix, prefix)}"  # stream: no sizes
                       for prefix, metrics in results.items() if f"{prefix}_samples" in metrics)
    hyperparameters = {
        "model": f"dim {config.hidden_size}, depth {config.num_hidden_layers}, heads {config.num_attention_heads}, "
                 f"dim_head {config.head_dim}, mlp_dim {config.intermediate_size}, pool {config.pool}",
        "input": f"{height}x{width}x{config.num_channels} images, {patch_h}x{patch_w} patches "
                 f"{shift_text(config)}"
                 f"({config.num_patches} tokens), {config.num_labels} classes",
        "parameters": f"{parameters / 1e6:.2f}M",
        **({"images": counts} if counts else {}),
        "epochs": (f"{train['epoch']:.2f} of {train['num_train_epochs']:g}, stopped by the training budget "
                   f"(--max_train_minutes {train['max_train_minutes']:g})" if train.get("stopped_by_budget") else
                   f"{train.get('epoch', training_args.num_train_epochs):g}"),
        "batch size": f"{training_args.per_device_train_batch_size} per device x {training_args.world_size} "
                      f"device(s) x {training_args.gradient_accumulation_steps} accumulation step(s)",
        "optimizer": (f"Muon (torch.optim.Muon's update, Newton-Schulz in {chosen.get('newton_schulz', 'bfloat16')}; "
                      f"learning rate {training_args.muon_learning_rate:g}) for the blocks' weight matrices"
                      + (", q, k and v apart, " if getattr(training_args, "muon_split_qkv", False) else ", ")
                      if getattr(training_args, "muon", False) else "")
                     + f"{value(training_args.optim)}, learning rate {training_args.learning_rate:g}, weight decay "
                     f"{training_args.weight_decay:g} (weight matrices only)",
        "schedule": f"{value(training_args.lr_scheduler_type)} after a warm-up of {training_args.warmup_steps:g} "
                    f"({'steps' if training_args.warmup_steps >= 1 else 'of all steps'})",
        "label smoothing": f"{training_args.label_smoothing_factor:g}",
        "weight average": (f"exponential moving average, decay {training_args.ema_decay:g}: the saved weights"
                           if getattr(training_args, "ema_decay", 0) else "none"),
        "precision": ("bfloat16 autocast, float32 weights" if training_args.bf16 else
                      "float16 autocast, float32 weights" if training_args.fp16 else "float32"),
        "calibration": (f"temperature {results['calibration']['calibration_temperature']:.3f}, fitted on the "
                        "validation split" if results.get("calibration") else "none (temperature 1)"),
        "seed": f"{training_args.seed}",
        "training time": f"{train.get('wall_seconds', 0) / 60:.1f} min wall time, "
                         f"{train.get('train_images_per_second', 0):.0f} training images/s",
    }
    where = repo_id or saved_as
    tta_accuracy = results.get("test", {}).get("test_tta_accuracy")
    tta = "" if tta_accuracy is None else (
        "\nWith test-time augmentation (the probabilities averaged over 1-pixel shifts and flips of each image) the test "
        f"accuracy is {100 * tta_accuracy:.2f}%, reported beside the model's own, which is what `pipeline` gives.\n")
    calibration = calibration_section(results.get("calibration"))
    figures = ""
    if reports:
        from vit_simple.reports import markdown_for_model_card  # matplotlib and scikit-learn: the reports extra

        figures = markdown_for_model_card(reports["paths"], reports["report"], output_dir, split=reports["split"])
    data = f"[{dataset_name}](https://huggingface.co/datasets/{dataset_id})" if dataset_id else dataset_name
    body = f"""
# {model_name}

A [vit-simple](https://github.com/lucidrains/vit-pytorch) image classifier (lucidrains' einops Vision Transformer as
a transformers model) {origin} on {data}.

## Results

| split | {' | '.join(METRICS.values())} |
| --- | {' | '.join('---' for _ in METRICS)} |
{chr(10).join(rows)}
{tta}{calibration}
{figures}
## Usage

```python
from transformers import pipeline

classifier = pipeline("image-classification", model="{where}", trust_remote_code=True)
print(classifier("image.png"))
```

The model's code (`configuration_vit_simple.py`, `modeling_vit_simple.py`) ships with the weights, hence
`trust_remote_code=True`; `AutoModelForImageClassification.from_pretrained("{where}", trust_remote_code=True)`
loads it the same way.

To run it without PyTorch, `vit-simple-export {where} --trust_remote_code --onnx` (from the vit-simple package)
writes `model.onnx` (input `pixel_values`, any batch; output `logits`); `--int8` adds `model_int8.onnx` with int8
weights and `--torch_export` a torch.export `model.pt2`. Each file is checked against these weights' PyTorch logits,
and onnxruntime runs the ONNX file on the output of the image processor saved here.

## Training

{chr(10).join(f"- {name}: {value}" for name, value in hyperparameters.items())}
{chosen_options(chosen)}

```bash
{command}
```
"""
    save_card(output_dir, metadata, body)


def chosen_options(chosen):
    """The options the recipe decided, as a sentence of the card (empty when the command line gave them all)."""
    if not chosen:
        return ""
    listed = ", ".join(f"`{name}` {value(setting)}" for name, setting in chosen.items())
    return f"\nLeft open on the command line and decided by vit-simple's recipe: {listed}.\n"


def write_converted_card(output_dir, *, model, source, kind, source_size):
    """Write `output_dir`/README.md for a checkpoint converted from `source` (a `kind` ViT, e.g. 'transformers ViT')
    whose position embeddings were made for `source_size`."""
    config = model.config
    (height, width), (patch, _) = pair(config.image_size), pair(config.patch_size)
    name = Path(output_dir).name
    headless = type(model).__name__ != "ViTSimpleForImageClassification"
    metadata = ModelCardData(
        library_name="transformers",
        pipeline_tag="image-feature-extraction" if headless else "image-classification",
        tags=["vit-simple", "vision-transformer", "custom_code"],
        base_model=hub_id(source),
    )
    resampled = ""
    if pair(source_size) != pair(config.image_size):
        source_height, source_width = pair(source_size)
        resampled = (f" The position embeddings were resampled (bicubic, CLS kept) from the source's "
                     f"{source_height}x{source_width}.")
    head = ("No classification head: a classifier loaded from this folder starts with a new one (pass num_labels or "
            "id2label)." if headless else f"{config.num_labels} classes, labels from the source.")
    body = f"""
# {name}

vit-simple (lucidrains' einops ViT as a transformers model) with the weights of the {kind} checkpoint `{source}`,
converted by `vit-simple-convert`: the same function as the source, to float32 rounding.

- {height}x{width} images, {patch}x{patch} patches, width {config.hidden_size}, {config.num_hidden_layers} blocks,
  {config.num_attention_heads} heads.{resampled}
- {head}
- The image processor has the source's normalisation and resampling.

```python
from transformers import AutoImageProcessor, AutoModelForImageClassification

model = AutoModelForImageClassification.from_pretrained("{name}", trust_remote_code=True)
processor = AutoImageProcessor.from_pretrained("{name}")
```

The weights keep the license of their source.
"""
    save_card(output_dir, metadata, body)


def value(option):
    """An option's value: TrainingArguments keeps some as enums (OptimizerNames.ADAMW_TORCH -> adamw_torch)."""
    return getattr(option, "value", option)
