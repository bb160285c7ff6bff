import pytest
import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import Dataset
from transformers import Trainer, TrainingArguments
from transformers.modeling_outputs import BaseModelOutputWithPooling, ImageClassifierOutput

from conftest import tiny_config
from modeling_vit_simple import ViTSimpleForImageClassification, ViTSimpleModel


def images(batch=2, channels=3, height=32, width=32, seed=0):
    return torch.randn(batch, channels, height, width, generator=torch.Generator().manual_seed(seed))


def test_base_model_returns_hidden_states_attentions_and_the_pooled_token(tiny):
    model = ViTSimpleModel(tiny()).eval()
    out = model(images(), output_hidden_states=True, output_attentions=True)
    assert isinstance(out, BaseModelOutputWithPooling)
    assert out.last_hidden_state.shape == (2, 17, 32)  # CLS + 4x4 patches
    assert torch.equal(out.pooler_output, out.last_hidden_state[:, 0])
    assert len(out.hidden_states) == 3  # embeddings + one per block
    assert len(out.attentions) == 2 and out.attentions[0].shape == (2, 4, 17, 17)
    torch.testing.assert_close(out.attentions[0].sum(-1), torch.ones(2, 4, 17))
    # the final LayerNorm is applied to the last hidden state, not to the hidden_states tuple
    torch.testing.assert_close(model.norm(out.hidden_states[-1]), out.last_hidden_state)


def test_mean_pool_has_no_cls_token_and_averages_the_patches(tiny):
    model = ViTSimpleModel(tiny(pool="mean")).eval()
    assert model.embeddings.cls_token is None
    out = model(images())
    assert out.last_hidden_state.shape == (2, 16, 32)
    torch.testing.assert_close(out.pooler_output, out.last_hidden_state.mean(dim=1))


def test_return_dict_false_gives_tuples(tiny):
    model = ViTSimpleForImageClassification(tiny()).eval()
    labels = torch.tensor([0, 2])
    out = model(images(), labels=labels)
    loss, logits = model(images(), labels=labels, return_dict=False)
    torch.testing.assert_close(loss, out.loss)
    torch.testing.assert_close(logits, out.logits)
    (logits_only,) = model(images(), return_dict=False)
    assert logits_only.shape == (2, 3)
    hidden, pooled = ViTSimpleModel(tiny()).eval()(images(), return_dict=False)
    assert hidden.shape == (2, 17, 32) and pooled.shape == (2, 32)


@pytest.mark.parametrize(
    "num_labels, labels, problem_type, loss_fn",
    [
        (3, torch.tensor([0, 2]), "single_label_classification", torch.nn.functional.cross_entropy),
        (3, torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]), "multi_label_classification",
         torch.nn.functional.binary_cross_entropy_with_logits),
        (1, torch.tensor([0.5, -1.0]), "regression", lambda logits, y: torch.nn.functional.mse_loss(logits.squeeze(), y)),
    ],
)
def test_loss_follows_problem_type(num_labels, labels, problem_type, loss_fn):
    model = ViTSimpleForImageClassification(tiny_config(num_labels=num_labels)).eval()
    out = model(images(), labels=labels)
    assert isinstance(out, ImageClassifierOutput)
    assert model.config.problem_type == problem_type
    torch.testing.assert_close(out.loss, loss_fn(out.logits, labels))


def test_loss_is_a_sum_over_num_items_in_batch_for_gradient_accumulation(tiny):
    model = ViTSimpleForImageClassification(tiny()).eval()
    x, labels = images(batch=4), torch.tensor([0, 1, 2, 1])
    full = model(x, labels=labels).loss
    halves = [model(x[i : i + 2], labels=labels[i : i + 2], num_items_in_batch=4).loss for i in (0, 2)]
    torch.testing.assert_close(sum(halves), full)


class RandomImages(Dataset):
    def __init__(self, n=8):
        self.x, self.y = images(batch=n, seed=1), torch.arange(n) % 3

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"pixel_values": self.x[i], "labels": self.y[i]}


def one_sgd_step(tmp_path, batch_size, accumulation):
    torch.manual_seed(0)
    model = ViTSimpleForImageClassification(tiny_config())
    args = TrainingArguments(
        output_dir=str(tmp_path / f"b{batch_size}"), per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=accumulation, max_steps=1, optim="sgd", learning_rate=1.0, lr_scheduler_type="constant", max_grad_norm=0.0,
        use_cpu=True, report_to="none", save_strategy="no", seed=0, dataloader_num_workers=0,
    )
    Trainer(model=model, args=args, train_dataset=RandomImages()).train()
    return model.state_dict()


def test_trainer_gradient_accumulation_matches_the_full_batch(tmp_path):
    full = one_sgd_step(tmp_path, batch_size=8, accumulation=1)
    accumulated = one_sgd_step(tmp_path, batch_size=4, accumulation=2)
    for name in full:
        torch.testing.assert_close(accumulated[name], full[name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_sdpa_and_eager_attention_agree(pool):
    torch.manual_seed(0)
    sdpa = ViTSimpleForImageClassification(tiny_config(pool=pool)).eval()
    eager = ViTSimpleForImageClassification(tiny_config(pool=pool, attn_implementation="eager")).eval()
    eager.load_state_dict(sdpa.state_dict())
    assert (sdpa.config._attn_implementation, eager.config._attn_implementation) == ("sdpa", "eager")
    torch.testing.assert_close(sdpa(images()).logits, eager(images()).logits, rtol=0, atol=1e-5)
    # attention maps can only come from the explicit softmax, and asking for them changes no logits
    torch.testing.assert_close(sdpa(images(), output_attentions=True).logits, sdpa(images()).logits, rtol=0, atol=1e-5)


def test_interpolate_pos_encoding_runs_at_another_resolution(tiny):
    model = ViTSimpleForImageClassification(tiny()).eval()
    x = images()
    same = model(x, interpolate_pos_encoding=True).logits
    torch.testing.assert_close(same, model(x).logits)  # the same grid leaves the embeddings alone
    out = model(images(height=48, width=64), interpolate_pos_encoding=True, output_hidden_states=True)
    assert out.logits.shape == (2, 3)
    assert out.hidden_states[0].shape == (2, 1 + 6 * 8, 32)


def test_interpolated_position_grid_keeps_cls_and_is_bicubic(tiny):
    model = ViTSimpleModel(tiny()).eval()
    embeddings = model.embeddings
    with torch.no_grad():  # a linear ramp over the grid: bicubic resampling keeps it a ramp
        ramp = torch.arange(4.0).view(4, 1).expand(4, 4).reshape(1, 16, 1).expand(1, 16, 32)
        embeddings.position_embeddings[:, 1:] = ramp
    captured = {}
    embeddings.dropout.register_forward_hook(lambda module, inputs, output: captured.update(x=inputs[0]))
    zeros = torch.zeros(1, 3, 64, 32)
    model(zeros, interpolate_pos_encoding=True)
    patches = embeddings.patch_embedding(zeros)
    positions = captured["x"][:, 1:] - patches
    torch.testing.assert_close(captured["x"][:, 0], embeddings.cls_token[:, 0] + embeddings.position_embeddings[:, 0])
    rows = positions[0, :, 0].view(8, 4)
    assert torch.all(rows[:, 0].diff() >= 0) and rows[0, 0] < rows[-1, 0]  # still increasing down the rows
    torch.testing.assert_close(rows, rows[:, :1].expand(8, 4))  # and constant along them


def test_wrong_image_size_or_channels_say_what_was_expected(tiny):
    model = ViTSimpleForImageClassification(tiny()).eval()
    with pytest.raises(ValueError, match=r"Input image size \(48\*32\) doesn't match model \(32\*32\).*interpolate_pos_encoding"):
        model(images(height=48))
    with pytest.raises(ValueError, match="expects 3-channel images but got 1 channels"):
        model(images(channels=1))
    with pytest.raises(ValueError, match="not divisible by the patch size"):
        model(images(height=36), interpolate_pos_encoding=True)
    with pytest.raises(ValueError, match=r"must have shape \(batch, channels, height, width\)"):
        model(torch.randn(3, 32, 32))
    gray = ViTSimpleForImageClassification(tiny_config(channels=1)).eval()
    with pytest.raises(ValueError, match=r"grayscale, image.convert\('L'\)"):
        gray(images())
    assert gray(images(channels=1)).logits.shape == (2, 3)


def test_gradient_checkpointing_gives_the_same_gradients(tiny):
    model = ViTSimpleForImageClassification(tiny()).train()
    x, labels = images(), torch.tensor([0, 2])

    def grads():
        model.zero_grad()
        model(x, labels=labels).loss.backward()
        return {name: p.grad.clone() for name, p in model.named_parameters()}

    plain = grads()
    model.activation_checkpointing_enable()
    assert all(block.gradient_checkpointing for block in model.vit.layers)
    checkpointed = grads()
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], msg=name)


def test_initialisation_transformers_follows_transformers_vit():
    torch.manual_seed(0)
    config = tiny_config(dim=256, mlp_dim=512, initializer_range=0.02, initialization="transformers")
    model = ViTSimpleForImageClassification(config)
    for name, param in model.named_parameters():
        if name.endswith("bias"):
            assert torch.all(param == 0), name
        elif ".norm" in name or name.startswith("vit.norm"):
            assert torch.all(param == 1), name
        else:  # weight matrices, CLS token and position embeddings: truncated normal, std 0.02
            assert abs(param.std().item() - 0.02) < 0.004, name


def assert_starts_like_vit_pytorch(model):
    """torch's default Linear init (uniform within 1/sqrt(fan_in)) and unit-normal CLS token and positions."""
    embeddings = model.vit.embeddings
    assert 0.8 < embeddings.position_embeddings.std().item() < 1.2  # unit normal, not transformers' 0.02
    assert embeddings.cls_token.abs().max().item() > 0.1
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            bound = module.in_features**-0.5
            assert module.weight.abs().max().item() <= bound, name
            assert module.weight.std().item() > 0.5 * bound / 3**0.5, name
            assert 0 < module.bias.abs().max().item() <= bound if module.bias is not None else True, name


def test_a_model_built_anywhere_starts_from_vit_pytorchs_initialisation():
    torch.manual_seed(0)
    model = ViTSimpleForImageClassification(tiny_config(dim=256, mlp_dim=512))
    assert model.config.initialization == "vit_pytorch"
    assert_starts_like_vit_pytorch(model)
    for name, param in model.named_parameters():
        if ".norm" in name or name.startswith("vit.norm"):
            assert torch.all(param == (0 if name.endswith("bias") else 1)), name


def test_an_unknown_initialization_is_refused():
    with pytest.raises(ValueError, match="initialization must be one of 'vit_pytorch', 'transformers', got 'xavier'"):
        tiny_config(initialization="xavier")


@pytest.mark.parametrize("initialization", ["vit_pytorch", "transformers"])
def test_parameters_missing_from_a_checkpoint_are_initialised_after_meta_device_loading(tmp_path, tiny,
                                                                                         initialization):
    model = ViTSimpleForImageClassification(tiny(initialization=initialization))
    model.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    del weights["vit.embeddings.position_embeddings"]
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})

    loaded = ViTSimpleForImageClassification.from_pretrained(tmp_path)
    position = loaded.vit.embeddings.position_embeddings
    expected_std = 1.0 if initialization == "vit_pytorch" else 0.02
    assert torch.isfinite(position).all() and abs(position.std().item() / expected_std - 1) < 0.25
    torch.testing.assert_close(loaded.vit.embeddings.cls_token, model.vit.embeddings.cls_token)
    torch.testing.assert_close(loaded.classifier.weight, model.classifier.weight)  # loaded, not initialised again

    new_head = ViTSimpleForImageClassification.from_pretrained(tmp_path, num_labels=7, ignore_mismatched_sizes=True)
    assert new_head.classifier.weight.shape == (7, 32)
    bias = new_head.classifier.bias
    if initialization == "transformers":
        assert abs(new_head.classifier.weight.std().item() - 0.02) < 0.01
        assert torch.all(bias == 0)
    else:
        bound = 32**-0.5
        assert new_head.classifier.weight.abs().max().item() <= bound and 0 < bias.abs().max().item() <= bound


def test_no_weight_decay_names_norms_biases_cls_and_positions(tiny):
    model = ViTSimpleForImageClassification(tiny())
    no_decay = model.no_weight_decay()
    params = dict(model.named_parameters())
    assert {"vit.embeddings.cls_token", "vit.embeddings.position_embeddings", "vit.norm.weight", "classifier.bias",
            "vit.layers.0.attn.norm.weight", "vit.layers.1.ff.fc1.bias"} <= no_decay
    decayed = set(params) - no_decay
    assert decayed == {name for name, p in params.items() if p.dim() == 2}  # exactly the weight matrices
    assert "vit.layers.0.attn.to_qkv.weight" in decayed and "classifier.weight" in decayed


def test_the_classifier_skips_the_patch_tokens_of_the_last_block_without_changing_logits_or_gradients(tiny):
    """The head reads only the CLS token, so the last block updates only it (`pooled_only`): same logits, same
    gradients as running every token through every block; hidden states or attentions asked for turn it off."""
    model = ViTSimpleForImageClassification(tiny(depth=3)).train()  # dropout is 0: train mode is deterministic
    x, labels = images(batch=3), torch.tensor([0, 2, 1])

    def full_forward():
        pooled = model.vit(x).pooler_output  # the base model alone computes every token in every block
        return torch.nn.functional.cross_entropy(model.classifier(pooled), labels), model.classifier(pooled)

    full_loss, full_logits = full_forward()
    full_loss.backward()
    full_grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    out = model(x, labels=labels)
    out.loss.backward()
    torch.testing.assert_close(out.logits, full_logits, rtol=0, atol=1e-6)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, full_grads[name], rtol=1e-5, atol=1e-7, msg=name)

    shortened = model.vit(x, pooled_only=True)
    assert shortened.last_hidden_state.shape == (3, 1, 32)  # only the CLS token left the last block
    with_states = model(x, output_hidden_states=True)
    assert with_states.hidden_states[-1].shape == (3, 17, 32)
    torch.testing.assert_close(with_states.logits, full_logits, rtol=0, atol=1e-6)
    mean = ViTSimpleModel(tiny(pool="mean")).eval()
    assert mean(x, pooled_only=True).last_hidden_state.shape == (3, 16, 32)  # mean pooling needs every token


def test_bfloat16_autocast_on_cpu_matches_float32(tiny):
    model = ViTSimpleForImageClassification(tiny()).eval()
    reference = model(images()).logits
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = model(images()).logits
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), reference, rtol=0, atol=0.05)


def count_sdpa_calls(monkeypatch):
    import modeling_vit_simple

    calls = []
    fused = modeling_vit_simple.F.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(1)
        return fused(*args, **kwargs)

    monkeypatch.setattr(modeling_vit_simple.F, "scaled_dot_product_attention", counting)
    return calls


def test_cpu_attention_takes_the_faster_path_for_precision_mode_and_length(monkeypatch, tiny):
    calls = count_sdpa_calls(monkeypatch)
    short = ViTSimpleForImageClassification(tiny())  # 17 tokens
    long = ViTSimpleForImageClassification(tiny(image_size=72))  # 82 tokens

    def uses_sdpa(model, x, grad=True, bf16=False):
        calls.clear()
        model.train(grad)  # inference: eval mode, without gradients
        with torch.set_grad_enabled(grad), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            model(x)
        return len(calls) > 0

    assert uses_sdpa(short, images(), grad=False)  # inference: the fused kernel
    assert not uses_sdpa(short, images())  # training a short sequence: the explicit softmax
    assert uses_sdpa(long, images(height=72, width=72))  # training a long one: the fused kernel
    assert not uses_sdpa(long, images(height=72, width=72), grad=False, bf16=True)  # bfloat16: explicit


def test_explicit_and_fused_attention_give_the_same_gradients(monkeypatch, tiny):
    model = ViTSimpleForImageClassification(tiny())
    labels = torch.tensor([0, 2])

    def gradients():
        model.zero_grad()
        model(images(), labels=labels).loss.backward()
        return {name: p.grad.clone() for name, p in model.named_parameters()}

    explicit = gradients()
    calls = count_sdpa_calls(monkeypatch)
    monkeypatch.setattr("modeling_vit_simple.Attention.explicit_softmax", lambda self, output_attentions, k: False)
    fused = gradients()
    assert calls, "the fused path was not taken"
    for name in explicit:
        torch.testing.assert_close(fused[name], explicit[name], rtol=1e-4, atol=1e-6, msg=name)
