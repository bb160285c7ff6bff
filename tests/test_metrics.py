"""vit_simple.metrics: the evaluate metric modules shipped in the package (metric_modules/), loaded by path (offline),
against values worked out by hand, and the metrics a run computes with them."""

import evaluate
import numpy as np
import pytest

from vit_simple.metrics import METRIC_MODULES, metrics_function


def load(name):
    return evaluate.load(str(METRIC_MODULES / name), keep_in_memory=True)


# 8 examples, 4 classes; class 3 is never predicted nor present
PREDICTIONS = [0, 0, 1, 1, 1, 2, 2, 0]
REFERENCES = [0, 1, 1, 1, 2, 2, 0, 0]


def test_accuracy():
    assert load("accuracy").compute(predictions=PREDICTIONS, references=REFERENCES) == {"accuracy": 5 / 8}


def test_macro_f1_averages_the_per_class_f1():
    # class 0: TP 2, predicted 3, actual 3 -> 2*2/6; class 1: TP 2, 3, 3 -> 4/6; class 2: TP 1, 2, 2 -> 2/4
    per_class = [4 / 6, 4 / 6, 2 / 4]
    f1 = load("f1")
    assert f1.compute(predictions=PREDICTIONS, references=REFERENCES)["f1"] == pytest.approx(np.mean(per_class))
    # with num_labels=4 the absent class 3 counts as F1 0 in the mean
    assert f1.compute(predictions=PREDICTIONS, references=REFERENCES, num_labels=4)["f1"] == pytest.approx(
        sum(per_class) / 4)
    weighted = (3 * 4 / 6 + 3 * 4 / 6 + 2 * 2 / 4) / 8
    assert f1.compute(predictions=PREDICTIONS, references=REFERENCES, average="weighted")["f1"] == pytest.approx(
        weighted)
    assert f1.compute(predictions=PREDICTIONS, references=REFERENCES, average="micro")["f1"] == pytest.approx(5 / 8)


def test_f1_rejects_an_unknown_average():
    with pytest.raises(ValueError, match="average must be 'macro', 'weighted' or 'micro'"):
        load("f1").compute(predictions=[0], references=[0], average="binary")


def test_top_k_accuracy_counts_the_true_class_among_the_k_best_scores():
    scores = [
        [0.1, 0.5, 0.3, 0.05, 0.05],  # true 2: second best -> hit at k=2, miss at k=1
        [0.6, 0.1, 0.1, 0.1, 0.1],  # true 0: best
        [0.2, 0.2, 0.2, 0.3, 0.1],  # true 4: worst -> miss at k=2 and k=4
        [0.4, 0.4, 0.1, 0.05, 0.05],  # true 1: tied with the best -> a hit at k=1
    ]
    references = [2, 0, 4, 1]
    top_k = load("top_k_accuracy")
    assert top_k.compute(predictions=scores, references=references, k=1) == {"top_1_accuracy": 2 / 4}
    assert top_k.compute(predictions=scores, references=references, k=2) == {"top_2_accuracy": 3 / 4}
    assert top_k.compute(predictions=scores, references=references, k=4) == {"top_4_accuracy": 3 / 4}
    # k=1 is plain accuracy of the arg-max (without ties)
    logits = np.random.default_rng(0).normal(size=(50, 7)).astype(np.float32)
    labels = np.random.default_rng(1).integers(0, 7, 50)
    assert top_k.compute(predictions=logits, references=labels, k=1)["top_1_accuracy"] == pytest.approx(
        np.mean(logits.argmax(1) == labels))


def test_top_k_needs_more_classes_than_k():
    with pytest.raises(ValueError, match="more than 5 classes"):
        load("top_k_accuracy").compute(predictions=[[0.1, 0.9]], references=[1], k=5)


def test_a_run_reports_accuracy_macro_f1_and_top_5_from_the_logits():
    from transformers import EvalPrediction

    logits = np.eye(8)[[0, 1, 2, 3, 4, 5, 6, 0]] + 0.01 * np.arange(8)  # the last image: class 0 for class 7
    results = metrics_function(8)(EvalPrediction(predictions=logits, label_ids=np.arange(8)))
    assert results["accuracy"] == 7 / 8 and results["top_5_accuracy"] == 1.0  # class 7 is the 2nd best of the last
    assert results["macro_f1"] == pytest.approx(np.mean([2 / 3] + [1] * 6 + [0]))
    assert "top_5_accuracy" not in metrics_function(3)(EvalPrediction(predictions=logits[:3, :3],
                                                                      label_ids=np.arange(3)))
