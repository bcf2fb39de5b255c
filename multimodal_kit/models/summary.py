"""One vector for a whole source: how Seq2Seq-style methods squeeze an encoder's sequence (regions or frames)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from multimodal_kit.errors import ConfigError
from multimodal_kit.models.masking import masked_mean

SummaryKind = Literal["mean", "flatten"]


class Summary(nn.Module):
    """features (B, N, D) and their mask (B, N) → one vector (B, out_dim).

    Args:
        kind: ``mean`` — the mean of the valid positions (any N; out_dim = D); ``flatten`` — every region in its
            place, concatenated and projected to D (+ tanh), as a CNN's fully connected head reads a feature map:
            keeps *where* things are, which a mean forgets. Needs a fixed number of regions (images).
        dim: the feature size D.
        regions: N, for ``flatten`` (from a dry run of the encoder); ``None`` for a variable-length source.
    """

    def __init__(self, kind: SummaryKind = "mean", dim: int = 256, regions: int | None = None) -> None:
        super().__init__()
        if kind not in ("mean", "flatten"):
            raise ConfigError(f"summary must be 'mean' or 'flatten', got {kind!r}")
        if kind == "flatten" and regions is None:
            raise ConfigError("--model.init_args.summary flatten needs a fixed number of regions (an image encoder's feature map); "
                              "a variable-length source (audio frames) takes --model.init_args.summary mean")
        self.kind, self.regions, self.out_dim = kind, regions, dim
        self.project = nn.Sequential(nn.Flatten(), nn.Linear(regions * dim, dim), nn.Tanh()) if kind == "flatten" \
            else None

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.project is None:
            return masked_mean(features, mask)
        if features.shape[1] != self.regions:
            raise ValueError(f"summary 'flatten' was built for {self.regions} regions, got {features.shape[1]} "
                             "(a different image size?)")
        return self.project(features)
