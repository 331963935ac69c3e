"""Peak FLOP/s per device, for the MFU estimate (dense bf16 figures from vendor data sheets)."""

from __future__ import annotations

_PEAK_BF16 = {
    "h200": 989e12,
    "h100": 989e12,
    "a100": 312e12,
    "l4": 121e12,
    "a10g": 125e12,
    "tpu v4": 275e12,
    "tpu v5 lite": 197e12,
    "tpu v5e": 197e12,
    "tpu v5p": 459e12,
    "tpu v5": 459e12,
    "tpu v6 lite": 918e12,
    "tpu v6e": 918e12,
}


def peak_flops_per_device(device_kind: str) -> float:
    """Peak dense bf16 FLOP/s for a `jax.Device.device_kind`, or 0.0 when unknown (e.g. CPU)."""
    kind = device_kind.lower()
    for name, flops in sorted(_PEAK_BF16.items(), key=lambda kv: -len(kv[0])):
        if name in kind:
            return flops
    return 0.0
