"""Nothing a run made is lost and nothing half-made is kept: a model is checked for finite weights before it is saved,
saved into a folder beside the output folder and then moved into place in one step, and uploaded to the Hub only
after that. A kill or a failure at any point leaves the output folder holding either the earlier complete model or
the new complete one; `recover` (run at the start of each run) finishes or undoes a save that a kill cut short.

The output folder also holds the run's checkpoints (checkpoint-*) and logs (runs/): they are carried over to the new
model's folder. Everything else of the earlier model (its weights, card, reports, exported files) is replaced."""

import ctypes
import errno
import json
import math
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from vit_simple.errors import InputError

MARKER = ".vit-simple-staged"  # inside a staged folder until it is published
KEPT = ("checkpoint-*", "runs")  # the earlier folder's entries that a new model keeps: what resumes and logs need


class RunDiverged(InputError):
    """The training loss, gradient norm, evaluation loss or weights stopped being finite: nothing was saved."""


# finite or not


def check_finite_weights(model, advice):
    """Refuse a model whose weights hold NaN or infinity, naming the first such tensor."""
    import torch

    for name, parameter in model.named_parameters():
        if not torch.isfinite(parameter).all():
            raise RunDiverged(f"training diverged: the trained weights are not finite ({name} holds NaN or infinity): no model was "
                              f"written. {advice}")


def check_finite_metric(name, value, advice):
    if value is not None and not math.isfinite(value):
        raise RunDiverged(f"training diverged: the {name} is {value}: no model was written. {advice}")


# saving in one step


def staging_folder(output_dir):
    """Where a new model is written before it replaces `output_dir`'s: a hidden folder beside it."""
    output_dir = Path(output_dir)
    return output_dir.parent / f".{output_dir.name}.staging"


@contextmanager
def staged(output_dir):
    """Yield an empty folder to write a complete model into; when the block ends without an error, it becomes
    `output_dir` (`publish`); after an error it is removed and `output_dir` is as it was."""
    output_dir = Path(output_dir).absolute()
    recover(output_dir)
    staging = staging_folder(output_dir)
    staging.mkdir(parents=True)
    (staging / MARKER).touch()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    publish(staging, output_dir)


def publish(staging, output_dir):
    """Put the staged folder in place of `output_dir` in one step (the two folders are exchanged where the file
    system can: Linux's renameat2; elsewhere two renames), then carry the run's checkpoints and logs over."""
    if not output_dir.exists():
        (staging / MARKER).unlink()
        os.rename(staging, output_dir)
        return
    if exchange(staging, output_dir):
        earlier = staging  # the earlier folder now sits where the staged one was
    else:
        earlier = staging.with_name(staging.name + ".earlier")
        os.rename(output_dir, earlier)
        os.rename(staging, output_dir)
    (output_dir / MARKER).unlink()
    carry_over(earlier, output_dir)


def carry_over(earlier, output_dir):
    """Move the earlier folder's checkpoints and logs into the new one (each a rename), then remove the rest of it."""
    for pattern in KEPT:
        for entry in sorted(earlier.glob(pattern)):
            if not (output_dir / entry.name).exists():
                os.rename(entry, output_dir / entry.name)
    shutil.rmtree(earlier)


def recover(output_dir):
    """Finish or undo a save that a kill cut short: a staged folder never published is removed; an earlier folder
    left beside a published one gives back its checkpoints; if the kill fell between two renames, the earlier folder
    comes back."""
    output_dir = Path(output_dir).absolute()
    if (output_dir / MARKER).exists():  # exchanged, not yet finished
        (output_dir / MARKER).unlink()
    for leftover in sorted(output_dir.parent.glob(f".{output_dir.name}.staging*")):
        if (leftover / MARKER).exists():  # a new model never published: incomplete, or superseded
            shutil.rmtree(leftover)
        elif not output_dir.exists():
            os.rename(leftover, output_dir)
        else:
            carry_over(leftover, output_dir)


def exchange(a, b):
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_cwd, rename_exchange = -100, 2
    if renameat2(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), rename_exchange) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EXDEV, errno.ENOTSUP):
        return False
    raise OSError(error, os.strerror(error), str(b))


def write_results(folder, results):
    """`<split>_results.json` for each split and `all_results.json`, as Trainer's save_metrics writes them."""
    folder = Path(folder)
    combined = {}
    for split, metrics in results.items():
        (folder / f"{split}_results.json").write_text(json.dumps(metrics, indent=4, sort_keys=True))
        combined.update(metrics)
    (folder / "all_results.json").write_text(json.dumps(combined, indent=4, sort_keys=True))


def describe_saved_model(folder):
    """'Fashion-MNIST, 92.0% test' for a folder holding a trained model (None when it holds none)."""
    folder = Path(folder)
    if not (folder / "model.safetensors").is_file():
        return None
    details = []
    try:
        from huggingface_hub import ModelCard

        data = ModelCard.load(folder / "README.md").data
        details += [result.dataset_name for result in (data.eval_results or [])[:1]]
    except Exception:  # a folder without a card, or a card of another tool: the rest still says enough
        pass
    try:
        results = json.loads((folder / "all_results.json").read_text())
        for split, name in (("test_accuracy", "test"), ("eval_accuracy", "validation")):
            if split in results:
                details.append(f"{100 * results[split]:.1f}% {name}")
                break
    except (OSError, ValueError):
        pass
    return ", ".join(details) or "no results recorded"


# the Hub, after the local save


def create_repo(hub):
    """Create (or find) the Hub repo of `hub` (options.Options.hub; a name alone goes under the token's user): its
    full id, which the model card names. Nothing is uploaded yet."""
    from huggingface_hub import HfApi

    return HfApi(token=hub["token"]).create_repo(hub["repo_id"], private=hub["private"], exist_ok=True).repo_id


def upload(folder, repo_id, hub, commit_message="End of training"):
    """Upload the saved model folder to `repo_id`, its checkpoints and logs left out."""
    from huggingface_hub import HfApi

    HfApi(token=hub["token"]).upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=commit_message,
                                            revision=hub["revision"], ignore_patterns=["_*", ".*", "checkpoint-*",
                                                                                       "runs/*"])
