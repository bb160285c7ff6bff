"""The images as the model sees them: decoded, converted to the model's mode, augmented in training (random crops,
flips, erasing) and normalised with the model's image processor; batched lazily from a `datasets` split. And the
training batch's mixup and CutMix (`mix_batch`), which the trainer applies, since they mix images and labels."""

import math

import datasets
import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from datasets import Image

from configuration_vit_simple import pair
from vit_simple import recipe
from vit_simple.data import decode_image

AUGMENTATIONS = ("none", "flip", "pad_crop", "resized_crop")


def random_resized_crop_box(width, height, rng, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """torchvision's RandomResizedCrop box (left, top, right, bottom): a random area fraction and aspect ratio,
    drawn from the numpy Generator `rng`."""
    area, log_ratio = width * height, (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        crop_w, crop_h = round(math.sqrt(target_area * aspect)), round(math.sqrt(target_area / aspect))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            top = int(rng.integers(0, height - crop_h + 1))
            left = int(rng.integers(0, width - crop_w + 1))
            return left, top, left + crop_w, top + crop_h
    # fall back to the central crop with the aspect ratio clamped to `ratio`
    crop_w, crop_h = width, height
    if width / height < ratio[0]:
        crop_h = round(width / ratio[0])
    elif width / height > ratio[1]:
        crop_w = round(height * ratio[1])
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    return left, top, left + crop_w, top + crop_h


def random_erasing_box(height, width, rng, scale=(0.02, 0.33), ratio=(0.3, 3.3)):
    """torchvision's RandomErasing rectangle (top, left, height, width), drawn from the numpy Generator `rng`; None
    when ten tries find none that fits inside the image."""
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        area = height * width * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        box_h, box_w = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < box_h < height and 0 < box_w < width:
            return int(rng.integers(0, height - box_h + 1)), int(rng.integers(0, width - box_w + 1)), box_h, box_w
    return None


class ImageTransform:
    """Decode a batch of images and convert them to the model's mode; then normalise them with the saved image
    processor, exactly as `pipeline` will (evaluation), or augment and normalise them (training).

    Runs lazily on each batch as it is read (`with_transform`). The pixel work is numpy: on a small CPU, torch's
    multi-threaded kernels stall on tiny tensors while training holds the cores.

    Each example's augmentation is a function of (seed, epoch, example index) alone: its own numpy Generator, not a
    global random stream. So it does not depend on which process draws it (a loader worker or the training
    process), on batches fetched ahead, or on where a run was interrupted: a run resumed from a checkpoint in the
    middle of an epoch augments every later example exactly as the uninterrupted run does."""

    def __init__(self, processor, config, train=False, augmentation="none", flip=False, crop_padding=1, erasing=0.0,
                 seed=0, image_column="image", label_column="label"):
        """augmentation: none, flip (flips alone), pad_crop (zero-pad by `crop_padding` pixels, crop at random) or
        resized_crop; `flip` adds left-right flips to any but none; `erasing`: the probability of blanking a random
        rectangle. Only training (`train`) augments; evaluation is the image processor alone."""
        if augmentation not in AUGMENTATIONS:
            raise ValueError(f"augmentation must be one of {', '.join(AUGMENTATIONS)}, got {augmentation!r}.")
        self.processor = processor
        self.image_column, self.label_column = image_column, label_column
        self.mode = "L" if config.num_channels == 1 else "RGB"
        self.height, self.width = pair(config.image_size)
        self.train = train
        self.augmentation = augmentation
        self.flip = flip and augmentation != "none"
        self.padding = crop_padding
        self.erasing = erasing
        self.mean = np.array(processor.image_mean, dtype=np.float32).reshape(1, -1, 1, 1)
        self.std = np.array(processor.image_std, dtype=np.float32).reshape(1, -1, 1, 1)
        self.resample = PIL.Image.Resampling(processor.resample)
        self.seed = seed
        self.epoch = 0  # loader workers get it with their copy of the data set, made anew each epoch

    @classmethod
    def for_run(cls, processor, config, data_args, train, seed=0):
        """The transform of a run's resolved data options (`vit_simple.options`); --crop_padding by default the
        recipe's share of the model's image side."""
        if not train:  # evaluation is the image processor alone
            return cls(processor, config, image_column=data_args.image_column_name,
                       label_column=data_args.label_column_name)
        padding = data_args.crop_padding or recipe.crop_padding(min(pair(config.image_size)))
        return cls(processor, config, train, data_args.augmentation, data_args.horizontal_flip, padding,
                   data_args.random_erasing, seed, data_args.image_column_name, data_args.label_column_name)

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def __call__(self, batch, indices=None):
        """`indices`: the examples' indices in their split (default 0, 1, ...), which key their augmentation."""
        images = [decode_image(value, self.mode) for value in batch[self.image_column]]
        if self.train:
            indices = range(len(images)) if indices is None else indices
            pixel_values = self.augment(images, [np.random.default_rng((self.seed, self.epoch, i)) for i in indices])
        else:
            pixel_values = np.stack(self.processor(images, return_tensors="np")["pixel_values"])
        return {"pixel_values": pixel_values, "labels": np.asarray(batch[self.label_column])}

    def augment(self, images, rngs):
        """(batch, channels, height, width) float32: random crop (resized, or padded, or none) and flip, then
        normalised; each image's random numbers from its own Generator in `rngs`."""
        size, count = (self.width, self.height), len(images)
        if self.augmentation == "resized_crop":
            images = [image.resize(size, self.resample, box=random_resized_crop_box(*image.size, rng))
                      for image, rng in zip(images, rngs)]
        else:
            images = [image if image.size == size else image.resize(size, self.resample) for image in images]
        pixels = np.stack([np.asarray(image) for image in images])
        pixels = pixels.reshape(*pixels.shape[:3], -1)  # (b, h, w, c), also for grayscale
        if self.augmentation == "pad_crop":  # zero padding, then one random window per image: a random shift
            pad = self.padding
            padded = np.pad(pixels, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
            tops, lefts = np.array([rng.integers(0, 2 * pad + 1, 2) for rng in rngs]).T
            rows = tops[:, None] + np.arange(self.height)
            columns = lefts[:, None] + np.arange(self.width)
            pixels = padded[np.arange(count)[:, None, None], rows[:, :, None], columns[:, None, :]]
        if self.flip:
            flipped = np.array([rng.random() < 0.5 for rng in rngs])
            pixels[flipped] = pixels[flipped, :, ::-1]
        pixels = pixels.transpose(0, 3, 1, 2).astype(np.float32) * np.float32(self.processor.rescale_factor)
        pixels = (pixels - self.mean) / self.std
        if self.erasing:  # after the other draws, so turning it on leaves their random numbers as they were
            for image, rng in zip(pixels, rngs):
                box = random_erasing_box(self.height, self.width, rng) if rng.random() < self.erasing else None
                if box is not None:
                    top, left, height, width = box
                    image[:, top : top + height, left : left + width] = 0  # the mean, once normalised
        return pixels


def with_transform(part, transform, batch_size):
    """Apply `transform` lazily: on each batch as it is read (map-style) or as it streams (iterable), with the
    examples' indices."""
    part = part.cast_column(transform.image_column, Image(decode=False))  # decode_image reports broken files
    if isinstance(part, datasets.IterableDataset):
        return part.map(transform, batched=True, batch_size=batch_size, with_indices=True,
                        remove_columns=list(part.features))
    return IndexedSplit(part, transform)


class IndexedSplit(torch.utils.data.Dataset):
    """A map-style split whose `transform` gets each batch with its examples' indices (datasets' with_transform
    passes none), and `set_epoch`, which Trainer's loop calls through accelerate and train_hf.py at each epoch."""

    def __init__(self, part, transform):
        self.part, self.transform = part, transform

    def __len__(self):
        return len(self.part)

    def set_epoch(self, epoch):
        self.transform.set_epoch(epoch)

    def __getitems__(self, indices):
        batch = self.transform(self.part[indices], indices)
        return [dict(zip(batch, values)) for values in zip(*batch.values())]

    def __getitem__(self, index):
        return self.__getitems__([index])[0]


def collate(examples):
    return {
        "pixel_values": torch.from_numpy(np.stack([example["pixel_values"] for example in examples])),
        "labels": torch.from_numpy(np.stack([example["labels"] for example in examples])),
    }


def mix_batch(pixels, labels, num_labels, rng, mixup=0.0, cutmix=0.0):
    """Mixup and CutMix of a training batch, as timm's `Mixup` in batch mode (DeiT's recipe): each image is mixed with
    its partner, the image at the mirrored place in the (shuffled) batch, by a share lam ~ Beta(alpha, alpha). Mixup
    blends the two images, lam of its own; CutMix pastes a random box of area 1 - lam from the partner, clipped to
    the image, and lam becomes the share the box leaves. With both alphas above 0 each batch takes one of the two,
    even odds; an alpha of 0 turns its kind off. `rng`: a numpy Generator, all the randomness.

    Returns the mixed pixels and the targets (batch, num_labels): lam on the image's own class, 1 - lam on its
    partner's, for a cross-entropy on class probabilities."""
    use_cutmix = cutmix > 0 and (mixup <= 0 or rng.random() < 0.5)
    alpha = cutmix if use_cutmix else mixup
    lam = float(rng.beta(alpha, alpha))
    partner = pixels.flip(0)
    if use_cutmix:
        height, width = pixels.shape[-2:]
        cut = math.sqrt(1.0 - lam)
        half_h, half_w = int(height * cut) // 2, int(width * cut) // 2
        center_y, center_x = int(rng.integers(height)), int(rng.integers(width))
        top, bottom = max(center_y - half_h, 0), min(center_y + half_h, height)
        left, right = max(center_x - half_w, 0), min(center_x + half_w, width)
        pixels = pixels.clone()
        pixels[..., top:bottom, left:right] = partner[..., top:bottom, left:right]
        lam = 1.0 - (bottom - top) * (right - left) / (height * width)
    else:
        pixels = pixels * lam + partner * (1.0 - lam)
    own = F.one_hot(labels.long(), num_labels).to(pixels.dtype if pixels.is_floating_point() else torch.float32)
    return pixels, own * lam + own.flip(0) * (1.0 - lam)
