"""Stochastic depth (`drop_path_rate`): rates rise linearly over the blocks, a dropped branch leaves an image's tokens
as they were, a kept one is scaled by 1 / (1 - rate), evaluation runs every branch, and rate 0 draws no random
numbers (so the default's losses do not move)."""

import pytest
import torch

from configuration_vit_simple import ViTSimpleConfig
from modeling_vit_simple import Block, ViTSimpleForImageClassification, drop_path
from tests.conftest import tiny_config


def test_rates_rise_linearly_from_zero_in_the_first_block_to_the_rate_in_the_last():
    model = ViTSimpleForImageClassification(tiny_config(depth=5, drop_path_rate=0.2))
    assert [round(block.drop_path_rate, 6) for block in model.vit.layers] == [0.0, 0.05, 0.1, 0.15, 0.2]
    one = ViTSimpleForImageClassification(tiny_config(depth=1, drop_path_rate=0.2))
    assert one.vit.layers[0].drop_path_rate == 0.0


def test_each_image_keeps_or_drops_a_whole_branch_and_kept_ones_are_rescaled():
    torch.manual_seed(0)
    branch = torch.randn(64, 5, 8) + 3.0
    out = drop_path(branch, 0.5, training=True)
    dropped = (out == 0).flatten(1).all(dim=1)
    kept = torch.isclose(out, branch * 2).flatten(1).all(dim=1)
    assert bool((dropped ^ kept).all())  # every image one or the other, never a mix
    assert 10 < int(dropped.sum()) < 54
    assert drop_path(branch, 0.5, training=False) is branch
    assert drop_path(branch, 0.0, training=True) is branch


def test_a_block_with_both_branches_dropped_passes_its_input_through():
    torch.manual_seed(0)
    block = Block(tiny_config(), drop_path_rate=0.999999).train()
    x = torch.randn(4, 17, 32)
    torch.manual_seed(1)
    out, _ = block(x)
    assert torch.equal(out, x)
    block.eval()
    with torch.no_grad():
        assert not torch.allclose(block(x)[0], x)  # evaluation runs every branch


def test_evaluation_is_deterministic_and_rate_zero_draws_no_random_numbers():
    torch.manual_seed(0)
    model = ViTSimpleForImageClassification(tiny_config(drop_path_rate=0.3)).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(images).logits, model(images).logits)
    plain = ViTSimpleForImageClassification(tiny_config()).train()
    state = torch.get_rng_state()
    plain(images)
    assert torch.equal(torch.get_rng_state(), state)
    trained = ViTSimpleForImageClassification(tiny_config(drop_path_rate=0.3)).train()
    trained(images)
    assert not torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("value", [-0.1, 1.0])
def test_the_rate_must_be_in_zero_to_one(value):
    with pytest.raises(ValueError, match="drop_path_rate must be in"):
        ViTSimpleConfig(drop_path_rate=value)
