"""Where a run lives: its directory's name (``<Method>-<Data>-<time>``), the latest run of an experiment, and
the flags read before the parser (``--ckpt_path``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def class_name(spec: Any) -> str:
    """The short class name of a ``class_path``/``init_args`` config section."""
    return str(spec.class_path).rsplit(".", 1)[-1]


def experiment_name(config: Any) -> str:
    """``<Method>-<Data>`` (e.g. ``Seq2Seq-ImageCaption``): run directory names and W&B groups."""
    return f"{class_name(config.model)}-{class_name(config.data).replace('DataModule', '')}"


def latest_run(root: Path, name: str) -> Path | None:
    """The newest ``root/<name>-<time>`` run directory holding a checkpoint to resume (``last.ckpt`` or
    ``interrupted.ckpt``), or ``None``."""
    runs = sorted(root.glob(f"{name}-*"), reverse=True)  # names end in a sortable time stamp
    return next((run.absolute() for run in runs if any((run / "checkpoints").glob("*.ckpt"))), None)


def flag_value(args: list[str], flag: str) -> str | None:
    """The value given to ``flag`` in ``args`` (``--flag value`` or ``--flag=value``), or ``None``."""
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None
