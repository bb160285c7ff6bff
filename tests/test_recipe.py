"""The from-scratch recipe (vit_simple.recipe): the config of a new model, its overrides and patch sizes, and what
the recipe's choices depend on."""

import pytest

from vit_simple import recipe
from vit_simple.errors import InputError


def test_config_overrides_accept_both_vocabularies_and_reject_typos():
    overrides = recipe.parse_config_overrides("depth=4, dim=128,heads=2,pool=mean,dropout=0.1,qkv_bias=true,"
                                              "attention_probs_dropout_prob=None,image_size=32x48")
    assert overrides == {"num_hidden_layers": 4, "hidden_size": 128, "num_attention_heads": 2, "pool": "mean",
                         "hidden_dropout_prob": 0.1, "qkv_bias": True, "attention_probs_dropout_prob": None,
                         "image_size": [32, 48]}
    with pytest.raises(ValueError, match="'depht=4' is not key=value with a known key"):
        recipe.parse_config_overrides("depht=4")
    with pytest.raises(ValueError, match="'depth' is not key=value"):
        recipe.parse_config_overrides("depth")


@pytest.mark.parametrize("size, patch", [(28, 4), (32, 4), ((32, 48), 4), ((28, 42), 2), (48, 6), (64, 8), (56, 8),
                                         (224, 16), (384, 16)])
def test_default_patch_size_gives_at_least_seven_by_seven_patches(size, patch):
    assert recipe.default_patch_size(size) == patch


def test_default_patch_size_refuses_awkward_sizes():
    with pytest.raises(ValueError, match="give image_size and patch_size in --config_overrides"):
        recipe.default_patch_size(29)


def test_a_new_config_takes_its_size_image_and_labels_from_the_data():
    config = recipe.new_config("mini", ["a", "b"], (28, 28), "depth=3,channels=1")
    assert (config.hidden_size, config.num_hidden_layers, config.intermediate_size) == (128, 3, 256)
    assert (config.image_size, config.patch_size, config.num_channels) == (28, 4, 1)
    assert config.id2label == {0: "a", 1: "b"} and config.label2id == {"a": 0, "b": 1}
    assert config.patch_dropout_prob == 0.0  # the Python API adds none of train_hf.py's recipe
    large = recipe.new_config("small", ["a", "b"], (375, 500))
    assert (large.image_size, large.patch_size, large.hidden_size, large.num_hidden_layers) == (224, 16, 384, 12)


def test_a_bad_size_or_override_is_a_value_error_that_quotes_what_was_given():
    with pytest.raises(ValueError, match="'medium': not one of mini, tiny"):
        recipe.new_config("medium", ["a", "b"], (28, 28))
    with pytest.raises(ValueError, match="--model_size mini with --config_overrides 'patch_size=5': .*not divisible "
                                         "by patch_size") as error:
        recipe.new_config("mini", ["a", "b"], (28, 28), "patch_size=5")
    assert not isinstance(error.value, InputError)  # the library stands apart from the training script


@pytest.mark.parametrize("from_scratch, side, expected", [(True, 28, "flip"), (True, 224, "flip"),
                                                           (False, 28, "pad_crop"), (False, 64, "pad_crop"),
                                                           (False, 96, "resized_crop")])
def test_auto_augmentation_is_flips_from_scratch_and_a_crop_by_image_size_when_fine_tuning(from_scratch, side,
                                                                                           expected):
    assert recipe.auto_augmentation(from_scratch, side) == expected


def test_loader_workers_are_a_quarter_of_the_cores_from_one_to_four():
    assert [recipe.dataloader_workers(n) for n in (None, 1, 2, 8, 16, 64)] == [1, 1, 1, 2, 4, 4]
