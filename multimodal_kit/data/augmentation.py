"""``AugmentsMedia``: training-media augmentation in one place, on the device, for any kit data module."""

from __future__ import annotations

from typing import Any


class AugmentsMedia:
    """A mixin for a ``LightningDataModule``: Lightning's ``on_after_batch_transfer`` hands each *training* batch
    (already on the device) to :meth:`augment` when :attr:`augments_media`; validation, test and predict batches
    pass as they are. A data module that augments (random shifts of images, SpecAugment of log-mel frames)
    overrides both."""

    @property
    def augments_media(self) -> bool:
        """Whether training batches' media are augmented by :meth:`augment` (then a frozen encoder's features
        change every step and are not cached)."""
        return False

    def augment(self, batch: dict[str, Any]) -> dict[str, Any]:
        """A training batch with its media augmented (on the device; a subclass with ``augments_media``)."""
        return batch

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        if self.augments_media and self.trainer is not None and self.trainer.training:
            return self.augment(batch)
        return batch
