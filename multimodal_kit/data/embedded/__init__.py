"""Embedded default datasets: generated offline and deterministically on first use, then cached on disk.

A generator is registered under a name (``--data.source shapes``; a task adds its own with
:func:`register_embedded`); its output is a ``datasets.DatasetDict``
saved with ``save_to_disk`` under ``<cache_dir>/<name>/<config hash>``. A file lock makes concurrent processes
(DDP ranks, parallel test workers) generate a set once and share it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets
from filelock import FileLock

from multimodal_kit.data.embedded import shapes, shapes_questions, spoken
from multimodal_kit.errors import ConfigError
from multimodal_kit.utils import cache_root, rank_zero_info


@dataclasses.dataclass(frozen=True)
class EmbeddedSet:
    """How to build one embedded set: its config class, a split generator and the HF features."""

    config_class: type
    generate_split: Callable[..., dict[str, list]]
    features: datasets.Features


_SCENE_OBJECT = {k: datasets.Value("string") for k in ("shape", "color", "size")} | {
    "x": datasets.Value("float32"),
    "y": datasets.Value("float32"),
}

EMBEDDED: dict[str, EmbeddedSet] = {
    "shapes": EmbeddedSet(
        config_class=shapes.ShapesConfig,
        generate_split=shapes.generate_split,
        features=datasets.Features(
            {
                "image": datasets.Image(),
                "text": datasets.Value("string"),
                "captions": [datasets.Value("string")],
                "id": datasets.Value("string"),
                "num_objects": datasets.Value("int32"),
                "relation": datasets.Value("string"),
                "objects": [_SCENE_OBJECT],
            }
        ),
    ),
    "shapes_qa": EmbeddedSet(
        config_class=shapes_questions.ShapesQuestionsConfig,
        generate_split=shapes_questions.generate_split,
        features=datasets.Features({"image": datasets.Image(), **{k: datasets.Value("string") for k in (
            "question", "answer", "family", "id")}}),
    ),
    "spoken": EmbeddedSet(
        config_class=spoken.SpokenConfig,
        generate_split=spoken.generate_split,
        features=datasets.Features(
            {
                "audio": datasets.Audio(sampling_rate=16_000),
                "text": datasets.Value("string"),
                "id": datasets.Value("string"),
                "voice": datasets.Value("string"),
                "rate_wpm": datasets.Value("int32"),
                "pitch": datasets.Value("int32"),
                "snr_db": datasets.Value("float32"),
                "seconds": datasets.Value("float32"),
            }
        ),
    ),
}


def register_embedded(name: str, spec: EmbeddedSet) -> EmbeddedSet:
    """Add an embedded set under ``name`` (``--data.source <name>``) from a task's own file, e.g. a set derived
    from ``shapes``; an existing name is refused (the cached sets of the kit's own would be shadowed)."""
    if name in EMBEDDED and EMBEDDED[name] is not spec:
        raise ConfigError(f"an embedded set named {name!r} exists already; register yours under another name.")
    EMBEDDED[name] = spec
    return spec


def embedded_config(name: str, options: dict[str, Any] | None = None) -> Any:
    """The generator config of embedded set ``name`` with ``options`` applied; a clear error for unknown keys."""
    spec = EMBEDDED[name]
    known = {f.name for f in dataclasses.fields(spec.config_class)}
    unknown = sorted(set(options or {}) - known)
    if unknown:
        raise ConfigError(
            f"--data.embedded_options: unknown key(s) {unknown} for the embedded set '{name}'; "
            f"known keys: {sorted(known - {'version'})}."
        )
    return spec.config_class(**(options or {}))


def _storage_features(features: datasets.Features) -> datasets.Features:
    """``features`` with media columns as their plain ``{bytes, path}`` storage: a generator yields encoded files,
    and ``datasets``' own audio encoder would need torchcodec (casting the column afterwards does not)."""
    blob = {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
    return datasets.Features({k: blob if isinstance(v, datasets.Audio | datasets.Image) else v
                              for k, v in features.items()})


def load_embedded(name: str, options: dict[str, Any] | None = None, cache_dir: str | Path | None = None,
                  progress: bool = True) -> datasets.DatasetDict:
    """Load embedded set ``name``, generating and caching it first if needed.

    Args:
        name: a key of :data:`EMBEDDED`.
        options: generator options (fields of the set's config class), e.g. ``{"num_train": 512}``.
        cache_dir: root of the cache; default ``$MMKIT_CACHE`` or ``~/.cache/multimodal_kit``.
        progress: show a progress bar while generating.
    """
    spec = EMBEDDED[name]
    config = embedded_config(name, options)
    # options left at None are not part of the key, so adding an optional one keeps the sets cached before
    fields = {k: v for k, v in dataclasses.asdict(config).items() if v is not None}
    key = hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]
    root = Path(cache_dir) if cache_dir is not None else cache_root() / "datasets"
    target = root / name / key
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not (target / "dataset_dict.json").is_file():
            rank_zero_info(f"Generating the embedded '{name}' set into {target} (once; cached afterwards)")
            storage = _storage_features(spec.features)
            splits = {
                split: datasets.Dataset.from_dict(spec.generate_split(config, split, progress=progress),
                                                  features=storage).cast(spec.features)
                for split in config.split_sizes()
            }
            tmp = target.with_name(target.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            datasets.DatasetDict(splits).save_to_disk(str(tmp))
            (tmp / "generator_config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2))
            tmp.rename(target)
    return datasets.load_from_disk(str(target))
