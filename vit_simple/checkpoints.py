"""The one door for a checkpoint: every entry point that reads a model folder or Hub id (train_hf.py, vit-simple-export,
vit-simple-convert, app.py) looks at it here first, and a folder that cannot be a model (another model type, a
config.json that is not JSON or holds a wrong value, no weights, truncated weights, weights of other shapes than the
config's, an empty folder, a file) is refused in one line that names it, says what is wrong and what to give instead,
before anything is loaded or written. `loading` catches what transformers still raises while loading.

Only headers are read: the weights' shapes come from the safetensors header and are compared with the model the
config describes, built on the meta device (no memory, no initialisation)."""

import contextlib
import json
import os
from pathlib import Path

from vit_simple.errors import InputError
from vit_simple.sources import is_local

SAVED_BY = "a folder saved by train_hf.py or save_pretrained (config.json and model.safetensors)"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
ACCEPT = {  # what an entry point takes: model types, and whether any image classifier transformers loads will do
    "vit_simple": "a vit-simple",
    "image_classifier": "an image classifier",
    "vit": "transformers' ViT",
}


class CheckpointError(InputError):
    """A model folder or Hub id that cannot be loaded, in one line: which, what is wrong, what to give instead."""


def check_checkpoint(source, accept="vit_simple", name=None, ignore_mismatched_sizes=False, trust_remote_code=False,
                     revision=None, cache_dir=None):
    """The config dict of the checkpoint `source` (a folder or Hub id), or a CheckpointError.

    accept: "vit_simple" (fine-tuning, --export), "image_classifier" (any model AutoModelForImageClassification
        loads: export, the demo page) or "vit" (transformers' ViT, vit-simple-convert --source).
    name: how the message names the checkpoint, e.g. "--model_name_or_path outputs/x" (default: `source`).
    ignore_mismatched_sizes: a classification head of another shape than the config's is no error (it is replaced).
    Local folders are checked whole (config, weights present and complete, their shapes); a Hub id's config only,
    since its weights download as it loads (`loading` then words what fails)."""
    name = name or str(source)
    if not is_local(source):
        return hub_config(source, name, revision, cache_dir)
    folder = Path(source).expanduser()
    config = read_config(folder, name)
    model_type = check_model_type(config, folder, name, accept, trust_remote_code)
    weights = weight_files(folder, name)
    shapes = weight_shapes(weights, folder, name)
    if model_type is not None and shapes is not None:
        check_shapes(config, shapes, name, ignore_mismatched_sizes)
    return config


def read_config(folder, name):
    """The folder's config.json as a dict: refuses a missing path, a file, an empty folder, a folder without
    config.json and a config.json that is not a JSON object."""
    if not folder.exists():
        raise CheckpointError(f"{name} is no local folder: give {SAVED_BY}, or a Hub id.")
    if not folder.is_dir():
        inside = folder.parent if (folder.parent / "config.json").is_file() else None
        instead = f"the folder it is in, {inside}" if inside else SAVED_BY
        raise CheckpointError(f"{name} is a file, not a model folder: give {instead}.")
    path = folder / "config.json"
    if not path.is_file():
        what = "is an empty folder" if not any(folder.iterdir()) else "has no config.json, so it holds no saved model"
        raise CheckpointError(f"{name} {what}: give {SAVED_BY}.")
    try:
        config = json.loads(path.read_text())
    except UnicodeDecodeError as error:
        raise CheckpointError(f"{name}: its config.json is not text ({error.reason}): give {SAVED_BY}.") from error
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{name}: its config.json is not valid JSON ({error.msg} at line {error.lineno}, column "
                              f"{error.colno}), damaged or cut short: save the model again, or give {SAVED_BY}.") \
            from error
    if not isinstance(config, dict):
        raise CheckpointError(f"{name}: its config.json holds a JSON {type(config).__name__}, not an object of "
                              f"settings: give {SAVED_BY}.")
    return config


def check_model_type(config, folder, name, accept, trust_remote_code=False):
    """The model type `accept` takes, with its config's values checked; None for a model this package cannot build
    (one that runs its own code), which loads as it is."""
    from transformers import CONFIG_MAPPING
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES

    model_type = config.get("model_type")
    if model_type == "vit" and accept == "vit_simple":
        raise CheckpointError(f"{name} is transformers' ViT (model_type 'vit'), not a vit-simple: convert it first, "
                              f"vit-simple-convert --source {folder} --output_dir {folder.name}-vit-simple, and give "
                              "that folder.")
    remote = (config.get("auto_map") or {}).get("AutoModelForImageClassification")
    wanted = {"vit_simple": model_type == "vit_simple", "vit": model_type == "vit",
              "image_classifier": model_type in MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES or bool(remote)}[accept]
    if not wanted:
        what = f"a {model_type!r} model" if model_type else "no model_type in its config.json"
        instead = {"vit_simple": f"give {SAVED_BY} (transformers' and timm's ViTs convert with vit-simple-convert)",
                   "image_classifier": f"give {SAVED_BY}, or an image classifier's Hub id",
                   "vit": "give transformers' ViT (model_type 'vit') or timm's VisionTransformer"
                          + (" (a vit-simple exports to transformers with --export)" if model_type == "vit_simple"
                             else "")}[accept]
        raise CheckpointError(f"{name} holds {what}, not {ACCEPT[accept]}: {instead}.")
    if model_type not in CONFIG_MAPPING:
        if remote and trust_remote_code:
            return None  # its own configuration class checks its values
        raise CheckpointError(f"{name} holds a {model_type!r} model, which runs on its own code (the .py files it "
                              "carries): pass --trust_remote_code to run it, if you trust it.")
    try:
        CONFIG_MAPPING[model_type].from_dict(config)
    except Exception as error:  # the config classes raise ValueError, TypeError and huggingface_hub's own errors
        raise CheckpointError(f"{name}: its config.json is no valid {model_type} config ({first_line(error)}): fix "
                              f"that value, or give {SAVED_BY}.") from error
    return model_type


def weight_files(folder, name):
    """The weight files of a folder: its model.safetensors or pytorch_model.bin, or the shards an index lists."""
    for file in WEIGHT_FILES:
        path = folder / file
        if not path.is_file():
            continue
        if not file.endswith(".index.json"):
            return [path]
        try:
            shards = sorted(set(json.loads(path.read_text())["weight_map"].values()))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise CheckpointError(f"{name}: its {file} is damaged ({first_line(error)}): save the model again, or "
                                  f"give {SAVED_BY}.") from error
        missing = [shard for shard in shards if not (folder / shard).is_file()]
        if missing:
            raise CheckpointError(f"{name}: {len(missing)} of the {len(shards)} weight shards its {file} lists are "
                                  f"missing ({missing[0]}, ...): download or copy the whole folder.")
        return [folder / shard for shard in shards]
    raise CheckpointError(f"{name} has a config.json but no weights ({' or '.join(WEIGHT_FILES[::2])}): the save did "
                          f"not finish, or only the config was copied; give {SAVED_BY}, or a checkpoint-* folder of "
                          "the run.")


def weight_shapes(files, folder, name):
    """{tensor name: shape} of the weight files, from the safetensors headers (which safetensors checks against the
    file's length: a truncated file is refused); None for pickled weights, which are checked as they load."""
    from safetensors import safe_open

    shapes = {}
    for path in files:
        if path.suffix != ".safetensors":
            return None
        try:
            with safe_open(path, framework="pt") as weights:
                shapes.update({key: tuple(weights.get_slice(key).get_shape()) for key in weights.keys()})
        except Exception as error:  # safetensors' SafetensorError, or an OSError
            raise CheckpointError(
                f"{name}: its {os.path.relpath(path, folder)} cannot be read ({first_line(error)}), damaged or cut "
                "short (a full disk, an interrupted copy or download): save or download the model again, or give a "
                "checkpoint-* folder of the run.") from error
    return shapes


def check_shapes(config, shapes, name, ignore_mismatched_sizes=False):
    """Refuse weights whose shapes differ from those of the model the config describes (built on the meta device);
    with `ignore_mismatched_sizes`, the classification head alone may differ (it is replaced)."""
    import torch
    from transformers import AutoConfig, AutoModelForImageClassification

    try:
        settings = {key: value for key, value in config.items() if key != "model_type"}
        with torch.device("meta"):
            model = AutoModelForImageClassification.from_config(AutoConfig.for_model(config["model_type"], **settings))
    except Exception:  # a config that builds no classifier here: transformers words it as the model loads
        return
    prefix = model.base_model_prefix + "."
    expected = {key: tuple(tensor.shape) for key, tensor in model.state_dict().items()}
    common = {key: expected.get(key, expected.get(prefix + key)) for key in shapes}
    common = {key: shape for key, shape in common.items() if shape is not None}
    if not common:
        raise CheckpointError(f"{name}: none of its {len(shapes)} weights is one of the {config['model_type']} model "
                              f"its config.json describes: the two files come from different models; give {SAVED_BY}.")
    wrong = [key for key, shape in common.items() if shapes[key] != shape]
    head = [key for key in wrong if not (key.startswith(prefix) or prefix + key in expected)]
    if not wrong or (ignore_mismatched_sizes and wrong == head):
        return
    key = next((key for key in wrong if key not in head), wrong[0])
    fix = ("pass --ignore_mismatched_sizes to replace the classification head" if wrong == head
           else f"the two files come from different models; give {SAVED_BY}")
    raise CheckpointError(f"{name}: its weights do not fit its config.json: {key} is {list(shapes[key])} in the "
                          f"weights but {list(common[key])} by the config ({len(wrong)} of {len(common)} tensors "
                          f"differ): {fix}.")


def hub_config(source, name, revision=None, cache_dir=None):
    """The config dict of a Hub model (downloaded once, then from the cache; offline, from the cache alone)."""
    from transformers import PretrainedConfig

    try:
        return PretrainedConfig.get_config_dict(str(source), revision=revision, cache_dir=cache_dir)[0]
    except OSError as error:
        raise CheckpointError(f"{name} is no local folder, and the Hugging Face Hub could not supply it (offline, no "
                              f"network, or no such model). Give {SAVED_BY}, or download the model where the Hub is "
                              "reachable (hf download <id> --local-dir <folder>).") from error


@contextlib.contextmanager
def loading(name):
    """Whatever transformers or safetensors raise while a checked checkpoint loads (a Hub download that fails, a
    pickle that is damaged), as one CheckpointError naming it; this package's own one-line errors pass unchanged."""
    try:
        yield
    except (InputError, ImportError, KeyboardInterrupt):
        raise
    except Exception as error:
        raise CheckpointError(f"{name} could not be loaded ({type(error).__name__}: {first_line(error)}): give "
                              f"{SAVED_BY}.") from error


def first_line(error, limit=200):
    """An exception's message on one line, at most `limit` characters."""
    text = " ".join(str(error).split()).rstrip(".:") or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
