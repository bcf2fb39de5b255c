"""The progress bar: Lightning's own, without a host–device sync on every training step.

Lightning's ``RichProgressBar`` reads the logged progress-bar metrics after every training batch, and reading them
turns each one into a Python number (``.item()``): on a GPU that waits for the step's queued kernels to finish,
every step, so the host can no longer run ahead and prepare the next one. :class:`KitProgressBar` reads them
(``get_metrics``, the public hook the bar asks) at most every ``metrics_interval`` seconds during training (the bar itself still moves every batch), and always at
the end of an epoch and of validation.
"""

from __future__ import annotations

import time
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import RichProgressBar


class KitProgressBar(RichProgressBar):
    """``RichProgressBar`` whose training metrics refresh at most every ``metrics_interval`` seconds.

    Args:
        metrics_interval: seconds between two reads of the metrics during a training epoch.
        **kwargs: ``RichProgressBar``'s options.
    """

    def __init__(self, metrics_interval: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metrics_interval = metrics_interval
        self.metric_reads = 0
        self._last_read = float("-inf")
        self._in_train_batch = False
        self._shown: dict[str, Any] | None = None  # the metrics last read, shown until the next read

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any, **kwargs: Any) -> None:
        self._in_train_batch = True
        try:
            super().on_train_batch_end(trainer, pl_module, *args, **kwargs)
        finally:
            self._in_train_batch = False

    def get_metrics(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, Any]:
        now = time.monotonic()
        if self._in_train_batch and now - self._last_read < self.metrics_interval and self._shown is not None:
            return self._shown
        self._last_read = now
        self.metric_reads += 1
        self._shown = super().get_metrics(trainer, pl_module)
        return self._shown
