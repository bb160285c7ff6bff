"""train_hf.py's pieces without training: image transforms, config overrides, patch sizes, weight decay groups."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

import train_hf
import vit_simple
from conftest import tiny_config


def encoded(image):
    """A `datasets.Image(decode=False)` value, as the transforms receive it."""
    buffer = io.BytesIO()
    image.save(buffer, format="TIFF" if image.mode == "CMYK" else "PNG")  # PNG has no CMYK
    return {"bytes": buffer.getvalue(), "path": None}


def mixed_images(size=(40, 30)):
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.fromarray(rng.integers(0, 256, (size[1], size[0]), dtype=np.uint8)))
    return [rgb, rgb.convert("L"), rgba, rgb.convert("P"), rgb.convert("CMYK")]


def transform_for(config, train, **data_options):
    processor = vit_simple.image_processor_for(config)
    return train_hf.ImageTransform(processor, config, train_hf.DataArguments(**data_options), train=train), processor


def test_evaluation_transform_is_the_image_processor_on_every_mode():
    config = tiny_config()  # 32x32, 3 channels
    transform, processor = transform_for(config, train=False)
    images = mixed_images()
    out = transform({"image": [encoded(image) for image in images], "label": list(range(len(images)))})
    expected = processor(images, return_tensors="np")["pixel_values"]
    assert out["pixel_values"].shape == (5, 3, 32, 32) and out["labels"].tolist() == [0, 1, 2, 3, 4]
    assert np.allclose(out["pixel_values"], expected, atol=1e-6)


def test_grayscale_model_gets_one_channel():
    transform, _ = transform_for(tiny_config(num_channels=1), train=True)
    images = mixed_images()
    out = transform({"image": [encoded(image) for image in images], "label": [0] * 5})
    assert out["pixel_values"].shape == (5, 1, 32, 32)


def test_padded_random_crop_is_a_shifted_and_maybe_flipped_window():
    config = tiny_config()  # 32x32: pad 4
    transform, _ = transform_for(config, train=True)
    rng = np.random.default_rng(1)
    images = [Image.fromarray(rng.integers(1, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(16)]
    torch.manual_seed(0)
    out = transform({"image": [encoded(image) for image in images], "label": [0] * 16})["pixel_values"]
    assert out.shape == (16, 3, 32, 32) and out.dtype == np.float32
    flips = shifts = 0
    for image, crop in zip(images, out):
        padded = np.pad(np.asarray(image), ((4, 4), (4, 4), (0, 0)))
        windows = {(top, left, flip) for top in range(9) for left in range(9) for flip in (False, True)
                   if np.allclose(crop, normalised(window(padded, top, left, flip)), atol=1e-6)}
        assert len(windows) == 1, "each crop is exactly one window of the zero-padded image"
        top, left, flip = windows.pop()
        flips += flip
        shifts += (top, left) != (4, 4)
    assert 0 < flips < 16 and shifts > 8  # random, not constant


def window(padded, top, left, flip):
    crop = padded[top : top + 32, left : left + 32]
    return crop[:, ::-1] if flip else crop


def normalised(pixels):
    return (pixels.transpose(2, 0, 1).astype(np.float32) / 255 - 0.5) / 0.5


def test_augmentation_follows_torch_seed():
    transform, _ = transform_for(tiny_config(), train=True)
    batch = {"image": [encoded(image) for image in mixed_images()], "label": [0] * 5}
    torch.manual_seed(3)
    first = transform(batch)["pixel_values"]
    torch.manual_seed(3)
    assert np.array_equal(first, transform(batch)["pixel_values"])


def test_random_resized_crop_for_large_images():
    config = tiny_config(image_size=96, patch_size=16)
    transform, _ = transform_for(config, train=True)
    assert transform.augmentation == "resized_crop"
    out = transform({"image": [encoded(image) for image in mixed_images((200, 120))], "label": [0] * 5})
    assert out["pixel_values"].shape == (5, 3, 96, 96)
    torch.manual_seed(0)
    for _ in range(200):
        left, top, right, bottom = train_hf.random_resized_crop_box(200, 120)
        assert 0 <= left < right <= 200 and 0 <= top < bottom <= 120
        area = (right - left) * (bottom - top) / (200 * 120)
        assert 0.07 <= area <= 1.0 and 0.7 <= (right - left) / (bottom - top) <= 1.4


def test_no_flip_and_no_crop_when_turned_off():
    config = tiny_config()
    transform, processor = transform_for(config, train=True, augmentation="none", horizontal_flip=False)
    images = [image.resize((32, 32)) for image in mixed_images()[:2]]
    out = transform({"image": [encoded(image) for image in images], "label": [0, 1]})["pixel_values"]
    assert np.allclose(out, processor(images, return_tensors="np")["pixel_values"], atol=1e-6)


def test_config_overrides_accept_both_vocabularies_and_reject_typos():
    overrides = train_hf.parse_config_overrides("depth=4, dim=128,heads=2,pool=mean,dropout=0.1,qkv_bias=true,"
                                                "attention_probs_dropout_prob=None,image_size=32x48")
    assert overrides == {"num_hidden_layers": 4, "hidden_size": 128, "num_attention_heads": 2, "pool": "mean",
                         "hidden_dropout_prob": 0.1, "qkv_bias": True, "attention_probs_dropout_prob": None,
                         "image_size": [32, 48]}
    with pytest.raises(train_hf.InputError, match="'depht=4' is not key=value with a known key"):
        train_hf.parse_config_overrides("depht=4")
    with pytest.raises(train_hf.InputError, match="'depth' is not key=value"):
        train_hf.parse_config_overrides("depth")


@pytest.mark.parametrize("size, patch", [(28, 4), (32, 4), ((32, 48), 4), ((28, 42), 2), (48, 6), (64, 8), (56, 8),
                                         (224, 16), (384, 16)])
def test_default_patch_size_gives_at_least_seven_by_seven_patches(size, patch):
    assert train_hf.default_patch_size(size) == patch


def test_default_patch_size_refuses_awkward_sizes():
    with pytest.raises(train_hf.InputError, match="give image_size and patch_size in --config_overrides"):
        train_hf.default_patch_size(29)


def test_scratch_config_takes_size_image_and_labels_from_the_data():
    model_args = train_hf.ModelArguments(config_overrides="depth=3,channels=1")
    config = train_hf.scratch_config(model_args, ["a", "b"], (28, 28))
    assert (config.hidden_size, config.num_hidden_layers, config.intermediate_size) == (128, 3, 256)
    assert (config.image_size, config.patch_size, config.num_channels) == (28, 4, 1)
    assert config.id2label == {0: "a", 1: "b"} and config.label2id == {"a": 0, "b": 1}
    large = train_hf.scratch_config(train_hf.ModelArguments(model_size="small"), ["a", "b"], (375, 500))
    assert (large.image_size, large.patch_size, large.hidden_size, large.num_hidden_layers) == (224, 16, 384, 12)


def test_weight_decay_skips_what_the_model_says(tmp_path):
    model = vit_simple.ViTSimpleForImageClassification(tiny_config())
    args = train_hf.TrainArguments(output_dir=str(tmp_path), use_cpu=True, eval_strategy="no")
    trainer = train_hf.ViTSimpleTrainer(model=model, args=args)
    decayed = set(trainer.get_decay_parameter_names(model))
    assert decayed and decayed.isdisjoint(model.no_weight_decay())
    assert decayed | model.no_weight_decay() == {name for name, _ in model.named_parameters()}
    assert all(model.get_parameter(name).dim() == 2 for name in decayed)
    groups = trainer.create_optimizer().param_groups
    assert sorted((group["weight_decay"], len(group["params"])) for group in groups) == [
        (0.0, len(model.no_weight_decay())), (0.05, len(decayed))]


def test_auto_augmentation_is_none_from_scratch_and_by_size_when_fine_tuning():
    scratch, fine_tuning = train_hf.ModelArguments(), train_hf.ModelArguments(model_name_or_path="some/checkpoint")
    assert train_hf.training_augmentation("auto", scratch) == "flip"
    assert train_hf.training_augmentation("auto", fine_tuning) == "auto"  # ImageTransform picks by size
    assert train_hf.training_augmentation("pad_crop", scratch) == "pad_crop"
    small, _ = transform_for(tiny_config(), train=True, augmentation=train_hf.training_augmentation("auto", fine_tuning))
    assert small.augmentation == "pad_crop" and small.flip


def test_bf16_defaults_to_what_the_machine_runs_natively(tmp_path):
    _, _, args = train_hf.parse_arguments(["--output_dir", str(tmp_path)])
    assert args.bf16 == train_hf.native_bfloat16()
    if args.bf16 and not torch.cuda.is_available():
        assert args.use_cpu  # TrainingArguments only allows bf16 without an accelerator when told it is on the CPU
    _, _, off = train_hf.parse_arguments(["--output_dir", str(tmp_path), "--bf16", "false"])
    assert not off.bf16
    _, _, on = train_hf.parse_arguments(["--output_dir", str(tmp_path), "--bf16", "true"])
    assert on.bf16 and (on.use_cpu or torch.cuda.is_available())


def test_flip_augmentation_only_mirrors_some_images():
    config = tiny_config()
    transform, processor = transform_for(config, train=True, augmentation="flip")
    image = mixed_images((32, 32))[0]
    torch.manual_seed(0)
    out = transform({"image": [encoded(image)] * 16, "label": [0] * 16})["pixel_values"]
    reference = processor([image], return_tensors="np")["pixel_values"][0]
    same = [np.allclose(crop, reference, atol=1e-5) for crop in out]
    mirrored = [np.allclose(crop, reference[:, :, ::-1], atol=1e-5) for crop in out]
    assert all(a != b for a, b in zip(same, mirrored))  # each is the image or its mirror, nothing else
    assert 0 < sum(mirrored) < 16
    unflipped, _ = transform_for(config, train=True, augmentation="flip", horizontal_flip=False)
    assert np.allclose(unflipped({"image": [encoded(image)], "label": [0]})["pixel_values"][0], reference, atol=1e-5)


def test_a_model_from_scratch_starts_from_vit_pytorchs_initialisation():
    model, _ = train_hf.build_model(train_hf.ModelArguments(config_overrides="depth=1"), ["a", "b"], (28, 28))
    embeddings = model.vit.embeddings
    assert 0.8 < embeddings.position_embeddings.std().item() < 1.2  # unit normal, not transformers' 0.02
    assert embeddings.cls_token.abs().max().item() > 0.1
    fc1 = model.vit.layers[0].ff.fc1.weight
    bound = fc1.shape[1] ** -0.5  # torch's default Linear init: uniform within 1/sqrt(fan_in)
    assert fc1.abs().max().item() <= bound and fc1.std().item() > 0.5 * bound / 3**0.5
