"""Ship a vit-simple classifier: an ONNX file for onnxruntime (float32, or with int8 weights) or a torch.export
program (.pt2) for ExecuTorch and AOTInductor. Every file is checked against PyTorch's logits before the command
succeeds: float32 within 1e-4, int8 on the predicted class of most images.

    vit-simple-export outputs/vit-simple --onnx                # outputs/vit-simple/model.onnx
    vit-simple-export outputs/vit-simple --int8                # model.onnx and model_int8.onnx
    vit-simple-export outputs/vit-simple --torch_export        # model.pt2
    vit-simple-export outputs/vit-simple --onnx --image_size 56          # outputs/vit-simple-56x56/model.onnx
    vit-simple-export user/vit-simple-fmnist --trust_remote_code --onnx  # a Hub repo, into ./vit-simple-fmnist
    vit-simple-export outputs/vit-simple --int8 --evaluate     # accuracy of each file on Fashion-MNIST's test split

(`python -m vit_simple.export` is the same command.)

Files go into the model folder; for a Hub id, or at another image size, into a new folder (the repo's name, with
-HxW at another size) that also gets the config and the image processor at the exported size. The ONNX file takes
`pixel_values` (any batch, channels, height, width) and gives `logits`; onnxruntime runs it after the image processor:

    processor = AutoImageProcessor.from_pretrained("outputs/vit-simple")
    session = onnxruntime.InferenceSession("outputs/vit-simple/model.onnx")
    logits = session.run(["logits"], {"pixel_values": processor(images, return_tensors="np")["pixel_values"]})[0]
"""

import argparse
import contextlib
import io
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from transformers import AutoImageProcessor

from configuration_vit_simple import pair
from vit_simple.augmentation import ImageTransform, collate, with_transform
from vit_simple.data import load_splits
from vit_simple.options import DataArguments
from vit_simple.processing import add_image_size_argument, image_processor_for, image_size_of
from vit_simple.checkpoints import check_checkpoint, loading
from vit_simple.sources import load_classifier

ONNX_OPSETS = range(18, 24)  # torch 2.14's dynamo exporter: 18 is its first, 23 its ONNX_MAX_OPSET (26 came out wrong)
DEFAULT_OPSET = 20  # torch's default; 23 adds the ONNX Attention op, which older onnxruntimes lack
EXAMPLE_BATCH = 2  # torch.export specialises a dimension traced at size 1: trace with 2, the file runs any batch
PARITY_IMAGES = 16  # random images for the parity check, a batch unlike the traced one
FLOAT32_ATOL = 1e-4
INT8_MIN_AGREEMENT = 0.8  # int8 weights move logits by ~1e-2: images near a class boundary may flip
EXPORT_EXTRA = ("onnx", "onnxruntime", "onnxscript", "onnx_ir")  # what pip install 'vit-simple[export]' brings
SINGLE_FILE_LIMIT = 2**31 - 2**27  # protobuf caps a file at 2 GiB: larger weights go to model.onnx.data beside it


class ExportFailed(RuntimeError):
    """torch.export or torch.onnx could not export the model: a one-line reason and what to try."""


class LogitsOnly(nn.Module):
    """The classifier as `pixel_values -> logits`: an exported graph returns tensors, not a ModelOutput."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return self.model(pixel_values=pixel_values).logits


# loading


def load_model(source, trust_remote_code=False):
    """The classifier of a folder or Hub id (`vit_simple.sources.load_classifier`), in eval mode and float32, once
    `vit_simple.checkpoints` found it whole (any refusal is a CheckpointError, a ValueError).
    `model.set_image_size(size)` then exports it for another image size (the position embeddings resampled)."""
    check_checkpoint(source, "image_classifier", trust_remote_code=trust_remote_code)
    with loading(source):
        model = load_classifier(source, trust_remote_code, dtype=torch.float32)
    return model.eval()


def image_processor(model, source):
    """The image processor saved with the model (built from its config where there is none), resizing to the
    model's current image size."""
    try:
        processor = AutoImageProcessor.from_pretrained(source)
    except OSError:
        processor = image_processor_for(model.config)
    height, width = pair(model.config.image_size)
    processor.size = {"height": height, "width": width}
    return processor


def pixel_values_of(images, model, processor):
    """Image files (or PIL images) as the model's input."""
    mode = "L" if model.config.num_channels == 1 else "RGB"
    images = [image if isinstance(image, Image.Image) else Image.open(image) for image in images]
    return processor([image.convert(mode) for image in images], return_tensors="pt")["pixel_values"]


def random_pixel_values(config, batch_size, seed=0):
    height, width = pair(config.image_size)
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch_size, config.num_channels, height, width, generator=generator)


# exporting


@contextlib.contextmanager
def quiet():
    """Mute library warnings and stderr: a failed trace prints its whole graph (the error then says what failed),
    and the quantizer advises pre-processing (shape inference, fusions), which quantized no more of this graph."""
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logging.disable(logging.NOTSET)


def _reason(error):
    """The first line of an exporter's error, which can run to pages, without its terminal colours."""
    lines = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip().splitlines() or [""]
    return f"{type(error).__name__}: {lines[0][:300]}"


def export_program(model, path=None):
    """A torch.export program of `model`'s logits with a dynamic batch dimension, saved with torch.export.save
    where `path` is given; `torch.export.load(path).module()(pixel_values)` runs it."""
    example = random_pixel_values(model.config, EXAMPLE_BATCH)
    try:
        with quiet():
            program = torch.export.export(LogitsOnly(model).eval(), (example,),
                                          dynamic_shapes={"pixel_values": {0: torch.export.Dim("batch")}})
    except Exception as error:  # torch raises many kinds; each means the same to the user
        raise ExportFailed(f"torch.export could not trace the model ({_reason(error)}): its forward must run without "
                           "data-dependent Python control flow; export a model saved with this repo's "
                           "modeling_vit_simple.py (drop --trust_remote_code to use it).") from error
    if path is not None:
        torch.export.save(program, str(path))
    return program


def check_opset(opset):
    if opset not in ONNX_OPSETS:
        raise ValueError(f"--opset {opset} is not one torch's ONNX exporter writes: choose {ONNX_OPSETS[0]} to "
                         f"{ONNX_OPSETS[-1]} (default {DEFAULT_OPSET}).")


def export_onnx(model, path, opset=DEFAULT_OPSET):
    """Write `model` as an ONNX file: input `pixel_values` with a dynamic batch, output `logits`, `opset`."""
    import onnx_ir  # onnxscript's graph library, in which torch.onnx hands the graph over

    check_opset(opset)
    program = export_program(model)  # torch.export's failures, reported as such
    try:
        with quiet():
            onnx_program = torch.onnx.export(program, (), input_names=["pixel_values"], output_names=["logits"],
                                             opset_version=opset, dynamo=True, verbose=False)
    except Exception as error:
        raise ExportFailed(f"torch.onnx could not convert the model to opset {opset} ({_reason(error)}): try another "
                           f"--opset ({ONNX_OPSETS[0]}-{ONNX_OPSETS[-1]}), or --torch_export.") from error
    graph = onnx_program.model.graph
    traced = graph.inputs[0].shape[0]
    for value in (*graph.inputs, *graph.outputs):  # torch.export numbers the batch dimension (s99): name it
        value.shape = onnx_ir.Shape(["batch" if dim == traced else dim for dim in value.shape])
    big = sum(p.numel() * p.element_size() for p in model.parameters()) > SINGLE_FILE_LIMIT
    onnx_program.save(str(path), external_data=big)
    return Path(path)


def quantize_int8(onnx_path, int8_path):
    """onnxruntime's dynamic quantization: every weight matrix (MatMul, Gemm) to int8, activations quantized on
    the fly; norms, softmax and the attention matmuls stay float32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with quiet():
        quantize_dynamic(str(onnx_path), str(int8_path), weight_type=QuantType.QInt8,
                         use_external_data_format=Path(f"{onnx_path}.data").exists())
    return Path(int8_path)


# running and checking


def onnx_session(path, threads=None):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_predict(session, images, processor):
    """Logits (numpy) of PIL images through an ONNX session: what the README's three lines do."""
    pixel_values = processor(images, return_tensors="np")["pixel_values"]
    return session.run(["logits"], {"pixel_values": pixel_values.astype(np.float32)})[0]


def run_exported(path, pixel_values):
    """Logits (numpy) of an exported file: .onnx through onnxruntime, .pt2 through torch.export.load."""
    if Path(path).suffix == ".pt2":
        with torch.inference_mode():
            return torch.export.load(str(path)).module()(pixel_values).numpy()
    return onnx_session(path).run(["logits"], {"pixel_values": pixel_values.numpy()})[0]


@dataclass
class Parity:
    """How an exported file's logits compare with PyTorch's on the same images."""

    name: str
    images: int
    max_diff: float
    agreement: float  # fraction of images whose predicted class is PyTorch's
    int8: bool

    @property
    def ok(self):
        return self.agreement >= INT8_MIN_AGREEMENT if self.int8 else self.max_diff <= FLOAT32_ATOL

    def __str__(self):
        need = f"class agreement >= {INT8_MIN_AGREEMENT:.0%}" if self.int8 else f"max diff <= {FLOAT32_ATOL:.0e}"
        return (f"{self.name} vs PyTorch on {self.images} images: max |logit diff| {self.max_diff:.1e}, same class "
                f"{self.agreement:.0%} (needs {need}): {'ok' if self.ok else 'FAILED'}")


def check_parity(model, path, pixel_values, int8=False):
    """Compare the logits of the exported file `path` with `model`'s on `pixel_values`."""
    with torch.inference_mode():
        expected = model(pixel_values=pixel_values).logits.numpy()
    logits = run_exported(path, pixel_values)
    agreement = float((logits.argmax(-1) == expected.argmax(-1)).mean())
    return Parity(Path(path).name, len(pixel_values), float(np.abs(logits - expected).max()), agreement, int8)


def evaluate_accuracy(model, onnx_paths, split, processor, batch_size=256, image_column="image", label_column="label"):
    """Accuracy of PyTorch and of each ONNX file on a `datasets` split, the images prepared as train_hf.py
    evaluates them: {"pytorch": accuracy, file name: accuracy, ...}."""
    transform = ImageTransform(processor, model.config, image_column=image_column, label_column=label_column)
    examples = with_transform(split, transform, batch_size)
    sessions = {Path(path).name: onnx_session(path) for path in onnx_paths}
    correct = dict.fromkeys(["pytorch", *sessions], 0)
    for batch in torch.utils.data.DataLoader(examples, batch_size=batch_size, collate_fn=collate):
        pixel_values, labels = batch["pixel_values"], batch["labels"].numpy()
        with torch.inference_mode():
            correct["pytorch"] += int((model(pixel_values=pixel_values).logits.argmax(-1).numpy() == labels).sum())
        for name, session in sessions.items():
            logits = session.run(["logits"], {"pixel_values": pixel_values.numpy()})[0]
            correct[name] += int((logits.argmax(-1) == labels).sum())
    return {name: count / len(examples) for name, count in correct.items()}


# command line


def output_folder(source, model, original_size, output_dir):
    if output_dir is not None:
        return Path(output_dir)
    folder = Path(source).expanduser()
    height, width = pair(model.config.image_size)
    resized = pair(original_size) != (height, width)
    if folder.is_dir() and not resized:
        return folder
    name = folder.resolve().name if folder.is_dir() else source.rstrip("/").split("/")[-1]
    return (folder.parent if folder.is_dir() else Path(".")) / (f"{name}-{height}x{width}" if resized else name)


def evaluate_command(args, model, processor, onnx_files):
    """--evaluate: the data set read as train_hf.py reads --dataset_name, then `evaluate_accuracy` on --split."""
    splits = load_splits(DataArguments(dataset_name=args.evaluate), cache_dir=None)
    if args.split not in splits:
        raise ValueError(f"--split {args.split}: {args.evaluate} has the splits {', '.join(splits)}.")
    split = splits[args.split]
    if args.max_eval_samples:
        split = split.select(range(min(args.max_eval_samples, len(split))))
    accuracy = evaluate_accuracy(model, onnx_files, split, processor)
    print(f"\naccuracy on {args.evaluate} {args.split} ({len(split)} images):")
    for name, value in accuracy.items():
        print(f"  {name}: {value:.2%} ({100 * (value - accuracy['pytorch']):+.2f} points)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a vit-simple folder (train_hf.py's output) or Hub id")
    parser.add_argument("--onnx", action="store_true", help="write model.onnx (float32)")
    parser.add_argument("--int8", action="store_true", help="also write model_int8.onnx: int8 weight matrices "
                        "(onnxruntime dynamic quantization)")
    parser.add_argument("--torch_export", action="store_true", help="write model.pt2 (torch.export.save)")
    parser.add_argument("--output_dir", help="where to write (default: the model folder, see above)")
    add_image_size_argument(parser, "export")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset, {ONNX_OPSETS[0]}-"
                        f"{ONNX_OPSETS[-1]} (default {DEFAULT_OPSET})")
    parser.add_argument("--trust_remote_code", action="store_true", help="run the model's own .py files (a Hub repo)"
                        " instead of this repo's")
    parser.add_argument("--images", nargs="+", metavar="IMAGE", help="image files for the parity check (default: "
                        f"{PARITY_IMAGES} random images)")
    parser.add_argument("--evaluate", nargs="?", const="fashion_mnist", metavar="DATA", help="then measure the "
                        "accuracy of PyTorch and each ONNX file on a data set, as train_hf.py's --dataset_name "
                        "(default: the built-in Fashion-MNIST)")
    parser.add_argument("--split", default="test", help="the split --evaluate reads (default test)")
    parser.add_argument("--max_eval_samples", type=int, help="evaluate on only the first this many images")
    args = parser.parse_args(argv)

    try:
        if not (args.onnx or args.int8 or args.torch_export):
            raise ValueError("nothing to export: give --onnx, --int8 or --torch_export (or several).")
        check_opset(args.opset)
        image_size = image_size_of(args.image_size)
        model = load_model(args.model, args.trust_remote_code)
        original_size = model.config.image_size
        if image_size is not None and pair(image_size) != pair(original_size):
            model.set_image_size(image_size)
        processor = image_processor(model, args.model)
        out = output_folder(args.model, model, original_size, args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        if not (Path(args.model).is_dir() and out.resolve() == Path(args.model).resolve()):
            # a folder of its own, at the exported size: the config (labels) and image processor go with the file
            model.config.save_pretrained(out)
            processor.save_pretrained(out)
        pixel_values = (pixel_values_of(args.images, model, processor) if args.images
                        else random_pixel_values(model.config, PARITY_IMAGES))

        written = []  # (path, int8)
        if args.onnx or args.int8:
            written.append((export_onnx(model, out / "model.onnx", args.opset), False))
        if args.int8:
            written.append((quantize_int8(out / "model.onnx", out / "model_int8.onnx"), True))
        if args.torch_export:
            export_program(model, out / "model.pt2")
            written.append((out / "model.pt2", False))
        height, width = pair(model.config.image_size)
        print(f"{args.model}: pixel_values (batch, {model.config.num_channels}, {height}, {width}) -> logits "
              f"(batch, {model.config.num_labels}); ONNX opset {args.opset}")
        parities = [check_parity(model, path, pixel_values, int8) for path, int8 in written]
        for (path, _), parity in zip(written, parities):
            print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)\n  {parity}")
        failed = [parity.name for parity in parities if not parity.ok]
        if failed:
            sys.exit(f"vit-simple-export: error: {', '.join(failed)} disagree(s) with PyTorch (above), the files are kept "
                     "for inspection: for float32, try another --opset; for int8, check on real images with --images "
                     "(random ones can sit on a class boundary).")
        if args.evaluate:
            evaluate_command(args, model, processor, [path for path, _ in written if path.suffix == ".onnx"])
    except ImportError as error:
        if error.name not in EXPORT_EXTRA:
            raise
        sys.exit(f"vit-simple-export: error: {error}: install the export extra, pip install 'vit-simple[export]'")
    except (ValueError, OSError, ExportFailed) as error:
        sys.exit(f"vit-simple-export: error: {' '.join(str(error).split())}")


if __name__ == "__main__":
    main()
