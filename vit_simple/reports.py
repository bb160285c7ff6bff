"""Reports on a trained vit-simple classifier, the files a person opens: per-image predictions (CSV), per-class
precision, recall and F1 (JSON), and figures (PNG): confusion matrix, most confident mistakes, attention maps and
training curves. `write_reports` writes them all; `markdown_for_model_card` embeds them in a model card.

The attention maps use only the model's public outputs (`output_attentions=True`), so they work on any vit-simple,
a model loaded with `trust_remote_code=True` included. Figures are drawn on `matplotlib.figure.Figure` objects, not
through pyplot: no display, no global backend switch, no figures left open."""

import csv
import json
import math
import os
import textwrap
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from matplotlib.figure import Figure
from sklearn import metrics

from configuration_vit_simple import pair
from vit_simple.augmentation import IndexedSplit, collate
from vit_simple.data import image_ids

DPI = 100  # figures are saved at this resolution, uncropped: a figure of w x h inches is w*DPI x h*DPI pixels
CELL_INCHES = 0.4  # per class along a confusion-matrix panel, on top of 3 inches for the labels
MAX_PANEL_INCHES = 30.0  # so that a 1000-class matrix stays an image a viewer opens
PANEL_INCHES = 2.0  # per image in the mistake and attention grids
MAX_ANNOTATED_CLASSES = 30  # above this, per-cell numbers are too small to read and are left out
MAX_LABELLED_CLASSES = 100  # above this, class names on the axes overlap and are left out
HEAD_FUSIONS = {"mean": lambda a: a.mean(dim=1), "max": lambda a: a.amax(dim=1), "min": lambda a: a.amin(dim=1)}

# attention maps


def block_attentions(model, pixel_values):
    """Each block's attention weights (batch, heads, tokens, tokens) as float32 on the CPU, in eval mode."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            pixel_values = torch.as_tensor(pixel_values, dtype=torch.float32).to(device)
            outputs = model(pixel_values=pixel_values, output_attentions=True, return_dict=True)
    finally:
        model.train(was_training)
    return [attention.float().cpu() for attention in outputs.attentions]


def patch_scores(token_matrix, config):
    """What the pooled output draws from each patch token: the CLS token's row (pool "cls"), or the rows of all
    tokens averaged (pool "mean", which has no CLS token). (batch, tokens, tokens) -> (batch, patches)."""
    if config.pool == "cls":
        return token_matrix[:, 0, 1:]
    return token_matrix.mean(dim=1)


def to_image(scores, config):
    """Scores over the patches (batch, patches) as maps at the model's image size, each scaled to [0, 1] (a constant
    map becomes all zeros: no patch stands out)."""
    (image_h, image_w), (patch_h, patch_w) = pair(config.image_size), pair(config.patch_size)
    grid_h, grid_w = image_h // patch_h, image_w // patch_w
    if scores.shape[-1] != grid_h * grid_w:
        raise ValueError(f"The attention covers {scores.shape[-1]} patches but a {image_h}x{image_w} image in "
                         f"{patch_h}x{patch_w} patches has {grid_h * grid_w}: pass images at the model's size.")
    maps = rearrange(scores, "b (h w) -> b 1 h w", h=grid_h, w=grid_w)
    maps = F.interpolate(maps, size=(image_h, image_w), mode="bilinear", align_corners=False)[:, 0]
    low, high = maps.amin(dim=(1, 2), keepdim=True), maps.amax(dim=(1, 2), keepdim=True)
    return (maps - low) / (high - low).clamp_min(1e-12)


def attention_rollout(model, pixel_values, head_fusion="mean", discard_ratio=0.0):
    """Attention rollout (Abnar & Zuidema 2020): (batch, height, width) maps in [0, 1] of what the prediction draws
    from each part of the image. Heads are fused by `head_fusion` ("mean", "max" or "min"); `discard_ratio` zeroes
    that fraction of the weakest fused weights of each block (per image) before rolling out."""
    if head_fusion not in HEAD_FUSIONS:
        raise ValueError(f"head_fusion must be one of {', '.join(map(repr, HEAD_FUSIONS))}, got {head_fusion!r}.")
    if not 0.0 <= discard_ratio < 1.0:
        raise ValueError(f"discard_ratio must be in [0, 1), got {discard_ratio!r}.")
    attentions = block_attentions(model, pixel_values)
    identity = torch.eye(attentions[0].shape[-1])
    rollout = identity
    for attention in attentions:
        fused = HEAD_FUSIONS[head_fusion](attention)
        if discard_ratio:
            flat = fused.flatten(1)
            weakest = flat.topk(int(flat.shape[1] * discard_ratio), dim=1, largest=False).indices
            fused = flat.scatter(1, weakest, 0.0).view_as(fused)
        # the residual connection carries every token past the block: half of it stays where it was
        fused = 0.5 * fused + 0.5 * identity
        rollout = (fused / fused.sum(dim=-1, keepdim=True)) @ rollout  # later blocks on the left
    return to_image(patch_scores(rollout, model.config), model.config)


def last_block_attention(model, pixel_values):
    """The last block's raw attention (heads averaged) as (batch, height, width) maps in [0, 1]."""
    return to_image(patch_scores(block_attentions(model, pixel_values)[-1].mean(dim=1), model.config), model.config)


# numbers


def classification_report_dict(labels, predictions, class_names):
    """scikit-learn's per-class precision, recall, F1 and support, plus accuracy and the macro and weighted
    averages; a class never predicted (or absent) scores 0, not a warning."""
    return metrics.classification_report(labels, predictions, labels=range(len(class_names)),
                                         target_names=list(class_names), output_dict=True, zero_division=0)


def classification_report_text(labels, predictions, class_names):
    """The same report as a table to print."""
    return metrics.classification_report(labels, predictions, labels=range(len(class_names)),
                                         target_names=list(class_names), digits=4, zero_division=0)


def confusion_matrix(labels, predictions, num_classes):
    """Counts (num_classes, num_classes): row = true class, column = predicted class; every class has its row."""
    return metrics.confusion_matrix(labels, predictions, labels=range(num_classes))


def softmax(logits):
    logits = np.asarray(logits, dtype=np.float64)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def write_predictions_csv(path, ids, labels, probabilities, class_names, top_k=5):
    """One row per image: id, true label, predicted label, its probability, and the `top_k` classes as
    "name:probability;..." from the most probable down."""
    probabilities = np.asarray(probabilities)
    top_k = min(top_k, probabilities.shape[1])
    ranked = np.argsort(-probabilities, axis=1, kind="stable")[:, :top_k]
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "label", "prediction", "probability", f"top_{top_k}"])
        for image_id, label, probs, order in zip(ids, labels, probabilities, ranked):
            writer.writerow([image_id, class_names[label], class_names[order[0]], f"{probs[order[0]]:.4f}",
                             ";".join(f"{class_names[i]}:{probs[i]:.4f}" for i in order)])
    return str(path)


# figures


def denormalise(pixel_values, image_mean, image_std):
    """Model inputs (batch, channels, height, width), normalised by the image processor, back to images to show:
    (batch, height, width, channels) floats in [0, 1], or (batch, height, width) for one channel."""
    pixels = torch.as_tensor(pixel_values).detach().float().cpu().numpy()
    mean = np.asarray(image_mean, dtype=np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(image_std, dtype=np.float32).reshape(1, -1, 1, 1)
    images = np.clip(pixels * std + mean, 0.0, 1.0).transpose(0, 2, 3, 1)
    return images[..., 0] if images.shape[-1] == 1 else images


def as_float_image(image):
    """An image (height, width[, 1 or 3]), uint8 or floats in [0, 1], as floats in [0, 1]: (height, width[, 3])."""
    image = np.asarray(image)
    image = image / 255.0 if image.dtype == np.uint8 else image
    return image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image


def show(axes, image):
    """An image (see `as_float_image`) without axes; grayscale in gray."""
    image = as_float_image(image)
    axes.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0.0, vmax=1.0)
    axes.set_axis_off()


def wrap(title):
    """A title broken into lines that fit a grid panel (8-point text)."""
    return textwrap.fill(title, width=round(16 * PANEL_INCHES))


def save(figure, path):
    figure.savefig(path, dpi=DPI)  # no bbox_inches="tight": the size in pixels stays the figure's
    return str(path)


def plot_reliability(path, logits, labels, temperature):
    """The reliability diagram before and after temperature scaling: per confidence bin (15 equal-width), the
    accuracy against the mean confidence (the diagonal is perfect calibration), and each panel's ECE. `logits` are the
    calibrated model's, so the uncalibrated ones are `logits * temperature`."""
    from vit_simple.calibration import calibration_metrics, reliability

    logits = np.asarray(logits, dtype=np.float64)
    figure = Figure(figsize=(9, 4.5), layout="constrained")
    panels = (("before calibration (T = 1)", logits * temperature, 1.0),
              (f"after calibration (T = {temperature:.3f})", logits * temperature, temperature))
    for axes, (title, raw, t) in zip(figure.subplots(1, 2, sharey=True), panels):
        rows = reliability(raw, labels, t)
        ece = calibration_metrics(raw, labels, t)["ece"]
        middles, confidence, accuracy, counts = (np.array(column) for column in zip(*rows)) if rows else ([],) * 4
        axes.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
        axes.bar(middles, accuracy, width=1 / 15, edgecolor="black", alpha=0.7, label="accuracy")
        axes.plot(confidence, accuracy, "o-", color="tab:red", markersize=3, label="accuracy at mean confidence")
        axes.set_title(f"{title}: ECE {100 * ece:.2f}%")
        axes.set_xlabel("confidence (top probability)")
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1)
    figure.axes[0].set_ylabel("accuracy")
    figure.axes[0].legend(loc="upper left", fontsize=8)
    return save(figure, path)


def plot_confusion_matrix(path, matrix, class_names):
    """Counts and row-normalised rates (recall on the diagonal) side by side."""
    matrix, count = np.asarray(matrix), len(class_names)
    rows = matrix.sum(axis=1, keepdims=True)
    rates = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    side = min(3.0 + CELL_INCHES * count, MAX_PANEL_INCHES)
    font = min(10.0, max(3.0, 0.4 * 72 * (side - 3.0) / count))  # a fraction of a cell's height, in points
    figure = Figure(figsize=(2 * side, side), layout="constrained")
    panels = ((matrix, "counts", "{:.0f}", None), (rates, "share of each true class", "{:.2f}", 1.0))
    for axes, (values, title, form, top) in zip(figure.subplots(1, 2), panels):
        image = axes.imshow(values, cmap="Blues", vmin=0, vmax=top)
        figure.colorbar(image, ax=axes, shrink=0.8)
        axes.set_title(title)
        axes.set_xlabel("predicted")
        axes.set_ylabel("true")
        if count <= MAX_LABELLED_CLASSES:
            axes.set_xticks(range(count), class_names, rotation=90, fontsize=font)
            axes.set_yticks(range(count), class_names, fontsize=font)
        else:
            axes.set_xticks([])
            axes.set_yticks([])
        if count <= MAX_ANNOTATED_CLASSES:
            for (i, j), value in np.ndenumerate(values):
                if value:  # zeros left blank: the errors stand out
                    axes.text(j, i, form.format(value), ha="center", va="center", fontsize=font,
                              color="white" if value > values.max() / 2 else "black")
    return save(figure, path)


def plot_mistakes(path, images, labels, predictions, confidences, class_names, count=16):
    """A grid of the `count` most confident mistakes, each titled "true -> predicted (probability)"."""
    labels, predictions, confidences = np.asarray(labels), np.asarray(predictions), np.asarray(confidences)
    wrong = np.flatnonzero(labels != predictions)
    wrong = wrong[np.argsort(-confidences[wrong], kind="stable")][:count]
    columns = max(1, math.ceil(math.sqrt(len(wrong))))
    rows = max(1, math.ceil(len(wrong) / columns))
    figure = Figure(figsize=(PANEL_INCHES * columns, PANEL_INCHES * rows), layout="constrained")
    if not len(wrong):
        figure.text(0.5, 0.5, f"no mistakes on {len(labels)} images", ha="center", va="center")
    for position, i in enumerate(wrong, start=1):
        axes = figure.add_subplot(rows, columns, position)
        show(axes, images[i])
        axes.set_title(wrap(f"{class_names[labels[i]]} -> {class_names[predictions[i]]} ({confidences[i]:.2f})"),
                       fontsize=8)
    return save(figure, path)


def plot_attention(path, images, rollout_maps, last_maps, titles):
    """One row per image: the image (titled by `titles`), its attention rollout overlaid, its last block's attention
    overlaid."""
    figure = Figure(figsize=(3 * PANEL_INCHES, PANEL_INCHES * len(images)), layout="constrained")
    rows = figure.subplots(len(images), 3, squeeze=False)
    for row, image, rollout, last, title in zip(rows, images, rollout_maps, last_maps, titles):
        show(row[0], image)
        row[0].set_title(wrap(title), fontsize=8)
        gray = as_float_image(image)
        gray = gray.mean(axis=-1) if gray.ndim == 3 else gray  # colours under a heat map would muddle it
        for axes, heat in zip(row[1:], (rollout, last)):
            show(axes, gray)
            axes.imshow(np.asarray(heat), cmap="inferno", alpha=0.5, vmin=0.0, vmax=1.0)
    rows[0, 1].set_title("attention rollout", fontsize=8)
    rows[0, 2].set_title("last block's attention", fontsize=8)
    return save(figure, path)


def training_curves(log_history):
    """The series `plot_training_curves` draws, {name: (epochs, values)}, from Trainer's `state.log_history`:
    training loss (the periodic "loss" logs), validation loss and validation accuracy."""
    keys = {"training loss": "loss", "validation loss": "eval_loss", "validation accuracy": "eval_accuracy"}
    return {name: ([log["epoch"] for log in log_history if key in log and "epoch" in log],
                   [log[key] for log in log_history if key in log and "epoch" in log]) for name, key in keys.items()}


def plot_training_curves(path, log_history):
    """Two panels against epochs: training and validation loss; validation accuracy."""
    curves = training_curves(log_history)
    figure = Figure(figsize=(11, 4), layout="constrained")
    loss, accuracy = figure.subplots(1, 2)
    loss.plot(*curves["training loss"], label="training", linewidth=1)
    loss.plot(*curves["validation loss"], "o-", label="validation")
    loss.set(title="loss", xlabel="epoch")
    loss.legend()
    epochs, values = curves["validation accuracy"]
    accuracy.plot(epochs, [100 * v for v in values], "o-", color="tab:green")
    accuracy.set(title="validation accuracy", xlabel="epoch", ylabel="%")
    for axes in (loss, accuracy):
        axes.grid(alpha=0.3)
    return save(figure, path)


# everything at once


def write_reports(output_dir, split, model, class_names, logits, labels, inputs=None, *, image_mean, image_std,
                  ids=None, log_history=None, mistakes=16, attention_images=6, top_k=5, temperature=None):
    """Write the reports on one split's predictions into `output_dir`/reports/; return (paths, report): the written
    files by kind, and the per-class report (`classification_report_dict`).

    logits (images, classes) and labels (images,): as `trainer.predict` returns them. inputs: a function from a list
    of indices in the split to their `pixel_values` (n, channels, height, width), for the mistakes and attention
    figures (None: those two are left out). image_mean, image_std: the image processor's, to show the inputs.
    ids: what names each image in the CSV (default its index). log_history: Trainer's `state.log_history`, for the
    training curves (None: none drawn). temperature: the calibration temperature the logits are divided by, for the
    reliability diagram before and after (None: not calibrated, no diagram)."""
    folder = Path(output_dir) / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    labels = np.asarray(labels)
    probabilities = softmax(logits)
    predictions, confidences = probabilities.argmax(axis=1), probabilities.max(axis=1)
    report = classification_report_dict(labels, predictions, class_names)

    paths = {"predictions": write_predictions_csv(folder / f"{split}_predictions.csv",
                                                  range(len(labels)) if ids is None else ids, labels, probabilities,
                                                  class_names, top_k)}
    paths["classification_report"] = str(folder / f"{split}_classification_report.json")
    Path(paths["classification_report"]).write_text(json.dumps(report, indent=2, default=lambda v: v.item()) + "\n")
    if temperature is not None:
        paths["reliability"] = plot_reliability(folder / f"{split}_reliability.png", logits, labels, temperature)
    paths["confusion_matrix"] = plot_confusion_matrix(
        folder / f"{split}_confusion_matrix.png", confusion_matrix(labels, predictions, len(class_names)), class_names)

    if inputs is not None:
        wrong = np.flatnonzero(predictions != labels)
        wrong = wrong[np.argsort(-confidences[wrong], kind="stable")][:mistakes]
        images = denormalise(inputs(wrong.tolist()), image_mean, image_std) if len(wrong) else []
        paths["mistakes"] = plot_mistakes(folder / f"{split}_mistakes.png", images, labels[wrong], predictions[wrong],
                                          confidences[wrong], class_names, mistakes)
        chosen = np.unique(labels, return_index=True)[1][:attention_images]  # the first image of each class
        pixel_values = inputs(chosen.tolist())
        titles = [f"{class_names[labels[i]]}, predicted {class_names[predictions[i]]} ({confidences[i]:.2f})"
                  for i in chosen]
        paths["attention"] = plot_attention(folder / f"{split}_attention.png",
                                            denormalise(pixel_values, image_mean, image_std),
                                            attention_rollout(model, pixel_values),
                                            last_block_attention(model, pixel_values), titles)
    if log_history:
        paths["training_curves"] = plot_training_curves(folder / "training_curves.png", log_history)
    return paths, report


FIGURE_TITLES = {"reliability": "Calibration: reliability before and after temperature scaling",
                 "confusion_matrix": "Confusion matrix", "mistakes": "The most confident mistakes",
                 "attention": "Where the model looks (attention rollout and the last block's attention)",
                 "training_curves": "Training curves"}


def markdown_for_model_card(paths, report, output_dir, split="test"):
    """Markdown for a model card in `output_dir`: the per-class table and the figures, linked by paths relative to
    `output_dir` (the Hub shows images a model card links to inside its repo)."""
    relative = {kind: Path(os.path.relpath(path, output_dir)).as_posix() for kind, path in paths.items()}
    classes = [name for name in report if name not in ("accuracy", "macro avg", "weighted avg", "micro avg")]
    rows = []
    for name in [*classes, "macro avg"]:
        numbers = report[name]
        rows.append(f"| {escape_cell(name)} | {100 * numbers['precision']:.1f}% | {100 * numbers['recall']:.1f}% | "
                    f"{100 * numbers['f1-score']:.1f}% | {numbers['support']:.0f} |")
    table = "\n".join(["| class | precision | recall | F1 | images |", "| --- | --- | --- | --- | --- |", *rows])
    if len(classes) > MAX_ANNOTATED_CLASSES:  # a long table folded away, so the figures stay in view
        table = f"<details><summary>Per-class results ({len(classes)} classes)</summary>\n\n{table}\n\n</details>"
    parts = [f"## Per-class results ({split} split)", table, f"Accuracy: {100 * report['accuracy']:.2f}%."]
    files = {"predictions": "every image's prediction and top classes (CSV)",
             "classification_report": "these numbers (JSON)"}
    parts.append("\n".join(f"- [{relative[kind]}]({relative[kind]}): {what}" for kind, what in files.items()
                           if kind in relative))
    parts += [f"### {title}\n\n![{title}]({relative[kind]})" for kind, title in FIGURE_TITLES.items()
              if kind in relative]
    return "\n\n".join(parts) + "\n"


def escape_cell(text):
    """A class name inside a markdown table cell: a "|" would end the cell."""
    return text.replace("|", "\\|")


# a training run's reports


def write_run_reports(trainer, output_dir, evaluation, predictions, predict_split, label_names, image_column,
                      temperature=None):
    """The reports of a run: those of the split last predicted (the test split, else validation) and, after
    training, the training curves, in `output_dir`/reports; None when nothing was predicted. `evaluation`: the transformed splits; `predictions`: trainer.predict's output for each."""
    split = predict_split if predict_split in predictions else next(iter(predictions), None)
    if split is None:
        return None
    examples, prediction, processor = evaluation[split], predictions[split], trainer.processing_class
    indexed = isinstance(examples, IndexedSplit)  # a stream (--streaming) cannot fetch images by index
    paths, report = write_reports(
        output_dir, split, trainer.model, label_names, prediction.predictions, prediction.label_ids,
        inputs=(lambda indices: collate(examples.__getitems__(indices))["pixel_values"]) if indexed else None,
        ids=image_ids(examples.part, image_column) if indexed else None,
        image_mean=processor.image_mean, image_std=processor.image_std,
        log_history=trainer.state.log_history if trainer.args.do_train else None, temperature=temperature)
    print(f"\n{split} split, per class:\n"
          + classification_report_text(prediction.label_ids, prediction.predictions.argmax(-1), label_names))
    return {"split": split, "paths": paths, "report": report}
