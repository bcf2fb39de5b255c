"""``MediaCodec``: everything the kit does with one medium's values, in one object per modality.

A codec decodes a dataset value (``{bytes, path}``, a path, a decoded value) into an item tensor, batches item
tensors into the batch's entries, takes a batch apart again, turns item tensors into values that can be saved or
played (PIL images, ``{array, sampling_rate}``) and saves them. It knows nothing of splits, tokenizers or
Lightning, so datasets, evaluators, callbacks and the prediction writer share it; pictures and W&B objects live
in :mod:`multimodal_kit.presenters`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import torch


class MediaCodec(ABC):
    """One medium's decoding, batching and saving (see the module docstring)."""

    #: the medium's field name and batch key (``image``, ``audio``)
    media: ClassVar[str]
    #: file suffixes ``predict`` reads from a directory
    extensions: ClassVar[tuple[str, ...]] = ()
    #: the column the media come from, named in messages (the data module sets it from its fields)
    media_column: str

    @abstractmethod
    def feature(self) -> Any:
        """The ``datasets`` feature of the media column of a local folder (``datasets.Image()``, ``Audio()``)."""

    @abstractmethod
    def load(self, value: Any, row_id: str) -> torch.Tensor:
        """One media value → the item tensor; bad media raise :class:`~multimodal_kit.data.problems.DataError`
        naming ``row_id`` and what is wrong."""

    def load_file(self, path: Path) -> torch.Tensor:
        """One media file (for ``predict``) → the item tensor."""
        return self.load(str(path), str(path))

    def conversion_note(self, value: Any) -> str | None:
        """What loading ``value`` changes that a user may want to know (e.g. stereo mixed to mono), or ``None``."""
        return None

    @abstractmethod
    def nbytes(self) -> int:
        """Bytes one decoded item takes in memory (an estimate, for automatic preloading)."""

    @abstractmethod
    def collate(self, items: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Item tensors → the medium's entries of the batch dict."""

    @abstractmethod
    def uncollate(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Inverse of :meth:`collate`: the medium's entries of a batch → one item tensor each, as :meth:`load`
        makes them."""

    @abstractmethod
    def to_values(self, items: list[torch.Tensor]) -> list[Any]:
        """Item tensors → values :meth:`load` accepts, which can be saved or played."""

    @abstractmethod
    def save(self, value: Any, stem: Path) -> Path:
        """Write one value (from :meth:`to_values`) as ``stem`` plus the medium's suffix; return the path."""
