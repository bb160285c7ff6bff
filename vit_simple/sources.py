"""Where a model or data set comes from: the one rule for "a local path or a Hub id"."""

from pathlib import Path

from vit_simple.errors import InputError


def is_local(name):
    """Whether `name` means something on this disk: it exists, or it can only be a path (it starts with '/', '.' or
    '~', or has more parts than a Hub id's owner/name, or its first part is a folder here). Anything else is a Hub id
    ('google/vit-base-patch16-224', 'beans')."""
    text = str(name)
    path = Path(text).expanduser()
    if path.exists() or text.startswith(("/", ".", "~")):
        return True
    parts = Path(text).parts
    return len(parts) > 2 or (len(parts) == 2 and path.parent.is_dir())


def hub_id(name):
    """`name` when it is a Hub id, None when it is a local path (for model cards' base_model and datasets)."""
    return None if name is None or is_local(name) else str(name)


def load_classifier(source, trust_remote_code=False, **kwargs):
    """The image classifier of a folder or Hub id. A vit-simple runs on this package's code (importing vit_simple
    registers it with the Auto classes). With `trust_remote_code` a model runs on its own code, the .py files it
    carries, a vit-simple included (transformers' Auto classes would prefer the registered code); without it, a model
    that needs its own code raises InputError (a ValueError) saying so. `kwargs` go to `from_pretrained` (dtype, revision, ...)."""
    from transformers import AutoModelForImageClassification, PretrainedConfig
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    if trust_remote_code:
        config = PretrainedConfig.get_config_dict(source, **kwargs)[0]
        reference = (config.get("auto_map") or {}).get("AutoModelForImageClassification")
        if reference:
            model_class = get_class_from_dynamic_module(reference, source, **kwargs)
            return model_class.from_pretrained(source, trust_remote_code=True, **kwargs)
    try:
        return AutoModelForImageClassification.from_pretrained(source, trust_remote_code=trust_remote_code, **kwargs)
    except ValueError as error:
        if "trust_remote_code" not in str(error):
            raise
        raise InputError(f"{source} runs on its own code (the .py files it carries), which is not this package's: "
                         "pass --trust_remote_code to run it, if you trust it.") from error
