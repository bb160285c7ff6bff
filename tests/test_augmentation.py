"""The images as the model sees them (vit_simple.augmentation): evaluation is the image processor, training
augments each example as a function of (seed, epoch, index)."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

import vit_simple
from configuration_vit_simple import pair
from conftest import tiny_config
from vit_simple.augmentation import ImageTransform, mix_batch, random_resized_crop_box


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


def transform_for(config, train, **options):
    """The transform of `config`'s image processor; by default training pads by 1/8 of the side and crops."""
    processor = vit_simple.image_processor_for(config)
    options = {"augmentation": "pad_crop", "crop_padding": max(1, min(pair(config.image_size)) // 8), **options}
    return ImageTransform(processor, config, train, **options), processor


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
    transform, _ = transform_for(config, train=True, flip=True)
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
    transform, _ = transform_for(config, train=True, flip=True, crop_padding=4)
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
    reseeded = ImageTransform(transform.processor, config, True, "pad_crop", flip=True, crop_padding=4, seed=1)
    assert not np.array_equal(first, reseeded(batch, list(range(20)))["pixel_values"])


def test_random_resized_crop_for_large_images():
    config = tiny_config(image_size=96, patch_size=16)
    transform, _ = transform_for(config, train=True, augmentation="resized_crop")
    out = transform({"image": [encoded(image) for image in mixed_images((200, 120))], "label": [0] * 5})
    assert out["pixel_values"].shape == (5, 3, 96, 96)
    rng = np.random.default_rng(0)
    for _ in range(200):
        left, top, right, bottom = random_resized_crop_box(200, 120, rng)
        assert 0 <= left < right <= 200 and 0 <= top < bottom <= 120
        area = (right - left) * (bottom - top) / (200 * 120)
        assert 0.07 <= area <= 1.0 and 0.7 <= (right - left) / (bottom - top) <= 1.4


def test_no_flip_and_no_crop_when_turned_off():
    config = tiny_config()
    transform, processor = transform_for(config, train=True, augmentation="none", flip=False)
    images = [image.resize((32, 32)) for image in mixed_images()[:2]]
    out = transform({"image": [encoded(image) for image in images], "label": [0, 1]})["pixel_values"]
    assert np.allclose(out, processor(images, return_tensors="np")["pixel_values"], atol=1e-6)


def test_a_one_pixel_pad_crop_shifts_by_at_most_one_pixel_and_never_flips_unasked():
    transform, _ = transform_for(tiny_config(), train=True, augmentation="pad_crop", crop_padding=1)
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


def test_flip_augmentation_only_mirrors_some_images():
    config = tiny_config()
    transform, processor = transform_for(config, train=True, augmentation="flip", flip=True)
    image = mixed_images((32, 32))[0]
    torch.manual_seed(0)
    out = transform({"image": [encoded(image)] * 16, "label": [0] * 16})["pixel_values"]
    reference = processor([image], return_tensors="np")["pixel_values"][0]
    same = [np.allclose(crop, reference, atol=1e-5) for crop in out]
    mirrored = [np.allclose(crop, reference[:, :, ::-1], atol=1e-5) for crop in out]
    assert all(a != b for a, b in zip(same, mirrored))  # each is the image or its mirror, nothing else
    assert 0 < sum(mirrored) < 16
    unflipped, _ = transform_for(config, train=True, augmentation="flip", flip=False)
    assert np.allclose(unflipped({"image": [encoded(image)], "label": [0]})["pixel_values"][0], reference, atol=1e-5)


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
    plain, _ = transform_for(config, train=True, flip=True, crop_padding=2)
    erasing, _ = transform_for(config, train=True, flip=True, crop_padding=2, erasing=0.5)
    before, after = plain(batch)["pixel_values"], erasing(batch)["pixel_values"]
    boxes = [erased_box(a, b) for a, b in zip(before, after)]  # the same shifts and flips, then a rectangle or not
    erased = [box for box in boxes if box is not None]
    assert 8 < len(erased) < 32  # about half of the images
    for top, left, height, width in erased:
        assert 0.01 <= height * width / 32**2 <= 0.36 and 0.2 <= height / width <= 5
    assert len({box[:2] for box in erased}) > len(erased) // 2  # at random places
    assert np.array_equal(after, erasing(batch)["pixel_values"])  # a function of (seed, epoch, index), as the rest


def test_augmentation_must_be_one_the_transform_knows():
    with pytest.raises(ValueError, match="augmentation must be one of none, flip, pad_crop, resized_crop, got 'auto'"):
        ImageTransform(vit_simple.image_processor_for(tiny_config()), tiny_config(), True, "auto")


# mixup and CutMix: batch-level, applied by the trainer


def test_mixup_blends_each_image_with_its_mirror_in_the_batch_and_the_labels_by_the_same_share():
    pixels, labels = torch.randn(5, 3, 8, 8), torch.tensor([0, 1, 2, 3, 1])
    lam = np.random.default_rng(3).beta(0.8, 0.8)
    mixed, targets = mix_batch(pixels, labels, 4, np.random.default_rng(3), mixup=0.8)
    assert 0 < lam < 1
    torch.testing.assert_close(mixed, lam * pixels + (1 - lam) * pixels.flip(0))
    expected = torch.zeros(5, 4)
    for i, (own, partner) in enumerate(zip(labels.tolist(), labels.flip(0).tolist())):
        expected[i, own] += lam
        expected[i, partner] += 1 - lam
    torch.testing.assert_close(targets, expected)  # the middle image is its own partner: all its weight on class 2
    torch.testing.assert_close(targets.sum(1), torch.ones(5))


@pytest.mark.parametrize("seed", range(8))
def test_cutmix_pastes_a_box_of_the_partner_and_mixes_the_labels_by_the_share_of_pixels_each_image_gave(seed):
    """Each image one flat value, so every pixel says whose it is; the box may be clipped at the edges."""
    pixels = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 2, 10, 12).clone()
    mixed, targets = mix_batch(pixels, torch.arange(4), 4, np.random.default_rng(seed), cutmix=1.0)
    for i in range(4):
        own = (mixed[i] == i).float().mean().item()
        partner = (mixed[i] == 3 - i).float().mean().item()
        assert own + partner == pytest.approx(1)  # pasted, not blended
        assert targets[i, i].item() == pytest.approx(own) and targets[i, 3 - i].item() == pytest.approx(partner)
        rows, columns = torch.nonzero(mixed[i, 0] == 3 - i, as_tuple=True)
        if len(rows):  # one rectangle, the same in every channel
            box = mixed[i, :, rows.min():rows.max() + 1, columns.min():columns.max() + 1]
            assert (box == 3 - i).all() and len(rows) == box[0].numel()
    assert torch.equal(mixed[0] == 3, mixed[3] == 0)  # the partners swap the same box


def test_with_both_kinds_each_batch_takes_one_and_the_same_generator_gives_the_same_batch():
    pixels = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 1, 16, 16).clone()
    kinds = set()
    for seed in range(20):
        mixed, targets = mix_batch(pixels, torch.arange(4), 4, np.random.default_rng(seed), mixup=0.8, cutmix=1.0)
        again, same_targets = mix_batch(pixels, torch.arange(4), 4, np.random.default_rng(seed), mixup=0.8, cutmix=1.0)
        assert torch.equal(mixed, again) and torch.equal(targets, same_targets)
        pasted = bool(((mixed[0] == 0) | (mixed[0] == 3)).all())
        blended = bool((mixed[0] == mixed[0, 0, 0, 0]).all())  # mixup makes one flat value between the two
        assert pasted or blended
        kinds.add("cutmix" if pasted and not blended else "mixup")
    assert kinds == {"mixup", "cutmix"}
