"""Differentiable augmentation for the discriminator (DiffAugment, Zhao et al. 2020): the same random translation
and cutout applied to real and generated samples before D sees them, in D's step and in G's, so D cannot
memorize a small training set and G's gradients pass through the augmentation. No colour changes: a colour is
what the text names."""

from __future__ import annotations

import torch


def diff_augment(x: torch.Tensor, translation: float = 0.125, cutout: float = 0.25) -> torch.Tensor:
    """x (B, C, *spatial) with one (audio: time) or two (images) spatial dims → the same shape, each sample shifted
    by up to ``translation`` of each side (zeros fill in) and with a box of ``cutout`` of each side set to zero."""
    if translation > 0:
        x = _translate(x, translation)
    if cutout > 0:
        x = x * _cutout_mask(x, cutout)
    return x


def _translate(x: torch.Tensor, fraction: float) -> torch.Tensor:
    n, spatial = x.shape[0], x.shape[2:]
    for dim, size in enumerate(spatial, start=2):
        limit = int(size * fraction + 0.5)
        shift = torch.randint(-limit, limit + 1, (n,), device=x.device)  # (B,)
        source = torch.arange(size, device=x.device)[None] - shift[:, None]  # (B, size): where each place reads
        inside = (source >= 0) & (source < size)
        shape = [n] + [1] * (x.dim() - 1)
        shape[dim] = size
        index = source.clamp(0, size - 1).view(shape).expand_as(x)
        x = x.gather(dim, index) * inside.view(shape).to(x.dtype)
    return x


def _cutout_mask(x: torch.Tensor, fraction: float) -> torch.Tensor:
    """(B, 1, *spatial): 0 inside each sample's box, 1 elsewhere."""
    n, spatial = x.shape[0], x.shape[2:]
    box = torch.ones(n, 1, *spatial, dtype=torch.bool, device=x.device)
    for dim, size in enumerate(spatial, start=2):
        half = int(size * fraction / 2 + 0.5)
        centre = torch.randint(0, size, (n,), device=x.device)
        places = torch.arange(size, device=x.device)[None]
        within = (places >= centre[:, None] - half) & (places < centre[:, None] + half)  # (B, size)
        shape = [n] + [1] * (x.dim() - 1)
        shape[dim] = size
        box = box & within.view(shape)
    return (~box).to(x.dtype)
