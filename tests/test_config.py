import re

import pytest

from configuration_vit_simple import ViTSimpleConfig

SEED_TO_TRANSFORMERS = {
    "dim": "hidden_size",
    "depth": "num_hidden_layers",
    "heads": "num_attention_heads",
    "dim_head": "head_dim",
    "mlp_dim": "intermediate_size",
    "channels": "num_channels",
    "dropout": "hidden_dropout_prob",
    "emb_dropout": "embedding_dropout_prob",
    "patch_dropout": "patch_dropout_prob",
    "num_classes": "num_labels",
}


def test_seed_and_transformers_vocabularies_build_the_same_config():
    seed = ViTSimpleConfig(dim=64, depth=3, heads=2, dim_head=16, mlp_dim=96, channels=1, dropout=0.1, emb_dropout=0.2,
                           num_classes=7)
    hf = ViTSimpleConfig(hidden_size=64, num_hidden_layers=3, num_attention_heads=2, head_dim=16, intermediate_size=96,
                         num_channels=1, hidden_dropout_prob=0.1, embedding_dropout_prob=0.2, num_labels=7)
    assert seed.to_dict() == hf.to_dict()
    for alias, field in SEED_TO_TRANSFORMERS.items():
        assert getattr(seed, alias) == getattr(seed, field)


def test_alias_writes_the_field():
    config = ViTSimpleConfig()
    config.dim = 256
    assert config.hidden_size == 256


def test_defaults_reproduce_the_seed_vit_base():
    config = ViTSimpleConfig()
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads, config.head_dim) == (768, 12, 12, 64)
    assert (config.pool, config.qkv_bias, config.patch_norm, config.layer_norm_eps) == ("cls", False, True, 1e-5)
    assert config.grid_size == (14, 14) and config.num_patches == 196
    # vit-pytorch drops out attention weights with the same `dropout` as the rest
    assert ViTSimpleConfig(dropout=0.3).attention_dropout == 0.3
    assert ViTSimpleConfig(dropout=0.3, attention_probs_dropout_prob=0.0).attention_dropout == 0.0


def test_rectangular_sizes_survive_a_save_and_load(tmp_path):
    config = ViTSimpleConfig(image_size=(32, 48), patch_size=(8, 16), id2label={0: "cat", 1: "dog"})
    assert config.grid_size == (4, 3)
    config.save_pretrained(tmp_path)
    loaded = ViTSimpleConfig.from_pretrained(tmp_path)
    assert loaded.grid_size == (4, 3)
    assert loaded.id2label == {0: "cat", 1: "dog"} and loaded.label2id == {"cat": 0, "dog": 1}


def test_saved_config_names_all_three_auto_classes(tmp_path):
    ViTSimpleConfig().save_pretrained(tmp_path)
    auto_map = ViTSimpleConfig.from_pretrained(tmp_path).auto_map
    assert auto_map == {
        "AutoConfig": "configuration_vit_simple.ViTSimpleConfig",
        "AutoModel": "modeling_vit_simple.ViTSimpleModel",
        "AutoModelForImageClassification": "modeling_vit_simple.ViTSimpleForImageClassification",
    }


def test_one_label_map_derives_the_other():
    assert ViTSimpleConfig(label2id={"a": 0, "b": 1, "c": 2}).id2label == {0: "a", 1: "b", 2: "c"}
    assert ViTSimpleConfig(id2label={0: "a", 1: "b"}).label2id == {"a": 0, "b": 1}
    assert ViTSimpleConfig(num_labels=5).num_labels == 5


def test_num_labels_given_at_load_replaces_the_label_set(tmp_path):
    ViTSimpleConfig(id2label={0: "a", 1: "b"}).save_pretrained(tmp_path)
    config = ViTSimpleConfig.from_pretrained(tmp_path, num_labels=4)
    assert config.num_labels == 4 and len(config.label2id) == 4


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(image_size=30, patch_size=16), "not divisible by patch_size"),
        (dict(image_size=(32, 40), patch_size=(8, 16)), "32x40 is not divisible by patch_size 8x16"),
        (dict(pool="max"), "pool must be 'cls'"),
        (dict(dim=0), "hidden_size must be a positive int"),
        (dict(depth=-1), "num_hidden_layers must be a positive int"),
        (dict(heads=2.5), "num_attention_heads must be a positive int"),
        (dict(patch_size=0), "patch_size must be a positive int"),
        (dict(image_size=(32, 32, 3)), "image_size must be a positive int or a (height, width) pair"),
        (dict(dropout=1.0), "hidden_dropout_prob must be in [0, 1)"),
        (dict(layer_norm_eps=0), "layer_norm_eps and initializer_range must be positive"),
        (dict(id2label={0: "a", 1: "b"}, label2id={"a": 1, "b": 0}), "id2label and label2id disagree"),
        (dict(id2label={0: "a", 2: "b"}), "id2label keys must be 0..1"),
    ],
)
def test_a_config_that_cannot_work_says_what_to_change(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ViTSimpleConfig(**kwargs)
