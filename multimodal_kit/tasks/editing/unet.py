"""A text-conditioned U-Net: the image goes down and up with skip connections (what the edit leaves alone passes
through unchanged), and the instruction modulates every level's features (FiLM, Perez et al. 2018: a scale and a
shift per channel from the instruction's encoding). At the coarsest levels each place also attends over the
instruction's words (cross-attention, as in Stable Diffusion's U-Net), so the place the words name can change while
the rest does not: FiLM alone changes every place alike.

The output is a composite (as GANimation's attention mask, Pumarola et al. 2018): per pixel, a mask m in (0, 1)
and a colour c, and the edited image is ``(1 - m) · input + m · c``. Where m is near 0 the input passes through
exactly, noise and edges and all; a residual head (input + change) has to predict a change of zero at every pixel
the edit leaves alone, and an unsure one blurs them."""

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


class WordAttention(nn.Module):
    """Each place of a feature map attends over the instruction's words, added back through a projection that
    starts at zero: features (B, C, H, W), words (B, L, T) with mask (B, L) (True: a word) → (B, C, H, W)."""

    def __init__(self, channels: int, word_dim: int, heads: int = 4) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(8, channels)
        self.attend = nn.MultiheadAttention(channels, heads, kdim=word_dim, vdim=word_dim, batch_first=True)
        self.out = nn.Linear(channels, channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, words: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        places = self.norm(x).flatten(2).transpose(1, 2)  # (B, H·W, C)
        heard, _ = self.attend(places, words, words, key_padding_mask=~mask, need_weights=False)
        return x + self.out(heard).transpose(1, 2).reshape(b, c, h, w)


class FiLMUNet(nn.Module):
    """Image (B, 3, S, S) and an instruction's encoding (B, T) → the edited image (B, 3, S, S), starting as the
    input itself (or near it: a composite's masks start at sigmoid(-4) = 0.018).

    Args:
        condition_dim: T.
        widths: channels per level, halving the resolution after each but the last (S must divide by
            2^(levels - 1)).
        word_dim: the size of each word's encoding, for the cross-attention.
        attention_levels: how many of the coarsest levels attend over the words, going down and coming up
            (0: FiLM alone).
        composite: the output is ``(1 - m) · input + m · c`` with a predicted mask m and colour c (module
            docstring); ``False``: ``input + change``.
    """

    def __init__(self, condition_dim: int, widths: tuple[int, ...] = (16, 32, 64, 128), word_dim: int = 0,
                 attention_levels: int = 0, composite: bool = True) -> None:
        super().__init__()
        self.composite = composite
        if attention_levels and not word_dim:
            raise ValueError("attention_levels needs word_dim: the size of a word's encoding")
        levels = range(len(widths) - attention_levels, len(widths))  # the coarsest: the last down, the first up
        self.attend_down = nn.ModuleDict({str(k): WordAttention(widths[k], word_dim) for k in levels})
        self.attend_up = nn.ModuleDict({str(k): WordAttention(widths[k], word_dim) for k in levels
                                        if k < len(widths) - 1})
        self.down = nn.ModuleList()
        channels = 3
        for width in widths:
            self.down.append(FiLMBlock(channels, width, condition_dim))
            channels = width
        self.up = nn.ModuleList(FiLMBlock(channels_in + skip, skip, condition_dim)
                                for channels_in, skip in zip(widths[:0:-1], widths[-2::-1], strict=True))
        self.out = nn.Conv2d(widths[0], 4 if composite else 3, 1)  # composite: (colour, mask logit)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        if composite:
            nn.init.constant_(self.out.bias[3:], -4.0)  # masks start nearly shut: the input passes through

    def forward(self, image: torch.Tensor, condition: torch.Tensor, words: torch.Tensor | None = None,
                word_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Image (B, 3, S, S), condition (B, T), and the words (B, L, T_w) with mask (B, L) where levels attend
        → (B, 3, S, S)."""
        return self.edit(image, condition, words, word_mask)[0]

    def edit(self, image: torch.Tensor, condition: torch.Tensor, words: torch.Tensor | None = None,
             word_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """As :meth:`forward`, and the composite's mask logits (B, 1, S, S) (``None`` for a residual head)."""
        skips = []
        x = image
        for k, block in enumerate(self.down):
            x = block(x if k == 0 else nn.functional.max_pool2d(x, 2), condition)
            if str(k) in self.attend_down:
                x = self.attend_down[str(k)](x, words, word_mask)
            skips.append(x)
        levels = range(len(self.down) - 2, -1, -1)  # the up path's levels: the second coarsest first
        for k, block, skip in zip(levels, self.up, skips[-2::-1], strict=True):
            x = block(torch.cat([nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"), skip], 1), condition)
            if str(k) in self.attend_up:
                x = self.attend_up[str(k)](x, words, word_mask)
        out = self.out(x)
        if not self.composite:
            return image + out, None
        colour, logits = out[:, :3], out[:, 3:]  # (B, 3, S, S), (B, 1, S, S)
        return image + torch.sigmoid(logits) * (colour - image), logits
