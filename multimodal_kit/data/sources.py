"""Resolve ``--data.source`` to a ``DatasetDict`` with ``train``/``validation``/``test`` splits.

A source is an embedded default's name, a local directory (HF ``imagefolder``/``audiofolder`` layout, any other
layout ``datasets.load_dataset`` reads, or a ``save_to_disk`` folder), or a hub dataset id.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import datasets

from multimodal_kit.data.embedded import EMBEDDED, load_embedded
from multimodal_kit.data.problems import DataError, Problem, problems_error
from multimodal_kit.errors import ConfigError

VALIDATION_NAMES = ("validation", "val", "valid", "dev")


def load_source(source: str, *, media: datasets.Image | datasets.Audio, media_column: str,
                further_media: dict[str, Any] | None = None, subset: str | None = None, revision: str | None = None,
                embedded_options: dict[str, Any] | None = None, cache_dir: str | None = None,
                skipped: dict[str, list[Problem]] | None = None) -> datasets.DatasetDict:
    """Load every split of ``source`` (see the module docstring). A local directory in the ``imagefolder`` /
    ``audiofolder`` layout is read by :func:`read_mediafolder` into ``media_column`` as a ``media`` feature (and
    each column of ``further_media``, ``{column: feature}``, from the file names it holds); ``skipped`` collects its unreadable metadata lines instead of failing on them (``--data.bad_rows skip``)."""
    if source in EMBEDDED:
        return load_embedded(source, embedded_options, cache_dir=cache_dir)
    if embedded_options:
        raise ConfigError(f"--data.embedded_options only applies to the embedded sets {sorted(EMBEDDED)}, "
                         f"not to --data.source={source!r}: drop it (--data.init_args.embedded_options null).")
    path = Path(source).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"--data.source={source!r} is a file; give a directory with split folders "
                             "(train/, validation/, test/) holding the media and a metadata.jsonl or metadata.csv.")
        if (path / "dataset_dict.json").is_file():
            return datasets.load_from_disk(str(path))
        if _metadata_files(path):
            return read_mediafolder(path, media_column, media, skipped, further_media)
        try:
            loaded = datasets.load_dataset(str(path), name=subset, cache_dir=cache_dir)
        except Exception as error:  # datasets raises many types here; say which source failed and why
            raise ConfigError(f"--data.source={source!r}: the local directory could not be read as a dataset: "
                             f"{error}") from error
        return _as_dict(loaded, source)
    looks_like_path = source.startswith((".", "/", "~")) or "\\" in source or source.count("/") > 1
    if looks_like_path:
        raise ConfigError(f"--data.source={source!r}: no such directory. Give an existing directory, an "
                                f"embedded set ({', '.join(sorted(EMBEDDED))}) or a hub dataset id.")
    try:
        loaded = datasets.load_dataset(source, name=subset, revision=revision, cache_dir=cache_dir)
    except Exception as error:
        raise ConfigError(
            f"--data.source={source!r} is neither an embedded set ({', '.join(sorted(EMBEDDED))}) nor an existing "
            f"directory, and loading it as a hub dataset failed: {error}"
        ) from error
    return _as_dict(loaded, source)


METADATA_NAMES = ("metadata.jsonl", "metadata.csv")


def _metadata_files(root: Path) -> dict[str, Path]:
    """``{split: metadata file}`` of a folder layout: one per split folder, or one at the root (all ``train``)."""
    found = {folder.name: folder / name for folder in sorted(root.iterdir()) if folder.is_dir()
             for name in METADATA_NAMES if (folder / name).is_file()}
    at_root = [root / name for name in METADATA_NAMES if (root / name).is_file()]
    return found or ({"train": at_root[0]} if at_root else {})


def read_mediafolder(root: Path, media_column: str, feature: datasets.Image | datasets.Audio,
                     skipped: dict[str, list[Problem]] | None = None, further_media: dict[str, Any] | None = None
                     ) -> datasets.DatasetDict:
    """An ``imagefolder``/``audiofolder``-layout directory → splits whose ``media_column`` holds
    ``{bytes: None, path}`` (an ``Image`` or ``Audio`` feature, decoded later by the kit itself: ``datasets``' own
    builders encode every audio file with torchcodec, which needs FFmpeg and a matching torch build, and fail on
    the first bad metadata line without naming it).

    Metadata lines that are not UTF-8, not valid JSON/CSV, or lack ``file_name`` are problems: raised together in
    one :class:`DataError`, or, when ``skipped`` is given (``--data.bad_rows skip``), left out and recorded there
    under their split's name. A column of ``further_media`` (``{column: feature}``: another media field, e.g. an
    edit's target image) holds file names relative to the metadata file, read like ``file_name``.
    """
    splits = {}
    for split, metadata in _metadata_files(root).items():
        rows, problems, _ = read_metadata(metadata)
        if problems:
            if skipped is None:
                raise problems_error(problems, str(metadata),
                                     "Fix these lines (or pass --data.bad_rows skip to leave them out) and run again.")
            skipped.setdefault(split, []).extend(problems)
        if not rows:
            raise DataError(f"{metadata}: no rows; each line must name a media file (file_name) and its text.")
        columns = list(dict.fromkeys(key for row in rows for key in row))
        table = {c: [row.get(c) for row in rows] for c in columns if c != "file_name"}
        folder = metadata.parent.absolute()  # once: per row it costs ~50 µs, a second on 20k rows
        table[media_column] = [{"bytes": None, "path": str(folder / str(row["file_name"]))} for row in rows]
        features = {media_column: feature, **{c: f for c, f in (further_media or {}).items() if c in table}}
        for column in features:
            if column != media_column:  # an empty cell stays empty: a bad row, named by the checks
                table[column] = [{"bytes": None, "path": str(folder / str(name))} if name else None
                                 for name in table[column]]
        dataset = datasets.Dataset.from_dict(table)
        for column, column_feature in features.items():
            dataset = dataset.cast_column(column, column_feature)
        splits[split] = dataset
    return datasets.DatasetDict(splits)


def read_metadata(path: Path, required: tuple[str, ...] = ()
                  ) -> tuple[list[dict[str, Any]], list[Problem], list[int]]:
    """The rows of a ``metadata.jsonl``/``metadata.csv`` file (UTF-8, a byte-order mark allowed), a
    :class:`Problem` for each line that cannot be read: not UTF-8, not valid JSON (or a CSV row with the wrong
    number of fields), no ``file_name``, or (JSON lines) without one of the ``required`` keys; and each row's own
    line number in the file."""
    rows: list[dict[str, Any]] = []
    problems: list[Problem] = []
    numbers: list[int] = []
    lines: list[tuple[int, str]] = []
    for number, raw in enumerate(path.read_bytes().removeprefix(b"\xef\xbb\xbf").splitlines(), start=1):
        try:
            lines.append((number, raw.decode("utf-8")))
        except UnicodeDecodeError as error:
            problems.append(Problem(f"{path.name} line {number}",
                                    f"not UTF-8 (byte 0x{raw[error.start]:02x} at column {error.start + 1}); "
                                    "re-encode the file as UTF-8, e.g. `iconv -f latin1 -t utf-8`"))
    if path.suffix == ".jsonl":
        for number, line in lines:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                problems.append(Problem(f"{path.name} line {number}", f"not valid JSON ({error.msg})"))
                continue
            if not isinstance(row, dict):
                problems.append(Problem(f"{path.name} line {number}", "not a JSON object"))
            elif not row.get("file_name"):
                problems.append(Problem(f"{path.name} line {number}", "no 'file_name' naming the media file"))
            elif missing := [key for key in required if key not in row]:
                problems.append(Problem(f"{path.name} line {number}", f"no {', '.join(map(repr, missing))}"))
            else:
                rows.append(row)
                numbers.append(number)
        return rows, problems, numbers
    if not lines or lines[0][0] != 1:
        raise DataError(f"{path}: the header line is missing or not UTF-8; re-encode the file as UTF-8.")
    reader = csv.reader([line for _, line in lines])
    header = next(reader)
    if "file_name" not in header:
        raise DataError(f"{path}: no 'file_name' column; each row must name its media file (columns: {header}).")
    for (number, _), fields in zip(lines[1:], reader, strict=False):
        if not fields:
            continue
        if len(fields) != len(header):
            problems.append(Problem(f"{path.name} line {number}",
                                    f"{len(fields)} fields, the header has {len(header)} (quote fields with commas)"))
        elif not fields[header.index("file_name")]:
            problems.append(Problem(f"{path.name} line {number}", "no 'file_name' naming the media file"))
        else:
            rows.append(dict(zip(header, fields, strict=True)))
            numbers.append(number)
    return rows, problems, numbers


def _as_dict(loaded: Any, source: str) -> datasets.DatasetDict:
    if isinstance(loaded, datasets.DatasetDict):
        return loaded
    raise ConfigError(f"--data.source={source!r}: expected a dataset with named splits, got {type(loaded).__name__}.")


def split_by_column(dataset: datasets.DatasetDict, column: str, source: str) -> datasets.DatasetDict:
    """Pool the splits of ``dataset`` and divide the rows by the value of ``column`` (``--data.split_column``)."""
    pooled = datasets.concatenate_datasets(list(dataset.values())) if len(dataset) > 1 else next(iter(dataset.values()))
    if column not in pooled.column_names:
        raise ConfigError(f"--data.split_column={column!r}: {source!r} has no such column; its columns are "
                          f"{pooled.column_names}.")
    values = pooled.with_format("arrow")[column].to_pylist()
    rows: dict[str, list[int]] = {}
    for i, value in enumerate(values):
        rows.setdefault(str(value), []).append(i)
    return datasets.DatasetDict({name: pooled.select(indices) for name, indices in rows.items()})


def resolve_splits(dataset: datasets.DatasetDict, *, train_split: str, validation_split: str | None,
                   test_split: str | None, val_fraction: float, seed: int, source: str) -> dict[str, datasets.Dataset]:
    """Map the source's split names onto ``train``/``validation``/``test``.

    A missing validation split is carved from train (``val_fraction`` of it, shuffled with ``seed``); a missing
    test split is left out (``test`` then fails with a clear error).
    """
    available = list(dataset.keys())
    if train_split not in dataset:
        raise ConfigError(f"--data.train_split={train_split!r} is not a split of {source!r}; its splits are "
                         f"{available}.")
    splits = {"train": dataset[train_split]}
    # datasets renames data files called dev/val/valid to the split "validation": look for those names too
    names = [validation_split, *VALIDATION_NAMES] if validation_split else list(VALIDATION_NAMES)
    found = next((n for n in names if n in dataset), None)
    if found is not None:
        splits["validation"] = dataset[found]
    elif validation_split:
        raise ConfigError(f"--data.validation_split={validation_split!r} is not a split of {source!r}; its splits "
                         f"are {available}. Leave it unset to carve validation data from train.")
    else:
        parts = splits["train"].train_test_split(test_size=val_fraction, seed=seed, shuffle=True)
        splits["train"], splits["validation"] = parts["train"], parts["test"]
    if test_split and test_split in dataset:
        splits["test"] = dataset[test_split]
    return splits
