import contextlib
import os

# Tests never reach the Hub (there is no network here): fail fast instead of retrying for ~20 s per call.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))  # pytest-xdist's processes share the cores
os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // WORKERS)))

import re  # noqa: E402
import subprocess  # noqa: E402

import numpy as np  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

import vit_simple  # noqa: E402,F401  (registers the Auto classes)
from configuration_vit_simple import ViTSimpleConfig  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TINY = "dim=32,depth=2,heads=2,dim_head=16,mlp_dim=64"  # --config_overrides of a tiny model for train_hf.py
FAST = ["--dataloader_num_workers", "0", "--per_device_train_batch_size", "16", "--per_device_eval_batch_size", "32",
        "--logging_steps", "1", "--report_to", "none", "--disable_tqdm", "true"]  # train_hf.py options of quick runs


# The slowest files (training runs and subprocesses; seconds on 2 cores), started first so that the two workers end
# together: pytest-xdist gives each worker whole files in this order. The rest follow in their usual order.
SLOWEST_FIRST = ["test_train_hf.py", "test_resume.py", "test_wheel.py", "test_export.py", "test_app.py",
                 "test_trainer.py", "test_bench_vit.py", "test_readme.py", "test_hub_folder.py"]  # 60 ... 14 s


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def run_script(*args, cwd=REPO, timeout=300):
    """Run a command in a fresh process, offline; its combined output."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def assert_same_weights(expected_dir, actual_dir):
    expected, actual = load_file(expected_dir / "model.safetensors"), load_file(actual_dir / "model.safetensors")
    assert expected.keys() == actual.keys()
    different = [name for name in expected if not torch.equal(expected[name], actual[name])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[0]}: max |difference| " \
        f"{(expected[different[0]] - actual[different[0]]).abs().max().item():.3g}"


def tiny_config(**overrides):
    """A model small enough for tests: 32x32 images, 8x8 patches, width 32, two blocks."""
    kwargs = dict(image_size=32, patch_size=8, dim=32, depth=2, heads=4, dim_head=8, mlp_dim=64, num_labels=3)
    kwargs.update(overrides)
    return ViTSimpleConfig(**kwargs)


def rename_state(state, table):
    """A state dict under new names: the first (regular expression, replacement) of `table` that matches each name."""
    renamed = {}
    for name, tensor in state.items():
        for pattern, replacement in table:
            new_name = re.sub(pattern, replacement, name)
            if new_name != name:
                renamed[new_name] = tensor
                break
        else:
            raise KeyError(f"no vit-simple name for {name}")
    return renamed


def assert_exports_agree(model, tmp_path, pixel_values, atol=1e-4):
    """The model's ONNX and torch.export files give its PyTorch logits."""
    from vit_simple import export

    with torch.no_grad():
        expected = model(pixel_values=pixel_values).logits.numpy()
    onnx_file = export.export_onnx(model, tmp_path / "model.onnx")
    assert np.abs(export.run_exported(onnx_file, pixel_values) - expected).max() <= atol
    export.export_program(model, tmp_path / "model.pt2")
    with torch.no_grad():
        program = torch.export.load(str(tmp_path / "model.pt2")).module()
        assert np.abs(program(pixel_values).numpy() - expected).max() <= atol


# Drawing the four report figures (matplotlib's layout and rendering) costs a tiny run more than its training: about
# 5 s of a 2-core machine. In this process the figures are built, with every axis, label and image, but saved blank
# at their size in pixels, except within `drawn_figures()`: in test_reports.py and for the runs whose tests open the
# pictures. Runs in subprocesses (the script, the wheel, resume, DDP, the README) draw them as users get them.
DRAWN = {"figures": False}


@contextlib.contextmanager
def drawn_figures():
    drawn, DRAWN["figures"] = DRAWN["figures"], True
    try:
        yield
    finally:
        DRAWN["figures"] = drawn


@pytest.fixture(scope="session", autouse=True)
def figures_drawn_only_where_looked_at():
    try:
        from vit_simple import reports
    except ImportError:  # no reports extra: no figures to draw
        yield
        return

    def save(figure, path):
        if DRAWN["figures"]:
            return draw(figure, path)
        width, height = figure.get_size_inches() * reports.DPI
        Image.new("RGB", (round(width), round(height)), "white").save(path)
        return str(path)

    draw, reports.save = reports.save, save
    yield
    reports.save = draw


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return tiny_config


FASHION_MNIST = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist, installed by setup.sh


def write_idx(path, array, compress=True):
    """An IDX file: two zero bytes, dtype 0x08 (uint8), ndim, big-endian dims, then the data; gzip unless told."""
    import gzip

    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(header + array.astype("uint8").tobytes())


@pytest.fixture(scope="session")
def fashion_slice(tmp_path_factory):
    """The first 160 training and 64 test images of the real Fashion-MNIST, as IDX files."""
    from vit_simple.fashion_mnist import SPLIT_FILES, read_idx

    folder = tmp_path_factory.mktemp("fashion-mnist")
    for split, count in (("train", 160), ("test", 64)):
        for name in SPLIT_FILES[split]:
            write_idx(folder / f"{name}.gz", read_idx(Path(FASHION_MNIST) / f"{name}.gz")[:count])
    return folder


# image folders: three colours of noisy squares

COLORS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220)}


def save_image(path, color, size, mode, seed):
    """A noisy `color` square on a dark background, saved in `mode` (L, RGB, RGBA or P)."""
    rng = np.random.default_rng(seed)
    width, height = size
    pixels = rng.integers(0, 40, (height, width, 3))
    pixels[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = color
    image = Image.fromarray(pixels.astype(np.uint8))
    image = {"RGBA": lambda: image.convert("RGBA"), "P": lambda: image.convert("P"),
             "L": lambda: image.convert("L")}.get(mode, lambda: image)()
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def make_image_folder(root, per_class, seed=0):
    """root/<color>/<n>.png for three colours, in mixed modes (L, RGB, RGBA, P) and sizes (32x32, 40x30, 24x36)."""
    modes, sizes = ["RGB", "L", "RGBA", "P"], [(32, 32), (40, 30), (24, 36)]
    for c, (name, color) in enumerate(COLORS.items()):
        for n in range(per_class):
            save_image(root / name / f"{n}.png", color, sizes[n % 3], modes[(n + c) % 4], seed=seed + 100 * c + n)
    return root


@pytest.fixture(scope="session")
def image_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    return {split: make_image_folder(root / split, per_class, seed=i * 1000)
            for i, (split, per_class) in enumerate((("train", 8), ("validation", 3), ("test", 3)))}


# the demo page (app.py, vit_simple/demo.py): a tiny classifier of the three colours, trained a little


def images_and_labels(folder, labels):
    paths = sorted(folder.glob("*/*.png"))
    return [Image.open(path) for path in paths], torch.tensor([labels.index(path.parent.name) for path in paths])


@pytest.fixture(scope="session")
def colour_model(tmp_path_factory, image_folders):
    """A tiny vit-simple trained for 30 steps to tell the three colours apart (so that a clean red square is "red",
    by a wide margin), saved as train_hf.py saves a model: weights, image processor, .py files, a model card naming
    its data, all_results.json and examples/ of its test split. {"folder", "labels", "test_accuracy"}."""
    from datasets import ClassLabel, Dataset, Features
    from datasets import Image as ImageFeature
    from huggingface_hub import EvalResult, ModelCardData
    from transformers import AutoModelForImageClassification

    from vit_simple.demo import save_examples
    from vit_simple.model_card import save_card

    labels = list(COLORS)
    config = tiny_config(id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)})
    torch.manual_seed(0)
    model = AutoModelForImageClassification.from_config(config)
    processor = vit_simple.image_processor_for(config)
    images, targets = images_and_labels(image_folders["train"], labels)
    pixel_values = processor(images, return_tensors="pt")["pixel_values"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # steps this small take 15 ms on one thread, and 10x that when a busy process stalls two
    try:
        for _ in range(30):
            loss = model(pixel_values=pixel_values, labels=targets).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    images, targets = images_and_labels(image_folders["test"], labels)
    with torch.no_grad():
        predictions = model(pixel_values=processor(images, return_tensors="pt")["pixel_values"]).logits.argmax(-1)
    accuracy = (predictions == targets).float().mean().item()

    folder = tmp_path_factory.mktemp("demo") / "colours"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    (folder / "all_results.json").write_text(f'{{"test_accuracy": {accuracy}, "eval_accuracy": 0.5}}')
    result = EvalResult(task_type="image-classification", dataset_type="colours", dataset_name="three colours",
                        dataset_split="test", metric_type="accuracy", metric_value=accuracy)
    save_card(folder, ModelCardData(library_name="transformers", eval_results=[result], model_name="colours"),
              "\n# colours\n")
    paths = sorted(image_folders["test"].glob("*/*.png"))
    test_split = Dataset.from_dict(
        {"image": [str(path) for path in paths], "label": [labels.index(path.parent.name) for path in paths]},
        features=Features({"image": ImageFeature(), "label": ClassLabel(names=labels)}))
    save_examples(folder, test_split, "image", "label", labels, count=3)
    return {"folder": folder, "labels": labels, "test_accuracy": accuracy}


# Checkpoint folders a user may give by mistake: every entry point must refuse each in one line (vit_simple.checkpoints).
HOSTILE = ("other_model_type", "config_not_json", "field_of_wrong_type", "config_but_no_weights",
           "weights_of_other_shapes", "truncated_weights", "empty_folder", "path_is_a_file")


def make_hostile_folders(root, model="vit_simple"):
    """{case: path} for each HOSTILE case, made from a tiny vit-simple (or, model="vit", a transformers ViT, what
    vit-simple-convert --source takes) saved by save_pretrained (under root/good)."""
    import json

    import transformers

    def save(folder, **overrides):
        if model == "vit":
            config = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                                            num_attention_heads=4, intermediate_size=64, num_labels=3)
            config.update(overrides)
        else:
            config = tiny_config(**overrides)
        transformers.AutoModelForImageClassification.from_config(config).save_pretrained(folder)

    root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    good = root / "good"
    save(good)
    config = json.loads((good / "config.json").read_text())
    folders = {}

    def copy(case, config=config, weights=True):
        folder = folders[case] = root / case
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(config) if isinstance(config, dict) else config)
        if weights:
            (folder / "model.safetensors").write_bytes((good / "model.safetensors").read_bytes())
        return folder

    bert = transformers.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                   intermediate_size=64)
    transformers.BertModel(bert).save_pretrained(root / "other_model_type")
    folders["other_model_type"] = root / "other_model_type"
    copy("config_not_json", (good / "config.json").read_text()[:-40])  # cut short, as by a full disk
    copy("field_of_wrong_type", {**config, ("hidden_size" if model == "vit" else "dim"): "wide"})
    copy("config_but_no_weights", weights=False)
    save(root / "other_shapes", **({"intermediate_size": 128} if model == "vit" else {"mlp_dim": 128}))
    copy("weights_of_other_shapes", weights=False)
    (folders["weights_of_other_shapes"] / "model.safetensors").write_bytes(
        (root / "other_shapes" / "model.safetensors").read_bytes())
    data = (good / "model.safetensors").read_bytes()
    (copy("truncated_weights", weights=False) / "model.safetensors").write_bytes(data[: len(data) * 2 // 3])
    folders["empty_folder"] = root / "empty_folder"
    folders["empty_folder"].mkdir()
    folders["path_is_a_file"] = good / "config.json"  # a file of the folder given for the folder
    assert sorted(folders) == sorted(HOSTILE)
    return folders
