"""``SynthesisSamples``: what a speech synthesizer made of a few validation phrases, each validation epoch —
the target and the generated spectrogram, the alignment (characters × generated frames) under it, and the sound.

Needs a :class:`~multimodal_kit.methods.frame_generation.FrameGenerationMethod` (its ``synthesize(tokens,
lengths)`` gives the alignment too; checked at setup) and a data module with an audio ``codec``.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from PIL import Image, ImageDraw, ImageFont

from multimodal_kit.callbacks import DrawsValidationItems, run_dir_of, slug, wandb_loggers
from multimodal_kit.data.text import token_words
from multimodal_kit.media import presenter_for
from multimodal_kit.methods.frame_generation import FrameGenerationMethod
from multimodal_kit.visualize import attention_heatmap, spectrogram_image, stack_vertically


def labelled(picture: Image.Image, label: str, width: int = 72) -> Image.Image:
    """``picture`` with ``label`` on its left, in a margin ``width`` wide."""
    sheet = Image.new("RGB", (width + picture.width, picture.height), "white")
    sheet.paste(picture, (width, 0))
    ImageDraw.Draw(sheet).text((2, picture.height // 2 - 6), label[:11], fill="black",
                               font=ImageFont.load_default(size=11))
    return sheet


def frame_alignment(weights: torch.Tensor, reduction: int, frames: int) -> torch.Tensor:
    """Decoder-step attention (S, N) → one row per source position over the generated frames, (N, frames)."""
    return weights.T.repeat_interleave(reduction, dim=1)[:, :frames]


class SynthesisSamples(DrawsValidationItems):
    """Each validation epoch, for the first ``num_items`` validation phrases (always the same ones): a PNG under
    ``<run>/media/synthesis/epoch_XXX.png`` (per phrase: the target spectrogram, the generated one and, for
    attention methods, the alignment under it) and the WAVs under ``epoch_XXX/``; a W&B image and a table of
    playable generated and real audio.

    Args:
        num_items: how many validation phrases.
    """

    needs = FrameGenerationMethod

    def draw(self, trainer: Trainer, pl_module: LightningModule, codec: Any, dataset: Any,
             items: list[dict[str, Any]], batch: dict[str, Any]) -> None:
        out = pl_module.synthesize(batch["text_tokens"], batch["text_lengths"])
        media = codec.uncollate({"audio": out["audio"], "audio_lengths": out["audio_lengths"]})
        values = codec.to_values(media)
        reduction = getattr(pl_module.hparams, "reduction", 1)
        rows = []
        for k, item in enumerate(items):
            rows.append(labelled(spectrogram_image(item["audio"]), "target"))
            n = int(batch["text_lengths"][k])  # batch tensors are on the module's device; pictures on the CPU
            if "attention" in out:
                weights = frame_alignment(out["attention"][k, :, :n].float().cpu(), reduction, len(media[k]))
                rows.append(attention_heatmap(media[k], token_words(pl_module.tokenizer, batch["text_tokens"][k, :n].cpu()),
                                              weights))
            else:
                rows.append(labelled(spectrogram_image(media[k]), "generated"))
        sheet = stack_vertically(rows)
        epoch = trainer.current_epoch
        out_dir = run_dir_of(trainer) / "media" / "synthesis"
        files = out_dir / f"epoch_{epoch:03d}"
        files.mkdir(parents=True, exist_ok=True)
        sheet.save(out_dir / f"epoch_{epoch:03d}.png")
        for k, (item, value) in enumerate(zip(items, values, strict=True)):
            codec.save(value, files / f"{k}_{slug(item['text'])}")
        presenter = presenter_for(codec)
        for logger in wandb_loggers(trainer):
            logger.log_image(key="val/synthesis", images=[sheet], step=trainer.global_step)
            logger.log_table(key="val/synthesized", columns=["text", "generated", "real"],
                             data=[[item["text"], presenter.wandb_value(value, item["text"]),
                                    presenter.wandb_item(dataset, k, item["text"])]
                                   for k, (item, value) in enumerate(zip(items, values, strict=True))],
                             step=trainer.global_step)
