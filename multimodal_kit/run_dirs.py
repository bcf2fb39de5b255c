"""Where a run lives: its directory's name (``<Method>-<Data>-<time>``), the latest run of an experiment, and
the flags read before the parser (``--ckpt_path``)."""

from __future__ import annotations

import os
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
    newest = {run: max((c.stat().st_mtime for c in (run / "checkpoints").glob("*.ckpt")), default=None)
              for run in root.glob(f"{name}-*")}  # by the newest checkpoint: names may be times or job ids
    held = [run for run, when in newest.items() if when is not None]
    return max(held, key=lambda run: newest[run]).absolute() if held else None


def flag_value(args: list[str], flag: str) -> str | None:
    """The value given to ``flag`` in ``args`` (``--flag value`` or ``--flag=value``), or ``None``."""
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def launcher_run_id() -> str | None:
    """A run name every process of one job agrees on, from the launcher's environment: ``slurm<job id>`` (an array
    task: ``slurm<array job>_<task>``; kept when SLURM requeues the job, so it resumes in the same directory) or
    ``torchrun-<rdzv id>``; ``None`` outside such a job (each run is then named by its start time)."""
    if os.environ.get("SLURM_JOB_ID") and os.environ.get("SLURM_JOB_NAME") not in ("bash", "interactive"):
        array = os.environ.get("SLURM_ARRAY_JOB_ID")
        return f"slurm{array}_{os.environ.get('SLURM_ARRAY_TASK_ID')}" if array else f"slurm{os.environ['SLURM_JOB_ID']}"
    if os.environ.get("TORCHELASTIC_RUN_ID") and os.environ.get("TORCHELASTIC_RUN_ID") != "none":
        return f"torchrun-{os.environ['TORCHELASTIC_RUN_ID']}"
    return None
