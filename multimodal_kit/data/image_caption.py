"""``ImageCaptionDataModule``: images with one or more captions (embedded ``shapes``, imagefolder, hub)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from multimodal_kit.data.base import PairDataModule
from multimodal_kit.data.image import ImageCodec


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
        **kwargs: the options of :class:`~multimodal_kit.data.base.PairDataModule`.
    """

    def __init__(self, source: str = "shapes", image_size: int = 64, mean: Sequence[float] = (0.5, 0.5, 0.5),
                 std: Sequence[float] = (0.5, 0.5, 0.5), max_image_pixels: int = 40_000_000,
                 **kwargs: Any) -> None:
        codec = ImageCodec(image_size, mean, std, max_image_pixels)
        super().__init__(codec=codec, source=source, **kwargs)
        self.image_size = image_size
