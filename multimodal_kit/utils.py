"""Small helpers shared across the kit: cache location, rank-zero console output, classes by import path."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from lightning.pytorch.utilities import rank_zero_info as _rank_zero_info
from lightning.pytorch.utilities import rank_zero_warn as _rank_zero_warn


def cache_root() -> Path:
    """The kit's cache directory: ``$MMKIT_CACHE`` or ``~/.cache/multimodal_kit``."""
    return Path(os.environ.get("MMKIT_CACHE", Path.home() / ".cache" / "multimodal_kit")).expanduser()


def kit_cache(kind: str, cache_dir: str | None = None) -> Path:
    """The kit's cache of one ``kind`` (``features``, ``media_checks``): ``<cache_dir>/multimodal_kit_<kind>``
    when a data module names a ``cache_dir``, else ``$MMKIT_CACHE/<kind>``."""
    return Path(cache_dir) / f"multimodal_kit_{kind}" if cache_dir else cache_root() / kind


def rank_zero_info(message: str) -> None:
    """Print ``message`` once (rank zero only) through Lightning's logger."""
    _rank_zero_info(message)


def rank_zero_warn(message: str) -> None:
    """Warn ``message`` once (rank zero only) through Lightning's warnings."""
    _rank_zero_warn(message)


def import_class(path: str) -> type:
    """The class (or any object) at a dotted import path, ``package.module.Name``."""
    module, _, name = path.rpartition(".")
    if not module:
        raise ImportError(f"{path!r} is not a dotted import path (package.module.Name)")
    return getattr(importlib.import_module(module), name)
