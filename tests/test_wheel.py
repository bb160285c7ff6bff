"""The wheel is the library: built from pyproject.toml and installed away from the repository and from its editable
install, it trains a tiny model, exports and evaluates it, and converts, through its console scripts."""

import os
import subprocess
import sys
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
    return {"wheel": wheel, "site": root / "site", "work": root}


def run(installed, *command):
    """A command in an empty folder whose Python finds the installed wheel first, and this repository nowhere."""
    env = {**os.environ, "PYTHONPATH": str(installed["site"]), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, cwd=installed["work"], env=env, capture_output=True, text=True, timeout=600)


def test_the_wheel_ships_every_module_the_library_imports_and_its_metric_modules(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    modules = {path.relative_to(REPO).as_posix() for path in (REPO / "vit_simple").rglob("*.py")}
    assert modules <= names, sorted(modules - names)
    assert {"configuration_vit_simple.py", "modeling_vit_simple.py", "train_hf.py"} <= names
    assert {f"vit_simple/metric_modules/{name}/{name}.py" for name in ("accuracy", "f1", "top_k_accuracy")} <= names
    where = run(installed, sys.executable, "-c", "import vit_simple, train_hf, modeling_vit_simple; print("
                "vit_simple.__file__, train_hf.__file__, modeling_vit_simple.__file__)")
    assert where.returncode == 0, where.stderr[-3000:]
    assert all(path.startswith(str(installed["site"])) for path in where.stdout.split())  # not the repository's


def test_the_installed_commands_train_export_evaluate_and_convert(installed, fashion_slice):
    bin_dir = installed["site"] / "bin"
    trained = run(installed, str(bin_dir / "vit-simple-train"), "--dataset_name", str(fashion_slice),
                  "--config_overrides", TINY, "--max_steps", "2", "--per_device_train_batch_size", "16",
                  "--dataloader_num_workers", "0", "--report_to", "none", "--disable_tqdm", "true",
                  "--output_dir", "tiny", "--cache_dir", "cache")
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "test accuracy" in trained.stdout and (installed["work"] / "tiny" / "model.safetensors").is_file()

    exported = run(installed, str(bin_dir / "vit-simple-export"), "tiny", "--onnx", "--evaluate", str(fashion_slice),
                   "--max_eval_samples", "32")
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert "model.onnx vs PyTorch" in exported.stdout and "accuracy on" in exported.stdout

    as_module = run(installed, sys.executable, "-m", "vit_simple.convert", "--help")
    assert as_module.returncode == 0 and "--source" in as_module.stdout, as_module.stderr[-3000:]
    converted = run(installed, str(bin_dir / "vit-simple-convert"), "--help")
    assert converted.returncode == 0 and "--export" in converted.stdout, converted.stderr[-3000:]
