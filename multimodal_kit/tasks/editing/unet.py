"""A text-conditioned U-Net: the image goes down and up with skip connections (what the edit leaves alone passes
through unchanged), and the instruction modulates every level's features (FiLM, Perez et al. 2018: a scale and a
shift per channel from the instruction's encoding), so the network can find the object the words name and redraw
it as asked."""

from __future__ import annotations

import torch
from torch import nn


class FiLMBlock(nn.Module):
    """Two 3×3 convolutions with group norm, the second's output scaled and shifted per channel by the
    instruction: features (B, C_in, H, W), condition (B, T) → (B, C_out, H, W)."""

    def __init__(self, in_channels: int, out_channels: int, condition_dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm1 = nn.GroupNorm(8, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(8, out_channels)
        self.film = nn.Linear(condition_dim, 2 * out_channels)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)  # the identity modulation at the start

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.norm1(self.conv1(x)))
        scale, shift = self.film(condition)[:, :, None, None].chunk(2, dim=1)
        return torch.relu(self.norm2(self.conv2(x)) * (1 + scale) + shift)


class FiLMUNet(nn.Module):
    """Image (B, 3, S, S) and an instruction's encoding (B, T) → the edited image (B, 3, S, S): the input plus a
    predicted change, so an empty instruction's answer is the input itself.

    Args:
        condition_dim: T.
        widths: channels per level, halving the resolution after each but the last (S must divide by
            2^(levels - 1)).
    """

    def __init__(self, condition_dim: int, widths: tuple[int, ...] = (16, 32, 64, 128)) -> None:
        super().__init__()
        self.down = nn.ModuleList()
        channels = 3
        for width in widths:
            self.down.append(FiLMBlock(channels, width, condition_dim))
            channels = width
        self.up = nn.ModuleList(FiLMBlock(channels_in + skip, skip, condition_dim)
                                for channels_in, skip in zip(widths[:0:-1], widths[-2::-1], strict=True))
        self.out = nn.Conv2d(widths[0], 3, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, image: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        skips = []
        x = image
        for k, block in enumerate(self.down):
            x = block(x if k == 0 else nn.functional.max_pool2d(x, 2), condition)
            skips.append(x)
        for block, skip in zip(self.up, skips[-2::-1], strict=True):
            x = block(torch.cat([nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"), skip], 1), condition)
        return image + self.out(x)
