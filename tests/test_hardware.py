"""vit_simple.hardware: native bfloat16 means native, on GPUs too (a T4 or V100 only emulates it)."""

import pytest
import torch

from vit_simple import hardware


class FakeDevice:
    def __init__(self, major):
        self.major = major


@pytest.mark.parametrize("major, native", [(7, False), (8, True), (9, True)])  # V100/T4 emulate; Ampere, Hopper on
def test_native_bfloat16_means_native_on_gpus_too(monkeypatch, major, native):
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: FakeDevice(major))
    monkeypatch.setattr(torch.cuda, "_check_bf16_tensor_supported", lambda device: True)  # emulation works
    assert hardware.native_bfloat16() is native


@pytest.mark.parametrize("probes, native", [((), False), (("_is_avx512_bf16_supported",), True),
                                            (("_is_amx_tile_supported",), True)])
def test_on_a_cpu_native_means_avx512_bf16_or_amx(monkeypatch, probes, native):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, probe, lambda found=probe in probes: found, raising=False)
    assert hardware.native_bfloat16() is native
