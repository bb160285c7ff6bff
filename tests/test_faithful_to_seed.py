"""vit-simple with the seed's options is lucidrains' vit_pytorch.vit.ViT: same weights, same logits."""

import re

import pytest
import torch
from vit_pytorch.vit import ViT

from configuration_vit_simple import ViTSimpleConfig
from modeling_vit_simple import ViTSimpleForImageClassification

# vit-pytorch name (regular expression) -> vit-simple name
SEED_TO_VIT_SIMPLE = [
    (r"to_patch_embedding\.1\.", "vit.embeddings.patch_embedding.norm_in."),
    (r"to_patch_embedding\.2\.", "vit.embeddings.patch_embedding.proj."),
    (r"to_patch_embedding\.3\.", "vit.embeddings.patch_embedding.norm_out."),
    (r"^cls_token$", "vit.embeddings.cls_token"),
    (r"^pos_embedding$", "vit.embeddings.position_embeddings"),
    (r"transformer\.layers\.(\d+)\.0\.norm\.", r"vit.layers.\1.attn.norm."),
    (r"transformer\.layers\.(\d+)\.0\.to_qkv\.", r"vit.layers.\1.attn.to_qkv."),
    (r"transformer\.layers\.(\d+)\.0\.to_out\.0\.", r"vit.layers.\1.attn.to_out."),
    (r"transformer\.layers\.(\d+)\.1\.net\.0\.", r"vit.layers.\1.ff.norm."),
    (r"transformer\.layers\.(\d+)\.1\.net\.1\.", r"vit.layers.\1.ff.fc1."),
    (r"transformer\.layers\.(\d+)\.1\.net\.4\.", r"vit.layers.\1.ff.fc2."),
    (r"^transformer\.norm\.", "vit.norm."),
    (r"^mlp_head\.", "classifier."),
]


def seed_to_vit_simple(seed_state):
    converted = {}
    for name, tensor in seed_state.items():
        if tensor.numel() == 0:  # mean pooling: vit-pytorch keeps an empty CLS parameter, vit-simple has none
            continue
        new_name = name
        for pattern, replacement in SEED_TO_VIT_SIMPLE:
            new_name = re.sub(pattern, replacement, new_name)
        if new_name == name:
            raise KeyError(f"no vit-simple name for {name}")
        if name in ("cls_token", "pos_embedding") and tensor.dim() == 2:  # (n, d) in recent vit-pytorch
            tensor = tensor.unsqueeze(0)
        converted[new_name] = tensor
    return converted


CASES = {
    "cls": dict(image_size=32, patch_size=8, dim=48, depth=2, heads=3, dim_head=16, mlp_dim=96),
    "mean": dict(image_size=32, patch_size=8, dim=48, depth=2, heads=3, dim_head=16, mlp_dim=96, pool="mean"),
    "rectangular": dict(image_size=(32, 48), patch_size=(8, 16), dim=32, depth=2, heads=2, dim_head=24, mlp_dim=64),
    "one_head_no_projection": dict(image_size=16, patch_size=4, dim=32, depth=1, heads=1, dim_head=32, mlp_dim=64),
    "grayscale_mean_rectangular": dict(image_size=(28, 42), patch_size=(7, 14), dim=32, depth=3, heads=4, dim_head=8,
                                       mlp_dim=48, channels=1, pool="mean"),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_same_weights_give_the_same_logits_as_vit_pytorch(case, attn_implementation):
    kwargs = CASES[case]
    torch.manual_seed(0)
    seed = ViT(num_classes=5, **kwargs).eval()
    config = ViTSimpleConfig(num_labels=5, attn_implementation=attn_implementation, **kwargs)
    model = ViTSimpleForImageClassification(config).eval()

    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in seed.parameters())
    missing, unexpected = model.load_state_dict(seed_to_vit_simple(seed.state_dict()), strict=True)
    assert not missing and not unexpected

    height, width = config.image_size if isinstance(config.image_size, list) else (config.image_size,) * 2
    images = torch.randn(4, config.num_channels, height, width)
    with torch.no_grad():
        torch.testing.assert_close(model(images).logits, seed(images), rtol=0, atol=1e-5)


def test_no_output_projection_exactly_when_the_seed_has_none():
    one_head = ViTSimpleForImageClassification(ViTSimpleConfig(**CASES["one_head_no_projection"]))
    assert isinstance(one_head.vit.layers[0].attn.to_out, torch.nn.Identity)
    several = ViTSimpleForImageClassification(ViTSimpleConfig(**CASES["cls"]))
    assert isinstance(several.vit.layers[0].attn.to_out, torch.nn.Linear)
