"""Patch dropout (config.patch_dropout_prob): off by default, training only, drawn as vit-pytorch draws it."""

import pytest
import torch
from vit_pytorch.vit_with_patch_dropout import PatchDropout

from conftest import tiny_config
from configuration_vit_simple import ViTSimpleConfig
from modeling_vit_simple import ViTSimpleForImageClassification


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_the_kept_patches_are_the_ones_vit_pytorch_keeps(pool):
    torch.manual_seed(0)
    model = ViTSimpleForImageClassification(tiny_config(pool=pool, patch_dropout=0.4)).train()
    embeddings = model.vit.embeddings
    images = torch.randn(5, 3, 32, 32)
    prefix = embeddings.num_prefix_tokens
    with torch.no_grad():
        patches = embeddings.patch_embedding(images) + embeddings.position_embeddings[:, prefix:]
        torch.manual_seed(7)
        expected = PatchDropout(0.4).train()(patches)
        if prefix:
            cls = (embeddings.cls_token + embeddings.position_embeddings[:, :1]).expand(5, 1, -1)
            expected = torch.cat((cls, expected), dim=1)
        torch.manual_seed(7)
        got = embeddings(images)
    assert got.shape == (5, prefix + int(16 * 0.6), 32)  # 16 patches, 9 kept
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_training_sees_fewer_tokens_each_image_its_own_and_evaluation_sees_them_all():
    torch.manual_seed(0)
    config = tiny_config(patch_dropout_prob=0.5)
    model = ViTSimpleForImageClassification(config)
    plain = ViTSimpleForImageClassification(tiny_config())
    plain.load_state_dict(model.state_dict())
    image = torch.randn(1, 3, 32, 32)
    images = image.expand(8, -1, -1, -1)  # eight copies of one image

    model.train()
    out = model(images, labels=torch.zeros(8, dtype=torch.long), output_hidden_states=True)
    assert out.hidden_states[0].shape == (8, 1 + 8, 32)
    kept = out.hidden_states[0][:, 1:]
    assert not all(torch.equal(kept[0], kept[i]) for i in range(1, 8))  # the copies keep different patches
    out.loss.backward()
    assert model.vit.embeddings.position_embeddings.grad.abs().sum() > 0

    model.eval()
    plain.eval()
    with torch.no_grad():
        full = model(images, output_hidden_states=True)
        assert full.hidden_states[0].shape == (8, 1 + 16, 32)
        torch.testing.assert_close(model(images).logits, plain(images).logits, rtol=0, atol=0)


def test_at_least_one_patch_survives_and_the_default_drops_none():
    torch.manual_seed(0)
    model = ViTSimpleForImageClassification(tiny_config(patch_dropout=0.99)).train()
    out = model(torch.randn(2, 3, 32, 32), output_hidden_states=True)
    assert out.hidden_states[0].shape == (2, 2, 32)  # the CLS token and one patch
    default = ViTSimpleForImageClassification(tiny_config()).train()
    assert default.config.patch_dropout_prob == 0.0
    assert default(torch.randn(2, 3, 32, 32), output_hidden_states=True).hidden_states[0].shape == (2, 17, 32)


def test_the_option_is_saved_and_checked(tmp_path):
    config = ViTSimpleConfig(patch_dropout=0.25)
    assert config.patch_dropout_prob == 0.25
    config.save_pretrained(tmp_path)
    assert ViTSimpleConfig.from_pretrained(tmp_path).patch_dropout_prob == 0.25
    with pytest.raises(ValueError, match=r"patch_dropout_prob must be in \[0, 1\)"):
        ViTSimpleConfig(patch_dropout=1.0)
