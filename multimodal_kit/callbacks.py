"""Callbacks: media logging that works with any logger or none.

Experiment files list the media callbacks under ``trainer.callbacks`` (replace or drop them there). They need a
data module with a ``codec`` (every :class:`~multimodal_kit.data.base.PairDataModule`) and a method that follows
the generation protocol each declares (``needs``, checked at setup: :mod:`multimodal_kit.methods.generation`):
:class:`ValidationSamples` and :class:`AttentionMaps` a method that writes text (``generate(batch)`` → a search
result, with ``attention`` for the maps), :class:`GeneratedSamples` one that makes media (``noise`` and
``generate(batch, noise)``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger

from multimodal_kit.media import presenter_for
from multimodal_kit.methods.generation import GeneratesMedia, GeneratesText, check_protocol
from multimodal_kit.visualize import captioned_grid, stack_vertically


class MethodCallback(Callback):
    """A callback that draws what the method generates: :attr:`needs` names the protocol, checked at setup."""

    needs: type | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        check_protocol(self, pl_module)


def run_dir_of(trainer: Trainer) -> Path:
    """Where a run's files go: the first logger's directory, else the trainer's root directory.

    ``trainer.log_dir`` says the same but broadcasts it from rank 0 — a collective call, which deadlocks DDP when
    only rank 0 asks (as the media callbacks do); this reads it locally.
    """
    if trainer.loggers:
        logger = trainer.loggers[0]
        directory = logger.log_dir if isinstance(logger, TensorBoardLogger | CSVLogger) else logger.save_dir
        if directory:
            return Path(directory)
    return Path(trainer.default_root_dir)


def wandb_loggers(trainer: Trainer) -> list[WandbLogger]:
    return [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]


def text_inputs(trainer: Trainer, batch: dict[str, Any]) -> list[str]:
    """The task's further text fields (a question) that ``batch`` holds: what the pictures show beside the media."""
    fields = getattr(trainer.datamodule, "fields", None)
    return [name for name in (fields.text_fields if fields is not None else ()) if name in batch]


class ValidationSamples(MethodCallback):
    """Each validation epoch: the first ``num_samples`` validation items with their references and prediction
    (and the task's further text fields, e.g. a question),
    as a W&B table (the input as an image, or as playable audio) when a ``WandbLogger`` is attached, and as a PNG
    grid (images; spectrograms for audio) under ``<run>/media/val_samples/``.

    Args:
        num_samples: how many items to show (taken from the first validation batch, so always the same ones).
    """

    needs = GeneratesText

    def __init__(self, num_samples: int = 8) -> None:
        self.num_samples = num_samples
        self._rows: list[dict[str, Any]] = []

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._rows = []

    def on_validation_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        if batch_idx != 0 or dataloader_idx != 0 or not trainer.is_global_zero or not isinstance(outputs, dict):
            return
        inputs = text_inputs(trainer, batch)
        for i in range(min(self.num_samples, len(batch["id"]))):
            self._rows.append({"id": batch["id"][i], "references": batch["references"][i],
                               "prediction": outputs["predictions"][i],
                               "inputs": {name: batch[name][i] for name in inputs}})

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        codec = drawing_codec(trainer)
        if not self._rows or codec is None:
            return
        rows, epoch = self._rows, trainer.current_epoch
        presenter = presenter_for(codec)
        dataset = trainer.datamodule.dataset("validation")
        indices = [dataset.index_of(r["id"]) for r in rows]
        for logger in wandb_loggers(trainer):
            logger.log_table(
                key="val/samples",
                columns=["id", codec.media, *rows[0]["inputs"], "references", "prediction"],
                data=[[r["id"], presenter.wandb_item(dataset, i), *r["inputs"].values(), "\n".join(r["references"]),
                       r["prediction"]] for r, i in zip(rows, indices, strict=True)],
                step=trainer.global_step,
            )
        pictures = [presenter.picture(dataset.media_at(i)) for i in indices]
        out = run_dir_of(trainer) / "media" / "val_samples"
        out.mkdir(parents=True, exist_ok=True)
        captions = ["".join(f"{value}\n" for value in r["inputs"].values())
                    + f"pred: {r['prediction']}\nref: {r['references'][0]}" for r in rows]
        captioned_grid(pictures, captions).save(out / f"epoch_{epoch:03d}.png")


def drawing_codec(trainer: Trainer) -> Any:
    """The data's media codec where this process draws validation media (rank 0, past the sanity check), else
    ``None``."""
    if trainer.sanity_checking or not trainer.is_global_zero:
        return None
    return media_codec(trainer)


def media_codec(trainer: Trainer) -> Any:
    """The data module's media codec, or ``None`` (no data module, or one of another kind)."""
    return getattr(trainer.datamodule, "codec", None) if trainer.datamodule is not None else None


class DrawsValidationItems(MethodCallback):
    """Base of the callbacks that draw, each validation epoch on rank 0, what the method makes of the first
    ``num_items`` validation items (always the same ones): a subclass implements :meth:`draw`.

    Args:
        num_items: how many validation items to draw.
    """

    def __init__(self, num_items: int = 4) -> None:
        self.num_items = num_items

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        codec = drawing_codec(trainer)
        if codec is None:
            return
        datamodule = trainer.datamodule
        dataset = datamodule.dataset("validation")
        items = [dataset[i] for i in range(min(self.num_items, len(dataset)))]
        batch = trainer.strategy.batch_to_device(datamodule.collator()(items), pl_module.device)
        self.draw(trainer, pl_module, codec, dataset, items, batch)

    def draw(self, trainer: Trainer, pl_module: LightningModule, codec: Any, dataset: Any,
             items: list[dict[str, Any]], batch: dict[str, Any]) -> None:
        """Draw and log the items (``batch``: them batched, on the module's device)."""
        raise NotImplementedError


class AttentionMaps(DrawsValidationItems):
    """Each validation epoch: for the first ``num_items`` validation items (always the same ones), every
    generated word with its attention over the input — heat over the image's regions, or a tokens × frames
    heatmap under the spectrogram — as a PNG under ``<run>/media/attention/`` and a W&B image.

    Args:
        num_items: how many validation items to draw.
    """

    needs = GeneratesText

    def draw(self, trainer: Trainer, pl_module: LightningModule, codec: Any, dataset: Any,
             items: list[dict[str, Any]], batch: dict[str, Any]) -> None:
        from multimodal_kit.data.text import token_words

        result = pl_module.generate(batch)
        if result.attention is None:
            return
        presenter = presenter_for(codec)
        inputs = text_inputs(trainer, batch)
        rows = []
        for k, item in enumerate(items):
            n = int(result.lengths[k])
            words = token_words(pl_module.tokenizer, result.tokens[k, :n])
            caption = " ".join(str(batch[name][k]) for name in inputs)
            rows.append(presenter.attention_picture(item[codec.media], words, result.attention[k, :n].float().cpu(),
                                                    caption))
        sheet = stack_vertically(rows)
        out = run_dir_of(trainer) / "media" / "attention"
        out.mkdir(parents=True, exist_ok=True)
        sheet.save(out / f"epoch_{trainer.current_epoch:03d}.png")
        for logger in wandb_loggers(trainer):
            logger.log_image(key="val/attention", images=[sheet], step=trainer.global_step)


class GeneratedSamples(MethodCallback):
    """Each validation epoch: media generated for a fixed set of prompts (the first ``num_prompts`` distinct
    validation texts) from fixed noise, so epochs compare like with like. Written under
    ``<run>/media/generated/``: ``epoch_XXX.png`` (images, or spectrograms, with the prompt under each, and with
    ``geometric_reader`` what the reader reads in the image) and, for
    audio, ``epoch_XXX/<k>_<prompt>.wav``; logged to W&B as ``val/generated`` (an image grid, or a table of
    playable audio with its prompt).

    Args:
        num_prompts: how many prompts.
        seed: the seed of the fixed noise.
    """

    needs = GeneratesMedia

    def __init__(self, num_prompts: int = 8, seed: int = 0) -> None:
        self.num_prompts = num_prompts
        self.seed = seed

    def prompts(self, datamodule: Any) -> list[str]:
        texts = datamodule.dataset("validation").texts
        return list(dict.fromkeys(texts))[: self.num_prompts]

    @staticmethod
    def captions(pl_module: LightningModule, prompts: list[str], media: list[torch.Tensor]) -> list[str]:
        """Each prompt, and under it what the geometric reader reads in its image (``geometric_reader``: shapes
        images (3, S, S) uint8), so the grid shows where the two differ."""
        if not pl_module.hparams.get("geometric_reader") or not media or media[0].ndim != 3:
            return prompts
        from multimodal_kit.data.embedded.shapes_reader import read_scene

        return [f"{p}\nreads: {read_scene(m.permute(1, 2, 0).cpu().numpy()) or '(nothing)'}"
                for p, m in zip(prompts, media, strict=True)]

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        codec = drawing_codec(trainer)
        if codec is None:
            return
        from multimodal_kit.data.text import encode_texts

        datamodule = trainer.datamodule
        prompts = self.prompts(datamodule)
        tokens, lengths = encode_texts(datamodule.tokenizer, prompts)
        noise = pl_module.noise(len(prompts), generator=torch.Generator().manual_seed(self.seed), inference=True)
        batch = {"text": prompts, "text_tokens": tokens.to(pl_module.device), "text_lengths": lengths}
        media = codec.uncollate(pl_module.generate(batch, noise))
        values = codec.to_values(media)
        presenter = presenter_for(codec)
        epoch = trainer.current_epoch
        out = run_dir_of(trainer) / "media" / "generated"
        grid = captioned_grid([presenter.picture(m) for m in media], self.captions(pl_module, prompts, media))
        files = out / f"epoch_{epoch:03d}"
        files.mkdir(parents=True, exist_ok=True)
        grid.save(out / f"epoch_{epoch:03d}.png")
        for k, (prompt, value) in enumerate(zip(prompts, values, strict=True)):
            codec.save(value, files / f"{k}_{slug(prompt)}")
        for logger in wandb_loggers(trainer):
            logger.log_image(key="val/generated_grid", images=[grid], step=trainer.global_step)
            logger.log_table(key="val/generated", columns=["prompt", codec.media],
                             data=[[p, presenter.wandb_value(v, p)] for p, v in zip(prompts, values, strict=True)],
                             step=trainer.global_step)


def slug(text: str, limit: int = 40) -> str:
    """``text`` as a file-name part: letters, digits and ``-``, at most ``limit`` characters."""
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower())[:limit].strip("-") or "item"
