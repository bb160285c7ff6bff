"""Top-k accuracy: the fraction of examples whose reference label is among the k highest scores (numpy only).

Load it by path: `evaluate.load("vit_simple/metric_modules/top_k_accuracy")`.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Top-k accuracy: the fraction of examples whose true label is among the k best-scored classes."
_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[list[float]]`): one score (logit or probability) per class for each example.
    references (`list[int]`): true label ids.
    k (`int`, defaults to 5): how many of the best-scored classes count as a hit; less than the number of classes.
Returns:
    top_{k}_accuracy (`float`): e.g. `top_5_accuracy`.
Example:
    >>> top_k = evaluate.load("vit_simple/metric_modules/top_k_accuracy")
    >>> top_k.compute(predictions=[[0.1, 0.5, 0.4], [0.8, 0.15, 0.05]], references=[2, 2], k=2)
    {'top_2_accuracy': 0.5}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TopKAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({
                "predictions": datasets.Sequence(datasets.Value("float32")),
                "references": datasets.Value("int64"),
            }),
        )

    def _compute(self, predictions, references, k=5):
        scores, references = np.asarray(predictions), np.asarray(references)
        if scores.ndim != 2 or not 0 < k < scores.shape[1]:
            raise ValueError(f"top-{k} accuracy needs scores of shape (examples, classes) with more than {k} "
                             f"classes, got shape {scores.shape}: use k below the number of classes.")
        # a hit when fewer than k classes score strictly higher than the true one (ties count in its favour)
        true_scores = scores[np.arange(len(references)), references]
        higher = (scores > true_scores[:, None]).sum(axis=1)
        return {f"top_{k}_accuracy": float((higher < k).mean())}
