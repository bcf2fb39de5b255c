"""Image preprocessing in one place: PIL image → resized uint8 tensor (per item) → normalized float (per batch)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


class ImageTransform:
    """Resize to a square and normalize; the inverse for showing images.

    Args:
        image_size: output side in pixels.
        mean: per-channel mean, on the 0–1 scale.
        std: per-channel standard deviation, on the 0–1 scale.
    """

    def __init__(self, image_size: int = 64, mean: Sequence[float] = (0.5, 0.5, 0.5),
                 std: Sequence[float] = (0.5, 0.5, 0.5)) -> None:
        self.image_size = image_size
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def to_uint8(self, image: Image.Image) -> torch.Tensor:
        """PIL image (any mode, any size) → uint8 (3, S, S)."""
        image = image.convert("RGB")
        if image.size != (self.image_size, self.image_size):
            image = image.resize((self.image_size, self.image_size), Image.BICUBIC)
        return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 3, S, S) → normalized float (B, 3, S, S)."""
        return (images.float() / 255.0 - self.mean) / self.std

    def denormalize(self, images: torch.Tensor) -> torch.Tensor:
        """Normalized float (B, 3, S, S) → uint8 (B, 3, S, S), for display."""
        pixels = (images.detach().float().cpu() * self.std + self.mean).clamp(0, 1)
        return (pixels * 255).round().to(torch.uint8)
