"""A callback that records, after each validation, the wall-clock minutes since training started."""

from __future__ import annotations

import json
import time
from pathlib import Path

from lightning.pytorch import Callback, LightningModule, Trainer


class ValidationClock(Callback):
    """Appends ``{"epoch", "minutes", "samples", <val metrics>}`` to a JSON-lines file after every validation.

    Args:
        path: the JSON-lines file.
    """

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.start = 0.0

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.start = time.perf_counter()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        batch_size = trainer.datamodule.batch_size if trainer.datamodule is not None else 0
        batches = trainer.fit_loop.epoch_loop.batch_progress.total.completed  # not global_step: a GAN steps twice
        record = {"epoch": trainer.current_epoch, "minutes": (time.perf_counter() - self.start) / 60,
                  "samples": batches * batch_size * trainer.world_size}
        record |= {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")


class FirstStepClock(Callback):
    """Writes the wall-clock time (``time.time()``) at which the first training step starts to ``path`` (rank
    zero), for a benchmark that started the command itself.

    Args:
        path: the file the time is written to.
    """

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: object,
                             batch_idx: int) -> None:
        if trainer.global_step == 0 and batch_idx == 0 and trainer.is_global_zero:
            self.path.write_text(f"{time.time()}\n")
