"""F1 score of a multi-class classifier, macro-averaged by default (numpy only, no scikit-learn).

Load it by path: `evaluate.load("vit_simple/metric_modules/f1")`.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "F1 = 2 * precision * recall / (precision + recall), per class, then averaged over the classes."
_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[int]`): predicted label ids.
    references (`list[int]`): true label ids.
    average (`str`, defaults to `"macro"`): `"macro"`, the unweighted mean over classes; `"weighted"`, the mean
        weighted by each class's number of references; `"micro"`, F1 of the pooled counts (equals accuracy).
    num_labels (`int`, *optional*): number of classes, so that a class never predicted nor present counts (as F1 0)
        in the macro mean; by default the classes seen in predictions or references.
Returns:
    f1 (`float`): in [0, 1]. A class with no true and no predicted example has F1 0.
Example:
    >>> f1 = evaluate.load("vit_simple/metric_modules/f1")
    >>> f1.compute(predictions=[0, 1, 1, 2], references=[0, 1, 2, 2])  # per class 1, 2/3, 2/3
    {'f1': 0.7777777777777777}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class F1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, average="macro", num_labels=None):
        if average not in ("macro", "weighted", "micro"):
            raise ValueError(f"average must be 'macro', 'weighted' or 'micro', got {average!r}.")
        predictions, references = np.asarray(predictions), np.asarray(references)
        size = max(num_labels or 0, predictions.max(initial=-1) + 1, references.max(initial=-1) + 1)
        true_positives = np.bincount(references[predictions == references], minlength=size)
        predicted, actual = np.bincount(predictions, minlength=size), np.bincount(references, minlength=size)
        # the classes that count: all num_labels of them, else those seen in predictions or references
        classes = np.arange(num_labels) if num_labels is not None else np.union1d(predictions, references)
        true_positives, predicted, actual = true_positives[classes], predicted[classes], actual[classes]
        if average == "micro":
            true_positives, predicted, actual = true_positives.sum(), predicted.sum(), actual.sum()
        # F1 = 2 TP / (predicted + actual); 0 where a class has neither
        denominator = predicted + actual
        f1 = np.divide(2 * true_positives, denominator, out=np.zeros(np.shape(denominator)), where=denominator > 0)
        if average == "macro":
            return {"f1": float(f1.mean())}
        if average == "weighted":
            return {"f1": float(np.average(f1, weights=actual)) if actual.sum() else 0.0}
        return {"f1": float(f1)}  # micro: one F1 of the pooled counts
