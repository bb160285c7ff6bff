"""train_hf.py's pieces without training: image transforms, config overrides, patch sizes, weight decay groups."""

import io

import numpy as np
import pytest
import torch
import transformers
from datasets import Dataset
from PIL import Image

import data_images
import train_hf
import vit_simple
import vit_trainer
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
    return data_images.ImageTransform(processor, config, train_hf.DataArguments(**data_options), train=train), processor


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
    config = tiny_config()  # 32x32: pad 4 (1/8 of the side, by default)
    transform, _ = transform_for(config, train=True, horizontal_flip=True)
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


def test_augmentation_is_a_function_of_seed_epoch_and_example_index():
    config = tiny_config()
    transform, _ = transform_for(config, train=True, horizontal_flip=True, crop_padding=4)
    images = [encoded(image) for image in mixed_images((32, 32))] * 4  # 20 examples: 5 images, 4 times each
    batch = {"image": images, "label": [0] * 20}
    first = transform(batch, list(range(20)))["pixel_values"]
    torch.manual_seed(123)  # torch's global random state plays no part
    assert np.array_equal(first, transform(batch, list(range(20)))["pixel_values"])
    # an example is augmented alike in any batch, at any position: here the last ten alone, reversed
    alone = transform({"image": images[10:][::-1], "label": [0] * 10}, list(range(19, 9, -1)))["pixel_values"]
    assert np.array_equal(alone[::-1], first[10:])
    # the same image under other indices, another epoch or another seed is augmented otherwise
    assert not np.array_equal(first[:5], first[5:10])
    transform.set_epoch(1)
    assert not np.array_equal(first, transform(batch, list(range(20)))["pixel_values"])
    reseeded = data_images.ImageTransform(transform.processor, config, train_hf.DataArguments(
        horizontal_flip=True, crop_padding=4), train=True, seed=1)
    assert not np.array_equal(first, reseeded(batch, list(range(20)))["pixel_values"])


def test_random_resized_crop_for_large_images():
    config = tiny_config(image_size=96, patch_size=16)
    transform, _ = transform_for(config, train=True)
    assert transform.augmentation == "resized_crop"
    out = transform({"image": [encoded(image) for image in mixed_images((200, 120))], "label": [0] * 5})
    assert out["pixel_values"].shape == (5, 3, 96, 96)
    rng = np.random.default_rng(0)
    for _ in range(200):
        left, top, right, bottom = data_images.random_resized_crop_box(200, 120, rng)
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
    overrides = vit_simple.parse_config_overrides("depth=4, dim=128,heads=2,pool=mean,dropout=0.1,qkv_bias=true,"
                                                  "attention_probs_dropout_prob=None,image_size=32x48")
    assert overrides == {"num_hidden_layers": 4, "hidden_size": 128, "num_attention_heads": 2, "pool": "mean",
                         "hidden_dropout_prob": 0.1, "qkv_bias": True, "attention_probs_dropout_prob": None,
                         "image_size": [32, 48]}
    with pytest.raises(ValueError, match="'depht=4' is not key=value with a known key"):
        vit_simple.parse_config_overrides("depht=4")
    with pytest.raises(ValueError, match="'depth' is not key=value"):
        vit_simple.parse_config_overrides("depth")


@pytest.mark.parametrize("size, patch", [(28, 4), (32, 4), ((32, 48), 4), ((28, 42), 2), (48, 6), (64, 8), (56, 8),
                                         (224, 16), (384, 16)])
def test_default_patch_size_gives_at_least_seven_by_seven_patches(size, patch):
    assert vit_simple.default_patch_size(size) == patch


def test_default_patch_size_refuses_awkward_sizes():
    with pytest.raises(ValueError, match="give image_size and patch_size in --config_overrides"):
        vit_simple.default_patch_size(29)


def test_scratch_config_takes_size_image_and_labels_from_the_data():
    model_args = train_hf.ModelArguments(config_overrides="depth=3,channels=1")
    config = train_hf.scratch_config(model_args, ["a", "b"], (28, 28))
    assert (config.hidden_size, config.num_hidden_layers, config.intermediate_size) == (128, 3, 256)
    assert (config.image_size, config.patch_size, config.num_channels) == (28, 4, 1)
    assert config.id2label == {0: "a", 1: "b"} and config.label2id == {"a": 0, "b": 1}
    large = train_hf.scratch_config(train_hf.ModelArguments(model_size="small"), ["a", "b"], (375, 500))
    assert (large.image_size, large.patch_size, large.hidden_size, large.num_hidden_layers) == (224, 16, 384, 12)


def test_a_new_model_trains_with_the_recipes_patch_dropout_unless_the_overrides_set_one():
    labels, size = ["a", "b"], (28, 28)
    default = train_hf.scratch_config(train_hf.ModelArguments(), labels, size)
    assert default.patch_dropout_prob == train_hf.SCRATCH_PATCH_DROPOUT == 0.25
    assert vit_simple.new_config("mini", labels, size).patch_dropout_prob == 0.0  # the Python API adds no recipe
    for overrides in ("patch_dropout=0", "depth=2,patch_dropout_prob=0.0"):  # either name, anywhere in the list
        assert train_hf.scratch_config(train_hf.ModelArguments(config_overrides=overrides), labels, size
                                       ).patch_dropout_prob == 0.0
    assert train_hf.scratch_config(train_hf.ModelArguments(config_overrides="patch_dropout=0.5"), labels, size
                                   ).patch_dropout_prob == 0.5
    with pytest.raises(train_hf.InputError) as error:  # the message quotes what the user gave, not the recipe's text
        train_hf.scratch_config(train_hf.ModelArguments(config_overrides="patch_size=5"), labels, size)
    assert "--config_overrides 'patch_size=5'" in str(error.value) and "patch_dropout" not in str(error.value)


def test_new_config_builds_the_scripts_model_from_python_and_refuses_bad_sizes_with_value_error():
    config = vit_simple.new_config("mini", ["a", "b"], (28, 28), "depth=3,channels=1,patch_dropout=0.25")
    script = train_hf.scratch_config(train_hf.ModelArguments(config_overrides="depth=3,channels=1"), ["a", "b"], (28, 28))
    assert config.to_dict() == script.to_dict()  # the script adds its recipe's patch dropout, nothing else
    with pytest.raises(ValueError, match="'medium': not one of mini, tiny"):
        vit_simple.new_config("medium", ["a", "b"], (28, 28))
    with pytest.raises(ValueError, match="not divisible by patch_size") as error:
        vit_simple.new_config("mini", ["a", "b"], (28, 28), "patch_size=5")
    assert not isinstance(error.value, train_hf.InputError)  # vit_simple stands apart from the training script
    with pytest.raises(train_hf.InputError, match="--model_size mini with --config_overrides 'patch_size=5'"):
        train_hf.scratch_config(train_hf.ModelArguments(config_overrides="patch_size=5"), ["a", "b"], (28, 28))


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


def resolved(from_scratch, image_size, **data_options):
    return data_images.resolve_augmentation(train_hf.DataArguments(**data_options), from_scratch, image_size)


def test_auto_augmentation_from_scratch_flips_only_fashion_mnist_and_touches_nothing_else(tmp_path):
    fashion = resolved(True, 28)
    assert (fashion.augmentation, fashion.horizontal_flip) == ("flip", True)
    folder = resolved(True, 28, train_dir=str(tmp_path))  # digits, text, anything not known to be mirror-safe
    assert (folder.augmentation, folder.horizontal_flip) == ("flip", False)
    transform = data_images.ImageTransform(vit_simple.image_processor_for(tiny_config()), tiny_config(),
                                           resolved(True, 32, train_dir=str(tmp_path)), train=True)
    images = mixed_images((32, 32))
    out = transform({"image": [encoded(image) for image in images], "label": [0] * 5})["pixel_values"]
    assert np.allclose(out, transform.processor(images, return_tensors="np")["pixel_values"], atol=1e-6)
    hub = resolved(True, 224, dataset_name="someone/letters")
    assert (hub.augmentation, hub.horizontal_flip) == ("flip", False)
    asked = resolved(True, 28, train_dir=str(tmp_path), horizontal_flip=True, augmentation="pad_crop", crop_padding=2)
    assert (asked.augmentation, asked.crop_padding, asked.horizontal_flip) == ("pad_crop", 2, True)
    assert resolved(True, 28, horizontal_flip=False).horizontal_flip is False


def test_a_one_pixel_pad_crop_shifts_by_at_most_one_pixel_and_never_flips_unasked(tmp_path):
    options = resolved(True, 32, train_dir=str(tmp_path), augmentation="pad_crop", crop_padding=1)
    transform = data_images.ImageTransform(vit_simple.image_processor_for(tiny_config()), tiny_config(), options,
                                           train=True)
    rng = np.random.default_rng(2)
    images = [Image.fromarray(rng.integers(1, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(32)]
    torch.manual_seed(0)
    out = transform({"image": [encoded(image) for image in images], "label": [0] * 32})["pixel_values"]
    offsets = []
    for image, crop in zip(images, out):
        padded = np.pad(np.asarray(image), ((1, 1), (1, 1), (0, 0)))
        (offset,) = [(top, left) for top in range(3) for left in range(3)
                     if np.allclose(crop, normalised(window(padded, top, left, False)), atol=1e-6)]
        offsets.append(offset)
    assert len(set(offsets)) > 4  # random shifts of -1, 0 or +1 pixel on each axis


def test_crop_padding_below_one_pixel_is_refused():
    with pytest.raises(train_hf.InputError, match="--crop_padding must be a whole number of pixels, at least 1"):
        train_hf.DataArguments(crop_padding=0)


def test_flip_augmentation_only_mirrors_some_images():
    config = tiny_config()
    transform, processor = transform_for(config, train=True, augmentation="flip", horizontal_flip=True)
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


def test_muon_takes_the_blocks_weight_matrices_and_adamw_the_rest_under_one_schedule(tmp_path):
    torch.manual_seed(0)
    model = vit_simple.ViTSimpleForImageClassification(tiny_config())
    args = train_hf.TrainArguments(output_dir=str(tmp_path), use_cpu=True, eval_strategy="no", warmup_steps=2)
    trainer = train_hf.ViTSimpleTrainer(model=model, args=args, muon_learning_rate=2e-3)
    optimizer = trainer.create_optimizer()
    name_of = {param: name for name, param in model.named_parameters()}
    muon = {name_of[p] for group in optimizer.muon.param_groups for p in group["params"]}
    assert muon == {name for name, p in model.named_parameters() if p.dim() == 2 and name.startswith("vit.layers.")}
    assert {"vit.layers.0.attn.to_qkv.weight", "vit.layers.1.ff.fc2.weight"} <= muon
    adamw = [{name_of[p] for p in group["params"]} for group in optimizer.adamw.param_groups]
    assert adamw[0] == {"vit.embeddings.patch_embedding.proj.weight", "classifier.weight"}  # decayed
    assert adamw[1] == model.no_weight_decay() - muon  # norms, biases, CLS token, positions
    assert muon.isdisjoint(adamw[0] | adamw[1]) and muon | adamw[0] | adamw[1] == set(name_of.values())

    scheduler = trainer.create_scheduler(num_training_steps=10, optimizer=optimizer)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    for _ in range(3):
        model(torch.randn(4, 3, 32, 32), labels=torch.tensor([0, 1, 2, 0])).loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    assert all(not torch.equal(before[name], p) for name, p in model.named_parameters())
    lrs = [group["lr"] for group in optimizer.param_groups]  # AdamW's groups first: Trainer logs the first
    factor = lrs[0] / 1e-3
    assert 0 < factor < 1 and lrs == pytest.approx([1e-3 * factor] * 2 + [2e-3 * factor])
    assert [group["lr"] for group in optimizer.adamw.param_groups + optimizer.muon.param_groups] == lrs  # what steps

    state = optimizer.state_dict()
    again = train_hf.ViTSimpleTrainer(model=model, args=args, muon_learning_rate=2e-3).create_optimizer()
    again.load_state_dict(state)  # as accelerate's prepare and a resume do: the schedule must still reach both
    torch.optim.lr_scheduler.LambdaLR(again, lambda step: 0.25)
    assert [group["lr"] for group in again.adamw.param_groups + again.muon.param_groups] == [2.5e-4] * 2 + [5e-4]
    for old, new in zip(state.values(), again.state_dict().values()):
        for key, values in old["state"].items():
            for field_name, value in values.items():
                torch.testing.assert_close(new["state"][key][field_name], value)


class Shapes(torch.utils.data.Dataset):
    def __init__(self, count=32):
        generator = torch.Generator().manual_seed(0)
        self.images, self.labels = torch.randn(count, 3, 32, 32, generator=generator), torch.arange(count) % 3

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"pixel_values": self.images[i], "labels": self.labels[i]}


def test_the_learning_rate_schedule_reaches_the_optimizers_that_step_in_a_real_run(tmp_path):
    """Trainer hands the optimizer to accelerate, which reloads its state: the warm-up and decay must still set the
    learning rate AdamW and Muon step with, and another schedule must train other weights."""
    weights = []
    for warmup in (1, 6):
        torch.manual_seed(0)
        model = vit_simple.ViTSimpleForImageClassification(tiny_config())
        args = train_hf.TrainArguments(output_dir=str(tmp_path / str(warmup)), use_cpu=True, eval_strategy="no",
                                       save_strategy="no", warmup_steps=warmup, max_steps=4, lr_scheduler_type="cosine",
                                       per_device_train_batch_size=8, report_to=[], dataloader_num_workers=0)
        trainer = train_hf.ViTSimpleTrainer(model=model, args=args, train_dataset=Shapes(), muon_learning_rate=2e-3)
        lrs = []
        trainer.add_callback(type("Spy", (transformers.TrainerCallback,), {
            "on_optimizer_step": lambda self, args, state, control, **kwargs: lrs.append(
                [group["lr"] for group in trainer.optimizer.optimizer.adamw.param_groups
                 + trainer.optimizer.optimizer.muon.param_groups])})())
        trainer.train()
        scheduled = [1e-3 * step / warmup if step < warmup else None for step in range(4)]
        for step, (expected, seen) in enumerate(zip(scheduled, lrs)):
            if expected is not None:  # warm-up: linear from 0, Muon at twice AdamW's rate
                assert seen == pytest.approx([expected] * 2 + [2 * expected]), step
        assert len({tuple(seen) for seen in lrs}) == 4  # a new rate each step
        weights.append(model.vit.layers[0].attn.to_qkv.weight.detach().clone())
    assert not torch.equal(*weights)


def test_muon_is_the_default_from_scratch_and_adamw_when_fine_tuning(tmp_path):
    _, _, args = train_hf.parse_arguments(["--output_dir", str(tmp_path)])
    assert args.muon is None and train_hf.uses_muon(args, from_scratch=True) and args.muon is True
    _, _, fine_tuning = train_hf.parse_arguments(["--output_dir", str(tmp_path)])
    assert not train_hf.uses_muon(fine_tuning, from_scratch=False)
    _, _, off = train_hf.parse_arguments(["--output_dir", str(tmp_path), "--muon", "false"])
    assert not train_hf.uses_muon(off, from_scratch=True)
    _, _, on = train_hf.parse_arguments(["--output_dir", str(tmp_path), "--muon", "true"])
    assert train_hf.uses_muon(on, from_scratch=False)


def test_muon_runs_keep_a_constant_rate_unless_told_and_adamw_runs_decay(tmp_path):
    _, _, scratch = train_hf.parse_arguments(["--output_dir", str(tmp_path)])
    train_hf.uses_muon(scratch, from_scratch=True)
    assert (scratch.lr_scheduler_type, scratch.warmup_steps) == ("constant_with_warmup", 0)
    _, _, told = train_hf.parse_arguments(["--output_dir", str(tmp_path), "--lr-scheduler-type", "cosine"])
    train_hf.uses_muon(told, from_scratch=True)
    assert (told.lr_scheduler_type, told.warmup_steps) == ("cosine", 0)  # what was given stays; the rest follows Muon
    _, _, fine_tuning = train_hf.parse_arguments(["--output_dir", str(tmp_path), "--warmup_steps=0.1"])
    train_hf.uses_muon(fine_tuning, from_scratch=False)
    assert (fine_tuning.lr_scheduler_type, fine_tuning.warmup_steps) == ("cosine", 0.1)
    _, _, adamw = train_hf.parse_arguments(["--output_dir", str(tmp_path), "--muon", "false"])
    train_hf.uses_muon(adamw, from_scratch=True)
    assert (adamw.lr_scheduler_type, adamw.warmup_steps) == ("cosine", 0.05)


def test_a_shifted_view_moves_the_image_and_lets_black_in():
    pixels = torch.arange(2 * 4 * 5, dtype=torch.float32).view(1, 2, 4, 5)
    fill = torch.tensor([-1.0, -2.0]).view(1, 2, 1, 1)
    down = vit_trainer.shifted(pixels, 1, 0, fill)
    assert torch.equal(down[0, :, 1:], pixels[0, :, :-1]) and torch.equal(down[0, :, 0], fill[0, :, :, 0].expand(2, 5))
    left = vit_trainer.shifted(pixels, 0, -1, fill)
    assert torch.equal(left[..., :-1], pixels[..., 1:]) and torch.all(left[0, 1, :, -1] == -2)
    assert torch.equal(vit_trainer.shifted(pixels, 0, 0, fill), pixels)
    assert len(vit_trainer.tta_views(flip=True)) == 6 and len(vit_trainer.tta_views(flip=False)) == 5


def test_test_time_augmentation_averages_the_probabilities_of_each_view(tmp_path):
    torch.manual_seed(0)
    model = vit_simple.ViTSimpleForImageClassification(tiny_config()).eval()
    pixels = torch.randn(6, 3, 32, 32)
    dataset = Dataset.from_dict({"pixel_values": pixels.numpy(), "labels": [0, 1, 2, 0, 1, 2]}).with_format("numpy")
    args = train_hf.TrainArguments(output_dir=str(tmp_path), use_cpu=True, bf16=False, per_device_eval_batch_size=4,
                                   eval_strategy="no")
    trainer = train_hf.ViTSimpleTrainer(model=model, args=args, data_collator=data_images.collate)
    fill = [-1.0, -1.0, -1.0]
    probs, labels = trainer.predict_views(dataset, [(False, 0, 0)], fill)
    assert labels.tolist() == [0, 1, 2, 0, 1, 2]
    with torch.no_grad():
        plain = model(pixels).logits.softmax(-1)
        mirrored = model(pixels.flip(-1)).logits.softmax(-1)
        up = model(vit_trainer.shifted(pixels, -1, 0, torch.full((1, 3, 1, 1), -1.0))).logits.softmax(-1)
    torch.testing.assert_close(probs, plain)
    both, _ = trainer.predict_views(dataset, [(True, 0, 0), (False, -1, 0)], fill)
    torch.testing.assert_close(both, (mirrored + up) / 2)


def test_the_weight_average_follows_each_step_is_evaluated_and_becomes_the_model(tmp_path):
    from transformers import TrainerState

    torch.manual_seed(0)
    model = vit_simple.ViTSimpleForImageClassification(tiny_config())
    args = train_hf.TrainArguments(output_dir=str(tmp_path), use_cpu=True, eval_strategy="no")
    average, state = vit_trainer.WeightAverage(0.9), TrainerState()
    average.on_train_begin(args, state, None, model=model)
    start = {name: p.detach().clone() for name, p in model.named_parameters()}
    expected = dict(start)
    for step in (1, 2, 3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        state.global_step = step
        average.on_step_end(args, state, None, model=model)
        decay = min(0.9, (1 + step) / (10 + step))
        expected = {name: decay * expected[name] + (1 - decay) * p for name, p in model.named_parameters()}
    current = {name: p.detach().clone() for name, p in model.named_parameters()}
    with average.swapped_in(model):
        for name, p in model.named_parameters():
            torch.testing.assert_close(p, expected[name])
    for name, p in model.named_parameters():  # the training weights come back after an evaluation
        assert torch.equal(p, current[name])

    (tmp_path / "checkpoint-3").mkdir()
    average.on_save(args, state, None)
    resumed = vit_trainer.WeightAverage(0.9)
    resumed.on_train_begin(train_hf.TrainArguments(output_dir=str(tmp_path), use_cpu=True, eval_strategy="no",
                                                   resume_from_checkpoint=str(tmp_path / "checkpoint-3")),
                           state, None, model=model)
    for restored, saved in zip(resumed.average, average.average):
        assert torch.equal(restored, saved)
    average.on_train_end(args, state, None, model=model)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p, expected[name])


def erased_box(plain, erased):
    """The rectangle (top, left, height, width) where `erased` differs from `plain`, checking it is all zeros."""
    rows, columns = np.nonzero((plain != erased).any(axis=0))
    if rows.size == 0:
        return None
    top, left, bottom, right = rows.min(), columns.min(), rows.max() + 1, columns.max() + 1
    assert np.all(erased[:, top:bottom, left:right] == 0)  # the whole rectangle is the mean, once normalised
    assert np.array_equal(np.delete(plain, range(top, bottom), axis=1), np.delete(erased, range(top, bottom), axis=1))
    return top, left, bottom - top, right - left


def test_random_erasing_blanks_one_rectangle_and_leaves_the_other_draws_alone():
    config = tiny_config()
    rng = np.random.default_rng(2)
    images = [encoded(Image.fromarray(rng.integers(1, 256, (32, 32, 3), dtype=np.uint8))) for _ in range(40)]
    batch = {"image": images, "label": [0] * 40}
    plain, _ = transform_for(config, train=True, horizontal_flip=True, crop_padding=2)
    erasing, _ = transform_for(config, train=True, horizontal_flip=True, crop_padding=2, random_erasing=0.5)
    before, after = plain(batch)["pixel_values"], erasing(batch)["pixel_values"]
    boxes = [erased_box(a, b) for a, b in zip(before, after)]  # the same shifts and flips, then a rectangle or not
    erased = [box for box in boxes if box is not None]
    assert 8 < len(erased) < 32  # about half of the images
    for top, left, height, width in erased:
        assert 0.01 <= height * width / 32**2 <= 0.36 and 0.2 <= height / width <= 5
    assert len({box[:2] for box in erased}) > len(erased) // 2  # at random places
    assert np.array_equal(after, erasing(batch)["pixel_values"])  # a function of (seed, epoch, index), as the rest


def test_random_erasing_is_a_probability():
    with pytest.raises(train_hf.InputError, match="--random_erasing is a probability between 0 and 1, got 1.5"):
        train_hf.DataArguments(random_erasing=1.5)
