"""Pretrained weights: transformers' and timm's ViTs convert to vit-simple with the same logits, at any image size, and
vit-simple exports back to a native transformers ViT. Every source is a small random model built and saved here."""

import json
import os
import sys

import pytest
import torch
from PIL import Image
from huggingface_hub import ModelCard
from safetensors.torch import load_file, save_file
from transformers import (AutoModelForImageClassification, ViTConfig, ViTForImageClassification, ViTImageProcessor,
                          ViTModel)

import timm  # a dev dependency (pyproject's `dev` extra); the converter imports it only for timm sources
from timm.models import save_for_hf
from timm.models.vision_transformer import checkpoint_filter_fn

import train_hf
from configuration_vit_simple import ViTSimpleConfig
from conftest import tiny_config
from modeling_vit_simple import ViTSimpleForImageClassification, ViTSimpleModel
from vit_simple import convert as convert_command
from vit_simple.convert import convert_vit_weights as convert
from vit_simple.convert import export_to_transformers

TOLERANCE = 1e-4  # max abs logit difference, float32
LABELS = {0: "cat", 1: "dog", 2: "fish", 3: "bird", 4: "frog"}
TIMM_ARCH = "vit_tiny_patch16_224"
TIMM_ARGS = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=4)


def images(size=32, seed=0):
    return torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(seed))


def max_diff(a, b):
    return (a - b).abs().max().item()


def perturbed(model):
    """Every parameter moved off its initial value (LayerNorms 1 and 0, zero biases): a swapped or dropped one shows."""
    torch.manual_seed(1)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.1 * torch.randn_like(param))
    return model.eval()


def small_vit_config(**overrides):
    kwargs = dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=64, id2label=LABELS)
    return ViTConfig(**{**kwargs, **overrides})


def timm_vit(**overrides):
    return perturbed(timm.create_model(TIMM_ARCH, pretrained=False, **{**TIMM_ARGS, "num_classes": 5, **overrides}))


@pytest.fixture(scope="module")
def google(tmp_path_factory):
    """A transformers ViT classifier saved twice: by save_pretrained (which writes the pre-5 names google/vit-* on the
    Hub have: encoder.layer.N.attention.attention.query, ...) and with transformers 5's own module names."""
    root = tmp_path_factory.mktemp("google")
    torch.manual_seed(0)
    model = perturbed(ViTForImageClassification(small_vit_config()))
    processor = ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.485, 0.456, 0.406],
                                  image_std=[0.229, 0.224, 0.225], resample=2)
    model.save_pretrained(root / "legacy")
    processor.save_pretrained(root / "legacy")
    legacy_keys = set(load_file(root / "legacy" / "model.safetensors"))
    assert "vit.encoder.layer.0.attention.attention.query.weight" in legacy_keys
    model.config.save_pretrained(root / "new")
    save_file({name: t.contiguous() for name, t in model.state_dict().items()}, root / "new" / "model.safetensors")
    assert "vit.layers.0.attention.q_proj.weight" in load_file(root / "new" / "model.safetensors")
    return root, model


@pytest.fixture(scope="module")
def timm_source(tmp_path_factory):
    """A timm ViT saved in timm's Hub format (config.json with model_args and label names, model.safetensors) and as
    a bare .pth state dict."""
    root = tmp_path_factory.mktemp("timm")
    model = timm_vit()
    save_for_hf(model, root / "hub", model_config={"label_names": list(LABELS.values())}, model_args=TIMM_ARGS,
                safe_serialization=True)
    torch.save(model.state_dict(), root / "weights.pth")
    return root, model


@pytest.mark.parametrize("naming", ["legacy", "new"])
def test_transformers_vit_gives_the_same_logits_and_a_complete_folder(google, tmp_path, naming):
    root, source = google
    model = convert(root / naming, tmp_path / "out")
    assert type(model) is ViTSimpleForImageClassification
    with torch.no_grad():
        expected = source(images()).logits
        assert max_diff(model(images()).logits, expected) <= TOLERANCE
    config = model.config
    assert (config.qkv_bias, config.patch_norm, config.pool, config.layer_norm_eps) == (True, False, "cls", 1e-12)
    assert (config.hidden_size, config.num_attention_heads, config.head_dim, config.num_hidden_layers) == (32, 4, 8, 2)
    assert config.id2label == LABELS

    files = set(os.listdir(tmp_path / "out"))
    assert {"config.json", "model.safetensors", "configuration_vit_simple.py", "modeling_vit_simple.py",
            "preprocessor_config.json", "README.md"} <= files
    assert str(root / naming) in (tmp_path / "out" / "README.md").read_text()
    if naming == "legacy":  # the source's preprocessing travels with the weights
        processor = json.loads((tmp_path / "out" / "preprocessor_config.json").read_text())
        assert processor["image_mean"] == [0.485, 0.456, 0.406] and processor["image_std"] == [0.229, 0.224, 0.225]
        assert processor["resample"] == 2 and processor["size"] == {"height": 32, "width": 32}
    reloaded = AutoModelForImageClassification.from_pretrained(tmp_path / "out", trust_remote_code=True).eval()
    with torch.no_grad():
        assert max_diff(reloaded(images()).logits, expected) <= TOLERANCE


def test_headless_vit_model_converts_to_the_base_model_without_its_pooler(tmp_path):
    torch.manual_seed(0)
    source = perturbed(ViTModel(small_vit_config(), add_pooling_layer=True))
    source.save_pretrained(tmp_path / "in21k")
    assert "pooler.dense.weight" in load_file(tmp_path / "in21k" / "model.safetensors")
    model = convert(tmp_path / "in21k", tmp_path / "out")
    assert type(model) is ViTSimpleModel
    with torch.no_grad():
        assert max_diff(model(images()).last_hidden_state, source(images()).last_hidden_state) <= TOLERANCE
    assert "new one" in (tmp_path / "out" / "README.md").read_text()
    # a classifier starts from it with a new head, as transformers does with google's in21k checkpoints
    classifier = ViTSimpleForImageClassification.from_pretrained(tmp_path / "out", num_labels=3)
    assert classifier.classifier.out_features == 3
    assert torch.equal(classifier.vit.embeddings.position_embeddings, model.embeddings.position_embeddings)


@pytest.mark.parametrize("form", ["hub folder", "pth file"])
def test_timm_vit_gives_the_same_logits(timm_source, tmp_path, form):
    root, source = timm_source
    if form == "hub folder":
        model = convert(root / "hub", tmp_path / "out")
        assert model.config.id2label == LABELS  # timm's label names
        processor = json.loads((tmp_path / "out" / "preprocessor_config.json").read_text())
        assert processor["resample"] == 3 and processor["image_mean"] == [0.5, 0.5, 0.5]  # timm's bicubic, mean, std
    else:
        model = convert(root / "weights.pth", timm_model=TIMM_ARCH, timm_model_args=TIMM_ARGS)
    with torch.no_grad():
        assert max_diff(model(images()).logits, source(images())) <= TOLERANCE
    config = model.config
    assert (config.qkv_bias, config.patch_norm, config.pool, config.layer_norm_eps) == (True, False, "cls", 1e-6)


@pytest.mark.parametrize("variant, pool", [
    (dict(class_token=False, global_pool="avg", fc_norm=False), "mean"),
    (dict(no_embed_class=True), "cls"),  # the CLS token has no position embedding: a zero one here
    (dict(qkv_bias=False), "cls"),
    (dict(num_classes=0), "cls"),  # a headless backbone
])
def test_timm_variants_vit_simple_can_represent_convert_exactly(tmp_path, variant, pool):
    source = timm_vit(**variant)
    save_file(source.state_dict(), tmp_path / "weights.safetensors")
    model = convert(tmp_path / "weights.safetensors", timm_model=TIMM_ARCH, timm_model_args={**TIMM_ARGS, **variant})
    assert model.config.pool == pool and model.config.qkv_bias == variant.get("qkv_bias", True)
    with torch.no_grad():
        if variant.get("num_classes") == 0:
            assert type(model) is ViTSimpleModel
            assert max_diff(model(images()).last_hidden_state, source.forward_features(images())) <= TOLERANCE
        else:
            assert max_diff(model(images()).logits, source(images())) <= TOLERANCE


@pytest.mark.parametrize("variant, reason", [
    (dict(class_token=False, global_pool="avg"), "fc_norm"),  # timm's default: LayerNorm after the mean
    (dict(global_pool="avg", fc_norm=False), "beside a class token"),
    (dict(reg_tokens=4), "register tokens"),
    (dict(init_values=1e-5), "layer scale"),
    (dict(qk_norm=True), "qk_norm"),
    (dict(pre_norm=True), "pre_norm"),
    (dict(act_layer="gelu_tanh"), "exact GELU"),
    (dict(global_pool="map"), "attention pooling"),
])
def test_timm_models_vit_simple_cannot_represent_are_rejected_saying_why(tmp_path, variant, reason):
    torch.save(timm_vit(**variant).state_dict(), tmp_path / "weights.pth")
    with pytest.raises(ValueError, match=reason):
        convert(tmp_path / "weights.pth", timm_model=TIMM_ARCH, timm_model_args={**TIMM_ARGS, **variant})


def test_missing_and_unexpected_weights_are_named(google, timm_source, tmp_path):
    root, _ = google
    tensors = load_file(root / "legacy" / "model.safetensors")
    del tensors["vit.encoder.layer.1.output.dense.bias"]
    tensors["vit.encoder.layer.0.attention.attention.rel_pos.weight"] = torch.zeros(3)
    (tmp_path / "google").mkdir()
    save_file(tensors, tmp_path / "google" / "model.safetensors")
    (tmp_path / "google" / "config.json").write_text((root / "legacy" / "config.json").read_text())
    with pytest.raises(ValueError, match=r"missing: vit\.layers\.1\.mlp\.fc2\.bias.*unexpected: "
                                         r"vit\.encoder\.layer\.0\.attention\.attention\.rel_pos\.weight"):
        convert(tmp_path / "google")

    timm_root, _ = timm_source
    tensors = torch.load(timm_root / "weights.pth", weights_only=True)
    del tensors["blocks.0.attn.proj.bias"]
    torch.save(tensors, tmp_path / "timm.pth")
    with pytest.raises(ValueError, match=r"missing: blocks\.0\.attn\.proj\.bias"):
        convert(tmp_path / "timm.pth", timm_model=TIMM_ARCH, timm_model_args=TIMM_ARGS)


def test_a_wrong_architecture_for_a_weights_file_is_named_with_its_shapes(timm_source):
    root, _ = timm_source
    with pytest.raises(ValueError, match=r"position_embeddings \(from pos_embed\) has shape \(1, 17, 32\), expected "
                                         r"\(1, 37, 32\).*--timm_model_args"):
        convert(root / "weights.pth", timm_model=TIMM_ARCH, timm_model_args={**TIMM_ARGS, "img_size": 48})
    with pytest.raises(ValueError, match="--timm_model"):
        convert(root / "weights.pth")  # a bare weights file says nothing of its architecture


def test_sources_that_are_not_vits_are_rejected(tmp_path):
    vit_simple_folder = tmp_path / "vit-simple"
    ViTSimpleForImageClassification(tiny_config()).save_pretrained(vit_simple_folder)
    with pytest.raises(ValueError, match="'vit_simple'.*--export"):
        convert(vit_simple_folder)
    with pytest.raises(FileNotFoundError, match="No such file or folder"):
        convert(tmp_path / "no-such-folder")
    with pytest.raises(FileNotFoundError, match="could not be fetched"):
        convert("nobody/no-such-vit")  # offline, and not in the Hub cache


def test_converting_at_another_size_resamples_as_timm_does_on_load(timm_source, tmp_path):
    root, source = timm_source
    model = convert(root / "hub", tmp_path / "at48", image_size=48)
    assert model.config.image_size == 48 and model.vit.embeddings.position_embeddings.shape == (1, 37, 32)
    assert torch.equal(model.vit.embeddings.position_embeddings[:, 0], source.pos_embed[:, 0])  # CLS kept
    timm_at_48 = timm.create_model(TIMM_ARCH, pretrained=False, **{**TIMM_ARGS, "img_size": 48, "num_classes": 5})
    timm_at_48.load_state_dict(checkpoint_filter_fn(source.state_dict(), timm_at_48))  # timm's own resampling
    with torch.no_grad():
        assert max_diff(model(images(48)).logits, timm_at_48.eval()(images(48))) <= TOLERANCE
    assert json.loads((tmp_path / "at48" / "preprocessor_config.json").read_text())["size"] == {"height": 48,
                                                                                                "width": 48}
    assert "resampled" in (tmp_path / "at48" / "README.md").read_text()


def test_from_pretrained_at_another_image_size_resamples_instead_of_failing(google, tmp_path):
    root, _ = google
    folder = tmp_path / "b16"
    at_32 = convert(root / "legacy", folder)
    converted_at_48 = convert(root / "legacy", image_size=48)
    with torch.no_grad():
        expected = at_32(images(48), interpolate_pos_encoding=True).logits
        assert torch.equal(converted_at_48(images(48)).logits, expected)
        for loaded in (ViTSimpleForImageClassification.from_pretrained(folder, image_size=48),
                       AutoModelForImageClassification.from_pretrained(folder, image_size=48),
                       AutoModelForImageClassification.from_pretrained(folder, image_size=48, trust_remote_code=True)):
            assert loaded.config.image_size == 48
            assert torch.equal(loaded(images(48)).logits, expected)
        config = ViTSimpleConfig.from_pretrained(folder, image_size=[48, 64])
        wide = ViTSimpleForImageClassification.from_pretrained(folder, config=config)
        assert config.image_size == [48, 64]  # the caller's config is left as it was given
        assert wide(torch.randn(1, 3, 48, 64)).logits.shape == (1, 5)
    with pytest.raises(ValueError, match="not divisible by patch_size"):
        ViTSimpleForImageClassification.from_pretrained(folder, image_size=50)


def test_command_line_converts_offline(google, timm_source, tmp_path, capsys):
    google_root, google_model = google
    timm_root, timm_model = timm_source
    commands = {
        "google": ["--source", str(google_root / "legacy"), "--image_size", "48"],
        "timm": ["--source", str(timm_root / "weights.pth"), "--timm_model", TIMM_ARCH,
                 "--timm_model_args", json.dumps(TIMM_ARGS)],
    }
    for name, arguments in commands.items():
        convert_command.main([*arguments, "--output_dir", str(tmp_path / name)])
        assert f"Wrote {tmp_path / name}" in capsys.readouterr().out
    card = ModelCard.load(tmp_path / "google" / "README.md")  # the one model-card writer, with Hub metadata
    assert card.data.library_name == "transformers" and "vit-simple" in card.data.tags
    assert card.data.base_model is None  # a local source is no Hub model to link
    assert "resampled (bicubic, CLS kept) from the source's 32x32" in card.text
    with torch.no_grad():
        at_48 = ViTSimpleForImageClassification.from_pretrained(tmp_path / "google")
        resampled = convert(google_root / "legacy", image_size=48)
        assert torch.equal(at_48(images(48)).logits, resampled(images(48)).logits)
        from_timm = ViTSimpleForImageClassification.from_pretrained(tmp_path / "timm")
        assert max_diff(from_timm(images()).logits, timm_model(images())) <= TOLERANCE


def test_command_line_errors_say_what_to_fix(tmp_path, capsys):
    torch.save({}, tmp_path / "x.pth")
    with pytest.raises(SystemExit, match="error: .*--timm_model"):
        convert_command.main(["--source", str(tmp_path / "x.pth"), "--output_dir", str(tmp_path / "out")])
    with pytest.raises(SystemExit):
        convert_command.main(["--export", "folder", "--image_size", "48", "--output_dir", str(tmp_path / "o")])
    assert "--image_size and --timm_model* go with --source" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        convert_command.main(["--source", "s", "--timm_model_args", "[1]", "--output_dir", str(tmp_path / "o")])
    assert "JSON object" in capsys.readouterr().err


def test_export_round_trip_gives_a_native_vit_with_the_same_logits(google, tmp_path, capsys):
    root, source = google
    convert(root / "legacy", tmp_path / "vit-simple")
    convert_command.main(["--export", str(tmp_path / "vit-simple"), "--output_dir", str(tmp_path / "native")])
    assert "transformers ViTForImageClassification" in capsys.readouterr().out
    files = set(os.listdir(tmp_path / "native"))
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= files
    assert not any(name.endswith(".py") for name in files)
    config = json.loads((tmp_path / "native" / "config.json").read_text())
    assert config["model_type"] == "vit" and "auto_map" not in config
    native = AutoModelForImageClassification.from_pretrained(tmp_path / "native")  # no remote code
    assert type(native) is ViTForImageClassification and native.config.id2label == LABELS
    with torch.no_grad():
        assert max_diff(native(images()).logits, source(images()).logits) <= TOLERANCE
    processor = json.loads((tmp_path / "native" / "preprocessor_config.json").read_text())
    assert processor["image_mean"] == [0.485, 0.456, 0.406] and processor["resample"] == 2


@pytest.mark.parametrize("overrides", [
    dict(qkv_bias=False, heads=4, dim_head=16),  # no qkv bias, heads * dim_head != dim
    dict(qkv_bias=True, heads=1, dim_head=32),  # one head as wide as the model: no output projection in vit-simple
])
def test_export_of_a_trained_vit_simple_keeps_its_logits(tmp_path, overrides):
    torch.manual_seed(0)
    model = perturbed(ViTSimpleForImageClassification(tiny_config(patch_norm=False, id2label=LABELS, **overrides)))
    native = export_to_transformers(model, tmp_path / "native")
    with torch.no_grad():
        assert max_diff(native(images()).logits, model(images()).logits) <= TOLERANCE
        reloaded = AutoModelForImageClassification.from_pretrained(tmp_path / "native")
        assert max_diff(reloaded(images()).logits, model(images()).logits) <= TOLERANCE


@pytest.mark.parametrize("overrides, reason", [(dict(), "patch_norm=True"), (dict(patch_norm=False, pool="mean"),
                                                                                 "pool='mean'")])
def test_export_rejects_what_transformers_vit_cannot_represent(overrides, reason):
    with pytest.raises(ValueError, match=reason):
        export_to_transformers(ViTSimpleForImageClassification(tiny_config(**overrides)))


def test_train_hf_fine_tunes_a_converted_checkpoint_on_other_labels(google, tmp_path):
    root, _ = google
    converted = convert(root / "legacy", tmp_path / "converted")  # 5 classes: cat, dog, fish, bird, frog
    generator = torch.Generator().manual_seed(0)
    for label in ("ant", "bee", "wasp"):
        (tmp_path / "data" / label).mkdir(parents=True)
        for i in range(4):
            pixels = torch.randint(0, 256, (32, 32, 3), generator=generator, dtype=torch.uint8).numpy()
            Image.fromarray(pixels).save(tmp_path / "data" / label / f"{i}.png")
    train_hf.main(["--model_name_or_path", str(tmp_path / "converted"), "--ignore_mismatched_sizes", "--train_dir",
                   str(tmp_path / "data"), "--output_dir", str(tmp_path / "tuned"), "--max_steps", "3",
                   "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "4", "--learning_rate", "1e-4",
                   "--warmup_steps", "0", "--logging_steps", "1", "--eval_strategy", "no", "--save_strategy", "no",
                   "--dataloader_num_workers", "0", "--report_to", "none", "--use_cpu"])
    tuned = ViTSimpleForImageClassification.from_pretrained(tmp_path / "tuned")
    assert tuned.config.id2label == {0: "ant", 1: "bee", 2: "wasp"} and tuned.classifier.out_features == 3
    losses = [entry["loss"] for entry in json.loads((tmp_path / "tuned" / "trainer_state.json").read_text())
              ["log_history"] if "loss" in entry]
    assert len(losses) == 3 and all(loss > 0 for loss in losses)
    # the backbone started from the converted weights and moved by a few learning-rate steps
    start = converted.vit.embeddings.patch_embedding.proj.weight
    moved = (tuned.vit.embeddings.patch_embedding.proj.weight - start).abs().max().item()
    assert 0 < moved < 1e-2


@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")
@pytest.mark.parametrize("module, option", [("vit_simple.convert", "--source"), ("vit_simple.export", "--onnx"),
                                            ("train_hf", "--model_size")])
def test_each_command_also_runs_as_python_dash_m(module, option, monkeypatch, capsys):
    import runpy

    monkeypatch.setattr(sys, "argv", [module, "--help"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module(module, run_name="__main__")
    assert exit_.value.code == 0 and option in capsys.readouterr().out
