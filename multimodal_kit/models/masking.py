"""Padding masks, in one place: which positions of a padded batch are real, and means over those alone.

Every variable-length sequence in the kit (audio frames, text tokens, image regions) travels padded with its
lengths or a validity mask; these two helpers are what every consumer uses to ignore the padding.
"""

from __future__ import annotations

import torch


def length_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    """lengths (B,) → bool (B, max_length), True at valid positions."""
    return torch.arange(max_length, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


def masked_mean(sequence: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The mean over dim 1 of the valid positions: sequence (B, N, …), mask (B, N) → (B, …); every position when
    ``mask`` is ``None``; 0 for an item with none."""
    if mask is None:
        return sequence.mean(1)
    weights = mask.reshape(*mask.shape, *([1] * (sequence.dim() - 2))).to(sequence.dtype)
    return (sequence * weights).sum(1) / weights.sum(1).clamp(min=1)
