"""``ImageCaptionDataModule``: images with one or more captions (embedded ``shapes``, imagefolder, hub)."""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import torch
from PIL import Image, UnidentifiedImageError

from multimodal_kit.data.base import DataError, PairDataModule
from multimodal_kit.data.image import IMAGE_EXTENSIONS, ImageTransform
from multimodal_kit.visualize import attention_strip, tensor_to_pil


class ImageCaptionDataModule(PairDataModule):
    """Image–caption pairs; batches carry ``image`` float (B, 3, S, S), normalized.

    Args:
        source: ``shapes`` (embedded), an ``imagefolder`` directory, or a hub dataset id.
        image_size: images are resized to ``image_size`` × ``image_size``.
        mean: normalization mean per channel (0–1 scale).
        std: normalization standard deviation per channel (0–1 scale).
        max_image_pixels: larger images (width × height) are bad rows: decoding one would take gigabytes
            (decompression bombs), and a dataset of 64-pixel thumbnails rarely holds one on purpose.
        **kwargs: the options of :class:`~multimodal_kit.data.base.PairDataModule`.
    """

    media_key = "image"
    media_extensions = IMAGE_EXTENSIONS
    media_feature = datasets.Image()

    def __init__(self, source: str = "shapes", image_size: int = 64, mean: Sequence[float] = (0.5, 0.5, 0.5),
                 std: Sequence[float] = (0.5, 0.5, 0.5), max_image_pixels: int = 40_000_000,
                 **kwargs: Any) -> None:
        super().__init__(source=source, **kwargs)
        self.image_size = image_size
        self.max_image_pixels = max_image_pixels
        self.transform = ImageTransform(image_size, mean, std)

    def load_media(self, value: Any, row_id: str) -> torch.Tensor:
        """``{bytes, path}`` (or a path, or a PIL image) → uint8 (3, S, S)."""
        if isinstance(value, Image.Image):
            return self.transform.to_uint8(value)
        if isinstance(value, dict) and value.get("bytes") is not None:
            return self.decode(io.BytesIO(value["bytes"]), row_id)
        if isinstance(value, dict) and value.get("path"):
            return self.decode(value["path"], row_id)
        if isinstance(value, str | Path):
            return self.decode(value, row_id)
        raise DataError(f"{row_id}: column {self.media_column!r} holds {type(value).__name__}, not an image; "
                        "set --data.media_column to the image column.")

    def decode(self, source: str | Path | io.BytesIO, name: str) -> torch.Tensor:
        """Decode one image file or blob → uint8 (3, S, S); a :class:`DataError` naming ``name`` if it is not a
        readable image, is truncated, or has more than ``max_image_pixels`` pixels."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit decides
                with Image.open(source) as image:
                    width, height = image.size
                    if width * height > self.max_image_pixels:
                        raise DataError(f"{name}: a {width}×{height} image, more than --data.max_image_pixels="
                                        f"{self.max_image_pixels}; downscale it or raise the limit.")
                    image.load()
                    return self.transform.to_uint8(image)
        except DataError:
            raise
        except Image.DecompressionBombError as error:
            raise DataError(f"{name}: an image too large to decode safely ({error}); downscale it.") from error
        except FileNotFoundError as error:
            raise DataError(f"{name}: image file not found: {source}") from error
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
            what = "truncated image" if "truncated" in str(error) else "not a readable image"
            raise DataError(f"{name}: {what} ({error}); re-save or re-download it, or remove the row.") from error

    def media_nbytes(self) -> int:
        return 3 * self.image_size * self.image_size

    def load_media_file(self, path: Path) -> torch.Tensor:
        return self.decode(path, str(path))

    def collate_media(self, items: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"image": self.transform.normalize(torch.stack(items))}

    def preview(self, media: torch.Tensor) -> Image.Image:
        """uint8 (3, S, S) → the image."""
        return tensor_to_pil(media)

    def unbatch_media(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """``image`` (B, 3, S, S), normalized → uint8 (3, S, S) per item."""
        return list(self.transform.denormalize(batch["image"]))

    def media_values(self, media: list[torch.Tensor]) -> list[Any]:
        return [tensor_to_pil(item) for item in media]

    def save_media(self, value: Image.Image, stem: Path) -> Path:
        path = stem.with_suffix(".png")
        value.save(path)
        return path

    def wandb_value(self, value: Image.Image, caption: str | None = None) -> Any:
        import wandb

        return wandb.Image(value, caption=caption)

    def attention_picture(self, media: torch.Tensor, words: Sequence[str], weights: torch.Tensor) -> Image.Image:
        """The image, then each word with its attention (L, regions) as a heat overlay."""
        return attention_strip(self.preview(media), words, weights)
