"""Torch datasets of a split, of ``predict`` files and of prompts, and the one collator that builds the batch.

Items are dicts of fields: each media field's tensor under its name (the medium's: ``image``/``audio``; further
ones: theirs), ``text``, ``references``, ``id``, each further text or label field a task declares, and ``input``
for predictions. :class:`PairCollator`
turns a list of them into the batch dict of the batch contract, whatever fields they carry.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import torch
from torch.utils.data import Dataset
from transformers import PreTrainedTokenizerBase

from multimodal_kit.data.codec import MediaCodec
from multimodal_kit.data.feature_cache import CachedFeatures, feature_lengths_key, features_key, pad_features
from multimodal_kit.data.fields import Rows
from multimodal_kit.data.problems import DataError
from multimodal_kit.data.text import encode_texts


class PairDataset(Dataset):
    """One split as items (see the module docstring).

    Args:
        media: the split's media columns, undecoded (``{bytes, path}``), the medium's first, each decoded by its
            codec on access; unused where ``preloaded`` holds every item's tensor already.
        rows: the split's other fields (:func:`~multimodal_kit.data.fields.read_rows`).
        codec: the medium's codec.
        random_text: pick a random reference as the item's ``text`` each time it is read (training).
        preloaded: per media field (its batch key), every item's tensor, decoded once up front; or ``None``.
        further: the codecs of further media fields (each with its ``field`` and ``media_column``).
    """

    def __init__(self, media: datasets.Dataset, rows: Rows, codec: MediaCodec, random_text: bool = False,
                 preloaded: dict[str, list[torch.Tensor]] | None = None, further: Sequence[MediaCodec] = ()) -> None:
        sizes = {len(v) for v in (preloaded or {}).values()}
        if len(media) != len(rows) or sizes - {len(rows)}:
            raise ValueError(f"{len(media)} media rows, {len(rows)} rows of fields and {sorted(sizes)} preloaded items")
        self.media = media
        self.rows = rows
        self.codec = codec
        self.codecs = [codec, *further]
        self.random_text = random_text
        self.preloaded = preloaded or {}
        self._index: dict[str, int] | None = None
        self.features: CachedFeatures | None = None  # a frozen encoder's cached outputs (see use_features)
        self.keep_media = True

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def texts(self) -> list[str]:
        return self.rows.texts

    @property
    def references(self) -> list[list[str]]:
        return self.rows.references

    @property
    def ids(self) -> list[str]:
        return self.rows.ids

    def index_of(self, item_id: str) -> int:
        """The position of the item with id ``item_id``."""
        if self._index is None:
            self._index = {item: i for i, item in enumerate(self.rows.ids)}
        return self._index[item_id]

    def value_at(self, index: int, codec: MediaCodec | None = None) -> Any:
        """The undecoded value of item ``index`` of the medium (or of ``codec``'s field): ``{bytes, path}``."""
        return self.media[index][(codec or self.codec).media_column]

    def media_at(self, index: int, codec: MediaCodec | None = None) -> torch.Tensor:
        """The media tensor of item ``index`` of the medium (or of ``codec``'s field), as its codec loads it."""
        codec = codec or self.codec
        if codec.key in self.preloaded:
            return self.preloaded[codec.key][index]
        return codec.load(self.value_at(index, codec), self.rows.ids[index])

    def use_features(self, features: CachedFeatures, keep_media: bool) -> None:
        """Give each item its cached encoder features (``<media>_features``, (N, D)); without ``keep_media``
        instead of its media, which is then not decoded at all (training); with it (evaluation, whose pictures
        show the media) beside them."""
        if len(features) != len(self):
            raise ValueError(f"{len(features)} cached features for {len(self)} items")
        self.features, self.keep_media = features, keep_media

    def __getitem__(self, index: int) -> dict[str, Any]:
        rows = self.rows
        references = rows.references[index]
        text = rows.texts[index]
        if self.random_text and text is not None and len(references) > 1:
            text = references[int(torch.randint(len(references), ()).item())]
        item: dict[str, Any] = {"references": references, "id": rows.ids[index]}
        if text is not None:  # (data without a target text has none)
            item["text"] = text
        codecs = self.codecs if self.keep_media else self.codecs[1:]
        row = self.media[index] if any(c.key not in self.preloaded for c in codecs) else {}  # every column, once
        for codec in codecs:
            item[codec.key] = self.preloaded[codec.key][index] if codec.key in self.preloaded else \
                codec.load(row[codec.media_column], rows.ids[index])
        if self.features is not None:
            item[features_key(self.codec.media)] = self.features[index]
        return item | {name: values[index] for name, values in rows.fields.items()}


class PredictFiles(Dataset):
    """Media files given to ``predict`` (``--data.predict_path``): one item per file."""

    def __init__(self, files: Sequence[Path], codec: MediaCodec) -> None:
        self.files = list(files)
        self.codec = codec

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.files[index]
        return {self.codec.media: self.codec.load_file(path), "id": path.name, "input": str(path)}


class PredictRecords(Dataset):
    """Records given to ``predict`` (``--data.predict_path records.jsonl``): a media file and the task's further
    text fields each (and the files of any further media fields it names); ids are the files' names."""

    def __init__(self, records: Sequence[dict[str, Any]], codec: MediaCodec, text_fields: Sequence[str],
                 further: Sequence[MediaCodec] = ()) -> None:
        self.records = list(records)
        self.codec = codec
        self.text_fields = tuple(text_fields)
        self.further = tuple(further)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        path = Path(record["file_name"])
        fields = {name: str(record[name]) for name in self.text_fields}
        fields |= {c.key: c.load_file(Path(record[c.key])) for c in self.further if record.get(c.key) is not None}
        return {self.codec.media: self.codec.load_file(path), "id": path.name, "input": str(path), **fields}


def read_text_file(path: Path) -> str:
    """A text file's content: UTF-8, or UTF-8 / UTF-16 with a byte-order mark (as editors on Windows save it);
    anything else is a :class:`DataError` naming the file and the encoding to use."""
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"  # plain UTF-8 too
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text (byte {error.start}: {raw[error.start:error.start + 4]!r}); save it "
                        "as UTF-8 (or UTF-16 with a byte-order mark).") from None


class Prompts(Dataset):
    """Text prompts given to ``predict`` for generation (``--data.predict_path prompts.txt``, one per line; blank
    lines skipped): one item per prompt, ids ``prompt_000``, ``prompt_001``, …"""

    def __init__(self, path: Path) -> None:
        # lines as an editor counts them (\n, \r\n or \r), not str.splitlines's (which also splits at \x85, \u2028, …)
        lines = [line.strip() for line in re.split(r"\r\n|\r|\n", read_text_file(path))]
        kept = [(number, line) for number, line in enumerate(lines, start=1) if line]
        self.prompts = [line for _, line in kept]
        self.line_numbers = [number for number, _ in kept]  # each prompt's line in the file, blank lines counted
        if not self.prompts:
            raise DataError(f"{path}: no prompts; write one prompt per line.")

    def __len__(self) -> int:
        return len(self.prompts)

    def __getitem__(self, index: int) -> dict[str, Any]:
        text = self.prompts[index]
        return {"text": text, "references": [text], "id": f"prompt_{index:03d}", "input": text}


class PairCollator:
    """Items → the batch dict: each media field batched by its codec; each text field (the target ``text`` and each
    of ``text_fields``) kept as its strings and tokenized into ``<field>_tokens``/``<field>_lengths`` (``BOS … EOS``,
    PAD-padded); each label field as class indices, long (B,); every other field (references, ids) as a list.

    Args:
        codec: the medium's codec.
        tokenizer: the data's tokenizer; ``None`` for items without text.
        text_fields: the further text fields to tokenize.
        labels: each label field's classes: its values become class indices, long (B,).
        further: the codecs of further media fields.
    """

    def __init__(self, codec: MediaCodec, tokenizer: PreTrainedTokenizerBase | None, text_fields: Sequence[str] = (),
                 labels: dict[str, list[str]] | None = None, further: Sequence[MediaCodec] = ()) -> None:
        self.codec = codec
        self.codecs = [codec, *further]
        self.tokenizer = tokenizer
        self.text_fields = tuple(text_fields)
        self.classes = {name: {c: i for i, c in enumerate(names)} for name, names in (labels or {}).items()}

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        cached = features_key(self.codec.media)
        batch: dict[str, Any] = {}
        for codec in self.codecs:
            if codec.key in items[0]:
                batch |= codec.collate([item[codec.key] for item in items])
        if cached in items[0]:
            batch[cached], batch[feature_lengths_key(self.codec.media)] = pad_features([item[cached] for item in items])
        media = {codec.key for codec in self.codecs} | {cached}
        for key in items[0]:
            if key not in media:
                batch[key] = [item[key] for item in items]
        for name, classes in self.classes.items():
            if name in batch:
                batch[name] = torch.tensor([classes[str(v)] for v in batch[name]], dtype=torch.long)
        for name in ("text", *self.text_fields):
            if name in batch and self.tokenizer is not None:
                batch[f"{name}_tokens"], batch[f"{name}_lengths"] = encode_texts(self.tokenizer, batch[name])
        return batch
