"""vit_simple.optimizers: BatchedMuon steps exactly as torch's Muon where bfloat16 is native, and in float32 (to
bfloat16 precision the same) where it is not."""

import copy

import pytest
import torch

from vit_simple import hardware
from vit_simple.optimizers import BatchedMuon, newton_schulz, newton_schulz_dtype

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
    # a matrix without a gradient (3) is left alone, as torch does
    batched = run(BatchedMuon, ours, 4, skip={3}, ns_dtype=torch.bfloat16, **kwargs)
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
    second = BatchedMuon(resumed, ns_dtype=torch.bfloat16, **kwargs)
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
    run(BatchedMuon, in_bfloat16, 1, ns_dtype=torch.bfloat16, **kwargs)
    for f32, bf16, before in zip(in_float32, in_bfloat16, start):
        step32, step16 = f32 - before, bf16 - before
        assert not torch.equal(step32, step16)  # computed apart
        # bfloat16 keeps 8 bits of mantissa: the updates agree to a few parts in 100 of their size
        assert (step32 - step16).norm() / step16.norm() < 0.03


def test_newton_schulz_computes_in_the_dtype_asked():
    matrices = torch.randn(3, 8, 24)
    coefficients = (3.4445, -4.7750, 2.0315)
    assert newton_schulz(matrices, coefficients, 5, 1e-7, torch.float32).dtype == torch.float32
    assert newton_schulz(matrices, coefficients, 5, 1e-7, torch.bfloat16).dtype == torch.bfloat16  # torch's Muon's


@pytest.mark.parametrize("native, bf16, expected", [
    (True, True, torch.bfloat16),  # a CPU with AVX512-BF16 or an Ampere GPU, the default there: torch's Muon exactly
    (False, True, torch.float32),  # bf16 asked where it is emulated: Muon's products stay in float32
    (True, False, torch.float32),  # --bf16 false: the float32 path on any machine
    (False, False, torch.float32),
])
def test_newton_schulz_runs_in_bfloat16_only_where_it_is_native(monkeypatch, native, bf16, expected):
    monkeypatch.setattr(hardware, "native_bfloat16", lambda: native)
    assert newton_schulz_dtype(bf16) == expected


@pytest.mark.parametrize("native, expected", [(False, torch.float32), (True, torch.bfloat16)])
def test_by_default_newton_schulz_runs_in_bfloat16_only_where_it_is_native(monkeypatch, native, expected):
    monkeypatch.setattr(hardware, "native_bfloat16", lambda: native)
    assert BatchedMuon(make_params(), lr=1e-2).ns_dtype == expected


@pytest.mark.parametrize("nesterov", [True, False])
def test_row_blocks_step_each_block_as_torch_muon_steps_a_matrix_of_its_own(nesterov):
    """A fused qkv projection cut into 3 row blocks steps as torch's Muon steps q, k and v given as three matrices
    (modded-nanogpt's Muon), and not as it steps the fused matrix."""
    kwargs = {"lr": 2e-3, "weight_decay": 0.05, "adjust_lr_fn": "match_rms_adamw", "nesterov": nesterov}
    fused, square = make_params()[0], make_params()[4]  # (24, 8): three (8, 8) blocks; and an uncut matrix beside it
    ours = [torch.nn.Parameter(fused.detach().clone()), torch.nn.Parameter(square.detach().clone())]
    theirs = [torch.nn.Parameter(block.clone()) for block in fused.detach().chunk(3)] + \
        [torch.nn.Parameter(square.detach().clone())]
    whole = [torch.nn.Parameter(fused.detach().clone()), torch.nn.Parameter(square.detach().clone())]
    batched = BatchedMuon(ours, ns_dtype=torch.bfloat16, row_blocks={ours[0]: 3}, **kwargs)
    reference = torch.optim.Muon(theirs, **kwargs)
    uncut = BatchedMuon(whole, ns_dtype=torch.bfloat16, **kwargs)
    generator = torch.Generator().manual_seed(1)
    for _ in range(4):
        grads = [torch.randn(24, 8, generator=generator), torch.randn(8, 8, generator=generator)]
        ours[0].grad, ours[1].grad = grads[0].clone(), grads[1].clone()
        whole[0].grad, whole[1].grad = grads[0].clone(), grads[1].clone()
        for param, grad in zip(theirs, [*grads[0].chunk(3), grads[1]]):
            param.grad = grad.clone()
        for optimizer in (batched, reference, uncut):
            optimizer.step()
    torch.testing.assert_close(ours[0], torch.cat(theirs[:3]), rtol=0, atol=1e-6)
    torch.testing.assert_close(ours[1], theirs[3], rtol=0, atol=1e-6)
    torch.testing.assert_close(ours[1], whole[1], rtol=0, atol=0)  # the uncut matrix steps as before
    assert (ours[0] - whole[0]).abs().max() > 1e-4  # cutting changes the fused matrix's steps
    # one momentum buffer per parameter, as torch's: checkpoints load with or without row blocks
    torch.testing.assert_close(batched.state[ours[0]]["momentum_buffer"],
                               torch.cat([reference.state[p]["momentum_buffer"] for p in theirs[:3]]), rtol=0, atol=1e-6)
    assert set(batched.state_dict()["state"][0]) == set(uncut.state_dict()["state"][0])


@pytest.mark.parametrize("shape, blocks", [((24, 8), 5), ((24, 8), 0), ((8, 24), 3)])
def test_row_blocks_that_do_not_cut_evenly_are_refused(shape, blocks):
    param = torch.nn.Parameter(torch.randn(shape))
    with pytest.raises(ValueError, match="cannot be cut"):
        BatchedMuon([param], lr=1e-2, row_blocks={param: blocks})
