"""A model's demo page in the Spaces convention (Gradio): any image in, its top-5 labels and where the model looked
(the attention rollout of `vit_simple.reports`) out, with a line about the model and example images of its test split.
`app.py` at the repository's root is the command line; `write_space` writes a Hub Space folder for one model.

    page = build_page("outputs/vit-simple")      # a gr.Blocks; its API endpoint is /classify
    serve(page)                                  # page.launch() with the page's style: http://127.0.0.1:7860

Private by default: the page sends no analytics and checks no version, and serving fetches nothing (a Hub model is
downloaded once, when it loads). Gradio is the demo extra (pip install 'vit-simple[demo]'), imported only where a
page is built, so that train_hf.py can call `save_examples` without it."""

import importlib.metadata
import itertools
import re
import shutil
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import torch
from PIL import Image, ImageOps
from transformers import AutoImageProcessor

from vit_simple.data import to_rgb
from vit_simple.errors import InputError
from vit_simple.processing import image_processor_for
from vit_simple.sources import is_local

TOP_K = 5
MAX_PIXELS = 50_000_000  # a 48-megapixel phone photo passes; decoding costs 3 bytes a pixel, 10,000 x 10,000 is refused
OVERLAY_SIDE = 512  # the overlay's longer side in pixels: small images enlarged in whole pixels, large shrunk
OVERLAY_ALPHA = 0.5  # the heat map's weight over the image
IMAGE_HEIGHT = 360  # pixels, of the input and the overlay on the page
CSS = "#image img {width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated}"  # small uploads fill
COLORMAP = "inferno"  # dark where the prediction draws little, bright yellow where it draws most
EXAMPLE_COUNT = 10  # one per class of Fashion-MNIST: two rows of five under the input
STREAMED_ROWS = 1000  # of a streamed split, the rows save_examples chooses from
PILLOW_LIMIT = threading.Lock()  # held while header_size lifts Pillow's global decompression-bomb limit
EXAMPLES = "examples"  # the folder of example images beside the model's weights
MODEL_FILES = ["README.md", "all_results.json", f"{EXAMPLES}/*"]  # what the page reads of a Hub repo besides the model
PNG_MODES = {"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"}
SPACE_MARK = "Written by vit-simple's demo page"  # in a written Space's app.py: a folder write_space may update
SPACE_EXTRAS = ("reports",)  # the Space's vit_simple imports the rollout from reports; gradio comes from sdk_version


# the model


@dataclass
class Classifier:
    """A loaded image classifier and what the page says about it. `files`: the folder holding its README.md,
    all_results.json and examples/ (the model folder, or the Hub snapshot of those files; None offline)."""

    source: str
    model: torch.nn.Module
    processor: object
    files: Path | None
    rollout_error: str | None  # why the attention rollout is not shown for this model; None when it is

    @property
    def channels(self):
        return getattr(self.model.config, "num_channels", 3)


def load(source, trust_remote_code=False):
    """The classifier of a folder or Hub id (`vit_simple.export.load_model`: this package's code for a vit-simple, the
    model's own only with `trust_remote_code`), its image processor, and whether the attention rollout works on it."""
    from vit_simple.export import load_model

    model = load_model(source, trust_remote_code)
    try:
        processor = AutoImageProcessor.from_pretrained(source)
    except OSError:  # a checkpoint saved without preprocessor_config.json
        processor = image_processor_for(model.config)
    classifier = Classifier(str(source), model, processor, model_files(source), None)
    try:  # on a blank image: a model without attention maps (another architecture) still classifies
        rollout(classifier, pixel_values(classifier, Image.new("RGB", (32, 32))))
    except Exception as error:  # whatever the model's code raises, the page then shows the labels alone
        classifier.rollout_error = f"{type(error).__name__}: {error}".splitlines()[0]
    return classifier


def model_files(source):
    """The folder of the model's README.md, all_results.json and examples: the folder itself, or those files of a
    Hub repo, downloaded once (None where they cannot be had, e.g. offline and not cached)."""
    if is_local(source):
        return Path(source).expanduser()
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(str(source), allow_patterns=MODEL_FILES))
    except Exception:  # offline, gated or removed: the page does without the description's extras and examples
        return None


def rollout(classifier, pixels):
    """The attention rollout (vit_simple.reports) as (height, width) maps in [0, 1] at the model's input size."""
    from vit_simple.reports import attention_rollout  # matplotlib and scikit-learn: the reports extra

    return attention_rollout(classifier.model, pixels)


# images


def open_image(path):
    """The uploaded file as a PIL image, upright (EXIF orientation applied), or an InputError saying what is wrong."""
    if path is None:
        raise InputError("No image: upload one (or click an example) before Submit.")
    name = Path(path).name
    try:
        with warnings.catch_warnings():  # Pillow warns of decompression bombs; the size check below refuses them
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
            size = image.size
    except Image.DecompressionBombError as error:  # over twice Pillow's limit: refused before its size is known
        size = header_size(path)
        if size is None or size[0] * size[1] <= MAX_PIXELS:
            raise InputError(not_an_image(name, error)) from error
    except Exception as error:  # Pillow raises UnidentifiedImageError and others
        raise InputError(not_an_image(name, error)) from error
    width, height = size
    if width * height > MAX_PIXELS:
        raise InputError(f"{name} is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels), more than the "
                         f"{MAX_PIXELS / 1e6:.0f} this page decodes: scale it down first.")
    try:
        image.load()
        return ImageOps.exif_transpose(image)
    except Exception as error:  # truncated or corrupt data surfaces only when the pixels are decoded
        raise InputError(not_an_image(name, error)) from error


def header_size(path):
    """(width, height) of an image file as its header gives it, read with Pillow's decompression-bomb limit lifted
    (the pixels are not decoded), or None where even that fails. The limit is Pillow's global: it is lifted under a
    lock, for the header alone, and put back."""
    with PILLOW_LIMIT:
        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            with Image.open(path) as image:
                return image.size
        except Exception:
            return None
        finally:
            Image.MAX_IMAGE_PIXELS = limit


def not_an_image(name, error):
    return (f"{name} is not an image this page can read ({type(error).__name__}): upload a PNG, JPEG, WebP, GIF, "
            "BMP or TIFF file.")


def model_image(image, channels):
    """`image` as the model takes it: transparency composited on white, as in training (vit_simple.data), then RGB,
    or grayscale for a 1-channel model. Every PIL mode converts (L, LA, P, RGBA, CMYK, I;16, ...)."""
    rgb = to_rgb(image)
    return rgb.convert("L") if channels == 1 else rgb


def pixel_values(classifier, image):
    return classifier.processor(model_image(image, classifier.channels), return_tensors="pt")["pixel_values"]


def overlay(image, heat):
    """The heat map (height, width) in [0, 1] over `image`, stretched to the image's shape (the image processor
    resized the image to the model's size, aspect ratio aside), at about OVERLAY_SIDE pixels on the longer side."""
    from matplotlib import colormaps  # the reports extra

    image = image.convert("RGB")
    longer = max(image.size)
    if longer < OVERLAY_SIDE:  # enlarged in whole pixels, so that a 28x28 image stays crisp
        scale = OVERLAY_SIDE // longer
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    elif longer > OVERLAY_SIDE:
        image = ImageOps.contain(image, (OVERLAY_SIDE, OVERLAY_SIDE), Image.Resampling.LANCZOS)
    heat = Image.fromarray(np.asarray(heat, dtype=np.float32)).resize(image.size, Image.Resampling.BILINEAR)
    colours = colormaps[COLORMAP](np.clip(np.asarray(heat), 0.0, 1.0))[..., :3]
    return Image.blend(image, Image.fromarray((colours * 255).round().astype(np.uint8)), OVERLAY_ALPHA)


# prediction


def probabilities(config, logits):
    """Scores as `pipeline("image-classification")` gives them: sigmoid for multi-label (or one-label) models,
    softmax otherwise."""
    if config.problem_type == "multi_label_classification" or config.num_labels == 1:
        return logits.sigmoid()
    return logits.softmax(dim=-1)


def classify(classifier, path):
    """({label: probability} of the top 5, the attention-rollout overlay or None) for an image file; InputError for
    a missing, unreadable or too large image."""
    image = open_image(path)
    pixels = pixel_values(classifier, image)
    with torch.no_grad():
        logits = classifier.model(pixel_values=pixels).logits[0].float()
    scores = probabilities(classifier.model.config, logits)
    top = scores.topk(min(TOP_K, scores.numel()))
    labels = {classifier.model.config.id2label[int(index)]: float(score)
              for score, index in zip(top.values, top.indices)}
    if classifier.rollout_error is not None:
        return labels, None
    return labels, overlay(model_image(image, classifier.channels), rollout(classifier, pixels)[0].numpy())


# the line about the model


def describe(classifier, hub_id=None):
    """Markdown about the model: its name as a heading (its Hub id, linked, for a Hub model or `hub_id`), then one
    line: its kind and size, the data it was trained on (its model card) and its test accuracy (all_results.json,
    which train_hf.py writes), each where known."""
    import json

    config = classifier.model.config
    hub_id = hub_id or (None if is_local(classifier.source) else classifier.source)
    name = f"[{hub_id}](https://huggingface.co/{hub_id})" if hub_id else model_name(classifier.source)
    parameters = sum(p.numel() for p in classifier.model.parameters())
    height, width = pixel_values(classifier, Image.new("RGB", (32, 32))).shape[-2:]
    kind = "vit-simple" if config.model_type == "vit_simple" else config.model_type
    parts = [f"{kind} image classifier, {parameters / 1e6:.2f}M parameters, {height}x{width} "
             f"{'grayscale' if classifier.channels == 1 else 'RGB'} input, {config.num_labels} classes"]
    files = classifier.files
    data = trained_on(files / "README.md") if files else None
    if data:
        parts.append(f"trained on {data}")
    results = files / "all_results.json" if files else None
    if results and results.is_file():
        metrics = json.loads(results.read_text())
        for key, split in (("test_accuracy", "test"), ("eval_accuracy", "validation")):
            if key in metrics:
                parts.append(f"{split} accuracy {100 * metrics[key]:.2f}%")
                break
    return f"# {name}\n\n" + " · ".join(parts)


def model_name(source):
    """A folder's name, or the Hub id."""
    return Path(source).expanduser().resolve().name if is_local(source) else str(source)


def trained_on(card_path):
    """The data a model card names: its results' data set, else its `datasets` metadata; None without a card."""
    if not card_path.is_file():
        return None
    from huggingface_hub import ModelCard

    try:
        data = ModelCard.load(card_path).data
    except Exception:  # a card whose metadata does not parse says nothing the page can use
        return None
    for result in data.eval_results or []:
        if result.dataset_name:
            return result.dataset_name
    return ", ".join(data.datasets) if data.datasets else None


# examples


def save_examples(folder, split, image_column, label_column, label_names, count=EXAMPLE_COUNT):
    """Write `count` images of `split` (a `datasets` split, e.g. the test split) into `folder`/examples/ for the demo
    page, which shows them under its input: the first image of each class in turn (one per class, then a second,
    ...), named by position and label (`00-ankle-boot.png`); push_to_hub uploads them with the model. Earlier
    examples there are replaced. A streamed split is looked at through its first STREAMED_ROWS rows. Returns the
    paths written."""
    from vit_simple.data import decode_image

    if isinstance(split, datasets.IterableDataset):
        rows = list(itertools.islice(split, STREAMED_ROWS))
        labels = [row[label_column] for row in rows]
    else:  # the label column alone: no image is decoded to choose
        rows, labels = split, list(split.select_columns([label_column])[label_column])
    by_label = {}
    for index, label in enumerate(labels):
        if len(by_label.setdefault(label, [])) < count:
            by_label[label].append(index)
    chosen = [indexes[rank] for rank in range(count) for indexes in by_label.values() if rank < len(indexes)][:count]

    out = Path(folder) / EXAMPLES
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("[0-9][0-9]-*.png"):
        old.unlink()
    paths = []
    for position, index in enumerate(chosen):
        label = labels[index]
        name = label_names[label] if isinstance(label, int) else str(label)
        image = rows[index][image_column]
        image = image if isinstance(image, Image.Image) else decode_image(image, None)
        if image.mode not in PNG_MODES:
            image = image.convert("RGB")
        slug = re.sub(r"\W+", "-", name.lower()).strip("-") or str(label)
        path = out / f"{position:02d}-{slug}.png"
        image.save(path)
        paths.append(path)
    return paths


def example_images(classifier, examples=None):
    """The example image files: those in `examples` (a folder), or in the model's examples/ folder."""
    folder = Path(examples) if examples is not None else (classifier.files / EXAMPLES if classifier.files else None)
    if folder is None or not folder.is_dir():
        return []
    return sorted(str(path) for path in folder.iterdir()
                  if path.suffix.lower() in {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp"})


# the page


def build_page(source, trust_remote_code=False, examples=None):
    """The demo page of a folder or Hub id, a gr.Blocks to `launch()`: an image in; its top-5 labels (`gr.Label`)
    and the attention-rollout overlay out, through the API endpoint /classify. `examples`: a folder of example
    images (default: the model's examples/)."""
    return page(load(source, trust_remote_code), examples)


def page(classifier, examples=None):
    """The gr.Blocks of a loaded `Classifier`."""
    import gradio as gr

    def run(upload):
        """The page's function, on the uploaded file as gradio describes it (its path in gradio's upload folder,
        checked there by gradio; `preprocess=False` so that a file that is not an image reaches `open_image`, where
        it gets a message, instead of failing in gr.Image's own opening, which shows only "Error")."""
        if upload is not None and not upload.get("path"):
            raise gr.Error("Send the image as a file (gradio_client.handle_file), not as data in the request.",
                           print_exception=False)
        try:
            return classify(classifier, upload and upload["path"])
        except InputError as error:
            raise gr.Error(str(error), print_exception=False) from error

    how = ("**Where the model looked**: the attention rollout (Abnar & Zuidema, 2020), every block's attention "
           "multiplied through, over the image; bright is where the prediction draws most."
           if classifier.rollout_error is None else f"No attention map for this model ({classifier.rollout_error}).")
    files = example_images(classifier, examples)
    with gr.Blocks(title=model_name(classifier.source), analytics_enabled=False) as blocks:
        gr.Markdown(f"{describe(classifier)}\n\n{how}")
        labels = gr.Label(num_top_classes=TOP_K, label=f"Top {TOP_K}", elem_id="labels", render=False)
        heat = gr.Image(type="pil", format="png", label="Where the model looked", elem_id="overlay",
                        interactive=False, height=IMAGE_HEIGHT, render=False)
        with gr.Row(equal_height=False):
            with gr.Column():
                image = gr.Image(type="filepath", label="Image", elem_id="image", sources=["upload", "clipboard"],
                                 height=IMAGE_HEIGHT)
                with gr.Row():
                    clear = gr.ClearButton(value="Clear")
                    submit = gr.Button("Submit", variant="primary", elem_id="submit")
                if files:  # a click fills the input, then classifies it
                    gallery = gr.Examples([[path] for path in files], inputs=[image], cache_examples=False,
                                          api_visibility="private", examples_per_page=len(files),
                                          label="Examples (click one)")
                    gallery.load_input_event.then(run, inputs=[image], outputs=[labels, heat], preprocess=False,
                                                  api_visibility="private")
            with gr.Column():
                labels.render()
                heat.render()
        clear.add([image, labels, heat])
        submit.click(run, inputs=[image], outputs=[labels, heat], preprocess=False, api_name="classify")
    return blocks


def serve(blocks, **launch_kwargs):
    """`blocks.launch(**launch_kwargs)` with the page's style sheet (Gradio 6 takes it at launch, not in Blocks)."""
    return blocks.launch(css=CSS, **launch_kwargs)


# a Space


def write_space(directory, source, trust_remote_code=False, hub_model_id=None):
    """Write a Hub Space folder serving one model: app.py (this page, trusting the code of that model and no
    other), the vit_simple library it runs on, requirements.txt, a README with the Spaces YAML and examples/.
    `source`: the model's folder or Hub id; the Space loads `hub_model_id` (default: `source`, a Hub id) from the
    Hub. Files of the same names in `directory` are replaced. Returns the folder."""
    from huggingface_hub import SpaceCard, SpaceCardData
    from huggingface_hub.utils import validate_repo_id

    import configuration_vit_simple
    import modeling_vit_simple
    import vit_simple

    model_id = hub_model_id or (None if is_local(source) else str(source))
    if model_id is None:
        raise InputError(f"{source} is a folder, and a Space loads its model from the Hub: add --hub_model_id "
                         "OWNER/NAME, the repo the model is (or will be) pushed to.")
    validate_repo_id(model_id)  # a ValueError naming what is wrong
    out = Path(directory)
    if out.exists() and any(out.iterdir()) and SPACE_MARK not in read_text(out / "app.py"):
        raise InputError(f"{directory} is not empty and holds no Space written by app.py: give a new folder (or one "
                         "written before, to update it).")
    classifier = load(source, trust_remote_code)  # the model must load (and classify) before a Space serves it
    out.mkdir(parents=True, exist_ok=True)

    # the library, as it is here: a Space installs requirements.txt only, so the code travels as files
    shutil.rmtree(out / "vit_simple", ignore_errors=True)
    shutil.copytree(Path(vit_simple.__file__).parent, out / "vit_simple",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for module in (configuration_vit_simple, modeling_vit_simple):
        shutil.copy(module.__file__, out / Path(module.__file__).name)
    shutil.rmtree(out / EXAMPLES, ignore_errors=True)
    images = example_images(classifier)
    if images:
        (out / EXAMPLES).mkdir()
        for path in images:
            shutil.copy(path, out / EXAMPLES / Path(path).name)

    (out / "app.py").write_text(f'''"""The demo page of {model_id}: an image in; its top-5 labels and where the model
looked out.

{SPACE_MARK} (app.py --write_space); the library it runs on is the vit_simple folder beside
this file. `python app.py` serves it at http://127.0.0.1:7860, as the Space does."""

from pathlib import Path

from vit_simple.demo import build_page, serve

MODEL = "{model_id}"  # the one model whose own code (its .py files) this Space runs

demo = build_page(MODEL, trust_remote_code=True, examples=Path(__file__).parent / "{EXAMPLES}")

if __name__ == "__main__":
    serve(demo)
''')
    (out / "requirements.txt").write_text("\n".join(space_requirements()) + "\n")

    gradio_version = importlib.metadata.version("gradio")  # the Space's sdk_version: the Gradio tested here
    owner, name = model_id.split("/") if "/" in model_id else ("OWNER", model_id)
    space_id = f"{owner}/{name}-demo"
    metadata = SpaceCardData(
        title=name, emoji="🔍", colorFrom="indigo", colorTo="gray", sdk="gradio", sdk_version=gradio_version,
        python_version=f"{sys.version_info.major}.{sys.version_info.minor}", app_file="app.py",
        models=[model_id], license=importlib.metadata.metadata("vit-simple").get("License-Expression", "mit").lower(),
        pinned=False, short_description=f"Top-5 labels and attention of {name}"[:60],
        tags=["vit-simple", "image-classification"])
    body = f"""
{describe(classifier, hub_id=model_id)}

The demo page of this model: upload an image to see its top-5 labels and where the model looked (the attention
rollout over the image), or click one of the examples from its test split. Written by vit-simple
(`app.py --write_space`): `app.py` loads the model from the Hub with its own code
(`trust_remote_code=True` for that one repo, and no other); `vit_simple/` is the library the page runs on.

## Try it here, then upload it

```bash
pip install -r requirements.txt gradio=={gradio_version}
python app.py                      # http://127.0.0.1:7860
hf repos create {space_id} --type space --sdk gradio --exist-ok
hf upload {space_id} . . --type space
```

or, from Python:

```python
from huggingface_hub import create_repo, upload_folder

create_repo("{space_id}", repo_type="space", space_sdk="gradio", exist_ok=True)
upload_folder(repo_id="{space_id}", folder_path=".", repo_type="space")
```
"""
    SpaceCard(f"---\n{metadata.to_yaml()}\n---\n{body}").save(out / "README.md")
    return out


def read_text(path):
    return path.read_text() if path.is_file() else ""


def space_requirements():
    """requirements.txt of a Space: vit-simple's own requirements and those of its reports extra, as the package
    declares them (gradio is the Space's sdk_version)."""
    from packaging.requirements import Requirement

    try:
        declared = importlib.metadata.requires("vit-simple") or []
    except importlib.metadata.PackageNotFoundError as error:
        raise InputError("vit-simple is not installed, so its requirements are unknown: pip install -e . first.") \
            from error
    wanted = []
    for line in declared:
        requirement = Requirement(line)
        if requirement.marker is None or any(requirement.marker.evaluate({"extra": extra}) for extra in SPACE_EXTRAS):
            requirement.marker = None
            wanted.append(str(requirement))
    return wanted
