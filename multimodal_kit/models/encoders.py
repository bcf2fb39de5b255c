"""Source encoders. Each maps a batch of media to a sequence of feature vectors ``(B, N, D)``.

An image encoder's sequence is its final feature map read as ``N = H' × W'`` regions; Seq2Seq pools it to one
vector, attention attends over it. Any ``nn.Module`` can serve as an encoder: :func:`as_sequence` turns a
``(B, C, H, W)`` map or a ``(B, D)`` vector into that form, and :func:`output_dim` finds ``D`` by a dry run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from multimodal_kit.errors import ConfigError


def conv_bn_relu(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ConvImageEncoder(nn.Module):
    """A small CNN trained from scratch: each stage halves the resolution (stride-2 conv), then refines (conv).

    With the defaults a 64×64 image becomes a 256-channel 4×4 map, 16 regions (about 1.2M parameters).

    Args:
        widths: output channels of each stage; ``len(widths)`` stages, each halving height and width.
        in_channels: image channels.
    """

    media = "image"  # the input it reads

    def __init__(self, widths: Sequence[int] = (32, 64, 128, 256), in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for i, width in enumerate(widths):
            layers.append(conv_bn_relu(channels, width, stride=2))
            if i > 0:  # the first stage works at full resolution: keep it to one conv for speed
                layers.append(conv_bn_relu(width, width, stride=1))
            channels = width
        self.net = nn.Sequential(*layers)
        self.out_dim = channels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, 3, H, W) → regions (B, H/2^k × W/2^k, D)."""
        features = self.net(images)  # (B, D, H', W')
        return features.flatten(2).transpose(1, 2)  # (B, H'·W', D)


def as_sequence(features: torch.Tensor) -> torch.Tensor:
    """An encoder output as a sequence (B, N, D): maps (B, C, H, W) → (B, H·W, C), vectors (B, D) → (B, 1, D)."""
    if features.dim() == 4:
        return features.flatten(2).transpose(1, 2)
    if features.dim() == 2:
        return features.unsqueeze(1)
    if features.dim() == 3:
        return features
    raise ValueError(f"an encoder must return (B, N, D), (B, C, H, W) or (B, D); got shape {tuple(features.shape)}")


@torch.no_grad()
def output_shape(encoder: nn.Module, *example: torch.Tensor) -> tuple[int, int]:
    """(N, D) of the sequence a dry run of ``encoder`` on ``example`` (the inputs of one call: images, or audio
    features and lengths) gives: its number of regions or frames and its feature size."""
    was_training = encoder.training
    encoder.eval()
    output = encoder(*example)
    encoder.train(was_training)
    n, dim = as_sequence(output[0] if isinstance(output, tuple) else output).shape[1:]
    return int(n), int(dim)


def output_dim(encoder: nn.Module, *example: torch.Tensor) -> int:
    """``encoder.out_dim`` if it declares one, else the feature size of a dry run on ``example``."""
    if isinstance(getattr(encoder, "out_dim", None), int):
        return encoder.out_dim
    return output_shape(encoder, *example)[1]


def default_encoder(media: str, **settings: Any) -> nn.Module:
    """The default encoder of ``media`` its :class:`~multimodal_kit.media.MediumSpec` names
    (:class:`ConvImageEncoder` for images, :class:`~multimodal_kit.models.audio_encoders.ConvLSTMAudioEncoder` for
    log-mel audio), built with the data's ``settings`` (``n_mels``, …)."""
    from multimodal_kit.media import medium_spec  # here: the registry imports the networks

    build = medium_spec(media).default_encoder
    if build is None:
        raise ConfigError(f"no default encoder for {media!r}; pass --model.init_args.encoder")
    return build(**settings)


def example_input(media: str, **settings: Any) -> tuple[torch.Tensor, ...]:
    """The inputs of one encoder call on a one-item batch of ``media`` (its spec's ``example_input``: images;
    log-mel frames and lengths), with the data's ``settings`` (``image_size``, ``n_mels``, …)."""
    from multimodal_kit.media import medium_spec

    example = medium_spec(media).example_input
    if example is None:
        raise ConfigError(f"the medium {media!r} has no example input: give its encoder an example_input() method "
                          "or register one in its MediumSpec")
    return example(**settings)
