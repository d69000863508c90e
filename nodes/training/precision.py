"""The precision Learn ID Token computes in: the node's `precision` input resolved for the device, and
the autocast context a training step runs under."""
from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(choice: str, device: torch.device) -> str:
    """auto: bf16 on a CUDA GPU that supports it, else fp16 on a CUDA GPU; fp32 on the CPU, MPS and
    other devices (their autocast support varies, and fp32 is what the released run used)."""
    if choice not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}")
    if choice != "auto":
        return choice
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def autocast_for(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=_DTYPES[precision])
