"""The README's commands and code work as written: every command's flags exist, and every Python block that needs no
Hub download runs (on a tiny model where the README's is heavy) and does what the README says it does."""

import importlib
import json
import os
import re
import runpy
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

import vit_simple
from conftest import tiny_config
from vit_simple import export
from vit_simple.options import parse_arguments
from vit_simple.trainer import CHECKPOINT_FILES, EMA_FILE

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
FIRST_COMMANDS = [
    "bash setup.sh && .venv/bin/python train_hf.py",
    "bash setup.sh && .venv/bin/python -m pytest -q",
]


def fenced_blocks(language):
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.MULTILINE | re.DOTALL)


def bash_commands():
    """Every command line of the README's bash blocks, continuation lines joined, comments and placeholders
    (`<hub data set>`) replaced, as argument lists."""
    commands = []
    for block in fenced_blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(re.sub(r"<[^>]+>", "dummy", line), comments=True)
            if words:
                commands.append(words)
    return commands


def script_runs(script):
    """(command text, arguments) for each README command that runs `.venv/bin/python <script>`, also after `&&`."""
    runs = []
    for words in bash_commands():
        for start in range(len(words) - 1):
            if words[start] == ".venv/bin/python" and words[start + 1] == script:
                arguments = words[start + 2:]
                arguments = arguments[:arguments.index("&&")] if "&&" in arguments else arguments
                runs.append((shlex.join(words), arguments))
    return runs


def flags(arguments):
    """The --options of an argument list, up to a bare `--` (what follows it belongs to another script)."""
    arguments = arguments[:arguments.index("--")] if "--" in arguments else arguments
    return [word.split("=")[0] for word in arguments if word.startswith("--")]


TRAIN_RUNS = script_runs("train_hf.py")
BENCHMARKS = sorted({words[i + 1] for words in bash_commands() for i in range(len(words) - 1)
                     if words[i] == ".venv/bin/python" and words[i + 1].startswith("benchmarks/")})
COMMANDS = {"vit-simple-export": "vit_simple.export", "vit-simple-convert": "vit_simple.convert"}  # console scripts


def command_runs(command):
    """The argument lists of the README's commands that run the console script `command` (.venv/bin/<command>)."""
    return [words[1:] for words in bash_commands() if words[0] == f".venv/bin/{command}"]


def test_readme_is_a_short_door_that_opens_with_the_two_commands():
    assert len(README.splitlines()) <= 250
    first_block = re.search(r"^```(\w*)\n(.*?)^```", README, flags=re.MULTILINE | re.DOTALL)
    assert first_block.group(1) == "bash"
    commands = [line.split("#")[0].strip() for line in first_block.group(2).splitlines()]
    assert commands == FIRST_COMMANDS


def test_readme_shows_train_hf_the_commands_and_the_benchmarks():
    commands = [text for text, _ in TRAIN_RUNS]
    assert ".venv/bin/python train_hf.py" in [re.split(r" '?&&'? ", text)[-1] for text in commands]  # the first
    assert len(commands) >= 9, commands
    assert all(command_runs(command) for command in COMMANDS) and "benchmarks/bench_vit.py" in BENCHMARKS


def test_readme_commands_are_the_packages_console_scripts():
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert {command: target.split(":")[0] for command, target in scripts.items() if command in COMMANDS} == COMMANDS
    assert scripts["vit-simple-train"] == "train_hf:cli"


@pytest.mark.parametrize("command, arguments", TRAIN_RUNS, ids=[text[-60:] for text, _ in TRAIN_RUNS])
def test_readme_train_hf_command_parses_with_its_options_spelled_in_full(command, arguments, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where the fine-tuning commands find a checkpoint to read the image size of
    vit_simple.ViTSimpleForImageClassification(tiny_config()).save_pretrained("outputs/vit-simple")  # 32x32 images
    checkpoint = tmp_path / "out" / "checkpoint-1"  # and --resume_from_checkpoint true a complete checkpoint
    checkpoint.mkdir(parents=True)
    for name in (*CHECKPOINT_FILES, EMA_FILE):
        (checkpoint / name).write_text("{}")
    parse_arguments(arguments + ["--output_dir", str(tmp_path / "out")])  # an abbreviated option is refused


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_readme_command_accepts_every_flag_the_readme_gives_it(command, capsys):
    module = importlib.import_module(COMMANDS[command])
    with pytest.raises(SystemExit) as exit_:
        module.main(["--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    used = {flag for arguments in command_runs(command) for flag in flags(arguments)}
    unknown = sorted(flag for flag in used if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text))
    assert used and unknown == [], f"{command} --help lists none of {unknown}"


def test_readme_app_commands_parse_with_their_options_spelled_in_full():
    import app

    runs = script_runs("app.py")
    assert len(runs) >= 2
    for _, arguments in runs:
        app.parse_arguments(arguments)  # argparse refuses an unknown or abbreviated option


@pytest.mark.parametrize("script", BENCHMARKS)
def test_readme_benchmark_exists_and_accepts_every_flag_the_readme_gives_it(script, monkeypatch, capsys):
    assert (REPO / script).is_file()
    monkeypatch.setattr(sys, "argv", [script, "--help"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(REPO / script), run_name="__main__")  # as `python script --help` runs it
    assert done.value.code == 0
    help_text = capsys.readouterr().out
    used = {flag for _, arguments in script_runs(script) for flag in flags(arguments)}
    unknown = sorted(flag for flag in used if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text))
    assert used and unknown == [], f"{script} --help lists none of {unknown}"


# The README's Python blocks, each found by a line of it, with what the test changes so that it runs offline and
# fast, and what it then checks. "{tiny}" stands for a tiny saved model: 32x32 RGB images, 8x8 patches, width 32,
# two blocks, labels shirt and shoe.
TINY_SIZES = "image_size=32, patch_size=8, dim=32, depth=2, heads=2, mlp_dim=64"
PYTHON_BLOCKS = {
    "onnxruntime": dict(
        found_by="onnxruntime.InferenceSession(",
        replace={"outputs/vit-simple": "{tiny}"},
        check="""
            result = {"logits": list(logits.shape), "dtype": str(logits.dtype)}
        """),
    "attention rollout": dict(
        found_by="attention_rollout(model,",
        replace={"outputs/vit-simple": "{tiny}"},
        check="""
            result = {"shape": list(maps.shape), "low": float(maps.min()), "high": float(maps.max())}
        """),
    "remote code and pipeline": dict(
        found_by='pipeline("image-classification", model="path/or/hub-id", trust_remote_code=True)',
        replace={"path/or/hub-id": "{tiny}"},  # cat.png is a generated 40x30 image in the working folder
        check="""
            result = {"module": type(model).__module__, "labels": sorted(p["label"] for p in classify("cat.png"))}
        """),
    "import vit_simple": dict(
        found_by='from_pretrained("path/to/folder")',
        replace={"path/to/folder": "{tiny}"},
        check="""
            result = {"module": type(model).__module__, "labels": sorted(model.config.id2label.values())}
        """),
    "build from scratch": dict(
        found_by='model.save_pretrained("my-vit")',
        replace={"image_size=224, patch_size=16, dim=384, depth=12, heads=6, mlp_dim=1536": TINY_SIZES},
        check="""
            import json, os
            saved = json.load(open("my-vit/config.json"))
            result = {"files": sorted(os.listdir("my-vit")), "auto_map": sorted(saved["auto_map"]),
                      "labels": sorted(saved["id2label"].values()),
                      "processor_size": json.load(open("my-vit/preprocessor_config.json"))["size"]}
        """),
    "another image size": dict(
        found_by='from_pretrained("vit-simple-b16", image_size=384',
        replace={"vit-simple-b16": "{tiny}", "image_size=384": "image_size=64"},
        check="""
            import torch
            with torch.no_grad():  # no interpolate_pos_encoding: the positions themselves were resampled
                logits = model(torch.randn(1, 3, 64, 64)).logits
            result = {"image_size": model.config.image_size, "logits": list(logits.shape)}
        """),
    # converts google/vit-base-patch16-224 from the Hub: only its imports and its call's arguments are checked
    "convert from Python": dict(found_by="from vit_simple.convert import", hub=True),
}

DRIVER = textwrap.dedent(
    """
    import ast, inspect, json, sys, traceback
    results = {}
    for name, block in json.load(open(sys.argv[1])).items():
        namespace = {"__name__": "__main__"}
        try:
            if block["hub"]:  # run the imports, then bind each call's literal arguments to the called signature
                tree = ast.parse(block["code"])
                exec(compile(ast.Module([n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))], []),
                             name, "exec"), namespace)
                calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
                for call in calls:
                    inspect.signature(namespace[call.func.id]).bind(
                        *[ast.literal_eval(a) for a in call.args],
                        **{k.arg: ast.literal_eval(k.value) for k in call.keywords})
                namespace["result"] = {"calls": sorted(call.func.id for call in calls)}
            else:
                exec(block["code"], namespace)
                exec(block["check"], namespace)
            results[name] = {"result": namespace["result"]}
        except Exception:
            results[name] = {"error": traceback.format_exc()}
    json.dump(results, open(sys.argv[2], "w"))
    """)


@pytest.fixture(scope="module")
def python_block_results(tmp_path_factory):
    """Run the README's Python blocks in one fresh interpreter, in README order, each in its own namespace, in an
    empty working folder: the remote-code block runs before anything imports vit_simple there."""
    work = tmp_path_factory.mktemp("readme")
    config = vit_simple.ViTSimpleConfig(image_size=32, patch_size=8, dim=32, depth=2, heads=2, mlp_dim=64,
                                        id2label={0: "shirt", 1: "shoe"})
    model = vit_simple.ViTSimpleForImageClassification(config).eval()
    model.save_pretrained(work / "tiny")
    vit_simple.image_processor_for(config).save_pretrained(work / "tiny")
    export.export_onnx(model, work / "tiny" / "model.onnx")  # what the README's onnxruntime block runs
    Image.new("RGB", (40, 30), (200, 30, 90)).save(work / "cat.png")

    blocks = {}
    readme_blocks = fenced_blocks("python")
    for code in readme_blocks:
        names = [name for name, spec in PYTHON_BLOCKS.items() if spec["found_by"] in code]
        assert len(names) == 1, f"a README Python block this test does not know (or knows twice):\n{code}"
        spec = PYTHON_BLOCKS[names[0]]
        for old, new in spec.get("replace", {}).items():
            assert old in code, f"the README's {names[0]!r} block no longer holds {old!r}: update this test"
            code = code.replace(old, new.format(tiny=work / "tiny"))
        blocks[names[0]] = {"code": code, "check": textwrap.dedent(spec.get("check", "")), "hub": spec.get("hub", False)}
    assert sorted(blocks) == sorted(PYTHON_BLOCKS), "a README Python block is gone: update this test"
    (work / "blocks.json").write_text(json.dumps(blocks))
    (work / "driver.py").write_text(DRIVER)

    environment = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(work / "modules"),
                       OMP_NUM_THREADS="1")
    run = subprocess.run([sys.executable, "driver.py", "blocks.json", "results.json"], cwd=work, env=environment,
                         text=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads((work / "results.json").read_text())


def test_readme_onnxruntime_block_runs_the_exported_file_on_the_image_processors_output(python_block_results):
    assert block_result(python_block_results, "onnxruntime") == {"logits": [1, 2], "dtype": "float32"}


def test_readme_attention_rollout_gives_a_map_per_image_at_the_models_image_size(python_block_results):
    result = block_result(python_block_results, "attention rollout")
    assert result["shape"] == [1, 32, 32] and 0.0 <= result["low"] <= result["high"] <= 1.0


def block_result(results, name):
    assert "error" not in results[name], f"the README's {name!r} block failed:\n{results[name].get('error')}"
    return results[name]["result"]


def test_readme_loads_a_saved_folder_by_remote_code_and_classifies_an_image_with_its_labels(python_block_results):
    result = block_result(python_block_results, "remote code and pipeline")
    assert result["module"].startswith("transformers_modules")  # the folder's own .py files, not this repo's
    assert result["labels"] == ["shirt", "shoe"]


def test_readme_import_vit_simple_loads_a_saved_folder_without_remote_code(python_block_results):
    result = block_result(python_block_results, "import vit_simple")
    assert result["module"] == "modeling_vit_simple"
    assert result["labels"] == ["shirt", "shoe"]


def test_readme_model_built_from_scratch_saves_a_complete_hub_folder(python_block_results):
    result = block_result(python_block_results, "build from scratch")
    assert {"config.json", "model.safetensors", "configuration_vit_simple.py", "modeling_vit_simple.py",
            "preprocessor_config.json"} <= set(result["files"])
    assert result["auto_map"] == ["AutoConfig", "AutoModel", "AutoModelForImageClassification"]
    assert result["labels"] == ["cat", "dog"]
    assert result["processor_size"] == {"height": 32, "width": 32}


def test_readme_saved_model_loads_at_another_image_size_and_runs_there(python_block_results):
    result = block_result(python_block_results, "another image size")
    assert result == {"image_size": 64, "logits": [1, 2]}


def test_readme_conversion_from_python_names_functions_that_take_those_arguments(python_block_results):
    result = block_result(python_block_results, "convert from Python")
    assert result["calls"] == ["convert_vit_weights"]
