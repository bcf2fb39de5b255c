"""``EditSamples``: each validation epoch, the first validation items as rows of input | output | target, the
instruction under the input — under ``<run>/media/edits/epoch_XXX.png`` and in W&B as ``val/edits``."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer

from multimodal_kit.callbacks import DrawsValidationItems, run_dir_of, wandb_loggers
from multimodal_kit.media import presenter_for
from multimodal_kit.visualize import captioned_grid


class EditSamples(DrawsValidationItems):
    """Input | output | target for the first ``num_items`` validation items (see the module docstring)."""

    def draw(self, trainer: Trainer, pl_module: LightningModule, codec: Any, dataset: Any,
             items: list[dict[str, Any]], batch: dict[str, Any]) -> None:
        with torch.no_grad():
            edited = pl_module(batch).float().clamp(-1, 1)
        presenter = presenter_for(codec)
        target_codec = next(c for c in trainer.datamodule.codecs if c.key == "target")
        outputs, targets = codec.uncollate({"image": edited}), target_codec.uncollate(batch)
        pictures, captions = [], []
        for item, output, target in zip(items, outputs, targets, strict=True):
            pictures += [presenter.picture(item["image"]), presenter.picture(output), presenter.picture(target)]
            captions += [f"input: {item['instruction']}", "output", "target"]
        grid = captioned_grid(pictures, captions, columns=3, cell=128)
        folder = run_dir_of(trainer) / "media" / "edits"
        folder.mkdir(parents=True, exist_ok=True)
        grid.save(folder / f"epoch_{trainer.current_epoch:03d}.png")
        for logger in wandb_loggers(trainer):
            logger.log_image(key="val/edits", images=[grid], step=trainer.global_step)
