"""The Trainer side of a run (vit_simple.trainer): weight decay and Muon groups under one schedule, the weight average,
test-time augmentation, and the training clock: the minutes said up front, and a time budget (--max_train_minutes)
that stops a run where it is, saves what it has and lets a resume with a larger budget continue it."""

import json

import pytest
import torch
import transformers
from datasets import Dataset
from huggingface_hub import ModelCard
from transformers import AutoModelForImageClassification, TrainingArguments

import train_hf
import vit_simple
from conftest import FAST, TINY, assert_same_weights, tiny_config
from vit_simple import hardware
from vit_simple.augmentation import collate
from vit_simple.saving import RunDiverged
from vit_simple.trainer import TrainingClock, ViTSimpleTrainer, WeightAverage, shifted, tta_views


def test_weight_decay_skips_what_the_model_says(tmp_path):
    model = vit_simple.ViTSimpleForImageClassification(tiny_config())
    args = TrainingArguments(learning_rate=1e-3, output_dir=str(tmp_path), use_cpu=True, eval_strategy="no", weight_decay=0.05)
    trainer = ViTSimpleTrainer(model=model, args=args)
    decayed = set(trainer.get_decay_parameter_names(model))
    assert decayed and decayed.isdisjoint(model.no_weight_decay())
    assert decayed | model.no_weight_decay() == {name for name, _ in model.named_parameters()}
    assert all(model.get_parameter(name).dim() == 2 for name in decayed)
    groups = trainer.create_optimizer().param_groups
    assert sorted((group["weight_decay"], len(group["params"])) for group in groups) == [
        (0.0, len(model.no_weight_decay())), (0.05, len(decayed))]


@pytest.mark.parametrize("split", [True, False])
def test_muon_cuts_each_fused_qkv_into_q_k_and_v_only_when_asked(tmp_path, split):
    model = vit_simple.ViTSimpleForImageClassification(tiny_config())
    args = TrainingArguments(learning_rate=1e-3, output_dir=str(tmp_path), use_cpu=True, eval_strategy="no")
    optimizer = ViTSimpleTrainer(model=model, args=args, muon_learning_rate=2e-3, muon_split_qkv=split).create_optimizer()
    name_of = {param: name for name, param in model.named_parameters()}
    expected = {f"vit.layers.{i}.attn.to_qkv.weight": 3 for i in range(model.config.num_hidden_layers)} if split else {}
    assert {name_of[p]: blocks for p, blocks in optimizer.muon.row_blocks.items()} == expected
    assert all(len(group["params"]) for group in optimizer.muon.param_groups)  # the qkv matrices are still Muon's


def test_muon_takes_the_blocks_weight_matrices_and_adamw_the_rest_under_one_schedule(tmp_path):
    torch.manual_seed(0)
    model = vit_simple.ViTSimpleForImageClassification(tiny_config())
    args = TrainingArguments(learning_rate=1e-3, output_dir=str(tmp_path), use_cpu=True, eval_strategy="no", warmup_steps=2)
    trainer = ViTSimpleTrainer(model=model, args=args, muon_learning_rate=2e-3)
    optimizer = trainer.create_optimizer()
    name_of = {param: name for name, param in model.named_parameters()}
    muon = {name_of[p] for group in optimizer.muon.param_groups for p in group["params"]}
    assert muon == {name for name, p in model.named_parameters() if p.dim() == 2 and name.startswith("vit.layers.")}
    assert {"vit.layers.0.attn.to_qkv.weight", "vit.layers.1.ff.fc2.weight"} <= muon
    adamw = [{name_of[p] for p in group["params"]} for group in optimizer.adamw.param_groups]
    assert adamw[0] == {"vit.embeddings.patch_embedding.proj.weight", "classifier.weight"}  # decayed
    assert adamw[1] == model.no_weight_decay() - muon  # norms, biases, CLS token, positions
    assert muon.isdisjoint(adamw[0] | adamw[1]) and muon | adamw[0] | adamw[1] == set(name_of.values())

    scheduler = trainer.create_scheduler(num_training_steps=10, optimizer=optimizer)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    for _ in range(3):
        model(torch.randn(4, 3, 32, 32), labels=torch.tensor([0, 1, 2, 0])).loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    assert all(not torch.equal(before[name], p) for name, p in model.named_parameters())
    lrs = [group["lr"] for group in optimizer.param_groups]  # AdamW's groups first: Trainer logs the first
    factor = lrs[0] / 1e-3
    assert 0 < factor < 1 and lrs == pytest.approx([1e-3 * factor] * 2 + [2e-3 * factor])
    assert [group["lr"] for group in optimizer.adamw.param_groups + optimizer.muon.param_groups] == lrs  # what steps

    state = optimizer.state_dict()
    again = ViTSimpleTrainer(model=model, args=args, muon_learning_rate=2e-3).create_optimizer()
    again.load_state_dict(state)  # as accelerate's prepare and a resume do: the schedule must still reach both
    torch.optim.lr_scheduler.LambdaLR(again, lambda step: 0.25)
    assert [group["lr"] for group in again.adamw.param_groups + again.muon.param_groups] == [2.5e-4] * 2 + [5e-4]
    for old, new in zip(state.values(), again.state_dict().values()):
        for key, values in old["state"].items():
            for field_name, value in values.items():
                torch.testing.assert_close(new["state"][key][field_name], value)


class Shapes(torch.utils.data.Dataset):
    def __init__(self, count=32):
        generator = torch.Generator().manual_seed(0)
        self.images, self.labels = torch.randn(count, 3, 32, 32, generator=generator), torch.arange(count) % 3

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"pixel_values": self.images[i], "labels": self.labels[i]}


def test_the_learning_rate_schedule_reaches_the_optimizers_that_step_in_a_real_run(tmp_path):
    """Trainer hands the optimizer to accelerate, which reloads its state: the warm-up and decay must still set the
    learning rate AdamW and Muon step with, and another schedule must train other weights."""
    weights = []
    for warmup in (1, 6):
        torch.manual_seed(0)
        model = vit_simple.ViTSimpleForImageClassification(tiny_config())
        args = TrainingArguments(learning_rate=1e-3, output_dir=str(tmp_path / str(warmup)), use_cpu=True, eval_strategy="no",
                                       save_strategy="no", warmup_steps=warmup, max_steps=4, lr_scheduler_type="cosine",
                                       per_device_train_batch_size=8, report_to=[], dataloader_num_workers=0)
        trainer = ViTSimpleTrainer(model=model, args=args, train_dataset=Shapes(), muon_learning_rate=2e-3)
        lrs = []
        trainer.add_callback(type("Spy", (transformers.TrainerCallback,), {
            "on_optimizer_step": lambda self, args, state, control, **kwargs: lrs.append(
                [group["lr"] for group in trainer.optimizer.optimizer.adamw.param_groups
                 + trainer.optimizer.optimizer.muon.param_groups])})())
        trainer.train()
        scheduled = [1e-3 * step / warmup if step < warmup else None for step in range(4)]
        for step, (expected, seen) in enumerate(zip(scheduled, lrs)):
            if expected is not None:  # warm-up: linear from 0, Muon at twice AdamW's rate
                assert seen == pytest.approx([expected] * 2 + [2 * expected]), step
        assert len({tuple(seen) for seen in lrs}) == 4  # a new rate each step
        weights.append(model.vit.layers[0].attn.to_qkv.weight.detach().clone())
    assert not torch.equal(*weights)


def test_a_shifted_view_moves_the_image_and_lets_black_in():
    pixels = torch.arange(2 * 4 * 5, dtype=torch.float32).view(1, 2, 4, 5)
    fill = torch.tensor([-1.0, -2.0]).view(1, 2, 1, 1)
    down = shifted(pixels, 1, 0, fill)
    assert torch.equal(down[0, :, 1:], pixels[0, :, :-1]) and torch.equal(down[0, :, 0], fill[0, :, :, 0].expand(2, 5))
    left = shifted(pixels, 0, -1, fill)
    assert torch.equal(left[..., :-1], pixels[..., 1:]) and torch.all(left[0, 1, :, -1] == -2)
    assert torch.equal(shifted(pixels, 0, 0, fill), pixels)
    assert len(tta_views(flip=True)) == 6 and len(tta_views(flip=False)) == 5


def test_test_time_augmentation_averages_the_probabilities_of_each_view(tmp_path):
    torch.manual_seed(0)
    model = vit_simple.ViTSimpleForImageClassification(tiny_config()).eval()
    pixels = torch.randn(6, 3, 32, 32)
    dataset = Dataset.from_dict({"pixel_values": pixels.numpy(), "labels": [0, 1, 2, 0, 1, 2]}).with_format("numpy")
    args = TrainingArguments(learning_rate=1e-3, output_dir=str(tmp_path), use_cpu=True, bf16=False, per_device_eval_batch_size=4,
                                   eval_strategy="no")
    trainer = ViTSimpleTrainer(model=model, args=args, data_collator=collate)
    fill = [-1.0, -1.0, -1.0]
    probs, labels = trainer.predict_views(dataset, [(False, 0, 0)], fill)
    assert labels.tolist() == [0, 1, 2, 0, 1, 2]
    with torch.no_grad():
        plain = model(pixels).logits.softmax(-1)
        mirrored = model(pixels.flip(-1)).logits.softmax(-1)
        up = model(shifted(pixels, -1, 0, torch.full((1, 3, 1, 1), -1.0))).logits.softmax(-1)
    torch.testing.assert_close(probs, plain)
    both, _ = trainer.predict_views(dataset, [(True, 0, 0), (False, -1, 0)], fill)
    torch.testing.assert_close(both, (mirrored + up) / 2)


def test_mixing_trains_on_mixed_batches_keyed_by_step_and_evaluates_on_plain_ones(tmp_path):
    import numpy as np
    import torch.nn.functional as F

    from vit_simple.augmentation import mix_batch

    torch.manual_seed(0)
    model = vit_simple.ViTSimpleForImageClassification(tiny_config())  # no dropout: the forward is deterministic
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, bf16=False, eval_strategy="no", seed=5,
                             label_smoothing_factor=0.1)
    trainer = ViTSimpleTrainer(model=model, args=args, mixup=0.8, cutmix=1.0)
    inputs = {"pixel_values": torch.randn(8, 3, 32, 32), "labels": torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])}

    def expected_loss(step, batch, scale):
        pixels, targets = mix_batch(inputs["pixel_values"], inputs["labels"], 3,
                                    np.random.default_rng((5, step, batch, 0)), 0.8, 1.0)
        with torch.no_grad():
            return F.cross_entropy(model(pixels).logits, targets, label_smoothing=0.1).item() * scale

    model.train()
    with torch.no_grad():
        first = trainer.compute_loss(model, dict(inputs)).item()
        second = trainer.compute_loss(model, dict(inputs), num_items_in_batch=16).item()  # 2 batches accumulated
        trainer.state.global_step = 1
        third = trainer.compute_loss(model, dict(inputs)).item()
    assert first == pytest.approx(expected_loss(0, 0, 1), rel=1e-5)
    assert second == pytest.approx(expected_loss(0, 1, 0.5), rel=1e-5)  # the step's second batch: its own mix
    assert third == pytest.approx(expected_loss(1, 0, 1), rel=1e-5)
    assert len({round(first, 6), round(2 * second, 6), round(third, 6)}) == 3

    model.eval()  # evaluation: the batch as it is, the model's own loss with the same label smoothing
    with torch.no_grad():
        loss = trainer.compute_loss(model, dict(inputs)).item()
        plain = F.cross_entropy(model(inputs["pixel_values"]).logits, inputs["labels"], label_smoothing=0.1).item()
    assert loss == pytest.approx(plain, rel=1e-5)
    assert trainer.compute_loss_func is not None
    assert ViTSimpleTrainer(model=model, args=args).compute_loss_func is None  # without mixing: Trainer's own loss


@pytest.mark.parametrize("compiled", [False, True])
def test_a_compiled_model_gets_its_batches_out_of_shared_memory(tmp_path, compiled):
    """torch 2.14's compiled model segfaults on some CPUs reading a dataloader worker's batch (shared memory): with
    --torch_compile the trainer hands it a copy, in training and in evaluation, and otherwise the batch itself."""
    model = vit_simple.ViTSimpleForImageClassification(tiny_config())
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, bf16=False, eval_strategy="no",
                             torch_compile=compiled)
    trainer = ViTSimpleTrainer(model=model, args=args)
    inputs = {"pixel_values": torch.randn(4, 3, 32, 32).share_memory_(), "labels": torch.tensor([0, 1, 2, 0])}
    seen = []

    def compute_loss(model, batch, return_outputs=False, num_items_in_batch=None):
        seen.append((batch["pixel_values"].is_shared(), torch.equal(batch["pixel_values"], inputs["pixel_values"])))
        outputs = model(**batch)
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    trainer.compute_loss = compute_loss
    trainer.current_gradient_accumulation_steps = 1  # what train() sets before its first step
    trainer.training_step(model, dict(inputs))
    trainer.prediction_step(model.eval(), dict(inputs), prediction_loss_only=True)
    assert seen == [(not compiled, True)] * 2
    assert inputs["pixel_values"].is_shared()


def test_the_weight_average_follows_each_step_is_evaluated_and_becomes_the_model(tmp_path):
    from transformers import TrainerState

    torch.manual_seed(0)
    model = vit_simple.ViTSimpleForImageClassification(tiny_config())
    args = TrainingArguments(learning_rate=1e-3, output_dir=str(tmp_path), use_cpu=True, eval_strategy="no")
    average, state = WeightAverage(0.9), TrainerState()
    average.on_train_begin(args, state, None, model=model)
    start = {name: p.detach().clone() for name, p in model.named_parameters()}
    expected = dict(start)
    for step in (1, 2, 3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        state.global_step = step
        average.on_step_end(args, state, None, model=model)
        decay = min(0.9, (1 + step) / (10 + step))
        expected = {name: decay * expected[name] + (1 - decay) * p for name, p in model.named_parameters()}
    current = {name: p.detach().clone() for name, p in model.named_parameters()}
    with average.swapped_in(model):
        for name, p in model.named_parameters():
            torch.testing.assert_close(p, expected[name])
    for name, p in model.named_parameters():  # the training weights come back after an evaluation
        assert torch.equal(p, current[name])

    (tmp_path / "checkpoint-3").mkdir()
    average.on_save(args, state, None)
    resumed = WeightAverage(0.9)
    resumed.on_train_begin(TrainingArguments(learning_rate=1e-3, output_dir=str(tmp_path), use_cpu=True, eval_strategy="no",
                                                   resume_from_checkpoint=str(tmp_path / "checkpoint-3")),
                           state, None, model=model)
    for restored, saved in zip(resumed.average, average.average):
        assert torch.equal(restored, saved)
    average.on_train_end(args, state, None, model=model)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p, expected[name])


@pytest.mark.parametrize("native, bf16, expected", [(True, True, torch.bfloat16), (False, True, torch.float32),
                                                    (True, False, torch.float32)])
def test_the_trainer_steps_muon_in_bfloat16_only_where_it_is_native(tmp_path, monkeypatch, native, bf16, expected):
    monkeypatch.setattr(hardware, "native_bfloat16", lambda: native)
    model = vit_simple.ViTSimpleForImageClassification(tiny_config())
    args = TrainingArguments(learning_rate=1e-3, output_dir=str(tmp_path), use_cpu=True, bf16=bf16, report_to="none", eval_strategy="no")
    trainer = ViTSimpleTrainer(model=model, args=args, muon_learning_rate=2e-3)
    assert trainer.create_optimizer().muon.ns_dtype == expected


# the training clock and the time budget


def small_run(fashion_slice, cache_dir, output_dir, *extra):
    """64 training images in batches of 16: 4 steps an epoch, 2 epochs."""
    return ["--dataset_name", str(fashion_slice), "--cache_dir", str(cache_dir), "--config_overrides", TINY,
            "--max_train_samples", "64", "--max_eval_samples", "32", "--num_train_epochs", "2", "--seed", "7",
            "--output_dir", str(output_dir), *FAST, "--ema_decay", "0.9", *extra]


def test_train_hf_mixes_the_training_batches_only_when_asked(fashion_slice, tmp_path):
    only_training = ["--max_steps", "2", "--eval_strategy", "no", "--do_eval", "false", "--do_predict", "false",
                     "--save_strategy", "no"]
    losses = {name: train_hf.main(small_run(fashion_slice, tmp_path / "cache", tmp_path / name, *only_training,
                                            *extra))["train"]["train_loss"]
              for name, extra in [("plain", []), ("again", []), ("mixed", ["--mixup", "0.8", "--cutmix", "1.0"])]}
    assert losses["plain"] == losses["again"] != losses["mixed"]


def test_a_budget_that_ends_mid_epoch_stops_there_saves_a_model_and_says_so(fashion_slice, tmp_path, capsys):
    output_dir = tmp_path / "budget"
    results = train_hf.main(small_run(fashion_slice, tmp_path / "cache", output_dir, "--max_train_minutes", "1e-9"))

    assert results["train"]["epoch"] == 0.25  # the first step is past the budget: a quarter of the first epoch
    assert results["train"]["stopped_by_budget"] and results["train"]["max_train_minutes"] == 1e-9
    all_results = json.loads((output_dir / "all_results.json").read_text())
    assert all_results["stopped_by_budget"] and all_results["epoch"] == 0.25 and all_results["num_train_epochs"] == 2
    assert "stopped by the 1e-09-minute budget at epoch 0.25 of 2" in capsys.readouterr().out
    card = ModelCard.load(output_dir / "README.md").text
    assert "epochs: 0.25 of 2, stopped by the training budget (--max_train_minutes 1e-09)" in card
    model = AutoModelForImageClassification.from_pretrained(output_dir)
    assert model.config.num_labels == 10
    assert [p.name for p in output_dir.glob("checkpoint-*")] == ["checkpoint-1"]  # where a resume continues


def test_a_budget_stop_resumed_with_a_larger_budget_ends_as_an_uninterrupted_run(fashion_slice, tmp_path):
    cache, weights_only = tmp_path / "cache", ["--eval_strategy", "no", "--do_eval", "false", "--do_predict", "false"]
    train_hf.main(small_run(fashion_slice, cache, tmp_path / "uninterrupted", *weights_only))
    stopped = train_hf.main(small_run(fashion_slice, cache, tmp_path / "resumed", "--max_train_minutes", "1e-9",
                                      *weights_only))
    assert stopped["train"]["epoch"] == 0.25

    resumed = train_hf.main(small_run(fashion_slice, cache, tmp_path / "resumed", "--max_train_minutes", "100",
                                      "--resume_from_checkpoint", "true", *weights_only))
    assert resumed["train"]["epoch"] == 2 and "stopped_by_budget" not in resumed["train"]
    assert_same_weights(tmp_path / "uninterrupted", tmp_path / "resumed")
    state = json.loads((tmp_path / "resumed" / "checkpoint-8" / "trainer_state.json").read_text())
    clock = state["stateful_callbacks"]["TrainingClock"]
    assert clock["attributes"]["seconds"] > 0 and resumed["train"]["train_minutes"] * 60 == pytest.approx(
        clock["attributes"]["seconds"])  # the minutes of both parts, counted across the resume


def test_the_run_says_its_minutes_once_the_rate_has_settled(fashion_slice, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(TrainingClock, "warmup_steps", 2)
    monkeypatch.setattr(TrainingClock, "estimate_steps", 3)
    train_hf.main(small_run(fashion_slice, tmp_path / "cache", tmp_path / "out", "--eval_strategy", "no", "--do_eval",
                            "false", "--do_predict", "false"))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("training at ")]
    assert len(lines) == 1, lines
    assert "images/s: about " in lines[0] and " minutes for 2 epochs (evaluation aside); --max_train_minutes sets a " \
        "budget" in lines[0]


def test_the_estimate_says_where_a_budget_will_stop_the_run():
    clock = TrainingClock(budget_minutes=1)
    clock.seconds, clock.steps, clock.warm = 30.0, 30, (10.0, 10)  # 1 s a step after the warm-up
    args = TrainingArguments(learning_rate=1e-3, output_dir="unused", use_cpu=True, per_device_train_batch_size=100,
                                   num_train_epochs=10, max_steps=-1)
    state = type("State", (), {"max_steps": 250, "global_step": 30, "num_train_epochs": 10})()
    line = clock.estimate(args, state)
    assert line.startswith("training at 100 images/s: about 4 minutes for 10 epochs (evaluation aside)")
    assert line.endswith("the budget of 1 minutes stops it near epoch 2.4")  # 60 of 250 steps


def test_a_non_finite_gradient_norm_stops_training_before_the_optimizer_takes_it(tmp_path):
    model = vit_simple.ViTSimpleForImageClassification(tiny_config())
    args = TrainingArguments(learning_rate=1e-3, output_dir=str(tmp_path), use_cpu=True, eval_strategy="no")
    trainer = ViTSimpleTrainer(model=model, args=args)
    for parameter in model.parameters():
        parameter.grad = torch.zeros_like(parameter)
    assert trainer._get_grad_norm(model) == 0  # finite: the step goes on
    model.classifier.bias.grad[0] = float("inf")
    with pytest.raises(RunDiverged, match=r"^step 1: training diverged: the gradient norm is inf, so training stopped "
                                          r"before the weights took it\. Nothing was saved over .*a lower "
                                          r"--max_grad_norm \(now 1\)"):
        trainer._get_grad_norm(model)
