"""Scores that mean what they say: one temperature T, fitted on the validation split after training by minimising the
negative log-likelihood of softmax(logits / T) (temperature scaling, Guo et al. 2017), stored in the model's config
(`calibration_temperature`, applied in `forward`), so that `pipeline`, the exported files and the demo page all give
calibrated probabilities. Dividing by one positive number never changes the argmax: predictions and accuracy stay.

The measures are the usual ones: expected calibration error over 15 equal-width confidence bins (the mean |accuracy -
confidence| of the bins, weighted by their share of the images), negative log-likelihood and the Brier score (the
squared distance between the probabilities and the one-hot label, summed over classes, averaged over images)."""

import math

import numpy as np
import torch

BINS = 15
TEMPERATURE_RANGE = (0.05, 20.0)  # a fitted T outside this means logits without information: T stays in it


def _tensors(logits, labels):
    return torch.as_tensor(np.asarray(logits), dtype=torch.float64), torch.as_tensor(np.asarray(labels)).long()


def fit_temperature(logits, labels):
    """The T > 0 that minimises the mean NLL of softmax(logits / T) on (`logits`, `labels`): deterministic (a
    bracketed search on log T: the NLL is smooth and unimodal there), to float64 precision."""
    logits, labels = _tensors(logits, labels)

    def nll(log_t):
        return torch.nn.functional.cross_entropy(logits / math.exp(log_t), labels).item()

    low, high = (math.log(bound) for bound in TEMPERATURE_RANGE)
    golden = (math.sqrt(5) - 1) / 2
    a, b = high - golden * (high - low), low + golden * (high - low)
    fa, fb = nll(a), nll(b)
    for _ in range(60):  # the bracket shrinks by 0.618 each step: 60 steps reach ~3e-13 of its width
        if fa <= fb:
            high, b, fb = b, a, fa
            a = high - golden * (high - low)
            fa = nll(a)
        else:
            low, a, fa = a, b, fb
            b = low + golden * (high - low)
            fb = nll(b)
    return math.exp((low + high) / 2)


def calibration_metrics(logits, labels, temperature=1.0, bins=BINS):
    """{"ece", "nll", "brier", "accuracy", "mean_confidence"} of softmax(logits / temperature) against `labels`."""
    logits, labels = _tensors(logits, labels)
    probabilities = (logits / temperature).softmax(-1)
    confidence, predicted = probabilities.max(-1)
    correct = (predicted == labels).double()
    ece = 0.0
    for low, high in reliability_bins(bins):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            ece += inside.double().mean().item() * abs(correct[inside].mean().item() - confidence[inside].mean().item())
    one_hot = torch.nn.functional.one_hot(labels, probabilities.shape[-1]).double()
    return {"ece": ece, "nll": torch.nn.functional.cross_entropy(logits / temperature, labels).item(),
            "brier": ((probabilities - one_hot) ** 2).sum(-1).mean().item(), "accuracy": correct.mean().item(),
            "mean_confidence": confidence.mean().item()}


def reliability_bins(bins=BINS):
    edges = np.linspace(0.0, 1.0, bins + 1)
    return list(zip(edges[:-1], edges[1:]))


def reliability(logits, labels, temperature=1.0, bins=BINS):
    """Per confidence bin: (its middle, the mean confidence, the accuracy, the number of images), for the reliability
    diagram; empty bins are left out."""
    logits, labels = _tensors(logits, labels)
    confidence, predicted = (logits / temperature).softmax(-1).max(-1)
    rows = []
    for low, high in reliability_bins(bins):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            rows.append(((low + high) / 2, confidence[inside].mean().item(),
                         (predicted[inside] == labels[inside]).double().mean().item(), int(inside.sum())))
    return rows


def calibration_results(temperature, splits):
    """The numbers all_results.json and the model card record: T, and for each split (prefix: (logits, labels) of the
    uncalibrated model) the ECE, NLL and Brier score before and after."""
    results = {"calibration_temperature": temperature}
    for prefix, (logits, labels) in splits.items():
        for when, t in (("before", 1.0), ("after", temperature)):
            for name, value in calibration_metrics(logits, labels, t).items():
                if name in ("ece", "nll", "brier"):
                    results[f"{prefix}_{name}_{when}_calibration"] = value
    return results
