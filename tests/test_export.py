"""A trained vit-simple ships as an ONNX file (float32 or int8 weights) or a torch.export program: each reloads, runs
any batch size and gives PyTorch's logits; the command line checks that itself, and refuses bad input in one line.

The model is tiny and trained for a few steps on synthetic images whose classes are clearly apart, so that agreement
on the predicted class means something."""

import copy
import json

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor

import vit_simple
from vit_simple import export

CLASSES = ["red-ish", "green-ish", "blue-ish"]


def synthetic_images(count, seed):
    """32x32 RGB images of three classes, each a fixed 4x4 grid of colours of its own, under strong noise."""
    rng = np.random.default_rng(seed)
    grids = np.random.default_rng(0).integers(0, 256, (len(CLASSES), 4, 4, 3))
    labels = rng.integers(0, len(CLASSES), count)
    pixels = grids[labels].repeat(8, axis=1).repeat(8, axis=2) + rng.normal(0, 40, (count, 32, 32, 3))
    return [Image.fromarray(np.clip(p, 0, 255).astype(np.uint8)) for p in pixels], labels


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained for 40 steps, saved with its image processor; its held-out images and their labels."""
    torch.manual_seed(0)
    config = vit_simple.ViTSimpleConfig(image_size=32, patch_size=8, dim=32, depth=2, heads=2, dim_head=16,
                                        mlp_dim=64, id2label=dict(enumerate(CLASSES)))
    model = vit_simple.ViTSimpleForImageClassification(config)
    processor = vit_simple.image_processor_for(config)
    images, labels = synthetic_images(256, seed=1)
    pixel_values = processor(images, return_tensors="pt")["pixel_values"]
    labels = torch.from_numpy(labels)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(40):
        batch = torch.arange(step * 32, step * 32 + 32) % len(labels)
        loss = model(pixel_values=pixel_values[batch], labels=labels[batch]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    folder = tmp_path_factory.mktemp("export") / "tiny-vit"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)

    test_images, test_labels = synthetic_images(64, seed=2)
    test_pixels = processor(test_images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        accuracy = (model(pixel_values=test_pixels).logits.argmax(-1).numpy() == test_labels).mean()
    assert accuracy >= 0.95, f"the fixture model did not learn the synthetic classes ({accuracy:.0%})"
    return dict(folder=folder, model=model, processor=processor, images=test_images, pixel_values=test_pixels,
                labels=test_labels)


@pytest.fixture(scope="module")
def onnx_file(trained, tmp_path_factory):
    return export.export_onnx(trained["model"], tmp_path_factory.mktemp("onnx") / "model.onnx")


def dims(value):
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def logits_of(model, pixel_values):
    with torch.no_grad():
        return model(pixel_values=pixel_values).logits.numpy()


def test_onnx_file_takes_pixel_values_of_any_batch_size_and_gives_pytorchs_logits_within_1e_4(trained, onnx_file):
    graph = onnx.load(onnx_file)
    assert [(v.name, dims(v)) for v in graph.graph.input] == [("pixel_values", ["batch", 3, 32, 32])]
    assert [(v.name, dims(v)) for v in graph.graph.output] == [("logits", ["batch", 3])]
    assert {o.domain: o.version for o in graph.opset_import}[""] == export.DEFAULT_OPSET
    for batch_size in (1, 3, 7):  # the export traced a batch of 2
        pixel_values = trained["pixel_values"][:batch_size]
        logits = export.run_exported(onnx_file, pixel_values)
        assert logits.shape == (batch_size, 3)
        assert np.abs(logits - logits_of(trained["model"], pixel_values)).max() <= 1e-4


def test_torch_export_program_reloads_with_torch_export_load_and_gives_pytorchs_logits(trained, tmp_path):
    export.export_program(trained["model"], tmp_path / "model.pt2")
    program = torch.export.load(str(tmp_path / "model.pt2")).module()
    for batch_size in (1, 5):
        pixel_values = trained["pixel_values"][:batch_size]
        with torch.no_grad():
            logits = program(pixel_values).numpy()
        assert np.abs(logits - logits_of(trained["model"], pixel_values)).max() <= 1e-4


def test_int8_onnx_predicts_the_float32_class_on_most_test_images_and_is_smaller(trained, onnx_file):
    int8 = export.quantize_int8(onnx_file, onnx_file.with_name("model_int8.onnx"))
    assert "MatMulInteger" in {node.op_type for node in onnx.load(int8).graph.node}
    assert int8.stat().st_size < onnx_file.stat().st_size
    parity = export.check_parity(trained["model"], int8, trained["pixel_values"], int8=True)
    assert parity.ok and parity.agreement >= 0.9 and 0 < parity.max_diff < 1, parity
    logits = export.run_exported(int8, trained["pixel_values"])
    assert (logits.argmax(-1) == trained["labels"]).mean() >= 0.9


def test_parity_check_fails_a_file_whose_logits_differ_from_the_models(trained, onnx_file):
    changed = copy.deepcopy(trained["model"])
    with torch.no_grad():
        changed.classifier.bias += 0.01
    parity = export.check_parity(changed, onnx_file, trained["pixel_values"][:4])
    assert not parity.ok and 0.009 < parity.max_diff < 0.011
    assert "FAILED" in str(parity) and "1e-04" in str(parity)


def test_onnx_accuracy_on_a_datasets_split_matches_pytorchs(trained, onnx_file):
    import datasets

    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=CLASSES)})
    split = datasets.Dataset.from_dict({"image": trained["images"], "label": trained["labels"].tolist()}, features)
    accuracy = export.evaluate_accuracy(trained["model"], [onnx_file], split, trained["processor"], batch_size=24)
    assert set(accuracy) == {"pytorch", "model.onnx"}
    assert accuracy["pytorch"] == accuracy["model.onnx"] >= 0.95


def test_command_line_writes_each_format_into_the_model_folder_checks_it_and_evaluates(trained, tmp_path, capsys):
    import datasets

    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=CLASSES)})
    split = datasets.Dataset.from_dict({"image": trained["images"], "label": trained["labels"].tolist()}, features)
    datasets.DatasetDict({"test": split}).save_to_disk(tmp_path / "data")
    export.main([str(trained["folder"]), "--int8", "--torch_export", "--opset", "18", "--evaluate",
                 str(tmp_path / "data")])
    stdout = capsys.readouterr().out
    for name in ("model.onnx", "model_int8.onnx", "model.pt2"):
        assert (trained["folder"] / name).is_file()
        assert f"  {name} vs PyTorch on 16 images" in stdout
    assert stdout.count(": ok\n") == 3 and "ONNX opset 18" in stdout
    assert {o.domain: o.version for o in onnx.load(trained["folder"] / "model.onnx").opset_import}[""] == 18
    accuracy = {line.split(":")[0].strip(): float(line.split(":")[1].split("%")[0])
                for line in stdout.splitlines() if line.startswith("  ") and "%" in line and "vs" not in line}
    assert set(accuracy) == {"pytorch", "model.onnx", "model_int8.onnx"}, stdout
    assert accuracy["pytorch"] == accuracy["model.onnx"] >= 95 and accuracy["model_int8.onnx"] >= 90


def test_another_image_size_goes_to_a_folder_that_onnxruntime_runs_with_its_saved_image_processor(trained, capsys):
    export.main([str(trained["folder"]), "--onnx", "--image_size", "48"])
    out = trained["folder"].with_name("tiny-vit-48x48")
    assert str(out / "model.onnx") in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["image_size"] == 48

    images = trained["images"][:5]
    processor = AutoImageProcessor.from_pretrained(out)  # the README's three lines
    session = onnxruntime.InferenceSession(out / "model.onnx")
    logits = session.run(["logits"], {"pixel_values": processor(images, return_tensors="np")["pixel_values"]})[0]

    resized = vit_simple.ViTSimpleForImageClassification.from_pretrained(trained["folder"], image_size=48).eval()
    expected = logits_of(resized, processor(images, return_tensors="pt")["pixel_values"])
    assert logits.shape == (5, 3) and np.abs(logits - expected).max() <= 1e-4
    assert np.abs(export.onnx_predict(session, images, processor) - expected).max() <= 1e-4


def _export_failing_copy(folder, tmp_path):
    """The model folder with its own modeling file changed to branch on a tensor's value, which torch.export
    cannot trace; loaded with --trust_remote_code."""
    custom = tmp_path / "custom"
    custom.mkdir()
    for path in folder.iterdir():
        if path.suffix in (".json", ".safetensors", ".py"):
            (custom / path.name).write_bytes(path.read_bytes())
    code = (custom / "modeling_vit_simple.py").read_text()
    line = "        logits = self.classifier(outputs.pooler_output)\n"
    assert code.count(line) == 1, "the classifier's forward changed: update this test"
    (custom / "modeling_vit_simple.py").write_text(code.replace(line, line + "        if logits.sum() > 0:\n"
                                                                            "            logits = logits + 1\n"))
    return custom


@pytest.fixture(scope="module")
def bad_runs(trained, tmp_path_factory):
    """The command line on each kind of bad input: {case: the message it exits with}."""
    tmp_path = tmp_path_factory.mktemp("bad")
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((trained["folder"] / "config.json").read_text())
    folder = str(trained["folder"])
    cases = {
        "no weights": [str(no_weights), "--onnx"],
        "image size": [folder, "--onnx", "--image_size", "30", "--output_dir", str(tmp_path / "out")],
        "opset": [folder, "--onnx", "--opset", "99"],
        "export fails": [str(_export_failing_copy(trained["folder"], tmp_path)), "--onnx", "--trust_remote_code"],
    }
    messages = {}
    for case, arguments in cases.items():
        with pytest.raises(SystemExit) as exit_:
            export.main(arguments)
        messages[case] = str(exit_.value.code)
    return messages

@pytest.mark.parametrize("case, message", [
    ("no weights", "has a config.json but no weights (model.safetensors or pytorch_model.bin): the save did not"),
    ("image size", "image_size 30x30 is not divisible by patch_size 8x8: choose an image size"),
    ("opset", "--opset 99 is not one torch's ONNX exporter writes: choose 18 to 23"),
    ("export fails", "torch.export could not trace the model (GuardOnDataDependentSymNode"),
])
def test_bad_input_is_refused_with_one_line_that_says_what_to_change(bad_runs, case, message):
    assert bad_runs[case].startswith("vit-simple-export: error: ") and "\n" not in bad_runs[case]
    assert message in bad_runs[case]

