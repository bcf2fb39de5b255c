"""Differentiable augmentation for the discriminator (DiffAugment, Zhao et al. 2020): the same random translation
and cutout applied to real and generated samples before D sees them, in D's step and in G's, so G's gradients pass
through the augmentation. No colour changes: a colour is what the text names."""

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


def _along(values: torch.Tensor, x: torch.Tensor, dim: int) -> torch.Tensor:
    """Per-sample values (B, size) along spatial dim ``dim`` of x, shaped to broadcast against x."""
    shape = [len(values)] + [1] * (x.dim() - 1)
    shape[dim] = values.shape[1]
    return values.view(shape)


def _translate(x: torch.Tensor, fraction: float) -> torch.Tensor:
    n = x.shape[0]
    for dim in range(2, x.dim()):
        size = x.shape[dim]
        limit = int(size * fraction + 0.5)
        shift = torch.randint(-limit, limit + 1, (n,), device=x.device)  # (B,)
        source = torch.arange(size, device=x.device)[None] - shift[:, None]  # (B, size): where each place reads
        inside = (source >= 0) & (source < size)
        x = x.gather(dim, _along(source.clamp(0, size - 1), x, dim).expand_as(x)) * _along(inside, x, dim).to(x.dtype)
    return x


def _cutout_mask(x: torch.Tensor, fraction: float) -> torch.Tensor:
    """(B, 1, *spatial): 0 inside each sample's box, 1 elsewhere."""
    n = x.shape[0]
    box = torch.ones(n, 1, *x.shape[2:], dtype=torch.bool, device=x.device)
    for dim in range(2, x.dim()):
        size = x.shape[dim]
        half = int(size * fraction / 2 + 0.5)
        centre = torch.randint(0, size, (n,), device=x.device)
        places = torch.arange(size, device=x.device)[None]
        within = (places >= centre[:, None] - half) & (places < centre[:, None] + half)  # (B, size)
        box = box & _along(within, x, dim)
    return (~box).to(x.dtype)
