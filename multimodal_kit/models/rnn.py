"""Recurrent layers under mixed precision."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence


def _as_float(value: Any) -> Any:
    if isinstance(value, PackedSequence):
        return value.float()  # converts the data only (batch sizes and indices stay integers)
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, tuple):
        return tuple(_as_float(v) for v in value)
    return value


def run_fp32(rnn: nn.Module, *inputs: Any) -> Any:
    """``rnn(*inputs)`` in float32 with autocast off. oneDNN's CPU LSTM has no bf16 kernel under autocast ("could
    not create a primitive descriptor"), and a small recurrence gains little from lower precision; the layers around
    it still run in the autocast dtype."""
    device = next(rnn.parameters()).device.type
    with torch.autocast(device_type=device, enabled=False):
        return rnn(*_as_float(inputs))
