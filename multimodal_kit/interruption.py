"""Stopping a fit without losing it: SIGTERM (a cluster's time limit, ``kill``) or Ctrl-C end training at the end
of the current step with a resumable checkpoint.

Lightning already turns SIGTERM into a stop at the next step boundary (its signal connector sets
``trainer.received_sigterm``; the training loop then raises ``SIGTERMException``). :class:`ResumableInterrupt`
adds the rest: a first Ctrl-C takes the same graceful path (a second one stops at once),
only such a clean stop writes the checkpoint (a crash or an error in the data leaves nothing to resume from), and
the process exits with the signal's conventional status (143, 130) instead of 0. It is a plain callback, not
Lightning's ``OnExceptionCheckpoint``: with one of those in the trainer, Lightning resumes every ``fit`` whose
``ckpt_path`` is ``None`` from the run directory's newest checkpoint (and warns so each time); the kit's CLI finds
``--ckpt_path last`` itself (:func:`resume_checkpoint`).
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException

from multimodal_kit.compat import request_graceful_stop, wandb_started
from multimodal_kit.errors import ConfigError
from multimodal_kit.utils import rank_zero_info

INTERRUPTED = "interrupted.ckpt"  # in the run's checkpoint directory
LAST = f"{ModelCheckpoint.CHECKPOINT_NAME_LAST}{ModelCheckpoint.FILE_EXTENSION}"  # ModelCheckpoint's last.ckpt


def resume_checkpoint(checkpoints: Path, asked: str = "--ckpt_path last") -> Path | None:
    """What ``--ckpt_path last`` resumes in a checkpoint directory: the newer of ``interrupted.ckpt`` (a stop by
    SIGTERM or Ctrl-C) and ``last.ckpt`` (the end of the latest epoch), or ``None`` when neither exists. A file
    that cannot be read (cut short by a crash or a full disk) is skipped, saying so (``asked``: the flag the
    message names), for the next newest of them and the epoch checkpoints."""
    from multimodal_kit.checkpoints import load_checkpoint

    preferred = [path for path in (checkpoints / INTERRUPTED, checkpoints / LAST) if path.is_file()]
    others = [path for path in checkpoints.glob("epoch*.ckpt") if path.is_file()]
    newest_first = sorted(preferred, key=lambda path: -path.stat().st_mtime) + \
        sorted(others, key=lambda path: -path.stat().st_mtime)
    for path in newest_first:
        try:
            load_checkpoint(path, mmap=True)
        except ConfigError as error:
            rank_zero_info(f"{asked}: skipping {path}: {str(error).split(' — ')[-1].split('. ')[0]}.")
            continue
        return path
    return None


class ResumableInterrupt(Callback):
    """On SIGTERM or a first Ctrl-C: finish the current step, write ``<dirpath>/interrupted.ckpt`` and exit with
    status 128 + the signal's number; ``mmkit fit … --ckpt_path last`` resumes from it (same run directory, same
    W&B run). The checkpoint is removed when a later fit of the run ends normally.

    Args:
        dirpath: the run's checkpoint directory.
    """

    def __init__(self, dirpath: str | Path) -> None:
        self.ckpt_path = str(Path(dirpath) / INTERRUPTED)
        self.signum = signal.SIGTERM
        self._previous: Any = None

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._make_handler(trainer))

    def _make_handler(self, trainer: Trainer) -> Any:
        def first_interrupt(signum: int, frame: FrameType | None) -> None:
            if trainer.received_sigterm:  # the second Ctrl-C: stop now
                signal.signal(signal.SIGINT, signal.default_int_handler)
                raise KeyboardInterrupt
            self.signum = signal.SIGINT
            request_graceful_stop(trainer)  # Lightning's own stop at the next step boundary
            rank_zero_info("\nInterrupted: finishing this step and saving a checkpoint to resume from "
                           "(Ctrl-C again to stop at once).")

        return first_interrupt

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException):
            return  # a crash or a data error: nothing worth resuming from
        trainer.save_checkpoint(self.ckpt_path)
        exception.code = 128 + int(self.signum)
        for logger in trainer.loggers:  # close the W&B run now, so the resumed fit can log into it again
            if isinstance(logger, WandbLogger) and wandb_started(logger):
                logger.experiment.finish(exit_code=exception.code)
        rank_zero_info(f"Stopped by {signal.Signals(self.signum).name} at epoch {trainer.current_epoch}, step "
                       f"{trainer.global_step}; saved {self.ckpt_path}. Resume with the same command plus "
                       "--ckpt_path last.")
        self._restore()

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._restore()
        trainer.strategy.remove_checkpoint(self.ckpt_path)  # the fit ended normally: its interrupted.ckpt is stale

    def _restore(self) -> None:
        if self._previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


class CheckedCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` whose every write is checked: the file must be on disk and read back
    (its archive directory, :func:`~multimodal_kit.checkpoints.load_checkpoint` with ``mmap``) before the previous
    best is deleted. A write that failed — Lightning's atomic save passes over a ``PermissionError``; a full disk
    raises ``OSError`` — ends the fit with an error naming the file and the cause, the earlier checkpoints intact."""

    def _save_checkpoint(self, trainer: Trainer, filepath: str) -> None:
        path = Path(filepath)
        before = _identity(path) if path.is_file() else None  # last.ckpt: the previous epoch's
        problem = None
        try:
            super()._save_checkpoint(trainer, filepath)
        except OSError as error:  # rank 0's write, which left before the save's barrier: meet the others there
            problem = str(checkpoint_write_error(filepath, error.strerror or str(error)))
            trainer.strategy.barrier("Trainer.save_checkpoint")
        else:
            if trainer.is_global_zero:
                try:
                    verify_written(filepath, before)
                except OSError as error:
                    problem = str(checkpoint_write_error(filepath, error.strerror or str(error)))
                except ConfigError as error:
                    problem = str(error)
        # rank 0 writes and checks; every rank ends alike, none left waiting on a collective
        problem = trainer.strategy.broadcast(problem, src=0)
        if problem:
            raise ConfigError(problem)


def _identity(path: Path) -> tuple[int, int, int]:
    """A file's inode, modification time and size: a save writes a new file (a new inode) even where the file
    system keeps whole-second times."""
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def verify_written(filepath: str | Path, before: tuple[int, int, int] | None = None) -> None:
    """Raise a :class:`ConfigError` naming ``filepath`` unless it was written (a file that did not exist, or whose
    identity ``before`` changed) and reads back as a checkpoint."""
    from multimodal_kit.checkpoints import load_checkpoint

    path = Path(filepath)
    if not path.is_file() or _identity(path) == before:
        folder = path.parent
        cause = "the folder is not writable" if folder.exists() and not os.access(folder, os.W_OK) else \
            "the file is not on disk after the save (an unwritable folder or a failed write)"
        raise checkpoint_write_error(path, cause)
    try:
        load_checkpoint(path, mmap=True)
    except ConfigError as error:
        raise checkpoint_write_error(path, f"it does not read back: {error}") from None


def checkpoint_write_error(path: str | Path, cause: str) -> ConfigError:
    return ConfigError(f"could not write the checkpoint {path}: {cause}. The earlier checkpoints are kept; free "
                       "disk space or make the folder writable, then resume with --ckpt_path last.")
