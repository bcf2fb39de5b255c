"""Small helpers shared across the kit: cache location and rank-zero console output."""

from __future__ import annotations

import os
from pathlib import Path

from lightning.pytorch.utilities import rank_zero_info as _rank_zero_info


def cache_root() -> Path:
    """The kit's cache directory: ``$MMKIT_CACHE`` or ``~/.cache/multimodal_kit``."""
    return Path(os.environ.get("MMKIT_CACHE", Path.home() / ".cache" / "multimodal_kit")).expanduser()


def rank_zero_info(message: str) -> None:
    """Print ``message`` once (rank zero only) through Lightning's logger."""
    _rank_zero_info(message)
