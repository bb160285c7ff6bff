"""Calibrated scores (vit_simple.calibration): one temperature fitted on the validation split after training, stored in
the config and applied in forward, so pipeline, the exports and the demo page give the same calibrated probabilities;
a prediction never changes."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import train_hf
import vit_simple
from conftest import FAST, TINY, tiny_config
from modeling_vit_simple import ViTSimpleForImageClassification
from vit_simple import export
from vit_simple.calibration import calibration_metrics, fit_temperature, reliability


def overconfident(temperature=2.5, count=4000, classes=10, seed=0):
    """Labels drawn from softmax(scores), and the logits scores * temperature: calibrated at exactly `temperature`."""
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(count, classes, generator=generator)
    scores[torch.arange(count), torch.randint(0, classes, (count,), generator=generator)] += 3.0
    labels = torch.multinomial(scores.softmax(-1), 1, generator=generator)[:, 0]
    return (scores * temperature).numpy(), labels.numpy()


def test_the_fitted_temperature_undoes_known_overconfidence_and_changes_no_prediction():
    logits, labels = overconfident(2.5)
    temperature = fit_temperature(logits, labels)
    assert temperature == pytest.approx(2.5, rel=0.08) and fit_temperature(logits, labels) == temperature  # determined
    before, after = calibration_metrics(logits, labels), calibration_metrics(logits, labels, temperature)
    assert after["ece"] < before["ece"] / 3 and after["nll"] < before["nll"] and after["brier"] < before["brier"]
    assert after["accuracy"] == before["accuracy"]
    underconfident, labels = overconfident(0.5, seed=1)
    assert fit_temperature(underconfident, labels) == pytest.approx(0.5, rel=0.08)  # sharpening works too


def test_ece_nll_and_brier_are_the_textbook_ones():
    logits = np.log(np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7]]))
    labels = np.array([0, 1, 1, 1])  # right at 0.9, wrong at 0.6, right at 0.8 and 0.7
    metrics = calibration_metrics(logits, labels)
    # bins (0.533, 0.6], (0.667, 0.733], (0.733, 0.8], (0.867, 0.933]: one image each
    assert metrics["ece"] == pytest.approx((0.6 + 0.3 + 0.2 + 0.1) / 4)
    assert metrics["nll"] == pytest.approx(-np.mean(np.log([0.9, 0.4, 0.8, 0.7])))
    assert metrics["brier"] == pytest.approx(np.mean([2 * 0.1**2, 2 * 0.6**2, 2 * 0.2**2, 2 * 0.3**2]))
    assert [count for *_, count in reliability(logits, labels)] == [1, 1, 1, 1]


def test_the_model_divides_its_logits_by_the_temperature_and_at_one_leaves_them_untouched(tiny):
    model = ViTSimpleForImageClassification(tiny()).eval()
    pixel_values = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        raw = model(pixel_values).logits
        model.config.calibration_temperature = 2.5
        calibrated = model(pixel_values).logits
    torch.testing.assert_close(calibrated, raw / 2.5)
    assert torch.equal(calibrated.argmax(-1), raw.argmax(-1))
    for bad in (0, -1.0, float("inf"), "warm", True):
        with pytest.raises(ValueError, match="calibration_temperature must be a positive number"):
            tiny_config(calibration_temperature=bad)


def test_exported_files_give_pytorchs_calibrated_logits(tiny, tmp_path):
    model = ViTSimpleForImageClassification(tiny(calibration_temperature=2.5)).eval()
    pixel_values = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        calibrated = model(pixel_values).logits.numpy()
        model.config.calibration_temperature = 1.0
        raw = model(pixel_values).logits.numpy()
        model.config.calibration_temperature = 2.5
    assert np.abs(calibrated - raw / 2.5).max() < 1e-6 and np.abs(raw).max() > 0.1
    onnx_path = export.export_onnx(model, tmp_path / "model.onnx")
    export.export_program(model, tmp_path / "model.pt2")
    for path in (onnx_path, tmp_path / "model.pt2"):
        assert np.abs(export.run_exported(path, pixel_values) - calibrated).max() <= 1e-5, path.name
    # int8: the same quantized weights give the uncalibrated int8 logits divided by T (int8 arithmetic itself differs
    # by CPU: without VNNI onnxruntime clips 16-bit sums, so int8 is compared with int8)
    int8 = export.run_exported(export.quantize_int8(onnx_path, tmp_path / "model_int8.onnx"), pixel_values)
    model.config.calibration_temperature = 1.0
    (tmp_path / "raw").mkdir()
    raw_onnx = export.export_onnx(model, tmp_path / "raw" / "model.onnx")
    raw_int8 = export.run_exported(export.quantize_int8(raw_onnx, tmp_path / "raw" / "model_int8.onnx"), pixel_values)
    assert np.abs(int8 - raw_int8 / 2.5).max() <= 1e-5


@pytest.fixture(scope="module")
def calibrated_run(fashion_slice, tmp_path_factory):
    """A tiny model trained a few steps on the Fashion-MNIST slice, calibrated as every run is."""
    output = tmp_path_factory.mktemp("calibrated") / "model"
    cache = tmp_path_factory.mktemp("cache")
    args = ["--dataset_name", str(fashion_slice), "--cache_dir", str(cache), "--config_overrides", TINY,
            "--max_train_samples", "256", "--num_train_epochs", "2", "--do_predict", "true", "--output_dir",
            str(output), *FAST]
    return {"dir": output, "cache": cache, "results": train_hf.main(args), "args": args}


def test_a_run_fits_the_temperature_records_it_and_saves_it_in_the_model(calibrated_run):
    folder, results = calibrated_run["dir"], calibrated_run["results"]
    calibration = results["calibration"]
    temperature = calibration["calibration_temperature"]
    assert temperature != 1.0 and json.loads((folder / "config.json").read_text())["calibration_temperature"] == \
        temperature
    saved = json.loads((folder / "all_results.json").read_text())
    for split in ("eval", "test"):
        for name in ("ece", "nll", "brier"):
            assert math.isfinite(saved[f"{split}_{name}_before_calibration"])
            assert saved[f"{split}_{name}_after_calibration"] == calibration[f"{split}_{name}_after_calibration"]
    assert saved["eval_nll_after_calibration"] <= saved["eval_nll_before_calibration"]  # what the fit minimises
    card = (folder / "README.md").read_text()
    assert f"T = {temperature:.3f}" in card and "| test | " in card and "reports/test_reliability.png" in card
    assert (folder / "reports" / "test_reliability.png").is_file()  # drawn blank here (conftest.py), whole for users


def test_calibration_changes_no_prediction_and_pipeline_gives_the_saved_models_softmax(calibrated_run):
    from transformers import pipeline

    folder = calibrated_run["dir"]
    model = ViTSimpleForImageClassification.from_pretrained(folder).eval()
    temperature = model.config.calibration_temperature
    processor = vit_simple.image_processor_for(model.config)
    images = [Image.fromarray(np.random.default_rng(i).integers(0, 255, (28, 28), dtype=np.uint8)) for i in range(8)]
    pixel_values = processor(images, return_tensors="pt").pixel_values
    with torch.no_grad():
        calibrated = model(pixel_values).logits
        model.config.calibration_temperature = 1.0
        raw = model(pixel_values).logits
    assert torch.equal(calibrated.argmax(-1), raw.argmax(-1))
    torch.testing.assert_close(calibrated, raw / temperature)
    best = pipeline("image-classification", model=str(folder))(images[0], top_k=1)[0]
    assert best["score"] == pytest.approx(calibrated[0].softmax(-1).max().item(), abs=1e-5)
    assert best["score"] != pytest.approx(raw[0].softmax(-1).max().item(), abs=1e-4)
    predictions = (folder / "reports" / "test_predictions.csv").read_text().splitlines()
    assert len(predictions) > 1  # the CSV's probabilities are the saved (calibrated) model's


def test_fine_tuning_a_calibrated_checkpoint_resets_its_temperature_then_fits_it_again(calibrated_run, tmp_path):
    checkpoint = calibrated_run["dir"]
    fitted = json.loads((checkpoint / "config.json").read_text())["calibration_temperature"]
    base = ["--dataset_name", calibrated_run["args"][1], "--cache_dir", str(calibrated_run["cache"]),
            "--model_name_or_path", str(checkpoint), "--max_train_samples", "64", "--max_steps", "2",
            "--max_eval_samples", "64", "--do_predict", "false", "--learning_rate", "0", *FAST]
    seen = {}

    class Watch(train_hf.transformers.TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            seen["temperature"] = model.config.calibration_temperature

    train_hf.main([*base, "--calibrate", "false", "--output_dir", str(tmp_path / "raw")], callbacks=[Watch()])
    assert seen["temperature"] == 1.0  # trained on the raw logits
    assert json.loads((tmp_path / "raw" / "config.json").read_text())["calibration_temperature"] == 1.0
    assert not any("calibration" in key for key in json.loads((tmp_path / "raw" / "all_results.json").read_text()))
    # learning rate 0: the same weights, refitted on (fewer) validation images: a temperature of their own
    results = train_hf.main([*base, "--output_dir", str(tmp_path / "refit")])
    refit = results["calibration"]["calibration_temperature"]
    assert refit != 1.0 and json.loads((tmp_path / "refit" / "config.json").read_text())["calibration_temperature"] \
        == refit
    assert load_file(tmp_path / "refit" / "model.safetensors").keys() == load_file(checkpoint / "model.safetensors").keys()
    assert fitted != 1.0


def test_evaluating_a_calibrated_checkpoint_keeps_its_temperature(calibrated_run, tmp_path):
    args = ["--dataset_name", calibrated_run["args"][1], "--cache_dir", str(calibrated_run["cache"]),
            "--model_name_or_path", str(calibrated_run["dir"]), "--do_train", "false", "--max_eval_samples", "64",
            "--do_predict", "false", "--output_dir", str(tmp_path / "eval"), *FAST]
    results = train_hf.main(args)
    logits_nll = results["eval"]["eval_loss"]  # the loss of the calibrated logits
    assert "calibration" not in results and math.isfinite(logits_nll)
    assert ViTSimpleForImageClassification.from_pretrained(calibrated_run["dir"]).config.calibration_temperature != 1.0
