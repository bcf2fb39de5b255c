"""The learning-rate schedule the kit's methods share: linear warmup, then constant or a cosine decay to zero over
the run's steps (Lightning's ``trainer.estimated_stepping_batches``)."""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from lightning.pytorch import LightningModule

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
    """``optimizer`` alone (no warmup, constant), or Lightning's optimizer/scheduler dict stepping every batch."""
    if decay not in ("constant", "cosine"):
        raise ConfigError(f"lr_decay must be 'constant' or 'cosine', got {decay!r}")
    if not warmup_steps and decay == "constant":
        return optimizer
    total = float("inf")
    if decay == "cosine":
        total = module.trainer.estimated_stepping_batches if module._trainer is not None else float("inf")
        if not math.isfinite(total):
            raise ConfigError("lr_decay cosine decays over the run's steps, which are not known: set "
                              "--trainer.max_steps (or --trainer.max_epochs), or use lr_decay constant")
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, warmup_steps, decay, total))
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
