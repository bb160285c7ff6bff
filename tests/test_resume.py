"""A run resumed from any checkpoint ends with the weights of the uninterrupted run, after a kill in the middle of an
epoch too (augmentation keyed by seed, epoch and index; the weight average and the clock in the checkpoint); and
several processes train one model (DDP). These runs are separate processes, as a crash or torchrun makes them."""

import json
import socket
import sys

import pytest

import train_hf
from conftest import FAST, TINY, assert_same_weights, run_script

WEIGHTS_ONLY = ["--eval_strategy", "no", "--do_eval", "false", "--do_predict", "false"]  # the weights are compared


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


KILL_AFTER_FIRST_CHECKPOINT = """
import os, signal, sys
from transformers import TrainerCallback
import train_hf

class KillAfterCheckpoint(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)  # as a crash or a pre-empted machine would, right after the save

train_hf.main(sys.argv[1:], callbacks=[KillAfterCheckpoint()])
"""


@pytest.mark.parametrize("mixing", [[], ["--mixup", "0.8", "--cutmix", "1.0"]], ids=["plain", "mixup_cutmix"])
def test_a_kill_in_the_middle_of_an_epoch_resumes_to_the_uninterrupted_weights(fashion_slice, cache_dir, tmp_path,
                                                                                caplog, mixing):
    """4 steps an epoch and a checkpoint every 3: the kill comes after step 3, in the middle of the first epoch,
    with the default augmentation (flips on Fashion-MNIST), patch dropout and dropout, a loader worker and the weight
    average; and with mixup and CutMix, whose draws the resumed run repeats from (seed, step). (Without a worker,
    the same holds in-process: test_trainer's resume after a time budget's stop.)"""
    args = ["--dataset_name", str(fashion_slice), "--cache_dir", str(cache_dir), "--config_overrides",
            f"{TINY},dropout=0.1", "--max_train_samples", "64", "--num_train_epochs", "2", "--seed", "7", *WEIGHTS_ONLY,
            "--save_strategy", "steps", "--save_steps", "3", *FAST, "--dataloader_num_workers", "1", "--ema_decay",
            "0.9", *mixing]
    train_hf.main([*args, "--output_dir", str(tmp_path / "uninterrupted")])

    killed = run_script(sys.executable, "-c", KILL_AFTER_FIRST_CHECKPOINT, *args, "--output_dir",
                        str(tmp_path / "resumed"))
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert [p.name for p in (tmp_path / "resumed").glob("checkpoint-*")] == ["checkpoint-3"]
    assert json.loads((tmp_path / "resumed" / "checkpoint-3" / "trainer_state.json").read_text())["epoch"] == 0.75
    # a later checkpoint that a kill cut short while it was being written: never loaded
    half_written = tmp_path / "resumed" / "checkpoint-6"
    half_written.mkdir()
    (half_written / "model.safetensors").write_bytes(b"")

    train_hf.main([*args, "--output_dir", str(tmp_path / "resumed"), "--resume_from_checkpoint", "true"])
    assert "Skipping " in caplog.text and "checkpoint-6: incomplete" in caplog.text
    assert "Resuming from " in caplog.text and "checkpoint-3" in caplog.text
    assert_same_weights(tmp_path / "uninterrupted", tmp_path / "resumed")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_one_model_with_ddp(fashion_slice, cache_dir, tmp_path):
    result = run_script(
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
        "train_hf.py", "--use_cpu", "--dataset_name", str(fashion_slice), "--cache_dir", str(cache_dir),
        "--config_overrides", TINY, "--max_steps", "3", "--do_eval", "false", "--do_predict", "false",
        "--output_dir", str(tmp_path), *FAST)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "Process rank 0 of 2" in output and "Process rank 1 of 2" in output
    assert output.count("| wall time ") == 1  # one summary, from rank 0
    state = json.loads((tmp_path / "trainer_state.json").read_text())
    assert state["global_step"] == 3 and state["train_batch_size"] == 16
    assert any("eval_accuracy" in log for log in state["log_history"])  # the evaluation at the end of training
    assert [p.name for p in tmp_path.glob("*.safetensors")] == ["model.safetensors"]
