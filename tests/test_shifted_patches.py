"""Shifted patch tokenization (`shifted_patches=True`, vit-pytorch's `vit_for_small_dataset.SPT`): each patch is cut
from the image and its four 1-pixel shifts, or with `patch_shift="diagonal"` its four half-patch diagonal shifts (the
paper's). It computes what vit-pytorch's SPT computes, lets a token see its neighbours' edge pixels, survives saving,
exports to ONNX and torch.export, and is refused where a format has no equivalent."""

import pytest
import torch
from einops import rearrange
from vit_pytorch.vit_for_small_dataset import SPT

import vit_simple
from configuration_vit_simple import ViTSimpleConfig
from modeling_vit_simple import PatchEmbedding, ViTSimpleForImageClassification, shift_and_stack
from tests.conftest import assert_exports_agree, tiny_config
from vit_simple.convert import export_to_transformers
from vit_simple.model_card import shift_text


def test_the_patch_embedding_computes_vit_pytorchs_spt_with_the_same_weights():
    torch.manual_seed(0)
    config = tiny_config(shifted_patches=True)
    ours = PatchEmbedding(config)
    theirs = SPT(dim=config.hidden_size, patch_size=config.patch_size, channels=config.num_channels)
    norm, linear = theirs.to_patch_tokens[1], theirs.to_patch_tokens[2]
    for parameter in (norm.weight, norm.bias):
        torch.nn.init.normal_(parameter)  # not LayerNorm's ones and zeros: a channel order mismatch would show
    ours.norm_in.load_state_dict(norm.state_dict())
    ours.proj.load_state_dict(linear.state_dict())
    pixel_values = torch.randn(3, config.num_channels, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(pixel_values), ours.norm_out(theirs(pixel_values)))


@pytest.mark.parametrize("patch_shift", ["cardinal", "diagonal"])
@pytest.mark.parametrize("channels, patch_size, size", [(3, 4, (28, 28)), (1, (2, 4), (6, 12)), (2, 8, (16, 24))])
def test_the_gathered_patches_are_the_stacked_shifts_rearranged_bit_for_bit(patch_shift, channels, patch_size, size):
    """The model gathers its patches in one copy; they must be vit-pytorch's SPT patches exactly, whatever the
    memory layout of the batch (channels-last, as train_hf's collate makes it, or contiguous) and at a second image
    size (interpolate_pos_encoding), where it builds a second index."""
    config = tiny_config(shifted_patches=True, patch_shift=patch_shift, num_channels=channels, patch_size=patch_size,
                         image_size=size)
    embedding = PatchEmbedding(config)
    p1, p2 = patch_size if isinstance(patch_size, tuple) else (patch_size, patch_size)
    for height, width in (size, (size[0] + p1, size[1] + 2 * p2)):
        image = torch.randn(2, height, width, channels)  # channels-last in memory once permuted
        for pixel_values in (image.permute(0, 3, 1, 2), image.permute(0, 3, 1, 2).contiguous()):
            stacked = shift_and_stack(pixel_values, embedding.diagonal_shift)
            want = rearrange(stacked, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=p1, p2=p2)
            assert torch.equal(embedding.shifted_patches(pixel_values), want)
    assert len(embedding.patch_index) == 2  # one index per size, built once


def test_shifts_are_one_pixel_each_way_and_zero_filled():
    image = torch.arange(12.0).reshape(1, 1, 3, 4)
    stacked = shift_and_stack(image)[0]
    assert stacked.shape == (5, 3, 4)
    torch.testing.assert_close(stacked[0], image[0, 0])
    torch.testing.assert_close(stacked[1], torch.tensor([[0, 0, 1, 2], [0, 4, 5, 6], [0, 8, 9, 10.0]]))  # right
    torch.testing.assert_close(stacked[2], torch.tensor([[1, 2, 3, 0], [5, 6, 7, 0], [9, 10, 11, 0.0]]))  # left
    torch.testing.assert_close(stacked[3], torch.tensor([[0, 0, 0, 0], [0, 1, 2, 3], [4, 5, 6, 7.0]]))  # down
    torch.testing.assert_close(stacked[4], torch.tensor([[4, 5, 6, 7], [8, 9, 10, 11], [0, 0, 0, 0.0]]))  # up


def test_diagonal_shifts_move_the_image_towards_each_corner_and_zero_fill():
    image = torch.arange(1.0, 21.0).reshape(1, 1, 4, 5)
    stacked = shift_and_stack(image, diagonal_shift=(2, 1))[0]
    assert stacked.shape == (5, 4, 5)
    torch.testing.assert_close(stacked[0], image[0, 0])
    expected = {1: (2, 1), 2: (2, -1), 3: (-2, 1), 4: (-2, -1)}  # rows down, columns right
    for channel, (down, right) in expected.items():
        want = torch.zeros(4, 5)
        for row in range(4):
            for column in range(5):
                source_row, source_column = row - down, column - right
                if 0 <= source_row < 4 and 0 <= source_column < 5:
                    want[row, column] = image[0, 0, source_row, source_column]
        torch.testing.assert_close(stacked[channel], want, msg=f"shift {channel}")


@pytest.mark.parametrize("patch_shift, reach", [("cardinal", 1), ("diagonal", 4)])
def test_a_token_reads_pixels_as_far_as_its_shift_reaches(patch_shift, reach):
    """8x8 patches: vit-pytorch's shift reaches one pixel past a patch's edge, the diagonal one half a patch (4)."""
    torch.manual_seed(0)
    embedding = PatchEmbedding(tiny_config(shifted_patches=True, patch_shift=patch_shift)).eval()
    pixel_values = torch.randn(1, 3, 32, 32)
    for offset in range(1, 6):  # pixels 1 to 5 columns right of the first patch (row 3, inside its rows)
        changed = pixel_values.clone()
        changed[0, :, 3, 7 + offset] += 5.0
        with torch.no_grad():
            moved = (embedding(pixel_values)[0, 0] - embedding(changed)[0, 0]).abs().amax() > 1e-6
        assert bool(moved) is (offset <= reach), offset


def test_a_diagonally_shifted_model_saves_reloads_and_exports_with_pytorchs_logits(tmp_path):
    torch.manual_seed(0)
    model = ViTSimpleForImageClassification(tiny_config(shifted_patches=True, patch_shift="diagonal")).eval()
    cardinal = ViTSimpleForImageClassification(tiny_config(shifted_patches=True)).eval()
    cardinal.load_state_dict(model.state_dict())  # the same weights: only the shifts differ
    pixel_values = torch.randn(3, 3, 32, 32)
    model.save_pretrained(tmp_path / "saved")
    reloaded = ViTSimpleForImageClassification.from_pretrained(tmp_path / "saved").eval()
    assert reloaded.config.patch_shift == "diagonal"
    with torch.no_grad():
        torch.testing.assert_close(reloaded(pixel_values).logits, model(pixel_values).logits)
        assert not torch.allclose(cardinal(pixel_values).logits, model(pixel_values).logits)
    (tmp_path / "exports").mkdir()
    assert_exports_agree(model, tmp_path / "exports", pixel_values)


@pytest.mark.parametrize("overrides, text", [
    ({}, ""),
    ({"shifted_patches": True}, "four 1-pixel shifts"),
    ({"shifted_patches": True, "patch_shift": "diagonal"}, "four diagonal half-patch shifts"),
])
def test_the_model_card_names_the_shifts_the_model_takes(overrides, text):
    named = shift_text(tiny_config(**overrides))
    assert (text in named) if text else named == ""


@pytest.mark.parametrize("value", ["diagonals", "", None, True])
def test_patch_shift_must_be_cardinal_or_diagonal(value):
    with pytest.raises(ValueError, match=f"patch_shift must be one of 'cardinal', 'diagonal', got {value!r}"):
        ViTSimpleConfig(patch_shift=value)


@pytest.mark.parametrize("shifted", [False, True])
def test_a_patch_token_sees_the_pixel_beyond_its_edge_only_with_shifted_patches(shifted):
    torch.manual_seed(0)
    embedding = PatchEmbedding(tiny_config(shifted_patches=shifted)).eval()
    pixel_values = torch.randn(1, 3, 32, 32)
    changed = pixel_values.clone()
    changed[0, :, 3, 8] += 5.0  # the first pixel of the second patch (8x8 patches), next to the first patch's edge
    with torch.no_grad():
        before, after = embedding(pixel_values)[0], embedding(changed)[0]
    moved = (before - after).abs().amax(dim=-1) > 1e-6
    assert moved[1]  # the patch that holds the pixel
    assert bool(moved[0]) is shifted  # its left neighbour reads it through the left shift
    assert not moved[2:].any()  # nothing further away


def test_a_shifted_model_saves_reloads_and_takes_other_image_sizes(tmp_path):
    torch.manual_seed(0)
    model = ViTSimpleForImageClassification(tiny_config(shifted_patches=True)).eval()
    assert model.vit.embeddings.patch_embedding.proj.in_features == 5 * 3 * 8 * 8
    model.save_pretrained(tmp_path)
    reloaded = ViTSimpleForImageClassification.from_pretrained(tmp_path).eval()
    assert reloaded.config.shifted_patches is True
    pixel_values = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(pixel_values).logits, model(pixel_values).logits)
        larger = model(torch.randn(2, 3, 48, 48), interpolate_pos_encoding=True).logits
    assert larger.shape == (2, 3) and torch.isfinite(larger).all()


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_shifted_patches_must_be_a_bool(value):
    with pytest.raises(ValueError, match=f"shifted_patches must be True or False, got {value!r}"):
        ViTSimpleConfig(shifted_patches=value)


def test_a_shifted_model_exports_to_onnx_and_torch_export_with_pytorchs_logits(tmp_path):
    torch.manual_seed(0)
    model = ViTSimpleForImageClassification(tiny_config(shifted_patches=True)).eval()
    assert_exports_agree(model, tmp_path, torch.randn(3, 3, 32, 32))


def test_transformers_vit_has_no_shifted_patches_so_the_export_to_it_refuses():
    model = ViTSimpleForImageClassification(tiny_config(shifted_patches=True, patch_norm=False))
    with pytest.raises(ValueError, match="no equivalent of shifted_patches=True"):
        export_to_transformers(model)


def test_new_config_leaves_it_off_as_vit_pytorchs_vit_has_it():
    assert vit_simple.new_config("mini", ["a", "b"], (28, 28)).shifted_patches is False
    assert vit_simple.new_config("mini", ["a", "b"], (28, 28), "shifted_patches=true").shifted_patches is True
