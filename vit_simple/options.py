"""train_hf.py's options: the model, data and Trainer options (transformers' `HfArgumentParser` dataclasses, as in
transformers' examples), parsed and then resolved in one place, `resolve_options`, which decides every default the
recipe leaves open (Muon or AdamW, the schedule, bf16, flips, ...) and records what it chose for the model card.

Options are never abbreviated: `--warmup_step` is refused with one line that names `--warmup_steps`; each option
also takes dashes (`--warmup-steps`)."""

import difflib
import json
import logging
import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

import torch
from transformers import AutoConfig, HfArgumentParser, TrainingArguments
from transformers.trainer_utils import IntervalStrategy, SaveStrategy, SchedulerType

from configuration_vit_simple import pair
from vit_simple import recipe
from vit_simple.augmentation import AUGMENTATIONS
from vit_simple.checkpoints import check_checkpoint, loading
from vit_simple.data import is_fashion_mnist
from vit_simple.errors import InputError
from vit_simple import hardware
from vit_simple.optimizers import newton_schulz_dtype
from vit_simple.saving import recover
from vit_simple.trainer import checkpoint_to_resume

logger = logging.getLogger(__name__)


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(default=None, metadata={"help": (
        "A vit-simple checkpoint to fine-tune: a folder saved by this script or a Hub model id. Unset: train from "
        "scratch a model of --model_size.")})
    model_size: Literal[tuple(recipe.MODEL_SIZES)] = field(default=recipe.MODEL_SIZE, metadata={"help": (
        "From scratch: the model's size. " + "; ".join(
            f"{name}: dim {s['dim']}, depth {s['depth']}, heads {s['heads']}, mlp_dim {s['mlp_dim']}"
            for name, s in recipe.MODEL_SIZES.items()) + ".")})
    config_overrides: str | None = field(default=None, metadata={"help": (
        "From scratch: config values over --model_size, e.g. 'depth=4,dim=128,patch_size=7,pool=mean,dropout=0.1' "
        "(vit-pytorch or transformers names; a height x width pair as image_size=32x48). By default image_size is "
        f"the data's (224 for images larger than {recipe.SMALL_IMAGE} pixels), patch_size 16 at 224 and otherwise "
        f"the largest that still cuts at least {recipe.MIN_GRID}x{recipe.MIN_GRID} patches, channels 3 (images are "
        "converted to RGB; channels=1 trains on grayscale), and patch_dropout the recipe's: each training step drops "
        "that share of each image's patches at random, evaluation sees them all (0 turns it off).")})
    trust_remote_code: bool = field(default=False, metadata={
        "help": "Allow the checkpoint's own code (its .py files) to run: needed for vit-simple repos on the Hub."})
    ignore_mismatched_sizes: bool = field(default=False, metadata={
        "help": "Replace the checkpoint's classification head when the data has another label set."})
    model_revision: str = field(default="main", metadata={"help": "The checkpoint's branch, tag or commit."})
    cache_dir: str | None = field(default=None, metadata={
        "help": "Where downloaded models and data sets, and the converted Fashion-MNIST, are stored."})

    @property
    def from_scratch(self):
        return self.model_name_or_path is None

    def hub_kwargs(self):
        return dict(trust_remote_code=self.trust_remote_code, revision=self.model_revision, cache_dir=self.cache_dir)


@dataclass
class DataArguments:
    dataset_name: str | None = field(default=None, metadata={"help": (
        "A data set on the Hub (e.g. 'beans'), a local data set folder, or 'fashion_mnist': the built-in offline "
        "Fashion-MNIST, read from /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist) or from any "
        "folder given here that holds its four IDX files. Default: fashion_mnist, unless --train_dir is given.")})
    dataset_config_name: str | None = field(default=None, metadata={"help": "The data set's configuration name."})
    train_dir: str | None = field(default=None, metadata={
        "help": "A folder of training images, one sub-folder per class (the `imagefolder` layout)."})
    validation_dir: str | None = field(default=None, metadata={"help": "A folder of validation images, as --train_dir."})
    test_dir: str | None = field(default=None, metadata={"help": "A folder of test images, as --train_dir."})
    image_column_name: str = field(default="image", metadata={"help": "The column holding the images."})
    label_column_name: str = field(default="label", metadata={"help": "The column holding the class labels."})
    train_val_split: float | None = field(default=None, metadata={"help": (
        "Fraction of the training split held out for validation when the data set has no validation split. "
        f"Default: a checkpoint's own (see --validation_seed), else {recipe.VALIDATION_SPLIT}.")})
    max_validation_size: int | None = field(default=None, metadata={"help": (
        "Keep at most this many of the --train_val_split images for validation (a stratified subset of them, the "
        "same seed's) and train on the rest; 0 keeps them all. 2000 fits the calibration temperature as well as "
        "6,000 images do: a final fit on more of the data once the recipe is chosen. Default: a checkpoint's own "
        f"(see --validation_seed), else {recipe.MAX_VALIDATION_SIZE}.")})
    validation_seed: int | None = field(default=None, metadata={"help": (
        "The seed that holds the validation split out of the training data (when the data has none). Default: a "
        "checkpoint's own, with its --train_val_split and --max_validation_size (a trained model records them in "
        "its config, `validation_split`), so that evaluating or fine-tuning it validates on images it never trained "
        "on; else --seed.")})
    max_train_samples: int | None = field(default=None, metadata={
        "help": "Train on only this many (shuffled) training examples: for quick runs and debugging."})
    max_eval_samples: int | None = field(default=None, metadata={
        "help": "Evaluate on only the first this many validation and test examples."})
    streaming: bool = field(default=False, metadata={"help": (
        "Read the data as a stream (an IterableDataset) instead of downloading it first; needs --max_steps. Without "
        "a validation split, the first --max_eval_samples (default 1000) training examples are held out.")})
    augmentation: Literal["auto", *AUGMENTATIONS] = field(default="auto", metadata={"help": (
        "Training augmentation. pad_crop: zero-pad by --crop_padding pixels and crop at random (a random shift); "
        "resized_crop: random resized crop (large images); flip: flips alone; none: the images as they are. Each "
        "draws from (seed, epoch, image index), so a resumed run repeats it exactly. auto: from scratch, flips alone "
        f"(a run of minutes from scratch underfits); fine-tuning a checkpoint, pad_crop up to {recipe.SMALL_IMAGE} "
        "pixels and resized_crop above. Flips with every choice but none, as --horizontal_flip says.")})
    crop_padding: int | None = field(default=None, metadata={
        "help": "pad_crop's padding in pixels, the largest shift. Default: 1/8 of the image side."})
    random_erasing: float = field(default=0.0, metadata={"help": (
        "With this probability, blank one random rectangle (2-33%% of the image, aspect 0.3-3.3) of each training "
        "image to the mean, as torchvision's RandomErasing. Label-preserving; off by default.")})
    mixup: float = field(default=0.0, metadata={"help": (
        "Mixup: blend each training image with another of its batch, and their labels, by a share drawn from "
        "Beta(x, x) per batch (DeiT: 0.8). 0: off (the default). With --cutmix, half the batches take each.")})
    cutmix: float = field(default=0.0, metadata={"help": (
        "CutMix: paste a random box of another image of the batch into each training image, the labels mixed by "
        "area; the box's share of the image drawn from Beta(x, x) per batch (DeiT: 1.0). 0: off (the default).")})
    predict_split: str = field(default="test", metadata={
        "help": "The split --do_predict predicts on and reports (test, validation or train)."})
    horizontal_flip: bool | None = field(default=None, metadata={"help": (
        "Also flip training images left-right at random. Default: on for the built-in Fashion-MNIST (a mirrored "
        "garment or shoe keeps its class), off for other data, where a mirror can change the class (digits, letters, "
        "arrows); --horizontal_flip true asks for them. Never with --augmentation none.")})


@dataclass
class TrainArguments(TrainingArguments):
    """`TrainingArguments` with the recipe's defaults (vit_simple.recipe): Fashion-MNIST from scratch, on a CPU. A
    default of None is decided by `resolve_options`."""

    output_dir: str | None = field(default="outputs/vit-simple", metadata={
        "help": "Where the model, its model card, results and checkpoints are written."})
    num_train_epochs: float = field(default=recipe.EPOCHS, metadata={"help": "Total number of training epochs."})
    max_train_minutes: float | None = field(default=None, metadata={"help": (
        "A time budget: stop training at the first step past this many minutes of training (evaluation and "
        "checkpoints not counted, earlier parts of a resumed run counted), then evaluate, report and save as after "
        "the last epoch, with the weight average. The summary, all_results.json and the model card say where it "
        "stopped; --resume_from_checkpoint true with a larger budget continues the run.")})
    per_device_train_batch_size: int = field(default=recipe.BATCH_SIZE, metadata={
        "help": "Training batch size per device."})
    per_device_eval_batch_size: int = field(default=recipe.EVAL_BATCH_SIZE, metadata={
        "help": "Evaluation batch size per device."})
    learning_rate: float = field(default=recipe.LEARNING_RATE, metadata={
        "help": "Peak learning rate of AdamW (fine-tuning wants less than training from scratch, e.g. 1e-4)."})
    muon: bool | None = field(default=recipe.MUON, metadata={"help": (
        "Train the blocks' weight matrices with Muon (torch.optim.Muon's update, batched by shape, at "
        "--muon_learning_rate) and the rest (patch embedding, head, norms, biases, CLS token, positions) with AdamW. "
        "Default: Muon from scratch, AdamW alone when fine-tuning a checkpoint.")})
    muon_learning_rate: float = field(default=recipe.MUON_LEARNING_RATE, metadata={
        "help": "Peak learning rate of Muon (its updates scaled to AdamW's size: adjust_lr_fn='match_rms_adamw')."})
    muon_split_qkv: bool = field(default=recipe.MUON_SPLIT_QKV, metadata={"help": (
        "Muon orthogonalises each block's query, key and value matrices apart, as modded-nanogpt does, instead of "
        "the fused qkv projection as one matrix (round 11: level with it at 20 epochs, so off).")})
    weight_decay: float = field(default=recipe.WEIGHT_DECAY, metadata={
        "help": "Weight decay of AdamW and Muon, on weight matrices only (the model's no_weight_decay() takes none)."})
    lr_scheduler_type: SchedulerType | None = field(default=None, metadata={"help": (
        "Learning rate schedule after the warm-up (see transformers' SchedulerType). Default: constant with Muon "
        "(with the weight average, a decaying rate overfits), cosine with AdamW alone.")})
    warmup_steps: float | None = field(default=None, metadata={"help": (
        "Linear warm-up: a number of steps, or a fraction in [0, 1) of all steps. Default: none with Muon, 5%% of "
        "the steps with AdamW alone.")})
    ema_decay: float = field(default=recipe.EMA_DECAY, metadata={"help": (
        "Keep an exponential moving average of the weights with this decay (0: none), evaluate it during training "
        "and save it as the final model.")})
    label_smoothing_factor: float = field(default=recipe.LABEL_SMOOTHING, metadata={
        "help": "Label smoothing of the cross-entropy: the true class gets 1 - x + x/classes, the others x/classes."})
    bf16: bool | None = field(default=None, metadata={"help": (
        "Train (and evaluate) under bfloat16 autocast, the weights staying float32; Muon's Newton-Schulz iterations "
        "run in bfloat16 too where it is native. Default: whether this machine has native bfloat16 matrix "
        "multiplication (a GPU of compute capability 8.0 or later, or a CPU with AVX512-BF16 or AMX); elsewhere "
        "bfloat16 is emulated and slower than float32. --bf16 false gives the float32 path on any machine.")})
    do_train: bool = field(default=True, metadata={"help": (
        "Train. --do_train false evaluates or predicts with the checkpoint of --model_name_or_path as it is, and "
        "writes no model.")})
    do_eval: bool = field(default=True, metadata={"help": (
        "Evaluate on the validation split at the end (--eval_strategy sets the evaluations during training).")})
    do_predict: bool | None = field(default=None, metadata={"nargs": "?", "const": True, "help": (
        "Predict on --predict_split (test) once, at the end, and write the reports (predictions CSV, per-class "
        "report, confusion matrix, mistakes, attention maps) to <output_dir>/reports. Default: when the data has "
        "that split; --do_predict asks for it (an error without the split), --do_predict false keeps the test split "
        "unseen, for runs that compare recipes.")})
    calibrate: bool = field(default=True, metadata={"help": (
        "After training, fit one temperature on the validation split (minimising its negative log-likelihood) and "
        "store it in the model (config.calibration_temperature, dividing the logits), so that its probabilities "
        "mean what they say, in pipeline, the exports and the demo page alike; predictions never change. A "
        "checkpoint's temperature is reset to 1 before fine-tuning and fitted again after. Without a validation "
        "split nothing is fitted.")})
    test_time_augmentation: bool = field(default=True, metadata={"help": (
        "After training, also report the validation and test accuracy averaged over 1-pixel shifts (and flips, "
        "where training flipped) of each image (eval_tta_accuracy, test_tta_accuracy), beside the saved model's "
        "own accuracy.")})
    eval_strategy: IntervalStrategy | str = field(default="epoch", metadata={
        "help": "When to evaluate on the validation split: 'no', 'steps' or 'epoch'."})
    save_strategy: SaveStrategy | str = field(default="epoch", metadata={
        "help": "When to write a checkpoint (for --resume_from_checkpoint): 'no', 'steps', 'epoch' or 'best'."})
    save_total_limit: int | None = field(default=recipe.SAVE_TOTAL_LIMIT, metadata={
        "help": "Keep at most this many checkpoints."})
    logging_steps: float = field(default=recipe.LOGGING_STEPS, metadata={
        "help": "Log the training loss every this many steps."})
    remove_unused_columns: bool = field(default=False, metadata={
        "help": "Must stay False: the image column feeds the transforms, Trainer would drop it."})
    dataloader_num_workers: int | None = field(default=None, metadata={
        "help": "Processes decoding and augmenting images while the model trains (0: in the training process). "
                "Default: a quarter of the CPU cores, from 1 to 4."})
    dataloader_pin_memory: bool | None = field(default=None, metadata={
        "help": "Copy batches to page-locked memory, for faster transfers to a GPU (default: whether there is one)."})

    def __post_init__(self):
        open_ = [name for name in RECIPE_DECIDES if getattr(self, name) is None]
        if open_:
            raise ValueError(f"TrainArguments leaves {', '.join(open_)} to the recipe: build it with "
                             "vit_simple.options.parse_arguments or resolve_options, or give them.")
        super().__post_init__()


RECIPE_DECIDES = ("muon", "lr_scheduler_type", "warmup_steps", "bf16", "dataloader_num_workers", "dataloader_pin_memory")
ARGUMENT_CLASSES = (ModelArguments, DataArguments, TrainArguments)


@dataclass
class Options:
    """A run's options, resolved: `model`, `data` and `training` (the three dataclasses, every default decided) and
    `chosen`, what the recipe decided for the options the command line left open, for the model card. Unpacks as
    (model, data, training)."""

    model: ModelArguments
    data: DataArguments
    training: TrainArguments
    chosen: dict
    hub: dict | None = None  # with --push_to_hub: where the model goes once it is saved (vit_simple.saving.upload)

    def __iter__(self):
        return iter((self.model, self.data, self.training))


def argument_parser():
    return HfArgumentParser(ARGUMENT_CLASSES, allow_abbrev=False)


def parse_arguments(args=None):
    """The command line (`args`, default sys.argv[1:]; or one .json file of options) as resolved `Options`."""
    args = sys.argv[1:] if args is None else list(args)
    parser = argument_parser()
    if len(args) == 1 and args[0].endswith(".json"):
        values = read_json_options(args[0])
    else:
        namespace, unknown = parser.parse_known_args(args)
        refuse_unknown(unknown, parser)
        values = vars(namespace)
    return resolve_options(values)


def read_json_options(path):
    """A JSON file of options, {name: value} with the names of the command line, over the defaults."""
    try:
        given = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: cannot read the options ({error}); give a JSON object of option names and "
                         "values.") from error
    parser = argument_parser()
    defaults = vars(parser.parse_args([]))
    refuse_unknown([f"--{name}" for name in given if name not in defaults], parser)
    return {**defaults, **given}


def refuse_unknown(unknown, parser):
    """One line for an option this script does not have, naming the closest one (options are never abbreviated)."""
    options = [name for name in unknown if name.startswith("-")]
    if not unknown:
        return
    if not options:
        raise InputError(f"unexpected argument(s) {' '.join(unknown)}: options take the form --name value.")
    known = [string for action in parser._actions for string in action.option_strings if string.startswith("--")]
    name = options[0].split("=")[0]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f": did you mean {close[0]}?" if close else "; --help lists them all."
    raise InputError(f"{name} is not an option (options are spelled in full){hint}")


def resolve_options(values):
    """Every option of a run from `values` ({option name: value}, None where the command line gave none): checked,
    and the recipe's defaults decided, the one place where they are. Returns `Options`."""
    pick = lambda cls: {f.name: values[f.name] for f in fields(cls) if f.init and f.name in values}  # noqa: E731
    model_args, data_args = ModelArguments(**pick(ModelArguments)), DataArguments(**pick(DataArguments))
    train = pick(TrainArguments)
    check_values(data_args, train)
    # the checkpoint is checked whole before anything is read or written (the output folder included)
    checkpoint = None if model_args.from_scratch else checkpoint_config(model_args)
    chosen = {}

    def choose(name, value):
        if train.get(name) is None:
            train[name] = chosen[name] = value

    choose("muon", model_args.from_scratch)
    schedule = recipe.MUON_SCHEDULE if train["muon"] else recipe.ADAMW_SCHEDULE
    for name, value in schedule.items():
        choose(name, value)
    choose("bf16", hardware.native_bfloat16())
    choose("dataloader_num_workers", recipe.dataloader_workers(os.cpu_count()))
    choose("dataloader_pin_memory", torch.cuda.is_available())
    if train["bf16"] and not train.get("use_cpu") and not torch.accelerator.is_available():
        train["use_cpu"] = True  # TrainingArguments allows bf16 without an accelerator only when told it is the CPU
    if not train.get("do_train", True):
        train["eval_strategy"] = IntervalStrategy.NO  # Trainer checks evaluation plans only when it trains
    hub = None
    if train.get("push_to_hub"):  # uploaded once, after the local save: Trainer itself never touches the Hub
        hub = {"repo_id": train.get("hub_model_id") or Path(train["output_dir"]).absolute().name,
               "token": train.get("hub_token"), "private": train.get("hub_private_repo"),
               "revision": train.get("hub_revision")}
        train["push_to_hub"] = False
    training_args = TrainArguments(**train)
    # TrainingArguments turns do_eval on whenever eval_strategy evaluates during training; here it means the final
    # evaluation, which --do_eval false leaves out whatever the evaluations during training
    training_args.do_eval = train.get("do_eval", True)
    resolve_validation_split(data_args, checkpoint, training_args.seed, model_args.model_name_or_path,
                             warn=training_args.process_index == 0)  # one line, not one per process
    if training_args.muon:
        chosen["newton_schulz"] = str(newton_schulz_dtype(training_args.bf16)).removeprefix("torch.")

    if model_args.from_scratch:
        try:
            overrides = recipe.parse_config_overrides(model_args.config_overrides)
        except ValueError as error:  # its messages name the option
            raise InputError(str(error)) from error
        if "patch_dropout_prob" not in overrides:
            chosen["patch_dropout"] = recipe.PATCH_DROPOUT
        if "shifted_patches" not in overrides:
            chosen["shifted_patches"] = recipe.SHIFTED_PATCHES
    if data_args.augmentation == "auto" and training_args.do_train:
        side = None if checkpoint is None else min(pair(checkpoint.image_size))
        data_args.augmentation = chosen["augmentation"] = recipe.auto_augmentation(model_args.from_scratch, side)
    if data_args.augmentation == "none":  # the images as they are: no mirror in training, so none in TTA's views
        data_args.horizontal_flip = False
    elif data_args.horizontal_flip is None:
        data_args.horizontal_flip = chosen["horizontal_flip"] = is_fashion_mnist(data_args)
    check_combinations(model_args, data_args, training_args)
    if training_args.do_train:
        with training_args.main_process_first(desc="finishing an interrupted save"):
            if training_args.process_index == 0:
                recover(training_args.output_dir)  # a save a kill cut short may hold the checkpoints
    training_args.resume_from_checkpoint = checkpoint_to_resume(training_args)
    if training_args.resume_from_checkpoint and not Path(training_args.resume_from_checkpoint).is_dir():
        raise InputError(f"--resume_from_checkpoint {training_args.resume_from_checkpoint} is not a folder: give a "
                         f"checkpoint folder, e.g. {training_args.output_dir}/checkpoint-500.")
    return Options(model_args, data_args, training_args, chosen, hub)


def check_values(data_args, train):
    """Refuse values that are out of range, before anything is built."""
    if data_args.train_val_split is not None and not 0 < data_args.train_val_split < 1:
        raise InputError(f"--train_val_split must be a fraction between 0 and 1, got {data_args.train_val_split}.")
    if data_args.max_validation_size is not None and data_args.max_validation_size < 0:
        raise InputError("--max_validation_size must be a number of images, or 0 to keep every held-out image, got "
                         f"{data_args.max_validation_size}.")
    if not 0 <= data_args.random_erasing <= 1:
        raise InputError(f"--random_erasing is a probability between 0 and 1, got {data_args.random_erasing}.")
    for name in ("mixup", "cutmix"):
        if not getattr(data_args, name) >= 0:
            raise InputError(f"--{name} is the alpha of a Beta distribution, 0 (off) or more (DeiT: 0.8 for mixup, 1.0 "
                             f"for CutMix), got {getattr(data_args, name)}.")
    if data_args.crop_padding is not None and data_args.crop_padding < 1:
        raise InputError(f"--crop_padding must be a whole number of pixels, at least 1, got {data_args.crop_padding}.")
    budget = train.get("max_train_minutes")
    if budget is not None and budget <= 0:
        raise InputError(f"--max_train_minutes must be a positive number of minutes, got {budget}.")


def resolve_validation_split(data_args, checkpoint, seed, name, warn=True):
    """--validation_seed, --train_val_split and --max_validation_size where the command line left them open: the
    checkpoint's own (its config's `validation_split`, recorded when it trained), else --seed and the recipe's, so
    that a model is evaluated and fine-tuned on the images it validated on, never on ones it trained on. A value given
    that differs from the checkpoint's is kept, with one line that says what it costs (where `warn`: the first
    process of a distributed run)."""
    record = getattr(checkpoint, "validation_split", None)
    valid = {"validation_seed": lambda value: isinstance(value, int) and value >= 0,  # a hand-edited config's other
             "train_val_split": lambda value: isinstance(value, float) and 0 < value < 1,  # values are left out
             "max_validation_size": lambda value: isinstance(value, int) and value >= 0}
    record = {option: value for option, value in (record.items() if isinstance(record, dict) else ())
              if option in valid and valid[option](value)}
    defaults = {"validation_seed": seed, "train_val_split": recipe.VALIDATION_SPLIT,
                "max_validation_size": recipe.MAX_VALIDATION_SIZE}
    differ = {}
    for option, default in defaults.items():
        given, recorded = getattr(data_args, option), record.get(option)
        if given is None:
            setattr(data_args, option, default if recorded is None else recorded)
        elif recorded is not None and given != recorded:
            differ[option] = given
    if differ and warn:
        own = " ".join(f"--{option} {record[option]}" for option in defaults if option in record)
        told = " ".join(f"--{option} {value}" for option, value in differ.items())
        logger.warning(f"--model_name_or_path {name} validated in training on images held out with {own}; {told} "
                       "draws others, some of which it trained on, so they read high (unless the data has a "
                       f"validation split of its own). Leave {', '.join(f'--{o}' for o in differ)} out to validate on "
                       "its own.")


def validation_record(data_args):
    """What a trained model records in its config (`validation_split`) of how its validation images were held out of
    the training data, for `resolve_validation_split` when it is evaluated or fine-tuned."""
    return {option: getattr(data_args, option) for option in ("validation_seed", "train_val_split",
                                                                "max_validation_size")}


def check_combinations(model_args, data_args, training_args):
    """Refuse option combinations that cannot work, before any data is read."""
    if not training_args.do_train and model_args.from_scratch:
        raise InputError("--do_train false needs --model_name_or_path: the checkpoint (a folder or Hub id) to "
                         "evaluate or predict with.")
    if not model_args.from_scratch and model_args.config_overrides:
        raise InputError("--config_overrides applies to a model trained from scratch; a checkpoint keeps its own "
                         "config (edit its config.json to change it).")
    if training_args.do_train and training_args.dataloader_persistent_workers and training_args.dataloader_num_workers:
        raise InputError("--dataloader_persistent_workers keeps each loader worker's copy of the data from the first "
                         "epoch, so the workers would repeat its augmentation: leave it off (workers start afresh "
                         "each epoch, and the data set's images load lazily).")
    if data_args.streaming and training_args.max_steps <= 0 and training_args.do_train:
        raise InputError("--streaming needs --max_steps: a stream has no length to count epochs in.")


def checkpoint_config(model_args):
    """The checkpoint's config (a PretrainedConfig), checked whole (vit_simple.checkpoints: a vit-simple, its weights
    present, complete and of the config's shapes), or one line that says what is wrong with it."""
    name = model_args.model_name_or_path
    check_checkpoint(name, "vit_simple", f"--model_name_or_path {name}", model_args.ignore_mismatched_sizes,
                     **model_args.hub_kwargs())
    with loading(f"--model_name_or_path {name}"):
        return AutoConfig.from_pretrained(name, **model_args.hub_kwargs())
