"""vit-simple: lucidrains' einops Vision Transformer as a Hugging Face transformers model.

`import vit_simple` registers the model with transformers' Auto classes, so that a saved folder loads with this
package's code, without remote code:

    import vit_simple
    model = AutoModelForImageClassification.from_pretrained("outputs/vit-simple")

The model itself is the pair at the repository's root (configuration_vit_simple.py, modeling_vit_simple.py), which a
Hub repo carries as remote code; this package is the library around it, one job per module:

    recipe          the from-scratch recipe: model sizes, every default of train_hf.py, each with its reason
    options         train_hf.py's options, parsed and resolved in one place
    processing      the image processor that travels with a model; image-size arguments
    sources         the one rule for "a local path or a Hub id"
    data            image-classification data: Fashion-MNIST, image folders, Hub and saved data sets
    fashion_mnist   Fashion-MNIST from Debian's IDX files, offline
    augmentation    training and evaluation transforms, keyed for exact resume
    hardware        what this machine runs natively (bfloat16)
    optimizers      Muon (batched Newton-Schulz) with AdamW, as one optimizer
    metrics         accuracy, macro F1 and top-5 through `evaluate`, from the modules shipped here
    trainer         the Trainer subclass, weight average, test-time augmentation, time budget, resume
    reports         predictions, per-class numbers and figures of a trained model
    model_card      the README.md a trained or converted model carries
    convert         google/timm ViT checkpoints in, native transformers ViT out (vit-simple-convert)
    export          ONNX and torch.export files, checked against PyTorch (vit-simple-export)
    saving          finite checks, the final model written beside the output folder and moved into place in one
                    step, the Hub upload after the local save
    demo            app.py's demo page (Gradio, the demo extra): labels, attention rollout, examples, a Space folder
"""

from transformers import AutoConfig, AutoModel, AutoModelForImageClassification

from configuration_vit_simple import ViTSimpleConfig
from modeling_vit_simple import ViTSimpleForImageClassification, ViTSimpleModel, ViTSimplePreTrainedModel

AutoConfig.register(ViTSimpleConfig.model_type, ViTSimpleConfig, exist_ok=True)
AutoModel.register(ViTSimpleConfig, ViTSimpleModel, exist_ok=True)
AutoModelForImageClassification.register(ViTSimpleConfig, ViTSimpleForImageClassification, exist_ok=True)

from vit_simple.processing import image_processor_for  # noqa: E402  (after registration: it needs none, users do)
from vit_simple.recipe import MODEL_SIZES, new_config  # noqa: E402

__all__ = [
    "ViTSimpleConfig",
    "ViTSimpleModel",
    "ViTSimpleForImageClassification",
    "ViTSimplePreTrainedModel",
    "image_processor_for",
    "new_config",
    "MODEL_SIZES",
]
