"""BatchedMuon: torch's Muon with the Newton-Schulz iterations batched by shape must step exactly as torch's does."""

import copy

import pytest
import torch

from vit_trainer import BatchedMuon

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
