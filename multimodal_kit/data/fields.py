"""A task's fields and the columns that feed them: which column is the medium, the target text, the references,
the id, and any further text or label field a task declares (``question``, ``answer``, ``speaker``, …).

:class:`Fields` is the declaration (from the data module's flags); :meth:`Fields.resolve` checks it against one
split without changing it (a column one split lacks says nothing about the next); :func:`read_rows` reads every
field of a split but the medium into Python lists once, in bulk, through Arrow.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.compute as pc

from multimodal_kit.data.problems import DataError

#: field names the batch contract reserves; a task's own text or label fields take other names
RESERVED = ("text", "references", "id", "input")


def column(split: datasets.Dataset, name: str) -> list[Any]:
    """All values of column ``name`` as Python objects, read through Arrow in one go (iterating
    ``split[name]`` formats row by row, ~25× slower), in the split's row order (``select``/shuffles included)."""
    return split.with_format("arrow")[name].to_pylist()


def media_paths(split: datasets.Dataset, media_column: str) -> list[str | None]:
    """The ``path`` of every row's undecoded medium (``None`` where it has none), without reading the bytes."""
    values = split.with_format("arrow")[media_column]
    if isinstance(values.type, pa.StructType) and values.type.get_field_index("path") >= 0:
        return pc.struct_field(values, "path").to_pylist()
    return [v if isinstance(v, str) else None for v in values.to_pylist()]


def media_files(split: datasets.Dataset, media_column: str) -> list[str | None]:
    """The path of every row's medium that lives in a file rather than in the dataset's bytes (else ``None``)."""
    paths = media_paths(split, media_column)
    values = split.with_format("arrow")[media_column]
    if isinstance(values.type, pa.StructType) and values.type.get_field_index("bytes") >= 0:
        stored = pc.is_valid(pc.struct_field(values, "bytes")).to_pylist()
        return [None if inside else path for path, inside in zip(paths, stored, strict=True)]
    return paths


def media_present(split: datasets.Dataset, media_column: str) -> list[bool]:
    """Whether each row has a medium in ``media_column`` (an empty cell, or neither bytes nor a path, has none)."""
    values = split.with_format("arrow")[media_column]
    present = pc.is_valid(values)
    if isinstance(values.type, pa.StructType):
        inside = [pc.is_valid(pc.struct_field(values, k)) for k in ("bytes", "path")
                  if values.type.get_field_index(k) >= 0]
        if inside:
            present = pc.and_(present, inside[0] if len(inside) == 1 else pc.or_(*inside))
    return [bool(v) for v in present.to_pylist()]


@dataclass(frozen=True)
class Fields:
    """Which columns feed which fields.

    Args:
        media: the medium's field (and batch key): ``image`` or ``audio``.
        media_column: the column holding it.
        text_column: the target text (caption, transcript, prompt); tokenized into ``text_tokens``/``text_lengths``;
            ``None``: the data has no target text (a task that predicts labels).
        captions_column: a list column of reference texts, or a list of columns holding one each; optional
            (when a split lacks it, the text is that split's only reference).
        id_column: a column naming each row; default ``id`` where a split has one, else the media file name.
        text_fields: a task's further text fields, ``{field: column}``; each becomes ``<field>_tokens`` and
            ``<field>_lengths`` in the batch and the trained tokenizer learns its words.
        label_fields: class fields, ``{field: column}``, batched as class indices (long (B,)) into the
            vocabulary of the training split's values (:func:`label_vocabularies`), e.g. a digit, a speaker or a
            question family.
        media_fields: further media fields, ``{field: column}`` (e.g. an edit's ``target`` image): each is
            checked and batched under its own name by its own codec, like the medium.
    """

    media: str
    media_column: str
    text_column: str | None = "text"
    captions_column: str | list[str] | None = "captions"
    id_column: str | None = None
    text_fields: dict[str, str] = field(default_factory=dict)
    label_fields: dict[str, str] = field(default_factory=dict)
    media_fields: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [*self.text_fields, *self.label_fields, *self.media_fields]
        taken = [name for name in names if name in (*RESERVED, self.media)]
        taken += sorted({name for name in names if names.count(name) > 1})
        stems = ("text", self.media, *self.text_fields, *self.media_fields)
        derived = [name for name in names for suffix in ("_tokens", "_lengths", "_features")
                   if name.endswith(suffix) and name.removesuffix(suffix) in stems]
        if taken or derived:
            raise DataError(f"field name(s) {taken + derived} are the batch's own keys; name the task's fields "
                            "otherwise.")

    @property
    def has_text(self) -> bool:
        """Whether any field is text (then the data needs a tokenizer)."""
        return bool(self.text_column or self.text_fields)

    def kinds(self, media_kinds: dict[str, str]) -> dict[str, str]:
        """Every field declared, by name → kind: the media fields (of ``media_kinds``: field → medium), the target
        ``text`` (unless ``text_column`` is null), ``references``, ``id``, and the task's further text and label
        fields."""
        kinds = {**media_kinds, **({"text": "text"} if self.text_column else {}), "references": "references",
                 "id": "id"}
        return kinds | {name: "text" for name in self.text_fields} | {name: "label" for name in self.label_fields}

    @property
    def media_columns(self) -> dict[str, str]:
        """Every media field's column, ``{field: column}``, the medium's first."""
        return {self.media: self.media_column, **self.media_fields}

    def resolve(self, split: datasets.Dataset, name: str, source: str) -> ResolvedFields:
        """The columns of this declaration that ``split`` has, checked: a required column it lacks is a
        :class:`DataError` naming the flag to set."""
        columns = split.column_names
        required = {"text_column": self.text_column, "media_column": self.media_column,
                    "id_column": self.id_column}
        required |= {f"text_fields.{k}": v for k, v in self.text_fields.items()}
        required |= {f"label_fields.{k}": v for k, v in self.label_fields.items()}
        required |= {f"media_fields.{k}": v for k, v in self.media_fields.items()}
        for flag, name_ in required.items():
            if name_ is not None and name_ not in columns:
                raise DataError(f"Split '{name}' of {source!r} has no column {name_!r} (--data.{flag}); its "
                                f"columns are {columns}. Set --data.{flag} to the right one.")
        captions: list[str] = []
        if isinstance(self.captions_column, list | tuple):
            missing = [c for c in self.captions_column if c not in columns]
            if missing:
                raise DataError(f"Split '{name}' of {source!r} has no column(s) {missing} of "
                                f"--data.captions_column; its columns are {columns}.")
            captions = list(self.captions_column)
        elif self.captions_column and self.captions_column in columns:
            captions = [self.captions_column]
        id_column = self.id_column or ("id" if "id" in columns else None)
        return ResolvedFields(self, captions, isinstance(self.captions_column, list | tuple), id_column)


@dataclass(frozen=True)
class ResolvedFields:
    """A :class:`Fields` declaration as one split has it: its reference columns (``[]``: the text is the only
    reference; one list column, or one column per reference) and its id column (``None``: file names)."""

    fields: Fields
    captions: list[str]
    one_per_column: bool
    id_column: str | None

    @property
    def columns(self) -> list[str]:
        """Every column read, the medium's first."""
        f = self.fields
        names = [f.media_column, f.text_column, *self.captions, self.id_column, *f.text_fields.values(),
                 *f.label_fields.values(), *f.media_fields.values()]
        return list(dict.fromkeys(n for n in names if n))


@dataclass
class Rows:
    """Every field of a split but the medium, as Python lists in row order.

    Attributes:
        texts: the target text of each row (the first entry where the column holds a list); ``None`` each
            where the data has no target text.
        references: all reference texts of each row.
        ids: each row's id.
        fields: each further text or label field's values.
    """

    texts: list[Any]
    references: list[list[Any]]
    ids: list[str]
    fields: dict[str, list[Any]]

    def __len__(self) -> int:
        return len(self.texts)

    def select(self, keep: list[int]) -> Rows:
        return Rows([self.texts[i] for i in keep], [self.references[i] for i in keep], [self.ids[i] for i in keep],
                    {k: [v[i] for i in keep] for k, v in self.fields.items()})


def with_label_names(split: datasets.Dataset, name: str) -> datasets.Dataset:
    """``split`` with a ``ClassLabel`` column ``name`` turned into its label names (e.g. spoken digits as text)."""
    feature = split.features[name]
    if not isinstance(feature, datasets.ClassLabel):
        return split
    names = feature.names
    return split.cast_column(name, datasets.Value("int64")).map(
        lambda batch: {name: [names[i] for i in batch[name]]}, batched=True,
        features=datasets.Features({**split.features, name: datasets.Value("string")}), desc="label names")


def read_rows(split: datasets.Dataset, resolved: ResolvedFields) -> Rows:
    """Read every field of ``split`` but the medium (see :class:`Rows`)."""
    f = resolved.fields
    if f.text_column is None:
        texts: list[Any] = [None] * len(split)
    else:
        texts = [t[0] if isinstance(t, list) and t else t for t in column(split, f.text_column)]
    if not resolved.captions:
        references = [[t] for t in texts] if f.text_column else [[] for _ in texts]
    elif resolved.one_per_column:  # one reference per column; empty cells skipped
        cells = zip(*(column(split, c) for c in resolved.captions), strict=True)
        references = [[r for r in row if r] or [t] for row, t in zip(cells, texts, strict=True)]
    else:
        refs = column(split, resolved.captions[0])
        references = [([r] if isinstance(r, str) else list(r)) if r else [t] for r, t in zip(refs, texts, strict=True)]
    if resolved.id_column:
        ids = [str(i) for i in column(split, resolved.id_column)]
    else:
        ids = [os.path.basename(p) if p else str(i) for i, p in enumerate(media_paths(split, f.media_column))]
    fields = {name: column(split, c) for name, c in (*f.text_fields.items(), *f.label_fields.items())}
    return Rows(texts, references, ids, fields)


def undecoded(split: datasets.Dataset, media_columns: list[str]) -> datasets.Dataset:
    """``split`` with its media columns left as ``{"bytes", "path"}`` (no decoding on access)."""
    for name in media_columns:
        feature = split.features[name]
        if hasattr(feature, "decode"):
            split = split.cast_column(name, dataclasses.replace(feature, decode=False))
    return split


def field_splits(splits: dict[str, datasets.Dataset], fields: Fields, source: str
                 ) -> tuple[dict[str, datasets.Dataset], dict[str, Rows], dict[str, dict[str, str | None]]]:
    """Map each split's columns onto ``fields``: per split, the media columns (undecoded, the medium's first),
    every other field's rows (:func:`read_rows`), and each text field's column name (for messages)."""
    media, rows, columns = {}, {}, {}
    for name, split in splits.items():
        resolved = fields.resolve(split, name, source)
        split = split.select_columns(resolved.columns)
        for label_column in dict.fromkeys(c for c in (fields.text_column, *fields.label_fields.values()) if c):
            split = with_label_names(split, label_column)
        rows[name] = read_rows(split, resolved)
        columns[name] = {"text": fields.text_column, "references": ", ".join(resolved.captions) or None,
                         **fields.text_fields}
        columns_ = list(dict.fromkeys(fields.media_columns.values()))
        media[name] = undecoded(split.select_columns(columns_), columns_)
    return media, rows, columns


def label_vocabularies(rows: Rows, label_fields: dict[str, str]) -> dict[str, list[str]]:
    """Each label field's classes: the distinct values of the training rows, as text, sorted (empty ones are
    bad rows, named by the checks). A value's class index is its position here."""
    return {name: sorted({str(v) for v in rows.fields[name] if v is not None and str(v).strip()})
            for name in label_fields}
