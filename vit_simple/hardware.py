"""What this machine computes natively."""

import torch


def native_bfloat16():
    """Whether this machine multiplies bfloat16 matrices natively: a CUDA GPU of compute capability 8.0 or later
    (Ampere on; a T4 or V100 only emulates bf16) or a ROCm GPU, else a CPU with AVX512-BF16 or AMX. There bf16
    autocast trains about twice as fast; elsewhere it is emulated and slower than float32."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported(including_emulation=False)
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private, hence the care
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)
