"""A saved folder is a Hub model repo: it loads anywhere transformers runs, with or without this repo installed."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageClassification

import vit_simple
from conftest import tiny_config
from modeling_vit_simple import ViTSimpleForImageClassification

LABELS = {0: "cat", 1: "dog", 2: "fish"}

# Run in a fresh interpreter whose cwd is elsewhere and which cannot import this repo's modules (they are installed
# in the virtual environment, so they are blocked explicitly): everything must come from the folder's remote code.
FRESH_PROCESS = textwrap.dedent(
    """
    import json, sys
    BLOCKED = {"configuration_vit_simple", "modeling_vit_simple", "vit_simple"}

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name in BLOCKED:
                raise ImportError(f"{name} must not be importable here")

    sys.meta_path.insert(0, Block())
    import torch
    from PIL import Image
    from transformers import AutoConfig, AutoModel, AutoModelForImageClassification, pipeline

    folder, image_path = sys.argv[1], sys.argv[2]
    images = torch.load(f"{folder}/../images.pt", weights_only=True)
    config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    classifier = AutoModelForImageClassification.from_pretrained(folder, trust_remote_code=True).eval()
    base = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    resized = AutoModelForImageClassification.from_pretrained(folder, trust_remote_code=True, image_size=48).eval()
    with torch.no_grad():
        logits = classifier(images).logits
        pooled = base(images).pooler_output
        at_48 = resized(torch.nn.functional.interpolate(images, size=48)).logits
    classify = pipeline("image-classification", model=folder, trust_remote_code=True)
    print(json.dumps({
        "config": type(config).__name__, "hidden_size": config.dim,
        "classifier": type(classifier).__name__, "base": type(base).__name__,
        "modules": sorted({type(m).__module__ for m in (config, classifier, base)}),
        "logits": logits.tolist(), "pooled": pooled.tolist(), "resized": type(resized).__module__,
        "image_size": resized.config.image_size, "logits_at_48": at_48.tolist(),
        "one_image": classify(Image.new("L", (20, 24), 128)),
        "path": classify(image_path, top_k=1),
        "batch": classify([Image.new("RGB", (40, 40), (255, 0, 0)), Image.new("RGBA", (16, 16))], top_k=3),
    }))
    """
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    torch.manual_seed(0)
    config = tiny_config(id2label=LABELS)
    model = ViTSimpleForImageClassification(config).eval()
    folder = root / "model"
    model.save_pretrained(folder)
    vit_simple.image_processor_for(config).save_pretrained(folder)
    images = torch.randn(2, 3, 32, 32)
    torch.save(images, root / "images.pt")
    Image.new("P", (33, 31)).save(root / "image.png")
    return folder, model, images


def test_save_pretrained_writes_a_complete_hub_repo(saved):
    folder, _, _ = saved
    assert {"config.json", "model.safetensors", "configuration_vit_simple.py", "modeling_vit_simple.py",
            "preprocessor_config.json"} <= set(os.listdir(folder))
    assert not any(name.endswith((".bin", ".pt", ".pth")) for name in os.listdir(folder))
    config = json.loads((folder / "config.json").read_text())
    assert set(config["auto_map"]) == {"AutoConfig", "AutoModel", "AutoModelForImageClassification"}
    assert config["model_type"] == "vit_simple"
    processor = json.loads((folder / "preprocessor_config.json").read_text())
    assert processor["size"] == {"height": 32, "width": 32} and processor["do_convert_rgb"] is True


def test_remote_code_loads_in_a_fresh_process_without_this_repo_at_any_image_size(saved, tmp_path):
    folder, model, images = saved
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(folder), str(folder.parent / "image.png")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert (out["config"], out["classifier"], out["base"]) == (
        "ViTSimpleConfig", "ViTSimpleForImageClassification", "ViTSimpleModel")
    assert all(module.startswith("transformers_modules.") for module in out["modules"])
    assert out["hidden_size"] == 32
    with torch.no_grad():
        expected = model(images)
    assert torch.equal(torch.tensor(out["logits"]), expected.logits)
    assert torch.equal(torch.tensor(out["pooled"]), model.vit(images).pooler_output)
    # at another image size, remote code resamples the position embeddings as this package does
    assert out["resized"].startswith("transformers_modules.") and out["image_size"] == 48
    at_48 = ViTSimpleForImageClassification.from_pretrained(folder, image_size=48).eval()
    with torch.no_grad():
        expected_48 = at_48(torch.nn.functional.interpolate(images, size=48)).logits
    torch.testing.assert_close(torch.tensor(out["logits_at_48"]), expected_48, rtol=1e-5, atol=1e-5)

    assert len(out["one_image"]) == 3 and {p["label"] for p in out["one_image"]} == set(LABELS.values())
    assert len(out["path"]) == 1 and out["path"][0]["label"] in LABELS.values()
    assert len(out["batch"]) == 2 and all(len(preds) == 3 for preds in out["batch"])


def test_the_pipeline_prediction_is_the_models_argmax(saved):
    from transformers import pipeline

    folder, model, _ = saved
    image = Image.new("RGB", (50, 70), (10, 200, 30))
    classify = pipeline("image-classification", model=str(folder))
    processor = vit_simple.image_processor_for(model.config)
    with torch.no_grad():
        logits = model(processor(image, return_tensors="pt").pixel_values).logits[0]
    best = classify(image, top_k=1)[0]
    assert best["label"] == LABELS[logits.argmax().item()]
    assert best["score"] == pytest.approx(logits.softmax(-1).max().item(), abs=1e-5)


def test_installed_package_loads_without_remote_code(saved, tmp_path):
    folder, model, images = saved
    without_code = tmp_path / "no_code"
    model.save_pretrained(without_code)
    for name in ("configuration_vit_simple.py", "modeling_vit_simple.py"):
        os.remove(without_code / name)
    loaded = AutoModelForImageClassification.from_pretrained(without_code).eval()  # registered by `import vit_simple`
    assert type(loaded) is ViTSimpleForImageClassification
    with torch.no_grad():
        assert torch.equal(loaded(images).logits, model(images).logits)


def test_grayscale_model_gets_a_one_channel_processor():
    config = tiny_config(channels=1)
    processor = vit_simple.image_processor_for(config)
    pixel_values = processor(Image.new("L", (40, 40)), return_tensors="pt").pixel_values
    assert pixel_values.shape == (1, 1, 32, 32)
    assert ViTSimpleForImageClassification(config).eval()(pixel_values).logits.shape == (1, 3)
    with pytest.raises(ValueError, match="one value per channel"):
        vit_simple.image_processor_for(config, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
