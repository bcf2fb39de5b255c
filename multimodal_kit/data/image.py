"""Images in one place: PIL image → resized uint8 tensor (per item) → normalized float (per batch), and the
image :class:`~multimodal_kit.data.codec.MediaCodec`."""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from multimodal_kit.data.codec import MediaCodec
from multimodal_kit.data.problems import DataError

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


def random_shift(images: torch.Tensor, pixels: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each image by up to ``pixels`` in each direction, its edge pixels repeated into the gap (the pad and
    random crop of DrQ, Kostrikov et al. 2021): what is where *relative to each other* stays, so colours, shapes,
    sizes and spatial relations keep their meaning. images (B, C, H, W) → (B, C, H, W)."""
    if pixels <= 0:
        return images
    b, _, h, w = images.shape
    padded = torch.nn.functional.pad(images, (pixels, pixels, pixels, pixels), mode="replicate")
    offsets = torch.randint(0, 2 * pixels + 1, (2, b, 1), generator=generator).to(images.device)  # (2, B, 1)
    rows = offsets[0] + torch.arange(h, device=images.device)  # (B, H)
    cols = offsets[1] + torch.arange(w, device=images.device)  # (B, W)
    batch = torch.arange(b, device=images.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


class ImageCodec(MediaCodec):
    """Images: a value → uint8 (3, S, S) per item; a batch's ``image`` is float (B, 3, S, S), normalized.

    Args:
        image_size: images are resized to ``image_size`` × ``image_size``.
        mean: normalization mean per channel (0–1 scale).
        std: normalization standard deviation per channel (0–1 scale).
        max_image_pixels: larger images (width × height) are bad rows: decoding one would take gigabytes.
        media_column: the column name used in messages.
    """

    media = "image"
    extensions = IMAGE_EXTENSIONS

    def __init__(self, image_size: int = 64, mean: Sequence[float] = (0.5, 0.5, 0.5),
                 std: Sequence[float] = (0.5, 0.5, 0.5), max_image_pixels: int = 40_000_000,
                 media_column: str = "image") -> None:
        self.image_size = image_size
        self.max_image_pixels = max_image_pixels
        self.media_column = media_column
        self.transform = ImageTransform(image_size, mean, std)

    def feature(self) -> datasets.Image:
        return datasets.Image()

    def load(self, value: Any, row_id: str) -> torch.Tensor:
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
                        f"set {self.column_flag} to the image column.")

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

    def nbytes(self) -> int:
        return 3 * self.image_size * self.image_size

    def collate(self, items: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        return {self.key: self.transform.normalize(torch.stack(items))}

    def uncollate(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """``image`` (B, 3, S, S), normalized → uint8 (3, S, S) per item."""
        return list(self.transform.denormalize(batch[self.key]))

    def to_values(self, items: list[torch.Tensor]) -> list[Image.Image]:
        return [Image.fromarray(item.permute(1, 2, 0).cpu().numpy()) for item in items]

    def save(self, value: Image.Image, stem: Path) -> Path:
        path = stem.with_suffix(".png")
        value.save(path)
        return path
