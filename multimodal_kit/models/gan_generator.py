"""The conditional GAN's generator ``G(z, c)``: noise and a text condition → an image (B, 3, S, S) or a log-mel
spectrogram (B, n_mels, T), a DCGAN-style stack whose every block doubles the resolution, its batch norm steered by
the condition; the encoder ``E(x)`` that finds the noise redrawing a sample; and the conv layers and block counts
the discriminators share."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

from multimodal_kit.errors import ConfigError


def conv_layer(spatial_dims: int, transpose: bool = False) -> type[nn.Module]:
    return {(1, False): nn.Conv1d, (2, False): nn.Conv2d, (1, True): nn.ConvTranspose1d,
            (2, True): nn.ConvTranspose2d}[(spatial_dims, transpose)]


def num_blocks(size: int, start: int, what: str) -> int:
    blocks = math.log2(size / start) if size >= start else -1
    if blocks < 1 or not blocks.is_integer():
        raise ConfigError(f"{what} must be {start} times a power of two (at least {2 * start}), got {size}")
    return int(blocks)


def down_blocks(spatial_dims: int, in_channels: int, width: int, blocks: int,
                wrap: Callable[[nn.Module], nn.Module] = lambda module: module) -> tuple[nn.Sequential, int]:
    """``blocks`` strided convs (kernel 4, LeakyReLU 0.2), each halving the resolution, the first with ``width``
    channels and each later one twice as many; ``wrap`` each conv (e.g. spectral norm). Returns the stack and its
    output channels."""
    layers: list[nn.Module] = []
    channels, out = in_channels, width
    for _ in range(blocks):
        layers += [wrap(conv_layer(spatial_dims)(channels, out, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True)]
        channels, out = out, out * 2
    return nn.Sequential(*layers), channels


def up_block(spatial_dims: int, in_channels: int, out_channels: int, how: str) -> nn.Module:
    """A layer (B, in, …) → (B, out, …) at twice the resolution: ``transpose`` or ``resize`` (see
    :class:`ConvGenerator`)."""
    if how == "transpose":
        return conv_layer(spatial_dims, transpose=True)(in_channels, out_channels, 4, 2, 1, bias=False)
    if how == "resize":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                             conv_layer(spatial_dims)(in_channels, out_channels, 3, 1, 1, bias=False))
    raise ConfigError(f"upsample {how!r}: use 'transpose' or 'resize'")


class ConditionalBatchNorm(nn.Module):
    """BatchNorm whose scale and shift are predicted from the condition c (the text steers every block of the
    generator, not only its input; DF-GAN's deep fusion in its simplest form).

    Args:
        channels: feature channels.
        cond_dim: size of c.
        spatial_dims: 2 for (B, C, H, W) maps, 1 for (B, C, T) sequences.
    """

    def __init__(self, channels: int, cond_dim: int, spatial_dims: int = 2) -> None:
        super().__init__()
        self.norm = (nn.BatchNorm2d if spatial_dims == 2 else nn.BatchNorm1d)(channels, affine=False)
        self.affine = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.affine.weight)
        with torch.no_grad():  # start as the identity: scale 1, shift 0
            self.affine.bias.copy_(torch.cat([torch.ones(channels), torch.zeros(channels)]))
        self.spatial_dims = spatial_dims

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x (B, C, …), c (B, D) → x normalized, then scaled and shifted per item."""
        scale, shift = self.affine(c).view(len(c), 2, -1, *(1,) * self.spatial_dims).unbind(1)
        return self.norm(x) * scale + shift


class ResidualUpBlock(nn.Module):
    """A pre-activation residual block at twice the resolution (BigGAN / SNGAN's generator block): conditional
    batch norm, ReLU, an :func:`up_block`, conditional batch norm, ReLU, a 3-wide conv; plus the input upsampled
    (nearest ×2) through a 1-wide conv: two convs per scale, and a skip path that carries the coarser map up.

    Args:
        spatial_dims: 2 for images, 1 for audio.
        in_channels: channels in.
        out_channels: channels out.
        cond_dim: size of c.
        upsample: the first conv's way up (see :func:`up_block`).
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, cond_dim: int, upsample: str) -> None:
        super().__init__()
        self.norm1 = ConditionalBatchNorm(in_channels, cond_dim, spatial_dims)
        self.up = up_block(spatial_dims, in_channels, out_channels, upsample)
        self.norm2 = ConditionalBatchNorm(out_channels, cond_dim, spatial_dims)
        self.conv = conv_layer(spatial_dims)(out_channels, out_channels, 3, 1, 1, bias=False)
        self.skip = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                  conv_layer(spatial_dims)(in_channels, out_channels, 1, bias=False))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x (B, in, …), c (B, D) → (B, out, …) at twice the resolution."""
        h = self.up(torch.relu(self.norm1(x, c)))
        return self.conv(torch.relu(self.norm2(h, c))) + self.skip(x)


class ConvGenerator(nn.Module):
    """``G(z, c)``: noise and condition → a linear layer to a small map, then blocks that each double the
    resolution (batch norm conditioned on c, ReLU), then a conv to the output channels.

    Args:
        noise_dim: size of z.
        cond_dim: size of c.
        out_channels: 3 for RGB images; n_mels for spectrograms (1-D).
        size: output side (images) or frames (audio).
        spatial_dims: 2 for images, 1 for audio.
        start: side/length of the first map.
        width: channels of the last block (each earlier block has twice as many).
        output_activation: ``tanh`` (data in [-1, 1]) or ``none``.
        upsample: how a block doubles the resolution: ``transpose`` (a stride-2 transposed conv, kernel 4, DCGAN)
            or ``resize`` (nearest-neighbour ×2, then a 3-wide conv: each output pixel sees the same number of
            input pixels, so no checkerboard; Odena et al. 2016, "Deconvolution and checkerboard artifacts").
        blocks: ``plain`` (one up-conv per scale, then conditional batch norm and ReLU; DCGAN) or ``residual``
            (:class:`ResidualUpBlock`: two convs per scale and a skip path, then a last conditional batch norm and
            ReLU before the output conv; BigGAN, DF-GAN).
    """

    def __init__(self, noise_dim: int, cond_dim: int, out_channels: int, size: int, spatial_dims: int = 2,
                 start: int = 4, width: int = 32, output_activation: str = "tanh",
                 upsample: Literal["transpose", "resize"] = "transpose",
                 blocks: Literal["plain", "residual"] = "plain") -> None:
        super().__init__()
        if blocks not in ("plain", "residual"):
            raise ConfigError(f"generator blocks {blocks!r}: use 'plain' or 'residual'")
        count = num_blocks(size, start, "the generated size")
        self.start_shape = (width * 2**count,) + (start,) * spatial_dims
        self.fc = nn.Linear(noise_dim + cond_dim, math.prod(self.start_shape), bias=False)
        self.fc_norm = ConditionalBatchNorm(self.start_shape[0], cond_dim, spatial_dims)  # per map: works for B = 1
        self.ups = nn.ModuleList()
        self.norms = nn.ModuleList()
        channels = self.start_shape[0]
        self.residual = blocks == "residual"
        for _ in range(count):
            if self.residual:  # each block normalizes its own input
                self.ups.append(ResidualUpBlock(spatial_dims, channels, channels // 2, cond_dim, upsample))
            else:
                self.ups.append(up_block(spatial_dims, channels, channels // 2, upsample))
                self.norms.append(ConditionalBatchNorm(channels // 2, cond_dim, spatial_dims))
            channels //= 2
        if self.residual:  # the last block's output, normalized for the output conv
            self.norms.append(ConditionalBatchNorm(channels, cond_dim, spatial_dims))
        self.out = conv_layer(spatial_dims)(channels, out_channels, 3, 1, 1)
        self.activation = nn.Tanh() if output_activation == "tanh" else nn.Identity()

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """z (B, Z), c (B, D) → images (B, 3, S, S) or spectrograms (B, n_mels, T)."""
        x = self.fc(torch.cat([z, c], dim=1)).view(-1, *self.start_shape)  # (B, C0, 4, 4) or (B, C0, T0)
        x = torch.relu(self.fc_norm(x, c))
        if self.residual:
            for block in self.ups:
                x = block(x, c)  # resolution ×2, channels ÷2
            return self.activation(self.out(torch.relu(self.norms[0](x, c))))
        for up, norm in zip(self.ups, self.norms, strict=True):
            x = torch.relu(norm(up(x), c))  # resolution ×2, channels ÷2
        return self.activation(self.out(x))


class LatentEncoder(nn.Module):
    """``E(x)``: a sample → a Gaussian over the generator's noise that redraws it (BicycleGAN's cVAE-GAN encoder,
    Zhu et al. 2017): strided-conv blocks down to a small map, then a linear layer to the mean and log-variance.

    Args:
        in_channels: 3 for RGB images; n_mels for spectrograms.
        noise_dim: size of z.
        size: input side (images) or frames (audio).
        spatial_dims: 2 for images, 1 for audio.
        end: side/length of the last map.
        width: channels of the first block (each later block has twice as many).
    """

    def __init__(self, in_channels: int, noise_dim: int, size: int, spatial_dims: int = 2, end: int = 4,
                 width: int = 16) -> None:
        super().__init__()
        self.blocks, channels = down_blocks(spatial_dims, in_channels, width, num_blocks(size, end, "the encoded size"))
        self.out = nn.Linear(channels * end**spatial_dims, 2 * noise_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, …) → the mean and log-variance (B, Z) each of the noise that redraws it."""
        mean, log_var = self.out(self.blocks(x).flatten(1)).chunk(2, dim=1)
        return mean, log_var
