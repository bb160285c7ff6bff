"""vit_simple.saving: a model is written beside the output folder and moved into place in one step, so that a failure
or a kill at any point leaves the earlier complete model or the new complete one, never a mix; checkpoints and logs
carry over; non-finite weights are refused."""

import hashlib
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from conftest import REPO
from vit_simple import saving


def snapshot(folder):
    """{relative path: sha256} of every file under `folder`."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def a_run_folder(folder, version):
    """An output folder holding model `version` and the run's checkpoints and logs."""
    (folder / "checkpoint-4").mkdir(parents=True)
    (folder / "checkpoint-4" / "model.safetensors").write_text("checkpoint 4")
    (folder / "runs").mkdir()
    (folder / "runs" / "events").write_text("log")
    for name in ("model.safetensors", "config.json", "README.md"):
        (folder / name).write_text(f"{name} of model {version}")
    (folder / "model.onnx").write_text("an export of model 1")  # the earlier model's: not the new model's
    return folder


def write_model(folder, version):
    for name in ("model.safetensors", "config.json", "README.md"):
        (folder / name).write_text(f"{name} of model {version}")


@pytest.mark.parametrize("atomic", [True, False], ids=["exchange", "two renames"])
def test_a_saved_model_replaces_the_earlier_one_and_keeps_the_checkpoints_and_logs(tmp_path, monkeypatch, atomic):
    if not atomic:  # a file system without renameat2's exchange
        monkeypatch.setattr(saving, "exchange", lambda a, b: False)
    output = a_run_folder(tmp_path / "out", 1)
    with saving.staged(output) as folder:
        assert folder.parent == output.parent and folder != output
        write_model(folder, 2)
    after = snapshot(output)
    assert after["model.safetensors"] == hashlib.sha256(b"model.safetensors of model 2").hexdigest()
    assert {"checkpoint-4/model.safetensors", "runs/events"} <= set(after) and "model.onnx" not in after
    assert saving.MARKER not in after and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_save_into_a_new_folder_needs_no_exchange(tmp_path):
    with saving.staged(tmp_path / "new") as folder:
        write_model(folder, 1)
    assert set(snapshot(tmp_path / "new")) == {"model.safetensors", "config.json", "README.md"}


def test_a_failure_partway_through_the_save_leaves_the_earlier_model_as_it_was(tmp_path):
    output = a_run_folder(tmp_path / "out", 1)
    before = snapshot(output)
    with pytest.raises(OSError, match="disk full"):
        with saving.staged(output) as folder:
            (folder / "model.safetensors").write_text("model 2")  # the first file, then the writer fails
            raise OSError("disk full")
    assert snapshot(output) == before and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


KILLED_SAVE = textwrap.dedent("""
    import os, signal, sys, types
    from pathlib import Path
    package = types.ModuleType("vit_simple")  # the package without its __init__ (transformers): only saving runs
    package.__path__ = [sys.argv[3]]
    sys.modules["vit_simple"] = package
    from vit_simple import saving

    output, where = Path(sys.argv[1]), sys.argv[2]
    kill = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
    if where == "while writing":
        with saving.staged(output) as folder:
            (folder / "model.safetensors").write_text("model.safetensors of model 2")
            kill()
    if where == "after the exchange":
        saving.carry_over = kill
    if where == "between two renames":
        saving.exchange = lambda a, b: False
        rename = os.rename
        os.rename = lambda a, b: rename(a, b) if Path(b).name != output.name else kill()
    with saving.staged(output) as folder:
        for name in ("model.safetensors", "config.json", "README.md"):
            (folder / name).write_text(f"{name} of model 2")
""")


KILLS = {"while writing": 1, "after the exchange": 2, "between two renames": 1}  # where: the model left in place


@pytest.fixture(scope="module")
def killed_saves(tmp_path_factory):
    """A save into a folder holding model 1, killed at each point, the three processes side by side: {where: the
    folder}."""
    folders, runs = {}, {}
    for where in KILLS:
        folders[where] = a_run_folder(tmp_path_factory.mktemp("killed") / "out", 1)
        runs[where] = subprocess.Popen([sys.executable, "-c", KILLED_SAVE, str(folders[where]), where,
                                        str(REPO / "vit_simple")], stderr=subprocess.PIPE, text=True)
    for where, run in runs.items():
        assert run.wait(timeout=120) == -signal.SIGKILL, run.stderr.read()[-2000:]
    return folders


@pytest.mark.parametrize("where", KILLS)
def test_a_kill_during_the_save_leaves_a_complete_model_and_recovery_keeps_the_checkpoints(killed_saves, where):
    output, model = killed_saves[where], KILLS[where]
    if output.exists():  # whole, whichever it is
        files = snapshot(output)
        assert files["model.safetensors"] == hashlib.sha256(f"model.safetensors of model {model}".encode()).hexdigest()
        assert files["README.md"] == hashlib.sha256(f"README.md of model {model}".encode()).hexdigest()
    saving.recover(output)  # what the next run does first
    files = snapshot(output)
    assert files["model.safetensors"] == hashlib.sha256(f"model.safetensors of model {model}".encode()).hexdigest()
    assert {"checkpoint-4/model.safetensors", "runs/events"} <= set(files) and saving.MARKER not in files
    assert [p.name for p in output.parent.iterdir()] == ["out"]


def test_non_finite_weights_and_losses_are_refused_with_what_to_do():
    model = torch.nn.Linear(2, 2)
    saving.check_finite_weights(model, "advice")
    with torch.no_grad():
        model.bias[1] = float("nan")
    with pytest.raises(saving.RunDiverged, match=r"^training diverged: the trained weights are not finite \(bias holds "
                                                 r"NaN or infinity\): no model was written\. advice"):
        saving.check_finite_weights(model, "advice")
    saving.check_finite_metric("eval loss", 0.5, "advice")
    with pytest.raises(saving.RunDiverged, match="^training diverged: the eval loss is inf: no model was written"):
        saving.check_finite_metric("eval loss", float("inf"), "advice")


def test_a_folder_holding_a_model_is_described_by_its_data_and_accuracy(tmp_path):
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    assert saving.describe_saved_model(tmp_path) is None
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert saving.describe_saved_model(tmp_path) == "no results recorded"
    (tmp_path / "all_results.json").write_text('{"test_accuracy": 0.9204, "eval_accuracy": 0.93}')
    data = ModelCardData(eval_results=[EvalResult(task_type="image-classification", dataset_type="fmnist",
                                                  dataset_name="Fashion-MNIST", metric_type="accuracy",
                                                  metric_value=0.92)], model_name="m")
    ModelCard(f"---\n{data.to_yaml()}\n---\n# m\n").save(tmp_path / "README.md")
    assert saving.describe_saved_model(tmp_path) == "Fashion-MNIST, 92.0% test"
