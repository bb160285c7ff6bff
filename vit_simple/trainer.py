"""The Trainer side of a run: `ViTSimpleTrainer` (weight decay by the model's `no_weight_decay()`, Muon with AdamW
for the blocks' weight matrices, test-time augmentation) and its callbacks: the weight average, the training clock
(the minutes said up front, the time budget), the augmentation's epoch; and which checkpoint a resume continues."""

import json
import logging
import math
import os
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import Trainer, TrainerCallback
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_callback import ExportableState
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, SaveStrategy

from vit_simple.augmentation import mix_batch
from vit_simple.errors import InputError
from vit_simple.optimizers import (BatchedMuon, MuonWithAdamW, block_matrix_names, fused_qkv_blocks,
                                   newton_schulz_dtype)
from vit_simple.saving import RunDiverged

logger = logging.getLogger(__name__)
EMA_FILE = "ema.safetensors"  # the weight average, inside each checkpoint folder


class ViTSimpleTrainer(Trainer):
    """Trainer that decays only what the model's `no_weight_decay()` allows, can give the blocks' weight matrices to
    Muon (`muon_learning_rate`: set for Muon, None for AdamW alone; `muon_split_qkv`: q, k and v orthogonalised
    apart), can mix its training batches (`mixup`, `cutmix`: Beta alphas, 0 for none; see `mix_batch`), and leaves
    README.md to train_hf.py."""

    def __init__(self, *args, muon_learning_rate=None, muon_split_qkv=False, ema_decay=None, mixup=0.0, cutmix=0.0,
                 **kwargs):
        self.muon_learning_rate = muon_learning_rate
        self.muon_split_qkv = muon_split_qkv
        self.mixing = (mixup, cutmix) if mixup > 0 or cutmix > 0 else None
        self.mixed_batches = (-1, 0)  # (global step, batches mixed in it): with the seed, what keys the next mix
        if self.mixing is not None:  # the loss on class probabilities, which mixed targets are
            kwargs["compute_loss_func"] = self.cross_entropy
        self.non_finite = None  # (what, value) once a training loss is NaN or infinite: the run stops at that step
        self.weight_average = WeightAverage(ema_decay) if ema_decay else None
        if self.weight_average is not None:  # first, so that it completes a checkpoint before other callbacks run
            kwargs["callbacks"] = [self.weight_average, *(kwargs.get("callbacks") or [])]
        super().__init__(*args, **kwargs)

    def training_step(self, model, inputs, num_items_in_batch=None):
        if self.args.torch_compile:
            inputs = unshared(inputs)
        loss = super().training_step(model, inputs, num_items_in_batch)
        if not torch.isfinite(loss):  # raised once the gradients are in: every process stops at the same step
            self.non_finite = ("training loss", loss.item())
        return loss

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Trainer's loss, on a mixed batch in training where `mixup` or `cutmix` asks for one."""
        if self.mixing is not None and model.training:
            pixels, targets = mix_batch(inputs["pixel_values"], inputs["labels"], self.num_labels(model),
                                        self.mixing_rng(), *self.mixing)
            inputs = {**inputs, "pixel_values": pixels, "labels": targets}
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        if self.args.torch_compile:
            inputs = unshared(inputs)
        return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys)

    def mixing_rng(self):
        """The next batch's random numbers for mixing, a function of (seed, step, batch within the step, process)
        alone, so that a run resumed from a checkpoint mixes every later batch as the uninterrupted run does."""
        step, count = self.mixed_batches
        count = count + 1 if step == self.state.global_step else 0
        self.mixed_batches = (self.state.global_step, count)
        return np.random.default_rng((self.args.seed, self.state.global_step, count, self.args.process_index))

    def num_labels(self, model):
        return self.accelerator.unwrap_model(model).config.num_labels

    def cross_entropy(self, outputs, labels, num_items_in_batch=None):
        """The cross-entropy of the logits against class indices or class probabilities (a mixed batch), with
        --label_smoothing_factor; summed over the batch and divided by `num_items_in_batch` (Trainer's count over
        the accumulated batches), else averaged."""
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        loss = F.cross_entropy(logits.float(), labels.to(logits.device), reduction="sum",
                               label_smoothing=self.args.label_smoothing_factor)
        return loss / (num_items_in_batch if num_items_in_batch is not None else len(logits))

    def _get_grad_norm(self, model, grad_norm=None):
        """Trainer's gradient norm before each optimizer step (a private hook of transformers 5), where a non-finite
        loss or norm ends the run, in one message naming whichever turned first (which one does depends on the
        CPU's float arithmetic: bf16-native CPUs often see the norm overflow before the loss): with DDP the norm is
        the same on every process, so all stop together."""
        grad_norm = super()._get_grad_norm(model, grad_norm)
        norm = float(grad_norm) if grad_norm is not None else 0.0
        what = self.non_finite or (None if math.isfinite(norm) else ("gradient norm", norm))
        if what is not None:
            raise RunDiverged(f"step {self.state.global_step + 1}: training diverged: the {what[0]} is {what[1]}, so "
                              f"training stopped before the weights took it. {self.divergence_advice()}")
        return grad_norm

    def divergence_advice(self):
        """What to try after a run turned non-finite, in one sentence."""
        clip = self.args.max_grad_norm
        return (f"Nothing was saved over {self.args.output_dir}'s model; its last complete checkpoint, if any, "
                f"stays. Try a lower --learning_rate (now {self.args.learning_rate:g}), "
                + (f"a lower --max_grad_norm (now {clip:g})" if clip > 0 else "--max_grad_norm 1.0")
                + (", --bf16 false" if self.args.bf16 else "")
                + ", then --resume_from_checkpoint true to continue from that checkpoint.")

    def evaluate(self, *args, **kwargs):
        """During training, evaluate the weight average (with --ema_decay): the model that will be saved."""
        if self.weight_average is None:
            return super().evaluate(*args, **kwargs)
        with self.weight_average.swapped_in(self.model):
            return super().evaluate(*args, **kwargs)

    def get_decay_parameter_names(self, model):
        no_decay = getattr(self.accelerator.unwrap_model(model), "no_weight_decay", None)
        if no_decay is None:  # not a vit-simple model: Trainer's rule (no decay on biases and norms)
            return super().get_decay_parameter_names(model)
        skip = no_decay()
        # wrappers (DDP, FSDP, torch.compile) only prefix the names
        return [name for name, _ in model.named_parameters()
                if not any(name == s or name.endswith("." + s) for s in skip)]

    def create_optimizer(self, model=None):
        if self.muon_learning_rate is None or self.optimizer is not None:
            return super().create_optimizer(model)
        model = self.model if model is None else model
        matrices = set(block_matrix_names(model))
        if not matrices:  # nothing for Muon (e.g. a frozen backbone): AdamW alone
            return super().create_optimizer(model)
        decay = set(self.get_decay_parameter_names(model))
        rest = [(name, param) for name, param in model.named_parameters()
                if param.requires_grad and name not in matrices]
        adamw_cls, adamw_kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
        adamw = adamw_cls([
            {"params": [p for n, p in rest if n in decay], "weight_decay": self.args.weight_decay},
            {"params": [p for n, p in rest if n not in decay], "weight_decay": 0.0},
        ], **adamw_kwargs)
        # match_rms_adamw scales each update to AdamW's typical size, so AdamW's weight decay carries over
        muon = BatchedMuon([p for n, p in model.named_parameters() if n in matrices], lr=self.muon_learning_rate,
                           weight_decay=self.args.weight_decay, adjust_lr_fn="match_rms_adamw",
                           ns_dtype=newton_schulz_dtype(self.args.bf16),
                           row_blocks=fused_qkv_blocks(model, matrices) if self.muon_split_qkv else None)
        self.optimizer = MuonWithAdamW(adamw, muon)
        return self.optimizer

    @torch.no_grad()
    def predict_views(self, dataset, views, black):
        """Test-time augmentation: the class probabilities averaged over `views` of each image ((flip, dy, dx):
        a left-right flip, then a shift by dy, dx pixels with black coming in), and the labels. `black` is a black
        pixel after normalisation, one value per channel."""
        model = self.model.eval()  # each process takes its shard of the batches; no DDP wrapper needed without grads
        black = torch.tensor(black, dtype=torch.float32).view(1, -1, 1, 1)
        all_probs, all_labels = [], []
        for batch in self.get_test_dataloader(dataset):
            pixels, labels = batch["pixel_values"], batch["labels"]
            probs = 0
            for flip, dy, dx in views:
                view = shifted(pixels.flip(-1) if flip else pixels, dy, dx, black.to(pixels.device))
                with self.autocast_smart_context_manager():
                    probs = probs + model(pixel_values=view).logits.float().softmax(-1)
            probs, labels = self.accelerator.gather_for_metrics((probs / len(views), labels))
            all_probs.append(probs.cpu())
            all_labels.append(labels.cpu())
        return torch.cat(all_probs), torch.cat(all_labels)

    def create_model_card(self, *args, **kwargs):
        """The script writes README.md itself (test results, usage); keep push_to_hub() from replacing it."""


class WeightAverage(TrainerCallback):
    """An exponential moving average of the weights, updated after every optimizer step with the decay warming up
    as timm's ModelEmaV3 does (min(decay, (1 + step) / (10 + step))). It is saved in each checkpoint and restored on
    resume; evaluation during training sees it (`swapped_in`), and at the end of training it replaces the weights,
    so the saved model is the average."""

    def __init__(self, decay):
        self.decay, self.average, self.names = decay, None, None

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.names = [name for name, param in model.named_parameters()]
        self.average = [param.detach().clone() for param in model.parameters()]
        if args.resume_from_checkpoint and state.global_step > 0:
            saved = Path(args.resume_from_checkpoint) / EMA_FILE
            if not saved.is_file():
                raise FileNotFoundError(f"{saved} is missing: this checkpoint was written without --ema_decay; resume "
                                        "it without --ema_decay (or with --ema_decay 0).")
            weights = load_file(saved)
            self.average = [weights[name].to(param.device) for name, param in zip(self.names, model.parameters())]

    @torch.no_grad()
    def on_step_end(self, args, state, control, model=None, **kwargs):
        decay = min(self.decay, (1 + state.global_step) / (10 + state.global_step))
        torch._foreach_lerp_(self.average, [param.detach() for param in model.parameters()], 1 - decay)

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if folder.is_dir() and state.is_world_process_zero:
            save_file({name: t.contiguous().cpu() for name, t in zip(self.names, self.average)},
                      os.fspath(folder / EMA_FILE))

    @torch.no_grad()
    def on_train_end(self, args, state, control, model=None, **kwargs):
        for param, average in zip(model.parameters(), self.average):
            param.copy_(average)
        self.average = None  # the model is the average from now on

    @contextmanager
    def swapped_in(self, model):
        if self.average is None:
            yield
            return
        saved = [param.detach().clone() for param in model.parameters()]
        with torch.no_grad():
            torch._foreach_copy_([param.data for param in model.parameters()], self.average)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_([param.data for param in model.parameters()], saved)


def unshared(inputs):
    """The batch with each tensor that lies in shared memory (a dataloader worker's batch, on CPU) copied out of it.
    A torch.compile'd model (torch 2.14) crashes the process with a segmentation fault when it reads a batch from a
    dataloader worker on some CPUs (a 2-core Intel Xeon with AMX: the second training step), and runs on a copy; the
    copy costs one memcpy of the batch, next to a training step nothing."""
    return {key: value.clone() if isinstance(value, torch.Tensor) and value.is_shared() else value
            for key, value in inputs.items()}


def shifted(pixels, dy, dx, fill):
    """`pixels` (b, c, h, w) moved down by dy and right by dx pixels (negative: up, left), `fill` coming in."""
    if dy == dx == 0:
        return pixels
    height, width = pixels.shape[-2:]
    pad = max(abs(dy), abs(dx))
    padded = F.pad(pixels - fill, (pad, pad, pad, pad)) + fill
    return padded[..., pad - dy : pad - dy + height, pad - dx : pad - dx + width]


def tta_views(flip, shift=1):
    """The image, its shifts by `shift` pixels along each axis, and (with `flip`) its mirror image."""
    views = [(False, 0, 0), (False, shift, 0), (False, -shift, 0), (False, 0, shift), (False, 0, -shift)]
    return views + [(True, 0, 0)] if flip else views


def tta_accuracy(trainer, dataset, flip):
    """Accuracy with test-time augmentation: the probabilities averaged over the image, its 1-pixel shifts and,
    where training flipped images, its mirror image."""
    processor = trainer.processing_class
    black = [-mean / std for mean, std in zip(processor.image_mean, processor.image_std)]
    probs, labels = trainer.predict_views(dataset, tta_views(flip), black)
    return (probs.argmax(-1) == labels).float().mean().item()


CHECKPOINT_FILES = ("model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth", TRAINER_STATE_NAME)


def checkpoint_to_resume(training_args):
    """--resume_from_checkpoint as a checkpoint folder. `true` (or a run's output folder) means the latest complete
    checkpoint in --output_dir (or that folder), as transformers' examples pick it with get_last_checkpoint; a
    checkpoint that a kill left half-written is skipped with a warning, never loaded."""
    wanted = training_args.resume_from_checkpoint
    if not wanted:
        return None
    latest = wanted.lower() in ("true", "last", "latest")
    folder = Path(training_args.output_dir if latest else wanted)
    checkpoints = sorted((p for p in folder.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if p.name.split("-")[-1].isdigit()),
                         key=lambda p: int(p.name.split("-")[-1]))
    if not latest and not checkpoints:
        return wanted  # a checkpoint folder itself, or a missing folder (refused by the caller)
    needed = CHECKPOINT_FILES + ((EMA_FILE,) if training_args.ema_decay else ())
    for checkpoint in reversed(checkpoints):
        missing = [name for name in needed if not (checkpoint / name).is_file()]
        try:
            json.loads((checkpoint / TRAINER_STATE_NAME).read_text())
        except (OSError, ValueError):
            missing = missing or [f"a readable {TRAINER_STATE_NAME}"]
        if not missing:
            logger.warning(f"Resuming from {checkpoint}, the latest complete checkpoint in {folder}.")
            return str(checkpoint)
        logger.warning(f"Skipping {checkpoint}: incomplete (no {', '.join(missing)}), as a kill while it was being "
                       "written leaves it.")
    raise InputError(f"--resume_from_checkpoint {wanted}: {folder} holds no complete checkpoint "
                     f"({PREFIX_CHECKPOINT_DIR}-<step>) to resume from; drop the option to start afresh.")


class AugmentationEpoch(TrainerCallback):
    """Tell the training augmentation which epoch begins, the one a run resumes in the middle of included (where
    accelerate's set_epoch does not reach the data set): its random numbers are keyed by (seed, epoch, index)."""

    def __init__(self, augmentation):
        self.augmentation = augmentation

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.augmentation.set_epoch(math.floor(state.epoch + 1e-6))


class TrainingClock(TrainerCallback, ExportableState):
    """The time spent in training steps (data loading included; evaluation and checkpointing left out), summed over
    the run's resumes: it travels in each checkpoint's trainer state. Once the rate has settled it prints the minutes
    the run will take, and with `budget_minutes` it stops training at the first step past that many minutes, as
    Lightning's `Trainer(max_time=...)`: that step is checkpointed (a resume with a larger budget continues from it),
    and the run ends as after its last epoch."""

    warmup_steps = 10  # steps left out of the estimate: start-up, the first loader worker, first allocations
    estimate_steps = 20  # steps timed for the estimate

    def __init__(self, budget_minutes=None):
        self.budget_minutes = budget_minutes
        self.seconds, self.steps, self.since = 0.0, 0, None  # this process's share, for its images/s
        self.earlier_seconds = 0.0  # the checkpoint's, when the run resumes
        self.warm = None  # (seconds, steps) when the warm-up ended
        self.stopped_at = None  # the epoch at which the budget stopped training

    @property
    def total_seconds(self):
        return self.earlier_seconds + self.seconds

    def state(self):
        return {"args": {"budget_minutes": self.budget_minutes}, "attributes": {"seconds": self.total_seconds}}

    def on_train_begin(self, args, state, control, **kwargs):
        saved = state.stateful_callbacks.get(type(self).__name__)
        if args.resume_from_checkpoint and state.global_step > 0 and isinstance(saved, dict):
            self.earlier_seconds = saved["attributes"]["seconds"]
        self.since = time.perf_counter()

    def restart(self, *args, **kwargs):
        self.since = time.perf_counter()

    on_epoch_begin = on_evaluate = on_save = restart

    def on_step_end(self, args, state, control, **kwargs):
        now = time.perf_counter()
        self.seconds += now - self.since
        self.steps += 1
        self.since = now
        if self.steps == self.warmup_steps:
            self.warm = (self.seconds, self.steps)
        elif self.warm and self.steps == self.warm[1] + self.estimate_steps and state.is_world_process_zero:
            print(self.estimate(args, state), flush=True)
        if self.budget_minutes is not None and state.global_step < state.max_steps and \
                decided_by_first_process(self.total_seconds >= 60 * self.budget_minutes, args.device):
            control.should_training_stop = True
            control.should_save = args.save_strategy != SaveStrategy.NO
            self.stopped_at = state.epoch

    def on_epoch_end(self, args, state, control, **kwargs):
        # the stopping step is checkpointed already and the run evaluates at its end: an evaluation here, then a
        # second save, would write the checkpoint again with the random state the evaluation moved
        if self.stopped_at is not None:
            control.should_evaluate = control.should_save = False

    def estimate(self, args, state):
        """'training at 1180 images/s: about 15 minutes for 20 epochs (evaluation aside); ...'"""
        seconds_per_step = (self.seconds - self.warm[0]) / (self.steps - self.warm[1])
        total = (self.total_seconds + (state.max_steps - state.global_step) * seconds_per_step) / 60
        length = (f"{args.num_train_epochs:g} epochs" if args.max_steps <= 0 else f"{state.max_steps} steps")
        line = (f"training at {images_per_step(args) / seconds_per_step:.0f} images/s: about {total:.0f} minutes for "
                f"{length} (evaluation aside); ")
        if self.budget_minutes is None:
            return line + "--max_train_minutes sets a budget"
        if total <= self.budget_minutes:
            return line + f"within the budget of {self.budget_minutes:g} minutes"
        share = max(0.0, (60 * self.budget_minutes - self.total_seconds) / seconds_per_step + state.global_step)
        return line + (f"the budget of {self.budget_minutes:g} minutes stops it near epoch "
                       f"{share / state.max_steps * state.num_train_epochs:.1f}")

    def images_per_second(self, args):
        return self.steps * images_per_step(args) / self.seconds if self.seconds else float("nan")


def images_per_step(args):
    return args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size


def decided_by_first_process(decision, device):
    """`decision` as the first process made it: processes that each read their own clock could disagree, and one
    that stops alone would leave the others waiting for it."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return decision
    flag = torch.tensor([int(decision)], device=device)
    torch.distributed.broadcast(flag, src=0)
    return bool(flag.item())


