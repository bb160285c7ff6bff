"""Muon for the blocks' weight matrices and AdamW for the rest, as one optimizer: `BatchedMuon` (torch's Muon with
the Newton-Schulz iterations batched by shape, in bfloat16 only where it is native) and `MuonWithAdamW`."""

import torch
from torch.optim._muon import _adjust_lr  # Muon's learning-rate adjustment by shape, as torch's Muon applies it

from vit_simple import hardware


def block_matrix_names(model):
    """The parameters Muon takes: the 2-D weight matrices inside the transformer blocks (qkv, output projection,
    MLP). The patch embedding, the head, norms, biases, CLS token and positions stay with AdamW, as Muon's authors
    advise for the input and output layers (Muon on the patch embedding too was level over two seeds:
    benchmarks/README.md, round 19)."""
    return [name for name, param in model.named_parameters()
            if param.dim() == 2 and param.requires_grad and ".layers." in f".{name}"]


class BatchedMuon(torch.optim.Muon):
    """`torch.optim.Muon` with the Newton-Schulz iterations run once per shape on a stack of matrices instead of
    once per matrix. With `ns_dtype=torch.bfloat16` (torch's choice) it is the same arithmetic in the same order,
    and so the same updates, bit for bit, with a few large products in place of many small ones; a ViT's blocks hold
    a handful of shapes, each repeated once per block, so on a CPU, where a small product costs mostly its call, the
    optimizer step costs a fraction. `ns_dtype=torch.float32` runs the iterations in float32, for machines where
    bfloat16 products are emulated. The default (None) is bfloat16 where it is native and float32 elsewhere; a run
    picks with `newton_schulz_dtype`, float32 too under --bf16 false. The state (`momentum_buffer` per matrix) is
    torch's, so checkpoints move between the two and between dtypes.

    `row_blocks` ({parameter: k}) cuts a parameter's rows into k equal blocks that are orthogonalised (and their
    learning rates adjusted) each on its own, as if they were k matrices: a fused qkv projection's q, k and v, which
    modded-nanogpt's Muon treats as three matrices. The state stays one momentum buffer per parameter."""

    def __init__(self, params, *args, ns_dtype=None, row_blocks=None, **kwargs):
        super().__init__(params, *args, **kwargs)
        self.ns_dtype = newton_schulz_dtype(bf16=True) if ns_dtype is None else ns_dtype
        self.row_blocks = dict(row_blocks or {})
        for param, blocks in self.row_blocks.items():
            if param.dim() != 2 or blocks < 1 or param.size(0) % blocks:
                raise ValueError(f"row_blocks: a {tuple(param.shape)} parameter cannot be cut into {blocks} equal "
                                 "blocks of rows.")

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure_loss(closure)
        for group in self.param_groups:
            params, grads, buffers = [], [], []
            self._init_group(group, params, grads, buffers)
            if not params:
                continue
            lr, momentum = group["lr"], group["momentum"]
            torch._foreach_lerp_(buffers, grads, 1 - momentum)
            updates = torch._foreach_lerp(grads, buffers, momentum) if group["nesterov"] else buffers
            by_shape = {}
            for param, update in zip(params, updates):
                blocks = self.row_blocks.get(param, 1)
                # views: the in-place decay and update below write through them into the parameter
                pieces = [(param, update)] if blocks == 1 else zip(param.view(blocks, -1, param.size(-1)).unbind(0),
                                                                   update.view(blocks, -1, update.size(-1)).unbind(0))
                for block, block_update in pieces:
                    same, stacked = by_shape.setdefault(block.shape, ([], []))
                    same.append(block)
                    stacked.append(block_update)
            for shape, (same, stacked) in by_shape.items():
                ortho = newton_schulz(torch.stack(stacked), group["ns_coefficients"], group["ns_steps"], group["eps"],
                                      self.ns_dtype)
                torch._foreach_mul_(same, 1 - lr * group["weight_decay"])
                torch._foreach_add_(same, list(ortho.unbind(0)), alpha=-_adjust_lr(lr, group["adjust_lr_fn"], shape))
        return loss


def fused_qkv_blocks(model, names):
    """BatchedMuon's `row_blocks` for the fused qkv projections among the parameters `names`: 3 for each
    `to_qkv.weight`, whose rows are q's, then k's, then v's (the "(qkv h d)" layout the attention splits)."""
    return {param: 3 for name, param in model.named_parameters() if name in names and name.endswith("to_qkv.weight")}


def closure_loss(closure):
    """An optimizer step's closure, evaluated with gradients on (torch's optimizers' convention); None without one."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


def newton_schulz(matrices, coefficients, steps, eps, dtype):
    """torch's `_zeropower_via_newtonschulz` on a stack of matrices (batch, rows, columns), each normalised by its
    own Frobenius norm, computed in `dtype` (torch's is bfloat16)."""
    a, b, c = coefficients
    ortho = matrices.to(dtype)
    tall = matrices.size(-2) > matrices.size(-1)
    if tall:
        ortho = ortho.mT
    ortho = ortho / ortho.norm(dim=(-2, -1), keepdim=True).clamp(min=eps)
    for _ in range(steps):
        gram = ortho @ ortho.mT
        gram_update = torch.baddbmm(gram, gram, gram, beta=b, alpha=c)
        ortho = torch.baddbmm(ortho, gram_update, ortho, beta=a)
    return ortho.mT if tall else ortho


def newton_schulz_dtype(bf16):
    """Muon's Newton-Schulz precision for a run: bfloat16, as torch's Muon, when the run trains under bf16 autocast
    on a machine with native bfloat16 products; float32 everywhere else, where bfloat16 products are emulated (on a
    CPU without AVX512-BF16 the default model's Muon step took 720 ms in bfloat16 against 23 ms in float32) or the
    run asked for float32 (--bf16 false)."""
    return torch.bfloat16 if bf16 and hardware.native_bfloat16() else torch.float32


class MuonWithAdamW(torch.optim.Optimizer):
    """`torch.optim.Muon` on some parameters and AdamW on the rest, stepped together as one optimizer, so that
    Trainer's learning-rate schedule (which scales every param group), checkpoints and resume see one object. The
    AdamW groups come first: Trainer logs the first group's learning rate."""

    def __init__(self, adamw, muon):
        self.adamw, self.muon = adamw, muon
        super().__init__(adamw.param_groups + muon.param_groups, {})  # the same group dicts: a schedule reaches both

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure_loss(closure)
        self.adamw.step()
        self.muon.step()
        return loss

    def zero_grad(self, set_to_none=True):
        self.adamw.zero_grad(set_to_none)
        self.muon.zero_grad(set_to_none)

    def state_dict(self):
        return {"adamw": self.adamw.state_dict(), "muon": self.muon.state_dict()}

    def load_state_dict(self, state_dict):
        self.adamw.load_state_dict(state_dict["adamw"])
        self.muon.load_state_dict(state_dict["muon"])
        # loading gives the inner optimizers new group dicts (accelerate's prepare loads the state once to place it
        # on the device, Trainer again on resume): point at them, or the schedule would set a learning rate no
        # optimizer reads
        self.param_groups = self.adamw.param_groups + self.muon.param_groups
