"""The learning-rate schedule the kit's methods share: linear warmup, then constant or a cosine decay to zero over
the run's steps (Lightning's ``trainer.estimated_stepping_batches``)."""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.callbacks import Timer

from multimodal_kit.compat import attached_trainer
from multimodal_kit.errors import ConfigError

LrDecay = Literal["constant", "cosine"]


def lr_factor(step: int, warmup_steps: int, decay: LrDecay, total_steps: float) -> float:
    """The multiple of the base learning rate at optimizer step ``step`` (0-based)."""
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    if decay == "constant":
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1.0, total_steps - warmup_steps))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def with_schedule(module: LightningModule, optimizer: torch.optim.Optimizer, warmup_steps: int = 0,
                  decay: LrDecay = "constant") -> Any:
    """``optimizer`` alone (no warmup, constant), or Lightning's optimizer/scheduler dict stepping every batch.

    The cosine's length, ``trainer.estimated_stepping_batches``, is read at the first step that needs it, not here:
    read in ``configure_optimizers`` it sets up the training data before a resumed fit restores the loader's
    position, which is then lost (Lightning-AI/pytorch-lightning#20550)."""
    if decay not in ("constant", "cosine"):
        raise ConfigError(f"lr_decay must be 'constant' or 'cosine', got {decay!r}")
    if not warmup_steps and decay == "constant":
        return optimizer
    if decay == "cosine" and not _run_length_known(module):
        raise ConfigError("lr_decay cosine decays over the run's steps, which are not known: set "
                          "--trainer.max_steps (or --trainer.max_epochs), or use lr_decay constant")
    total: list[float] = []  # filled once, on first need

    def factor(step: int) -> float:
        if decay == "cosine" and step > warmup_steps and not total:
            total.append(float(module.trainer.estimated_stepping_batches))
        return lr_factor(step, warmup_steps, decay, total[0] if total else float("inf"))

    # a closure, not an object: LambdaLR keeps only objects' attributes in its state_dict
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def _run_length_known(module: LightningModule) -> bool:
    """Whether the Trainer bounds the run by steps or epochs (a time limit alone does not; with no limit at all,
    Lightning trains 1000 epochs)."""
    trainer = attached_trainer(module)
    if trainer is None:
        return False
    max_epochs = trainer.fit_loop.max_epochs
    if trainer.max_steps != -1 or (max_epochs is not None and max_epochs >= 0):
        return True
    return max_epochs is None and not any(isinstance(callback, Timer) for callback in trainer.callbacks)
