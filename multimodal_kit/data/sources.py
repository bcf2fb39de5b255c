"""Resolve ``--data.source`` to a ``DatasetDict`` with ``train``/``validation``/``test`` splits.

A source is an embedded default's name, a local directory (HF ``imagefolder``/``audiofolder`` layout, any other
layout ``datasets.load_dataset`` reads, or a ``save_to_disk`` folder), or a hub dataset id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets

from multimodal_kit.data.embedded import EMBEDDED, load_embedded

VALIDATION_NAMES = ("validation", "val", "valid", "dev")


def load_source(source: str, *, subset: str | None = None, revision: str | None = None,
                embedded_options: dict[str, Any] | None = None, cache_dir: str | None = None,
                audio_column: str | None = None) -> datasets.DatasetDict:
    """Load every split of ``source`` (see the module docstring). With ``audio_column``, a local directory in the
    ``audiofolder`` layout is read by :func:`read_audiofolder` into that column."""
    if source in EMBEDDED:
        return load_embedded(source, embedded_options, cache_dir=cache_dir)
    if embedded_options:
        raise ValueError(f"--data.embedded_options only applies to the embedded sets {sorted(EMBEDDED)}, "
                         f"not to --data.source={source!r}.")
    path = Path(source).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"--data.source={source!r} is a file; give a directory with split folders "
                             "(train/, validation/, test/) holding the media and a metadata.jsonl or metadata.csv.")
        if (path / "dataset_dict.json").is_file():
            return datasets.load_from_disk(str(path))
        if audio_column and _metadata_files(path):
            return read_audiofolder(path, audio_column)
        try:
            loaded = datasets.load_dataset(str(path), name=subset, cache_dir=cache_dir)
        except Exception as error:  # datasets raises many types here; say which source failed and why
            raise ValueError(f"--data.source={source!r}: the local directory could not be read as a dataset: "
                             f"{error}") from error
        return _as_dict(loaded, source)
    looks_like_path = source.startswith((".", "/", "~")) or "\\" in source or source.count("/") > 1
    if looks_like_path:
        raise FileNotFoundError(f"--data.source={source!r}: no such directory. Give an existing directory, an "
                                f"embedded set ({', '.join(sorted(EMBEDDED))}) or a hub dataset id.")
    try:
        loaded = datasets.load_dataset(source, name=subset, revision=revision, cache_dir=cache_dir)
    except Exception as error:
        raise ValueError(
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


def read_audiofolder(root: Path, audio_column: str = "audio") -> datasets.DatasetDict:
    """An ``audiofolder``-layout directory → splits whose ``audio_column`` holds ``{bytes: None, path}`` (an
    ``Audio`` feature). ``datasets``' own ``audiofolder`` builder encodes every file with torchcodec, which needs
    FFmpeg and a matching torch build; the kit decodes audio itself, so it only records the paths."""
    splits = {}
    for split, metadata in _metadata_files(root).items():
        table = (datasets.Dataset.from_json(str(metadata)) if metadata.suffix == ".jsonl"
                 else datasets.Dataset.from_csv(str(metadata)))
        if "file_name" not in table.column_names:
            raise ValueError(f"{metadata}: no 'file_name' column; each row must name its audio file "
                             f"(columns: {table.column_names}).")
        paths = [{"bytes": None, "path": str((metadata.parent / str(name)).absolute())}
                 for name in list(table["file_name"])]
        table = table.remove_columns("file_name").add_column(audio_column, paths)
        splits[split] = table.cast_column(audio_column, datasets.Audio())
    return datasets.DatasetDict(splits)


def _as_dict(loaded: Any, source: str) -> datasets.DatasetDict:
    if isinstance(loaded, datasets.DatasetDict):
        return loaded
    raise ValueError(f"--data.source={source!r}: expected a dataset with named splits, got {type(loaded).__name__}.")


def resolve_splits(dataset: datasets.DatasetDict, *, train_split: str, validation_split: str | None,
                   test_split: str | None, val_fraction: float, seed: int, source: str) -> dict[str, datasets.Dataset]:
    """Map the source's split names onto ``train``/``validation``/``test``.

    A missing validation split is carved from train (``val_fraction`` of it, shuffled with ``seed``); a missing
    test split is left out (``test`` then fails with a clear error).
    """
    available = list(dataset.keys())
    if train_split not in dataset:
        raise ValueError(f"--data.train_split={train_split!r} is not a split of {source!r}; its splits are "
                         f"{available}.")
    splits = {"train": dataset[train_split]}
    # datasets renames data files called dev/val/valid to the split "validation": look for those names too
    names = [validation_split, *VALIDATION_NAMES] if validation_split else list(VALIDATION_NAMES)
    found = next((n for n in names if n in dataset), None)
    if found is not None:
        splits["validation"] = dataset[found]
    elif validation_split:
        raise ValueError(f"--data.validation_split={validation_split!r} is not a split of {source!r}; its splits "
                         f"are {available}. Leave it unset to carve validation data from train.")
    else:
        parts = splits["train"].train_test_split(test_size=val_fraction, seed=seed, shuffle=True)
        splits["train"], splits["validation"] = parts["train"], parts["test"]
    if test_split and test_split in dataset:
        splits["test"] = dataset[test_split]
    return splits
