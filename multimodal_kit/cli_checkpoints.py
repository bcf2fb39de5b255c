"""What the CLI resolves before it builds anything: the run directory, the checkpoint behind ``--ckpt_path last`` or
``best``, and whether a checkpoint fits the config."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from multimodal_kit.checkpoints import checkpoint_config, load_checkpoint
from multimodal_kit.errors import ConfigError
from multimodal_kit.interruption import INTERRUPTED, LAST, resume_checkpoint
from multimodal_kit.run_dirs import experiment_name, latest_run, launcher_run_id
from multimodal_kit.utils import rank_zero_info

RUN_DIR_ENV = "MMKIT_RUN_DIR"  # hands the run directory to DDP worker processes, which re-run the command


def checkpoint_in(run: Path, which: str) -> Path:
    """``last`` (what ``fit --ckpt_path last`` would resume) or ``best`` (:func:`best_checkpoint`) of a run
    directory, said; none is a :class:`ConfigError` naming the directory."""
    checkpoints = run / "checkpoints"
    found = resume_checkpoint(checkpoints) if which == "last" else best_checkpoint(checkpoints)
    if found is None:
        raise ConfigError(f"--ckpt_path {which}: {checkpoints} holds no {'resumable' if which == 'last' else 'best'} "
                          "checkpoint; give a checkpoint file.")
    rank_zero_info(f"--ckpt_path {which}: {found}")
    return found


def best_checkpoint(checkpoints: Path) -> Path | None:
    """The file that the monitoring ``ModelCheckpoint`` recorded as its best (``best_model_path`` in its state, as
    saved in the newest readable checkpoint; found in ``checkpoints`` by name, so a moved run still works), so
    ``save_top_k`` above 1 or a filename of one's own still gives the best by the metric; without such a file,
    the newest ``epoch*.ckpt``; ``None`` when there is none."""
    newest = resume_checkpoint(checkpoints, "--ckpt_path best")  # its record of the best
    states = (load_checkpoint(newest, mmap=True).get("callbacks") or {}) if newest is not None else {}
    for state in states.values():
        if isinstance(state, dict) and state.get("monitor") and state.get("best_model_path"):
            recorded = checkpoints / Path(str(state["best_model_path"])).name
            if recorded.is_file() and recorded.name not in (LAST, INTERRUPTED):
                return recorded
    kept = [path for path in checkpoints.glob("epoch*.ckpt") if path.is_file()]
    return max(kept, key=lambda path: path.stat().st_mtime) if kept else None


def run_directory(config: Any, subcommand: str | None) -> Path:
    """The run's directory: ``--run_dir``; the one handed to DDP workers; a checkpoint's run; under a launcher, the
    job's; for ``fit --ckpt_path last``, the latest run; else ``runs/<Method>-<Data>-<time>``."""
    if config.get("run_dir"):
        return Path(config.run_dir)
    if os.environ.get(RUN_DIR_ENV):
        return Path(os.environ[RUN_DIR_ENV])
    ckpt = config.get("ckpt_path")
    if ckpt and Path(ckpt).is_file():
        parent = Path(ckpt).resolve().parent
        return parent.parent if parent.name == "checkpoints" else parent
    name = experiment_name(config)
    launched = launcher_run_id()
    if launched is not None:  # every process of a SLURM job / torchrun rendezvous names the same directory
        own = Path("runs") / f"{name}-{launched}"
        if ckpt == "last" and subcommand == "fit" and not any((own / "checkpoints").glob("*.ckpt")):
            latest = latest_run(Path("runs"), name)  # a new job continuing an earlier one
            if latest is not None:
                rank_zero_info(f"--ckpt_path last: resuming the latest {name} run, {latest}")
                return latest
        return own
    if ckpt == "last" and subcommand == "fit":
        latest = latest_run(Path("runs"), name)
        if latest is not None:
            rank_zero_info(f"--ckpt_path last: resuming the latest {name} run, {latest}")
            return latest
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"



def check_checkpoint_classes(config: Any) -> None:
    """Refuse a checkpoint whose method or data module is another class than the config asks for (a size
    mismatch traceback or a misleading data error would follow), naming both."""
    saved = checkpoint_config(config.ckpt_path)
    for section in ("model", "data"):
        theirs = (saved.get(section) or {}).get("class_path")
        ours = (config.get(section) or {}).get("class_path") if hasattr(config.get(section), "get") else None
        if theirs and ours and str(theirs).rsplit(".", 1)[-1] != str(ours).rsplit(".", 1)[-1]:
            raise ConfigError(f"--ckpt_path {config.ckpt_path} is a checkpoint of {theirs.rsplit('.', 1)[-1]} "
                              f"({section}), but the config asks for {str(ours).rsplit('.', 1)[-1]}: give the "
                              "config the checkpoint was trained with (its run's config.yaml), or no -c at all "
                              "for test, validate and predict.")

def evaluation_checkpoint(config: Any, which: str) -> Path:
    """``--ckpt_path last|best`` for validate, test and predict: in ``--run_dir``, else the newest run of this
    experiment under ``runs/``, the checkpoint ``fit --ckpt_path last`` would resume (``last``) or the one kept
    by the monitored metric (``best``, an ``epoch*.ckpt``). Never random weights: none found is an error."""
    name = experiment_name(config)
    run = Path(config.run_dir) if config.get("run_dir") else latest_run(Path("runs"), name)
    if run is None:
        raise ConfigError(f"--ckpt_path {which}: no run of {name} under runs/ holds a checkpoint; give --run_dir "
                          "RUN or a checkpoint file (--ckpt_path null evaluates untrained weights on purpose).")
    return checkpoint_in(run, which)

def resume_path(run_dir: Path, ckpt: str | None) -> str | None:
    """``fit``'s checkpoint: ``last`` becomes the run directory's newest resumable file (or ``None``: start
    anew); without ``--ckpt_path`` a fit starts anew, also in a run directory that holds checkpoints."""
    found = resume_checkpoint(run_dir / "checkpoints")
    if ckpt == "last":
        if found is None:
            rank_zero_info(f"--ckpt_path last: {run_dir} holds no checkpoint to resume; starting anew.")
        return None if found is None else str(found)
    if ckpt is None and found is not None:
        rank_zero_info(f"{run_dir} holds checkpoints of an earlier fit; this one starts anew "
                       "(--ckpt_path last resumes instead).")
    return ckpt
