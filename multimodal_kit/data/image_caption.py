"""``ImageCaptionDataModule``: images with one or more captions (embedded ``shapes``, imagefolder, hub)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from multimodal_kit.data.base import PairDataModule
from multimodal_kit.data.image import ImageCodec, random_shift
from multimodal_kit.errors import ConfigError


class ImageCaptionDataModule(PairDataModule):
    """Image–caption pairs; batches carry ``image`` float (B, 3, S, S), normalized
    (:class:`~multimodal_kit.data.image.ImageCodec`).

    Args:
        source: ``shapes`` (embedded), an ``imagefolder`` directory, or a hub dataset id.
        image_size: images are resized to ``image_size`` × ``image_size``.
        mean: normalization mean per channel (0–1 scale).
        std: normalization standard deviation per channel (0–1 scale).
        max_image_pixels: larger images (width × height) are bad rows: decoding one would take gigabytes
            (decompression bombs), and a dataset of 64-pixel thumbnails rarely holds one on purpose.
        random_shift: shift each training image by up to this many pixels each way, edges repeated
            (:func:`~multimodal_kit.data.image.random_shift`); 0: no augmentation. A model trained from scratch on
            a few thousand images learns them by heart; shifted copies make it learn what things look like.
        **kwargs: the options of :class:`~multimodal_kit.data.base.PairDataModule`.
    """

    def __init__(self, source: str = "shapes", image_size: int = 64, mean: Sequence[float] = (0.5, 0.5, 0.5),
                 std: Sequence[float] = (0.5, 0.5, 0.5), max_image_pixels: int = 40_000_000,
                 random_shift: int = 0, **kwargs: Any) -> None:
        if random_shift < 0:
            raise ConfigError(f"--data.random_shift must be 0 (off) or a number of pixels, got {random_shift}")
        codec = ImageCodec(image_size, mean, std, max_image_pixels)
        super().__init__(codec=codec, source=source, **kwargs)
        self.image_size = image_size
        self.random_shift = random_shift

    @property
    def augments_media(self) -> bool:
        return self.random_shift > 0

    def augment(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Every image field of the batch shifted alike (an edit's input and target stay aligned)."""
        keys = [codec.key for codec in self.codecs if codec.media == "image" and codec.key in batch]
        shifted = random_shift(torch.cat([batch[k] for k in keys], dim=1), self.random_shift)
        return batch | dict(zip(keys, shifted.split(3, dim=1), strict=True))
