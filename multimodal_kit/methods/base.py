"""``MultimodalMethod``: the base of every method (torchgeo's ``BaseTask`` pattern).

``__init__`` saves the hyperparameters, then calls :meth:`configure_models`, :meth:`configure_losses` and
:meth:`configure_metrics`; a new method overrides those hooks. The tokenizer travels inside every checkpoint, so a
checkpoint alone is enough to test or predict.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from typing import Any

from lightning.pytorch import LightningModule
from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters
from lightning.pytorch.utilities.parsing import collect_init_args
from torch import nn
from transformers import PreTrainedTokenizerBase

from multimodal_kit.data.text import tokenizer_from_dict, tokenizer_to_dict


class MultimodalMethod(LightningModule, ABC):
    """Base of the kit's methods: hyperparameters, the model/loss/metric hooks, the tokenizer in checkpoints.
    A subclass's ``__init__`` takes its own arguments and calls ``super().__init__()`` last."""

    #: the metric that picks the best checkpoint, and whether higher is better
    checkpoint_monitor: tuple[str, str] = ("val/loss", "min")

    def __init__(self) -> None:
        super().__init__()
        # Modules and classes passed in Python are not hyperparameters (they would be pickled into checkpoints,
        # which then need unsafe loading); pass them again to load_from_checkpoint. From the CLI they arrive as
        # class_path/init_args dicts, which are plain data and rebuild them on load.
        ignore: list[str] = []
        if _given_hyperparameters.get() is None:
            for local in collect_init_args(inspect.currentframe(), [], classes=(MultimodalMethod,)):
                ignore += [name for name, value in local.items() if isinstance(value, nn.Module) or callable(value)]
        self.save_hyperparameters(ignore=ignore)
        self.tokenizer: PreTrainedTokenizerBase | None = None
        self.configure_models()
        self.configure_losses()
        self.configure_metrics()

    # ------------------------------------------------------------------ hooks a method overrides
    @abstractmethod
    def configure_models(self) -> None:
        """Build the networks (plain ``nn.Module``s from :mod:`multimodal_kit.models`)."""

    def configure_losses(self) -> None:
        """Build the loss functions."""

    def configure_metrics(self) -> None:
        """Build the torchmetrics objects, one per stage."""

    # ------------------------------------------------------------------ tokenizer: from the data, into checkpoints
    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if self.tokenizer is None and datamodule is not None and hasattr(datamodule, "tokenizer"):
            self.tokenizer = datamodule.tokenizer

    def require_tokenizer(self) -> PreTrainedTokenizerBase:
        if self.tokenizer is None:
            raise RuntimeError(f"{type(self).__name__} has no tokenizer: use a PairDataModule, load a checkpoint "
                               "of the kit, or set `model.tokenizer`.")
        return self.tokenizer

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.tokenizer is not None:
            checkpoint["tokenizer"] = tokenizer_to_dict(self.tokenizer)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "tokenizer" in checkpoint:
            self.tokenizer = tokenizer_from_dict(checkpoint["tokenizer"])
