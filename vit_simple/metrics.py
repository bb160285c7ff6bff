"""The metrics of a run: accuracy, macro F1 and top-5 accuracy through `evaluate`, from the metric modules shipped in
this package (metric_modules/), which load offline: `evaluate.load("accuracy")` would need the Hub."""

from pathlib import Path

import evaluate

METRIC_MODULES = Path(__file__).resolve().parent / "metric_modules"


def metrics_function(num_labels):
    """Trainer's compute_metrics: accuracy, macro F1 and (over 5 classes) top-5 accuracy, from metric_modules/."""
    load = lambda name: evaluate.load(str(METRIC_MODULES / name), keep_in_memory=True)  # noqa: E731
    accuracy, f1, top_k = load("accuracy"), load("f1"), load("top_k_accuracy")

    def compute_metrics(eval_prediction):
        logits, references = eval_prediction.predictions, eval_prediction.label_ids
        predictions = logits.argmax(-1)
        results = accuracy.compute(predictions=predictions, references=references)
        results["macro_f1"] = f1.compute(predictions=predictions, references=references, num_labels=num_labels)["f1"]
        if num_labels > 5:
            results.update(top_k.compute(predictions=logits, references=references, k=5))
        return results

    return compute_metrics
