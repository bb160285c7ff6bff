"""The wheel is the library: built from pyproject.toml and installed away from the repository and from its editable
install, it trains a tiny model, exports and evaluates it, and converts, through its console scripts."""

import json
import os
import subprocess
import sys
import sysconfig
import zipfile

import pytest

from conftest import REPO, TINY


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel, built and installed (without dependencies, which the test environment has) into its own folder."""
    root = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
                            "--wheel-dir", str(root / "dist"), "--quiet"], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (root / "dist").glob("vit_simple-*.whl")
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "--quiet",
                              "--target", str(root / "site"), str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-3000:]
    return {"wheel": wheel, "site": root / "site", "work": root, "build_log": build.stderr}


def command(installed, name, *arguments):
    """A console script of the wheel, in an empty folder, run by a Python that finds the wheel first and neither this
    repository nor its editable install: `-S` leaves out site-packages' .pth files (the editable install's finder),
    and the environment's packages (torch, transformers, ...) come after the wheel's folder on PYTHONPATH."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed["site"]), sysconfig.get_paths()["purelib"]]),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-S", str(installed["site"] / "bin" / name), *arguments],
                            cwd=installed["work"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(run):
    stdout, stderr = run.communicate(timeout=600)
    assert run.returncode == 0, stderr[-3000:]
    return stdout


def test_the_wheel_ships_every_module_the_library_imports_and_its_metric_modules(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    modules = {path.relative_to(REPO).as_posix() for path in (REPO / "vit_simple").rglob("*.py")}
    assert modules <= names, sorted(modules - names)
    assert {"configuration_vit_simple.py", "modeling_vit_simple.py", "train_hf.py", "app.py"} - names == {"app.py"}
    assert {f"vit_simple/metric_modules/{name}/{name}.py" for name in ("accuracy", "f1", "top_k_accuracy")} <= names
    # setuptools warns "Package would be ignored" of a folder of .py files that pyproject.toml leaves undeclared
    assert "would be ignored" not in installed["build_log"], installed["build_log"][-3000:]
    assert {"vit-simple-train", "vit-simple-export", "vit-simple-convert"} <= {p.name for p in
                                                                                (installed["site"] / "bin").iterdir()}


def test_the_installed_commands_train_export_evaluate_and_convert(installed, fashion_slice):
    convert = command(installed, "vit-simple-convert", "--help")  # meanwhile
    trained = finished(command(installed, "vit-simple-train", "--dataset_name", str(fashion_slice),
                               "--config_overrides", TINY, "--max_steps", "2", "--per_device_train_batch_size", "16",
                               "--dataloader_num_workers", "0", "--report_to", "none", "--disable_tqdm", "true",
                               "--do_eval", "false", "--do_predict", "false", "--output_dir", "tiny", "--cache_dir",
                               "cache"))
    tiny = installed["work"] / "tiny"
    assert f"saved to {tiny}" in trained and (tiny / "model.safetensors").is_file()
    state = json.loads((tiny / "trainer_state.json").read_text())
    assert any("eval_accuracy" in log for log in state["log_history"])  # evaluated at the end: the metric modules
    assert "--export" in finished(convert)
    exported = finished(command(installed, "vit-simple-export", "tiny", "--onnx", "--evaluate", str(fashion_slice),
                                "--max_eval_samples", "32"))
    assert "model.onnx vs PyTorch" in exported and "accuracy on" in exported
