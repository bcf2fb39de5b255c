"""Per-band standardization of spectrogram frames with statistics of the training data, kept as buffers so they
travel in checkpoints (what a model that generates log-mel frames learns in, and the way back)."""

from __future__ import annotations

import torch
from torch import nn


class BandNormalizer(nn.Module):
    """Standardizes raw log-mel frames (..., n_mels) band by band.

    Args:
        n_mels: mel bands.
    """

    def __init__(self, n_mels: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_mels))
        self.register_buffer("std", torch.ones(n_mels))
        self.register_buffer("ready", torch.tensor(False))

    def estimate(self, items: list[torch.Tensor]) -> None:
        """Mean and standard deviation per band over every frame of ``items``, each (T_i, n_mels)."""
        frames = torch.cat([item.float() for item in items])  # (ΣT, n_mels)
        self.mean.copy_(frames.mean(0))
        self.std.copy_(frames.std(0).clamp(min=1e-3))
        self.ready.fill_(True)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """raw (..., n_mels) → standardized."""
        return (frames - self.mean) / self.std

    def inverse(self, frames: torch.Tensor) -> torch.Tensor:
        """standardized (..., n_mels) → raw."""
        return frames * self.std + self.mean
