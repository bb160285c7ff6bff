"""The demo page's parts (vit_simple/demo.py) and app.py's command line, without serving: example images, the line
about the model, images of every mode, the overlay, a Space folder, and errors in one line. test_app.py serves the
page and drives it through its API and a real browser."""

import ast
import importlib
import importlib.metadata
import json
import shutil
import struct
import sys
import zlib
from pathlib import Path

import pytest
import torch
from datasets import ClassLabel, Dataset, Features
from datasets import Image as ImageFeature
from huggingface_hub import SpaceCard
from packaging.requirements import Requirement
from PIL import Image

import app
import vit_simple
from conftest import COLORS
from vit_simple import demo
from vit_simple.errors import InputError


@pytest.fixture(scope="module")
def classifier(colour_model):
    return demo.load(str(colour_model["folder"]))


def exit_message(argv):
    """What app.py exits with, as a string."""
    with pytest.raises(SystemExit) as exit_:
        app.main(argv)
    return str(exit_.value.code)


# examples


def small_split(labels, modes):
    images = [Image.new(mode, (12, 10), 100) for mode in modes]
    return Dataset.from_dict({"picture": images, "class": labels},
                             features=Features({"picture": ImageFeature(), "class": ClassLabel(names=NAMES)}))


NAMES = ["T-shirt/top", "Ankle boot", "Bag"]


def test_save_examples_writes_the_first_image_of_each_class_in_turn_named_by_position_and_label(tmp_path):
    split = small_split([0, 0, 1, 1, 2, 2, 0], ["L", "RGB", "P", "RGBA", "RGB", "L", "RGB"])
    paths = demo.save_examples(tmp_path, split, "picture", "class", NAMES, count=4)
    assert [path.name for path in paths] == ["00-t-shirt-top.png", "01-ankle-boot.png", "02-bag.png",
                                             "03-t-shirt-top.png"]
    assert all(path.parent == tmp_path / "examples" for path in paths)
    assert [Image.open(path).mode for path in paths] == ["L", "P", "RGB", "RGB"]  # rows 0, 2, 4, then 1: as stored

    again = demo.save_examples(tmp_path, split, "picture", "class", NAMES, count=2)  # a new run replaces them
    assert sorted(path.name for path in (tmp_path / "examples").iterdir()) == [path.name for path in again]


def test_save_examples_chooses_from_the_first_rows_of_a_streamed_split(tmp_path):
    split = small_split([2, 1, 1, 0], ["RGB"] * 4).to_iterable_dataset()
    paths = demo.save_examples(tmp_path, split, "picture", "class", NAMES)
    assert [path.name for path in paths] == ["00-bag.png", "01-ankle-boot.png", "02-t-shirt-top.png",
                                             "03-ankle-boot.png"]


# classifying


def test_the_page_gives_the_labels_and_probabilities_of_pipeline_image_classification(classifier, colour_model,
                                                                                      image_folders):
    from transformers import pipeline

    classify = pipeline("image-classification", model=str(colour_model["folder"]))
    for path in sorted(image_folders["test"].glob("*/*.png")):  # RGB, L, RGBA and P images of three sizes
        labels, overlay = demo.classify(classifier, str(path))
        expected = {p["label"]: p["score"] for p in classify(str(path), top_k=5)}
        assert list(labels) == list(expected) and labels == pytest.approx(expected, abs=1e-5)
        assert overlay.mode == "RGB"


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "I;16", "1"])
def test_an_image_of_any_mode_is_converted_and_classified(classifier, tmp_path, mode):
    path = tmp_path / f"image.{'jpg' if mode == 'CMYK' else 'png'}"
    image = Image.new("RGB", (37, 23), COLORS["green"])
    (image.convert("L") if mode == "I;16" else image).convert(mode).save(path)  # Pillow 10 has no RGB to I;16
    labels, overlay = demo.classify(classifier, str(path))
    assert len(labels) == 3 and sum(labels.values()) == pytest.approx(1.0, abs=1e-5)
    assert overlay.mode == "RGB" and overlay.size == (37 * 13, 23 * 13)  # enlarged 13x: 481 pixels, under 512


def test_transparent_pixels_are_white_as_in_training(classifier):
    clear = Image.new("RGBA", (32, 32), (255, 0, 0, 0))
    assert demo.model_image(clear, 3).getpixel((0, 0)) == (255, 255, 255)
    assert demo.model_image(clear, 1).getpixel((0, 0)) == 255


def test_the_overlay_is_about_512_pixels_on_its_longer_side_with_the_images_shape():
    heat = torch.rand(32, 32).numpy()
    assert demo.overlay(Image.new("L", (28, 28)), heat).size == (504, 504)  # 18 whole pixels each
    assert demo.overlay(Image.new("RGB", (1000, 500)), heat).size == (512, 256)
    assert demo.overlay(Image.new("RGB", (512, 300)), heat).size == (512, 300)


def test_no_image_a_file_that_is_not_an_image_and_a_huge_image_are_input_errors(classifier, tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    Image.new("1", (10_000, 10_000)).save(tmp_path / "huge.png")
    with pytest.raises(InputError, match="No image: upload one"):
        demo.classify(classifier, None)
    with pytest.raises(InputError, match="notes.txt is not an image this page can read"):
        demo.classify(classifier, str(tmp_path / "notes.txt"))
    with pytest.raises(InputError, match="huge.png is 10000x10000 pixels .100 megapixels., more than the 50"):
        demo.classify(classifier, str(tmp_path / "huge.png"))


def test_an_image_over_pillows_decompression_bomb_limit_gets_its_size_too(tmp_path):
    """Pillow refuses to open an image of over twice Image.MAX_IMAGE_PIXELS (358 megapixels) at all: the page reads
    its size from the header, with the limit lifted for that alone, and decodes nothing."""
    path, limit = tmp_path / "bomb.png", Image.MAX_IMAGE_PIXELS
    path.write_bytes(blank_png(20_000, 20_000))  # 1 bit a pixel, all zero: 50 MB of rows that zlib makes 50 kB
    with pytest.raises(InputError, match="bomb.png is 20000x20000 pixels .400 megapixels., more than the 50"):
        demo.open_image(str(path))
    assert Image.MAX_IMAGE_PIXELS == limit  # put back


def blank_png(width, height):
    """A valid black PNG, 1 bit a pixel, written without PIL (which would hold a byte a pixel in memory)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor, row = zlib.compressobj(9), bytes(1 + (width + 7) // 8)  # filter type 0, then the packed pixels
    idat = b"".join(compressor.compress(row * 1000) for _ in range(height // 1000))
    idat += compressor.compress(row * (height % 1000)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, grayscale, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# the line about the model


def test_the_page_names_the_model_its_size_its_data_and_its_test_accuracy(classifier, colour_model):
    text = demo.describe(classifier)
    parameters = sum(p.numel() for p in classifier.model.parameters())
    assert text.startswith("# colours\n")
    assert (f"vit-simple image classifier, {parameters / 1e6:.2f}M parameters, 32x32 RGB input, 3 classes · "
            f"trained on three colours · test accuracy {100 * colour_model['test_accuracy']:.2f}%") in text


def test_a_bare_model_folder_gets_its_name_and_size_alone(classifier, colour_model, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(colour_model["folder"] / name, bare / name)
    text = demo.describe(demo.load(str(bare)))  # the image processor is rebuilt from the config
    assert text.startswith("# bare\n") and text.endswith("32x32 RGB input, 3 classes")
    assert demo.example_images(demo.load(str(bare))) == []


# models that run their own code


def own_code_copy(folder, tmp_path):
    """The model as another architecture would ship it: a model type this package does not register, its code in
    its own .py files."""
    other = tmp_path / "other"
    shutil.copytree(folder, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "model_type": "colour_vit"}))
    code = (other / "configuration_vit_simple.py").read_text()
    assert code.count('model_type = "vit_simple"') == 1, "the config's model_type moved: update this test"
    (other / "configuration_vit_simple.py").write_text(code.replace('model_type = "vit_simple"',
                                                                    'model_type = "colour_vit"'))
    return other


def test_a_model_that_runs_its_own_code_is_served_only_with_trust_remote_code(classifier, colour_model, tmp_path,
                                                                             image_folders):
    other = own_code_copy(colour_model["folder"], tmp_path)
    message = exit_message([str(other)])
    assert message.startswith("app.py: error: ") and "\n" not in message
    assert "runs on its own code" in message and "pass --trust_remote_code to run it, if you trust it" in message

    trusted = demo.load(str(other), trust_remote_code=True)
    assert type(trusted.model).__module__.startswith("transformers_modules")  # its own .py files
    image = str(next(image_folders["test"].glob("red/*.png")))
    assert demo.classify(trusted, image)[0] == pytest.approx(demo.classify(classifier, image)[0], abs=1e-6)


# the command line


def test_help_shows_the_command_and_its_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        app.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "python app.py outputs/vit-simple" in out
    assert all(option in out for option in ("--trust_remote_code", "--port", "--share", "--write_space",
                                            "--hub_model_id", "--examples"))


def test_the_port_is_7860_unless_gradio_server_port_or_port_says_otherwise(monkeypatch):
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    assert app.parse_arguments(["model"]).port == 7860
    monkeypatch.setenv("GRADIO_SERVER_PORT", "8123")
    assert app.parse_arguments(["model"]).port == 8123
    assert app.parse_arguments(["model", "--port", "9000"]).port == 9000


def test_bad_input_is_refused_in_one_line_that_says_what_to_change(colour_model, tmp_path):
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    shutil.copy(colour_model["folder"] / "config.json", no_weights)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    folder = str(colour_model["folder"])
    cases = {
        str(tmp_path / "missing"): "missing is no local folder: give a folder saved by train_hf.py or save_pretrained",
        str(no_weights): "has a config.json but no weights (model.safetensors or pytorch_model.bin)",
        f"{folder} --write_space {tmp_path / 'space'}": "is a folder, and a Space loads its model from the Hub: "
                                                        "add --hub_model_id OWNER/NAME",
        f"{folder} --write_space {tmp_path / 'taken'} --hub_model_id a/b": "is not empty and holds no Space "
                                                                           "written by app.py",
        f"{folder} --write_space {tmp_path / 'space'} --hub_model_id a/b/c": "Repo id must be in the form",
    }
    for argv, expected in cases.items():
        message = exit_message(argv.split())
        assert message.startswith("app.py: error: ") and "\n" not in message, message
        assert expected in message, message
    assert not (tmp_path / "space").exists()


def test_the_library_imports_without_gradio_and_the_page_says_which_extra_to_install(colour_model, monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` raises ImportError, as when not installed
    monkeypatch.delitem(sys.modules, "vit_simple.demo")
    monkeypatch.setattr(vit_simple, "demo", demo)  # restored after the fresh import below replaces it
    fresh = importlib.import_module("vit_simple.demo")  # what train_hf.py imports for save_examples
    assert fresh is not demo and callable(fresh.save_examples)
    message = exit_message([str(colour_model["folder"])])
    assert message.startswith("app.py: error: ") and "\n" not in message
    assert message.endswith("install the demo extra, pip install 'vit-simple[demo]'")


# a Space


def test_write_space_writes_an_app_that_trusts_the_one_model_it_names_and_the_spaces_yaml(colour_model, tmp_path):
    space = tmp_path / "space"
    app.main([str(colour_model["folder"]), "--write_space", str(space), "--hub_model_id", "demo-user/colours"])
    assert {path.name for path in space.iterdir()} >= {"app.py", "requirements.txt", "README.md", "examples",
                                                       "vit_simple", "configuration_vit_simple.py",
                                                       "modeling_vit_simple.py"}
    code = ast.parse((space / "app.py").read_text())
    constants = {node.targets[0].id: node.value.value for node in code.body
                 if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)}
    assert constants == {"MODEL": "demo-user/colours"}
    trusting = [node for node in ast.walk(code) if isinstance(node, ast.Call)
                and any(keyword.arg == "trust_remote_code" for keyword in node.keywords)]
    assert len(trusting) == 1 and ast.unparse(trusting[0].args[0]) == "MODEL"

    card = SpaceCard.load(space / "README.md")
    assert (card.data.sdk, card.data.app_file, card.data.models) == ("gradio", "app.py", ["demo-user/colours"])
    assert card.data.sdk_version == importlib.metadata.version("gradio")
    assert "hf upload demo-user/colours-demo . . --type space" in card.text
    assert "upload_folder(" in card.text and "test accuracy" in card.text
    names = {Requirement(line).name for line in (space / "requirements.txt").read_text().splitlines()}
    assert {"torch", "transformers", "einops", "matplotlib", "scikit-learn"} <= names
    assert not names & {"gradio", "playwright", "pytest", "onnx"}  # gradio is sdk_version; no test or export tools
    assert (space / "vit_simple" / "demo.py").read_text() == Path(demo.__file__).read_text()  # the library as here
    assert not list(space.glob("vit_simple/**/__pycache__"))
    assert sorted(path.name for path in (space / "examples").iterdir()) == \
        sorted(path.name for path in (colour_model["folder"] / "examples").iterdir())

    app.main([str(colour_model["folder"]), "--write_space", str(space), "--hub_model_id", "demo-user/colours"])
    assert (space / "app.py").is_file()  # a Space written before is updated in place
