"""``MediaCodec``: everything the kit does with one medium's values, in one object per modality.

A codec decodes a dataset value (``{bytes, path}``, a path, a decoded value) into an item tensor, batches item
tensors into the batch's entries, takes a batch apart again, turns item tensors into values that can be saved or
played (PIL images, ``{array, sampling_rate}``) and saves them. It knows nothing of splits, tokenizers or
Lightning, so datasets, evaluators, callbacks and the prediction writer share it; pictures and W&B objects live
in :mod:`multimodal_kit.presenters`.
"""

from __future__ import annotations

import copy
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
    #: the field this codec batches, when it is not the medium's own (a further media field, e.g. ``target``)
    field: str | None = None

    @property
    def key(self) -> str:
        """The field's batch key (``image``, ``audio``, or a further media field's name such as ``target``); a
        codec's entries are ``<key>`` and, for media of varying length, ``<key>_lengths``."""
        return self.field or self.media

    @property
    def column_flag(self) -> str:
        """The flag that names this codec's column, for messages."""
        return "--data.media_column" if self.field is None else f"--data.media_fields.{self.field}"

    def for_field(self, name: str, column: str) -> MediaCodec:
        """This codec (its settings shared) for another media field: batched as ``name``, read from ``column``."""
        codec = copy.copy(self)
        codec.field, codec.media_column = name, column
        return codec

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


def further_codecs(codec: MediaCodec, media_fields: dict[str, str | dict[str, Any]]) -> list[MediaCodec]:
    """One codec per further media field (``--data.media_fields``): ``{field: column}`` shares ``codec`` (the
    data's medium, its settings); ``{field: {column: …, medium: …, <settings>}}`` is built by that medium's
    registered codec factory (:class:`~multimodal_kit.media.MediumSpec`) with those settings."""
    from multimodal_kit.errors import ConfigError
    from multimodal_kit.media import medium_spec

    codecs = []
    for name, spec in media_fields.items():
        if isinstance(spec, str):
            codecs.append(codec.for_field(name, spec))
            continue
        settings = dict(spec)
        column, medium = settings.pop("column", name), settings.pop("medium", codec.media)
        if medium == codec.media and not settings:
            codecs.append(codec.for_field(name, column))
            continue
        factory = medium_spec(medium).codec
        if factory is None:
            raise ConfigError(f"--data.media_fields.{name}: the medium {medium!r} registers no codec factory; give "
                              "its MediumSpec a codec=… to read it as a further field.")
        try:
            built = factory(**settings)
        except TypeError as error:
            raise ConfigError(f"--data.media_fields.{name}: {error}; the settings of a {medium!r} field are its "
                              "codec's arguments.") from error
        codecs.append(built.for_field(name, column))
    return codecs
