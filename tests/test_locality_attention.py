"""Locality self-attention (`locality_attention=True`, vit-pytorch's `vit_for_small_dataset.LSA`): a learned scale
per block and no token attending to itself. With shifted patches it is vit-pytorch's whole small-data-set ViT (with the
LayerNorm after the patch projection that vit-pytorch's ViT has; same weights, same logits, through sdpa and the explicit softmax, in training mode too), it never attends to itself, starts
at the plain scale, learns its scale, survives saving and exporting, and is refused where a format has no
equivalent."""

import numpy as np
import pytest
import torch
from vit_pytorch import vit_for_small_dataset

from configuration_vit_simple import ViTSimpleConfig
from modeling_vit_simple import ViTSimpleForImageClassification
from tests.conftest import assert_exports_agree, rename_state, tiny_config
from vit_simple.convert import export_to_transformers

# vit_for_small_dataset.ViT name (regular expression) -> vit-simple name
SMALL_TO_VIT_SIMPLE = [
    (r"^to_patch_embedding\.to_patch_tokens\.1\.", "vit.embeddings.patch_embedding.norm_in."),
    (r"^to_patch_embedding\.to_patch_tokens\.2\.", "vit.embeddings.patch_embedding.proj."),
    (r"^to_patch_embedding\.to_patch_tokens\.3\.", "vit.embeddings.patch_embedding.norm_out."),
    (r"^cls_token$", "vit.embeddings.cls_token"),
    (r"^pos_embedding$", "vit.embeddings.position_embeddings"),
    (r"^transformer\.layers\.(\d+)\.0\.to_out\.0\.", r"vit.layers.\1.attn.to_out."),
    (r"^transformer\.layers\.(\d+)\.0\.", r"vit.layers.\1.attn."),
    (r"^transformer\.layers\.(\d+)\.1\.net\.0\.", r"vit.layers.\1.ff.norm."),
    (r"^transformer\.layers\.(\d+)\.1\.net\.1\.", r"vit.layers.\1.ff.fc1."),
    (r"^transformer\.layers\.(\d+)\.1\.net\.4\.", r"vit.layers.\1.ff.fc2."),
    (r"^mlp_head\.0\.", "vit.norm."),
    (r"^mlp_head\.1\.", "classifier."),
]


def pair_of_models(attn_implementation):
    torch.manual_seed(0)
    theirs = vit_for_small_dataset.ViT(image_size=32, patch_size=8, num_classes=5, dim=32, depth=2, heads=4,
                                       dim_head=8, mlp_dim=64)
    # vit-pytorch's ViT normalises the patch tokens after the projection, its small-data-set ViT does not: vit-simple
    # (patch_norm=True) has that LayerNorm either way, so it is added to theirs
    theirs.to_patch_embedding.to_patch_tokens.append(torch.nn.LayerNorm(32))
    with torch.no_grad():
        for index, layer in enumerate(theirs.transformer.layers):
            layer[0].temperature.add_(0.3 * (index + 1))  # learned scales, away from the start and unequal
    config = ViTSimpleConfig(image_size=32, patch_size=8, dim=32, depth=2, heads=4, dim_head=8, mlp_dim=64,
                             num_labels=5, shifted_patches=True, locality_attention=True,
                             attn_implementation=attn_implementation)
    ours = ViTSimpleForImageClassification(config)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
    ours.load_state_dict(rename_state(theirs.state_dict(), SMALL_TO_VIT_SIMPLE), strict=True)
    return ours, theirs


@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_with_shifted_patches_it_is_vit_pytorchs_small_data_set_vit(attn_implementation):
    # (cls pooling: with pool="mean" vit_for_small_dataset.ViT keeps a CLS token and averages it in, vit-simple has none)
    ours, theirs = pair_of_models(attn_implementation)
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(images).logits, theirs.eval()(images), rtol=0, atol=1e-5)
        # training mode: the explicit softmax on CPU for short sequences, and every block updating every token
        torch.testing.assert_close(ours.train()(images).logits, theirs.train()(images), rtol=0, atol=1e-5)


def test_no_token_attends_to_itself_and_the_scale_starts_where_the_plain_models_is():
    torch.manual_seed(0)
    model = ViTSimpleForImageClassification(tiny_config(locality_attention=True)).eval()
    for layer in model.vit.layers:
        torch.testing.assert_close(layer.attn.temperature.exp(), torch.tensor(8**-0.5))
    with torch.no_grad():
        attentions = model(torch.randn(2, 3, 32, 32), output_attentions=True).attentions
    for attention in attentions:  # (batch, heads, queries, keys), the last block asked by the CLS token alone
        diagonal = torch.diagonal(attention[..., : attention.shape[-2], :], dim1=-2, dim2=-1)
        assert diagonal.abs().max() == 0
        torch.testing.assert_close(attention.sum(-1), torch.ones(attention.shape[:-1]))
    plain = ViTSimpleForImageClassification(tiny_config()).eval()
    assert "vit.layers.0.attn.temperature" not in dict(plain.named_parameters())


def test_the_scale_learns_takes_no_weight_decay_and_is_saved(tmp_path):
    torch.manual_seed(0)
    model = ViTSimpleForImageClassification(tiny_config(locality_attention=True))
    assert "vit.layers.0.attn.temperature" in model.no_weight_decay()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    images, labels = torch.randn(8, 3, 32, 32), torch.randint(0, 3, (8,))
    for _ in range(3):
        optimizer.zero_grad()
        model(pixel_values=images, labels=labels).loss.backward()
        optimizer.step()
    learned = torch.stack([layer.attn.temperature.detach() for layer in model.vit.layers])
    assert (learned - np.log(8**-0.5)).abs().min() > 1e-4
    model.eval().save_pretrained(tmp_path)
    reloaded = ViTSimpleForImageClassification.from_pretrained(tmp_path).eval()
    assert reloaded.config.locality_attention is True
    torch.testing.assert_close(torch.stack([layer.attn.temperature for layer in reloaded.vit.layers]), learned)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(images).logits, model(images).logits)


def test_bf16_autocast_runs_with_the_mask():
    torch.manual_seed(0)
    model = ViTSimpleForImageClassification(tiny_config(locality_attention=True)).train()
    images, labels = torch.randn(4, 3, 32, 32), torch.randint(0, 3, (4,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(pixel_values=images, labels=labels).loss
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(model.vit.layers[0].attn.temperature.grad)


def test_it_exports_to_onnx_and_torch_export_with_pytorchs_logits(tmp_path):
    torch.manual_seed(0)
    model = ViTSimpleForImageClassification(tiny_config(locality_attention=True, shifted_patches=True)).eval()
    assert_exports_agree(model, tmp_path, torch.randn(3, 3, 32, 32))


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_locality_attention_must_be_a_bool(value):
    with pytest.raises(ValueError, match=f"locality_attention must be True or False, got {value!r}"):
        ViTSimpleConfig(locality_attention=value)


def test_transformers_vit_has_no_locality_attention_so_the_export_to_it_refuses():
    model = ViTSimpleForImageClassification(tiny_config(locality_attention=True, patch_norm=False))
    with pytest.raises(ValueError, match="no equivalent of locality_attention=True"):
        export_to_transformers(model)
