"""``MultimodalMethod``: the base of every method (torchgeo's ``BaseTask`` pattern).

``__init__`` saves the hyperparameters, then calls :meth:`configure_models`, :meth:`configure_losses` and
:meth:`configure_metrics`; a new method overrides those hooks. A method that writes ``configure_models``,
``training_step`` and :meth:`evaluation_step` is complete: the default :meth:`configure_optimizers` (AdamW over
:meth:`parameter_groups`, the kit's warmup and cosine) serves it. The tokenizer travels inside every checkpoint,
so a checkpoint alone is enough to test or predict.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from lightning.pytorch import LightningModule
from transformers import PreTrainedTokenizerBase

from multimodal_kit.compat import attached_trainer
from multimodal_kit.data.text import tokenizer_from_dict, tokenizer_to_dict
from multimodal_kit.errors import ConfigError
from multimodal_kit.methods.contract import MEDIA, check_fields, declared_arguments, too_few_classes
from multimodal_kit.methods.schedule import with_schedule

PLAIN = (str, int, float, bool, list, tuple, dict, type(None))  # what a checkpoint's hyperparameters may hold


class MultimodalMethod(LightningModule, ABC):
    """Base of the kit's methods: hyperparameters, the model/loss/metric hooks, the tokenizer in checkpoints.

    A method declares the fields it reads (:attr:`inputs`) and those it produces and is trained on
    (:attr:`outputs`), by name and kind; they are checked against the data's fields before the first step
    (:meth:`check_data`). ``"media"`` stands for the pair's medium, named and of the kind the method's ``media``
    argument says (``image``/``audio``, linked from the data). A subclass's ``__init__`` takes its own arguments,
    hands those that may be objects rather than plain data (an encoder, an attention class, an optimizer factory)
    to :meth:`give`, and calls ``super().__init__()`` last; its hyperparameters are exactly the arguments its
    constructors declare (the CLI links nothing else into them).
    """

    #: the fields the method reads, by name and kind ("media": the pair's medium)
    inputs: ClassVar[dict[str, str]] = {MEDIA: MEDIA}
    #: the fields it produces (and is trained and scored on), by name and kind
    outputs: ClassVar[dict[str, str]] = {"text": "text"}
    #: the metric that picks the best checkpoint, and whether higher is better
    checkpoint_monitor: tuple[str | None, str] = ("val/loss", "min")
    #: the optimizer of the default :meth:`configure_optimizers`
    optimizer_class: ClassVar[type[torch.optim.Optimizer]] = torch.optim.AdamW

    def __init__(self) -> None:
        super().__init__()
        with warnings.catch_warnings():  # objects given in Python are dropped from the hyperparameters below
            warnings.filterwarnings("ignore", message=".*is an instance of `nn.Module`")
            self.save_hyperparameters()
        for name in self.given_objects:
            if not isinstance(self.hparams.get(name), PLAIN):
                del self.hparams[name]
        declared = declared_arguments(type(self), MultimodalMethod)
        for name in [k for k in self.hparams if not k.startswith("_") and k not in declared]:
            del self.hparams[name]  # linked by the CLI for another method, or left by an older config
        if self.hparams.get("vocab_size", 1) <= 0:
            raise ConfigError("vocab_size must be positive: the CLI links it from the data's tokenizer (data "
                              "without a text field has none: set --data.init_args.text_column); in Python pass "
                              "`vocab_size=datamodule.vocab_size`.")
        if self.hparams.get("num_classes", 2) < 2:
            raise ConfigError(too_few_classes(type(self).__name__, self.outputs, self.hparams.num_classes))
        self.tokenizer: PreTrainedTokenizerBase | None = None
        self.label_classes: dict[str, list[str]] = {}  # each label field's classes, from the data or a checkpoint
        self.configure_models()
        self.configure_losses()
        self.configure_metrics()
        vars(self).pop("_given_objects", None)  # configure_models registered what it uses

    @property
    def given_objects(self) -> dict[str, Any]:
        """The arguments handed to :meth:`give`, by name (for :meth:`configure_models`)."""
        return vars(self).get("_given_objects", {})

    def give(self, **objects: Any) -> None:
        """Keep constructor arguments that may be objects rather than plain data for :meth:`configure_models`;
        call it before ``super().__init__()``. Given in Python they are not hyperparameters (they would be pickled
        into checkpoints, which then need unsafe loading): pass them again to ``load_from_checkpoint``. From the
        CLI they arrive as ``class_path``/``init_args`` dicts, plain data that rebuilds them on load. They wait in
        the instance dict, unregistered: ``nn.Module`` refuses module attributes before its own ``__init__``."""
        vars(self).setdefault("_given_objects", {}).update(objects)

    # ------------------------------------------------------------------ hooks a method overrides
    @abstractmethod
    def configure_models(self) -> None:
        """Build the networks (plain ``nn.Module``s from :mod:`multimodal_kit.models`)."""

    def configure_losses(self) -> None:
        """Build the loss functions."""

    def configure_metrics(self) -> None:
        """Build the torchmetrics objects, one per stage."""

    def evaluation_step(self, batch: dict[str, Any], stage: str) -> Any:
        """One validation (``stage="val"``) or test (``"test"``) batch: update and log the stage's metrics
        (``<stage>/<metric>``); what it returns reaches the callbacks as the step's outputs (``predictions``: the
        generated texts, for :class:`~multimodal_kit.callbacks.ValidationSamples`)."""
        raise NotImplementedError(f"{type(self).__name__} does not evaluate: implement evaluation_step(batch, stage)")

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> Any:
        return self.evaluation_step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> Any:
        return self.evaluation_step(batch, "test")

    # ------------------------------------------------------------------ the task contract
    def declared_fields(self) -> tuple[dict[str, str], dict[str, str]]:
        """:attr:`inputs` and :attr:`outputs` with ``"media"`` replaced by the pair's medium (``hparams.media``)."""
        media = self.hparams.get("media")
        if media is None and MEDIA in {**self.inputs, **self.outputs}:
            raise ConfigError(f"{type(self).__name__} declares the pair's medium ('media') as a field but has no "
                              "`media` argument to name it: add `media: str = \"image\"` to its __init__ (the CLI "
                              "links it from the data), or declare the field by its name.")

        def resolve(fields: dict[str, str]) -> dict[str, str]:
            return {(media if name == MEDIA else name): (media if kind == MEDIA else kind)
                    for name, kind in fields.items()}

        return resolve(self.inputs), resolve(self.outputs)

    def check_data(self, datamodule: Any, stage: str) -> None:
        """Refuse data that lacks a field the method reads, or (but for ``predict``) one it produces, naming the
        field and the YAML line to add (:func:`~multimodal_kit.methods.contract.check_fields`). Data without
        ``field_kinds`` (not a kit data module) is not checked."""
        kinds = getattr(datamodule, "field_kinds", None)
        if kinds is None:
            return
        inputs, outputs = self.declared_fields()
        wanted = inputs if stage == "predict" else {**inputs, **outputs}
        check_fields(type(self).__name__, wanted, kinds, type(datamodule).__name__)

    # ------------------------------------------------------------------ optimization
    def parameter_groups(self) -> list[dict[str, Any]]:
        """What the default optimizer trains, as ``torch.optim`` parameter groups: every trainable parameter in
        one group. A method splits them to give a part its own learning rate (``{"params": [...], "lr": …}``);
        frozen parameters stay out, and empty groups are dropped."""
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def configure_optimizers(self) -> Any:
        """:attr:`optimizer_class` (AdamW) over :meth:`parameter_groups` with the hyperparameters ``lr`` (default
        1e-3) and ``weight_decay`` (0), stepped by the kit's schedule: ``warmup_steps`` of linear warmup, then
        ``lr_decay`` ``constant`` or ``cosine`` (:func:`~multimodal_kit.methods.schedule.with_schedule`). A
        method with its own arguments of these names gets them here; ``--optimizer``/``--lr_scheduler`` on the
        CLI replace it."""
        hp = self.hparams
        groups = [group for group in self.parameter_groups() if group["params"]]
        optimizer = self.optimizer_class(groups, lr=hp.get("lr", 1e-3), weight_decay=hp.get("weight_decay", 0.0))
        return with_schedule(self, optimizer, hp.get("warmup_steps", 0), hp.get("lr_decay", "constant"))

    # ------------------------------------------------------------------ tokenizer: from the data, into checkpoints
    def setup(self, stage: str) -> None:
        datamodule = getattr(attached_trainer(self), "datamodule", None)
        if datamodule is not None:
            self.check_data(datamodule, stage)
        if self.tokenizer is None and datamodule is not None and hasattr(datamodule, "tokenizer"):
            self.tokenizer = datamodule.tokenizer
        if not self.label_classes and datamodule is not None:
            self.label_classes = dict(getattr(datamodule, "labels", {}))

    def require_tokenizer(self) -> PreTrainedTokenizerBase:
        if self.tokenizer is None:
            raise RuntimeError(f"{type(self).__name__} has no tokenizer: use a PairDataModule, load a checkpoint "
                               "of the kit, or set `model.tokenizer`.")
        return self.tokenizer

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.tokenizer is not None:
            checkpoint["tokenizer"] = tokenizer_to_dict(self.tokenizer)
        if self.label_classes:
            checkpoint["label_classes"] = self.label_classes

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "tokenizer" in checkpoint:
            self.tokenizer = tokenizer_from_dict(checkpoint["tokenizer"])
        self.label_classes = dict(checkpoint.get("label_classes", self.label_classes))
