"""Accuracy: the fraction of predictions equal to their reference label (numpy only, works offline).

Load it by path: `evaluate.load("vit_simple/metric_modules/accuracy")`.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Accuracy: the fraction of predicted labels equal to the reference labels, in [0, 1]."
_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[int]`): predicted label ids.
    references (`list[int]`): true label ids.
Returns:
    accuracy (`float`): correct predictions / all predictions.
Example:
    >>> accuracy = evaluate.load("vit_simple/metric_modules/accuracy")
    >>> accuracy.compute(predictions=[0, 1, 1, 2], references=[0, 1, 2, 2])
    {'accuracy': 0.75}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references):
        predictions, references = np.asarray(predictions), np.asarray(references)
        return {"accuracy": float((predictions == references).mean())}
