"""report_vit: the files a person opens after training (predictions, per-class numbers, figures, model card text)."""

import csv
import json
from types import SimpleNamespace

import numpy as np
import PIL.Image
import pytest
import torch
from torch import nn

from conftest import drawn_figures
from vit_simple import reports
from configuration_vit_simple import ViTSimpleConfig
from modeling_vit_simple import ViTSimpleForImageClassification

GRID = 4  # 16x16 images in 4x4 patches


@pytest.fixture(scope="module", autouse=True)
def drawn():
    with drawn_figures():  # the figures as a person sees them, not the blank stand-ins of the other tests
        yield


def tiny_model(pool="cls", num_labels=3):
    torch.manual_seed(0)
    config = ViTSimpleConfig(image_size=16, patch_size=4, dim=16, depth=2, heads=2, dim_head=8, mlp_dim=32,
                             num_channels=1, num_labels=num_labels, pool=pool)
    return ViTSimpleForImageClassification(config)


class FixedAttention(nn.Module):
    """A stand-in for a model that only has the public interface rollout uses: `config` and `attentions` in the
    output of `model(pixel_values=..., output_attentions=True)`, here the same given matrix in every head and block."""

    def __init__(self, matrix, pool, depth=2, heads=2, image_size=16, patch_size=4):
        super().__init__()
        self.config = SimpleNamespace(image_size=image_size, patch_size=patch_size, pool=pool)
        self.matrix, self.depth, self.heads = matrix, depth, heads

    def forward(self, pixel_values, output_attentions=False, **kwargs):
        attention = self.matrix.expand(pixel_values.shape[0], self.heads, *self.matrix.shape)
        return SimpleNamespace(attentions=(attention,) * self.depth)


def tokens(pool):
    return GRID * GRID + (pool == "cls")


def images(count=2, size=16):
    return torch.randn(count, 1, size, size)


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_rollout_of_identity_attention_is_uniform_at_image_size(pool):
    model = FixedAttention(torch.eye(tokens(pool)), pool)
    for maps in (reports.attention_rollout(model, images(3)), reports.last_block_attention(model, images(3))):
        assert maps.shape == (3, 16, 16)
        assert torch.all(maps == maps[0, 0, 0])  # nothing stands out


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_rollout_peaks_at_the_patch_every_token_attends_to(pool):
    row, column = 1, 2
    target = (pool == "cls") + row * GRID + column
    matrix = torch.zeros(tokens(pool), tokens(pool))
    matrix[:, target] = 1.0
    model = FixedAttention(matrix, pool)
    for maps in (reports.attention_rollout(model, images()), reports.last_block_attention(model, images())):
        assert maps.amin() == 0.0 and maps.amax() == pytest.approx(1.0)
        peak_y, peak_x = divmod(int(maps[0].argmax()), 16)
        assert (peak_y // 4, peak_x // 4) == (row, column)


def test_rollout_is_the_product_of_the_blocks_with_the_residual_later_blocks_on_the_left():
    # one pixel per patch (no upsampling) and two different blocks: the map is the hand-computed CLS row
    generator = torch.Generator().manual_seed(0)
    first, second = (torch.rand(10, 10, generator=generator).softmax(-1) for _ in range(2))

    class TwoBlocks(FixedAttention):
        def forward(self, pixel_values, **kwargs):
            return SimpleNamespace(attentions=(first[None, None], second[None, None]))

    model = TwoBlocks(None, "cls", image_size=3, patch_size=1)
    residual = [0.5 * a + 0.5 * torch.eye(10) for a in (first, second)]
    expected = (residual[1] / residual[1].sum(-1, keepdim=True)) @ (residual[0] / residual[0].sum(-1, keepdim=True))
    expected = expected[0, 1:]
    expected = (expected - expected.min()) / (expected.max() - expected.min())
    torch.testing.assert_close(reports.attention_rollout(model, images(1, 3))[0].flatten(), expected)


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_rollout_of_a_real_model_gives_maps_in_unit_range_and_restores_training_mode(pool):
    model = tiny_model(pool).train()
    for head_fusion in ("mean", "max", "min"):
        maps = reports.attention_rollout(model, images(2), head_fusion=head_fusion, discard_ratio=0.5)
        assert maps.shape == (2, 16, 16)
        assert maps.amin() == 0.0 and maps.amax() == pytest.approx(1.0)
    assert reports.last_block_attention(model, images(2)).shape == (2, 16, 16)
    assert model.training


def test_rollout_rejects_unknown_options_and_images_of_another_size():
    model = tiny_model()
    with pytest.raises(ValueError, match="head_fusion"):
        reports.attention_rollout(model, images(), head_fusion="sum")
    with pytest.raises(ValueError, match="discard_ratio"):
        reports.attention_rollout(model, images(), discard_ratio=1.0)
    with pytest.raises(ValueError, match="doesn't match model"):
        reports.attention_rollout(model, images(1, 20))


# 7 images, 4 classes; "wool" is neither present nor predicted
CLASSES = ["cat", "dog", "bird", "wool"]
LABELS = [0, 0, 1, 1, 2, 2, 2]
PREDICTIONS = [0, 1, 1, 1, 2, 0, 2]


def test_per_class_numbers_match_a_count_by_hand():
    report = reports.classification_report_dict(LABELS, PREDICTIONS, CLASSES)
    # cat: predicted twice, right once, 2 present; dog: predicted 3 times, right twice, 2 present; bird: 2, 2, 3
    expected = {"cat": (1 / 2, 1 / 2, 2), "dog": (2 / 3, 2 / 2, 2), "bird": (2 / 2, 2 / 3, 3), "wool": (0, 0, 0)}
    for name, (precision, recall, support) in expected.items():
        assert report[name]["precision"] == pytest.approx(precision)
        assert report[name]["recall"] == pytest.approx(recall)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        assert report[name]["f1-score"] == pytest.approx(f1)
        assert report[name]["support"] == support
    assert report["accuracy"] == pytest.approx(5 / 7)
    text = reports.classification_report_text(LABELS, PREDICTIONS, CLASSES)
    assert all(name in text for name in CLASSES)


def test_confusion_matrix_has_a_row_per_class_and_counts_every_image():
    matrix = reports.confusion_matrix(LABELS, PREDICTIONS, len(CLASSES))
    assert matrix.shape == (4, 4) and matrix.sum() == len(LABELS)
    assert matrix[2, 0] == 1 and matrix[0, 1] == 1 and matrix.trace() == 5


def test_predictions_csv_has_a_row_per_image_with_top_5_by_probability(tmp_path):
    names = [f"class {i}" for i in range(7)]
    probabilities = reports.softmax(np.random.default_rng(0).normal(size=(9, 7)))
    labels = np.arange(9) % 7
    ids = [f"images/{i}.png" for i in range(9)]
    reports.write_predictions_csv(tmp_path / "p.csv", ids, labels, probabilities, names)
    with open(tmp_path / "p.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 9
    for row, image_id, label, probs in zip(rows, ids, labels, probabilities):
        assert row["id"] == image_id and row["label"] == names[label]
        assert row["prediction"] == names[probs.argmax()]
        assert float(row["probability"]) == pytest.approx(probs.max(), abs=1e-4)
        top = [entry.rsplit(":", 1) for entry in row["top_5"].split(";")]
        assert len(top) == 5 and top[0][0] == row["prediction"]
        values = [float(p) for _, p in top]
        assert values == sorted(values, reverse=True)
        assert [p for _, p in top] == [f"{probs[names.index(n)]:.4f}" for n, _ in top]


def pixels_of(path):
    with PIL.Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def inches_to_pixels(width, height):
    return round(width * reports.DPI), round(height * reports.DPI)


@pytest.mark.parametrize("count", [3, 40])
def test_confusion_matrix_figure_grows_with_the_classes(tmp_path, count):
    labels = np.arange(200) % count
    matrix = reports.confusion_matrix(labels, (labels + (labels % 3 == 0)) % count, count)
    path = reports.plot_confusion_matrix(tmp_path / "cm.png", matrix, [f"c{i}" for i in range(count)])
    side = min(3 + reports.CELL_INCHES * count, reports.MAX_PANEL_INCHES)
    assert pixels_of(path) == inches_to_pixels(2 * side, side)


def test_mistakes_figure_shows_the_most_confident_mistakes_in_a_grid(tmp_path):
    grayscale = np.random.default_rng(0).random((10, 16, 16))
    labels, predictions = np.arange(10) % 3, (np.arange(10) + (np.arange(10) < 6)) % 3  # 6 mistakes
    confidences = np.linspace(0.4, 0.9, 10)
    path = reports.plot_mistakes(tmp_path / "m.png", grayscale, labels, predictions, confidences, CLASSES, 4)
    assert pixels_of(path) == inches_to_pixels(2 * reports.PANEL_INCHES, 2 * reports.PANEL_INCHES)  # 2x2
    rgb = (np.random.default_rng(0).random((2, 16, 16, 3)) * 255).astype(np.uint8)
    path = reports.plot_mistakes(tmp_path / "none.png", rgb, [0, 1], [0, 1], [0.9, 0.9], CLASSES)
    assert pixels_of(path) == inches_to_pixels(reports.PANEL_INCHES, reports.PANEL_INCHES)


def test_denormalise_undoes_the_image_processor_normalisation():
    images = np.random.default_rng(0).random((2, 16, 16, 3)).astype(np.float32)
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    pixel_values = (images.transpose(0, 3, 1, 2) - np.reshape(mean, (1, 3, 1, 1))) / np.reshape(std, (1, 3, 1, 1))
    np.testing.assert_allclose(reports.denormalise(torch.as_tensor(pixel_values), mean, std), images, atol=1e-6)
    assert reports.denormalise(torch.zeros(2, 1, 16, 16), [0.5], [0.5]).shape == (2, 16, 16)


def test_attention_figure_has_a_row_of_three_panels_per_image(tmp_path):
    model, pixel_values = tiny_model(), images(3)
    path = reports.plot_attention(tmp_path / "a.png", reports.denormalise(pixel_values, [0.5], [0.5]),
                                     reports.attention_rollout(model, pixel_values),
                                     reports.last_block_attention(model, pixel_values), ["a", "b", "c"])
    assert pixels_of(path) == inches_to_pixels(3 * reports.PANEL_INCHES, 3 * reports.PANEL_INCHES)


# as Trainer logs two epochs: training loss every few steps, evaluation per epoch, the final summary, a test run
LOG_HISTORY = [
    {"loss": 2.1, "grad_norm": 3.0, "learning_rate": 1e-3, "epoch": 0.5, "step": 5},
    {"loss": 1.6, "grad_norm": 2.0, "learning_rate": 9e-4, "epoch": 1.0, "step": 10},
    {"eval_loss": 1.5, "eval_accuracy": 0.55, "eval_macro_f1": 0.5, "epoch": 1.0, "step": 10},
    {"loss": 1.2, "grad_norm": 1.5, "learning_rate": 5e-4, "epoch": 1.5, "step": 15},
    {"loss": 1.0, "grad_norm": 1.0, "learning_rate": 1e-4, "epoch": 2.0, "step": 20},
    {"eval_loss": 1.1, "eval_accuracy": 0.7, "eval_macro_f1": 0.66, "epoch": 2.0, "step": 20},
    {"train_runtime": 10.0, "train_loss": 1.5, "epoch": 2.0, "step": 20},
    {"test_loss": 1.2, "test_accuracy": 0.68, "epoch": 2.0, "step": 20},
]


def test_training_curves_take_training_and_validation_logs_only(tmp_path):
    curves = reports.training_curves(LOG_HISTORY)
    assert curves["training loss"] == ([0.5, 1.0, 1.5, 2.0], [2.1, 1.6, 1.2, 1.0])
    assert curves["validation loss"] == ([1.0, 2.0], [1.5, 1.1])
    assert curves["validation accuracy"] == ([1.0, 2.0], [0.55, 0.7])
    assert pixels_of(reports.plot_training_curves(tmp_path / "t.png", LOG_HISTORY)) == inches_to_pixels(11, 4)


def test_write_reports_writes_every_file_and_the_model_card_shows_each_figure(tmp_path):
    model, pixel_values = tiny_model(num_labels=4), images(12)
    logits = model(pixel_values=pixel_values).logits.detach().numpy()
    labels = np.arange(12) % 4
    paths, report = reports.write_reports(
        tmp_path, "test", model, CLASSES, logits, labels, lambda indices: pixel_values[indices],
        image_mean=[0.5], image_std=[0.5], log_history=LOG_HISTORY)
    folder = tmp_path / "reports"
    expected = {"predictions": "test_predictions.csv", "classification_report": "test_classification_report.json",
                "confusion_matrix": "test_confusion_matrix.png", "mistakes": "test_mistakes.png",
                "attention": "test_attention.png", "training_curves": "training_curves.png"}
    assert paths == {kind: str(folder / name) for kind, name in expected.items()}
    for kind in ("confusion_matrix", "mistakes", "attention", "training_curves"):
        pixels_of(paths[kind])
    assert json.loads((folder / "test_classification_report.json").read_text()) == report
    assert report["accuracy"] == pytest.approx(np.mean(logits.argmax(1) == labels))
    # the attention figure shows the first image of each class: 4 rows
    assert pixels_of(paths["attention"])[1] == inches_to_pixels(0, 4 * reports.PANEL_INCHES)[1]

    markdown = reports.markdown_for_model_card(paths, report, tmp_path)
    for name in expected.values():
        assert f"(reports/{name})" in markdown
    assert all(f"| {name} |" in markdown for name in CLASSES)


def test_write_reports_without_inputs_or_history_writes_the_numbers_and_the_matrix(tmp_path):
    paths, report = reports.write_reports(tmp_path, "validation", None, CLASSES[:3], np.eye(3)[[0, 1, 2, 0]],
                                        [0, 1, 2, 1], image_mean=[0.5], image_std=[0.5])
    assert sorted(paths) == ["classification_report", "confusion_matrix", "predictions"]
    assert "mistakes" not in reports.markdown_for_model_card(paths, report, tmp_path)


def test_reliability_diagram_shows_both_panels_with_their_ece(tmp_path, monkeypatch):
    from vit_simple.calibration import calibration_metrics

    drawn, save = [], reports.save
    monkeypatch.setattr(reports, "save", lambda figure, path: drawn.append(figure) or save(figure, path))
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(500, 4)) * 3  # the calibrated model's: the raw ones are these times the temperature
    labels = rng.integers(0, 4, 500)
    path = reports.plot_reliability(tmp_path / "r.png", logits, labels, 1.7)
    assert pixels_of(path) == inches_to_pixels(9, 4.5)
    before, after = (calibration_metrics(logits * 1.7, labels, t)["ece"] for t in (1.0, 1.7))
    assert [axes.get_title() for axes in drawn[0].axes] == [f"before calibration (T = 1): ECE {100 * before:.2f}%",
                                                            f"after calibration (T = 1.700): ECE {100 * after:.2f}%"]
