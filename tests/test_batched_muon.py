"""BatchedMuon: torch's Muon with the Newton-Schulz iterations batched by shape must step exactly as torch's does."""

import copy

import pytest
import torch

from vit_trainer import BatchedMuon, newton_schulz

SHAPES = [(24, 8), (8, 8), (24, 8), (8, 16), (8, 8), (16, 8), (8, 16), (24, 8)]  # tall, square, wide, repeated


def make_params(seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(shape, generator=generator)) for shape in SHAPES]


def run(optimizer_cls, params, steps, skip=(), **kwargs):
    optimizer = optimizer_cls(params, **kwargs)
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        for i, param in enumerate(params):
            param.grad = None if i in skip else torch.randn(param.shape, generator=generator)
        optimizer.step()
    return optimizer


@pytest.mark.parametrize("kwargs", [
    {"lr": 2e-3, "weight_decay": 0.05, "adjust_lr_fn": "match_rms_adamw"},  # what train_hf.py uses
    {"lr": 2e-2, "weight_decay": 0.0, "nesterov": False},
    {"lr": 1e-2, "weight_decay": 0.1, "momentum": 0.9, "adjust_lr_fn": "spectral_unclamped", "ns_steps": 3},
    {"lr": 1e-2, "adjust_lr_fn": "original"},
])
def test_steps_as_torch_muon_does(kwargs):
    ours, theirs = make_params(), make_params()
    batched = run(BatchedMuon, ours, 4, skip={3}, **kwargs)  # a matrix without a gradient is left alone, as torch does
    reference = run(torch.optim.Muon, theirs, 4, skip={3}, **kwargs)
    for mine, expected in zip(ours, theirs):
        torch.testing.assert_close(mine, expected, rtol=0, atol=1e-6)
    assert not torch.equal(ours[0], make_params()[0])  # it stepped
    assert torch.equal(ours[3], make_params()[3])
    for mine, expected in zip(ours, theirs):
        if mine.grad is not None and mine is not ours[3]:
            torch.testing.assert_close(batched.state[mine]["momentum_buffer"], reference.state[expected]["momentum_buffer"],
                                       rtol=0, atol=1e-6)


def test_checkpoints_move_between_torch_muon_and_batched_muon():
    """A run checkpointed with torch's Muon resumes under BatchedMuon (and the other way) and ends where an
    uninterrupted torch Muon run ends: the momentum buffers are the same state."""
    kwargs = {"lr": 2e-3, "weight_decay": 0.05, "adjust_lr_fn": "match_rms_adamw"}
    straight = make_params()
    run(torch.optim.Muon, straight, 6, **kwargs)

    resumed = make_params()
    first = run(torch.optim.Muon, resumed, 3, **kwargs)
    state = copy.deepcopy(first.state_dict())
    second = BatchedMuon(resumed, **kwargs)
    second.load_state_dict(state)
    generator = torch.Generator().manual_seed(1)
    for _ in range(3):  # the same gradients the straight run saw, from where the first part stopped
        for param in resumed:
            torch.randn(param.shape, generator=generator)
    for _ in range(3):
        for param in resumed:
            param.grad = torch.randn(param.shape, generator=generator)
        second.step()
    for mine, expected in zip(resumed, straight):
        torch.testing.assert_close(mine, expected, rtol=0, atol=1e-6)


def test_float32_newton_schulz_agrees_with_bfloat16_to_bfloat16_precision():
    """Where bf16 is emulated, Muon's iterations run in float32: the same updates up to bfloat16 rounding."""
    kwargs = {"lr": 2e-3, "weight_decay": 0.05, "adjust_lr_fn": "match_rms_adamw"}
    start = make_params()
    in_float32, in_bfloat16 = make_params(), make_params()
    assert run(BatchedMuon, in_float32, 1, ns_dtype=torch.float32, **kwargs).ns_dtype == torch.float32
    run(BatchedMuon, in_bfloat16, 1, **kwargs)
    for f32, bf16, before in zip(in_float32, in_bfloat16, start):
        step32, step16 = f32 - before, bf16 - before
        assert not torch.equal(step32, step16)  # computed apart
        # bfloat16 keeps 8 bits of mantissa: the updates agree to a few parts in 100 of their size
        assert (step32 - step16).norm() / step16.norm() < 0.03


def test_newton_schulz_computes_in_the_dtype_asked():
    matrices = torch.randn(3, 8, 24)
    coefficients = (3.4445, -4.7750, 2.0315)
    assert newton_schulz(matrices, coefficients, 5, 1e-7, torch.float32).dtype == torch.float32
    assert newton_schulz(matrices, coefficients, 5, 1e-7).dtype == torch.bfloat16  # torch's Muon's choice


@pytest.mark.parametrize("native, bf16, expected", [
    (True, True, torch.bfloat16),  # a CPU with AVX512-BF16 or an Ampere GPU, the default there: torch's Muon exactly
    (False, True, torch.float32),  # bf16 asked where it is emulated: Muon's products stay in float32
    (True, False, torch.float32),  # --bf16 false: the float32 path on any machine
    (False, False, torch.float32),
])
def test_the_trainer_runs_newton_schulz_in_bfloat16_only_where_it_is_native(tmp_path, monkeypatch, native, bf16,
                                                                            expected):
    from conftest import tiny_config
    from transformers import AutoModelForImageClassification

    import train_hf
    import vit_trainer

    monkeypatch.setattr(vit_trainer, "native_bfloat16", lambda: native)
    model = AutoModelForImageClassification.from_config(tiny_config())
    args = train_hf.TrainArguments(output_dir=str(tmp_path), use_cpu=True, bf16=bf16, report_to="none",
                                   eval_strategy="no")
    trainer = vit_trainer.ViTSimpleTrainer(model=model, args=args, muon_learning_rate=2e-3)
    assert trainer.create_optimizer().muon.ns_dtype == expected


class FakeDevice:
    def __init__(self, major):
        self.major = major


@pytest.mark.parametrize("major, native", [(7, False), (8, True), (9, True)])  # V100/T4 emulate; Ampere, Hopper on
def test_native_bfloat16_means_native_on_gpus_too(monkeypatch, major, native):
    import vit_trainer

    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: FakeDevice(major))
    monkeypatch.setattr(torch.cuda, "_check_bf16_tensor_supported", lambda device: True)  # emulation works
    assert vit_trainer.native_bfloat16() is native


@pytest.mark.parametrize("native", [False, True])
def test_bf16_defaults_to_what_the_machine_runs_natively(tmp_path, monkeypatch, native):
    import train_hf

    monkeypatch.setattr(train_hf, "native_bfloat16", lambda: native)
    _, _, args = train_hf.parse_arguments(["--output_dir", str(tmp_path)])
    assert args.bf16 is native
    if native and not torch.cuda.is_available():
        assert args.use_cpu  # TrainingArguments only allows bf16 without an accelerator when told it is on the CPU
    _, _, off = train_hf.parse_arguments(["--output_dir", str(tmp_path), "--bf16", "false"])
    assert off.bf16 is False
    _, _, on = train_hf.parse_arguments(["--output_dir", str(tmp_path), "--bf16", "true"])
    assert on.bf16 and (on.use_cpu or torch.cuda.is_available())
