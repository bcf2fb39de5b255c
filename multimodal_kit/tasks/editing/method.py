"""``TextGuidedEditing``: an image and an instruction in, the edited image out — a FiLM U-Net (:mod:`.unet`)
trained with L1 to the target (plus L1 over the changed pixels, ``changed_weight``). Scored by L1 and PSNR
against the target and by what a reader reads in the output: ``edit_accuracy`` (the edited attribute of the
edited object reads as asked) and ``preserve_accuracy`` (every other attribute, object and the relation read as in
the target). Two readers: the geometric one (:mod:`multimodal_kit.data.embedded.shapes_reader`, no learned
parameters: ``read_edit_accuracy``, ``read_preserve_accuracy``) and, given one, a captioner the kit trained
(``evaluator``: ``edit_accuracy``, ``preserve_accuracy``). At test, ``real_*`` the same of the target images: what
each reader itself gets right, the ceiling.

The data declares ``text_fields: {instruction: …}``, ``media_fields: {target: …}``, the edited scene's caption as
its ``text`` and ``label_fields: {edit: …, edited: …}`` (the attribute changed and which object): the embedded
``shapes_edit`` set has them all (:mod:`.data`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torchmetrics import MeanMetric
from torchmetrics.image import PeakSignalNoiseRatio

from multimodal_kit.data.embedded.shapes import canonical_scene, read_caption
from multimodal_kit.data.embedded.shapes_reader import read_scene
from multimodal_kit.errors import ConfigError
from multimodal_kit.methods.base import MultimodalMethod
from multimodal_kit.methods.schedule import LrDecay
from multimodal_kit.models.masking import length_mask, masked_mean
from multimodal_kit.models.text_encoders import ConvLSTMTextEncoder
from multimodal_kit.tasks.editing.unet import FiLMUNet
from multimodal_kit.utils import rank_zero_info

SLOTS = {"size": 0, "color": 1, "shape": 2}  # an object's attributes as read_caption gives them


def edit_scores(read: list[str], truth: list[str], edits: list[str], edited: list[int]) -> tuple[list[bool], list[bool]]:
    """Per item, whether the reader's text shows the edit (the edited object's edited attribute as in ``truth``)
    and whether it shows everything else as in ``truth`` (every other attribute, the number of objects, the
    relation). A text the shapes grammar cannot read fails both."""
    done, kept = [], []
    for text, target, edit, k in zip(read, truth, edits, edited, strict=True):
        seen, wanted = read_caption(text), read_caption(target)
        if seen is None or wanted is None or len(seen[0]) != len(wanted[0]):
            done.append(False)
            kept.append(False)
            continue
        seen, wanted = canonical_scene(*seen), canonical_scene(*wanted)  # "b right of a" reads as "a left of b"
        slot = SLOTS[edit]
        done.append(seen[0][k][slot] == wanted[0][k][slot])
        others = [(j, s) for j in range(len(wanted[0])) for s in range(3) if (j, s) != (k, slot)]
        kept.append(seen[1] == wanted[1] and all(seen[0][j][s] == wanted[0][j][s] for j, s in others))
    return done, kept


class TextGuidedEditing(MultimodalMethod):
    """Image + instruction → edited image.

    Args:
        vocab_size: the vocabulary (linked from the data).
        pad_id: padding id (linked).
        image_size: the images' side (linked); must divide by 2^(levels - 1).
        widths: the U-Net's channels per level.
        text_embed_dim: the instruction encoder's word embedding size.
        text_hidden_dim: its BiLSTM's output size (the FiLM condition, and each word's encoding).
        attention_levels: how many of the U-Net's coarsest levels attend over the instruction's words
            (0: FiLM alone).
        evaluator: a captioner checkpoint of the kit (``mmkit fit -c experiments/attention_image_caption.yaml``)
            that reads the outputs for ``*/edit_accuracy`` and ``*/preserve_accuracy``; ``None``: not scored.
        geometric_reader: score ``*/read_edit_accuracy`` and ``*/read_preserve_accuracy`` with the geometric
            reader of ``shapes`` scenes (for ``shapes_edit`` and other data drawn by the ``shapes`` generator).
        changed_weight: the weight of a second L1 term over the pixels the edit changes (where input and target
            differ): an edit touches a few hundred of 4,096 pixels, and plain L1 is content to return the input.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: raise the learning rate linearly from 0 over this many steps.
        lr_decay: after warmup, ``constant`` or ``cosine``.
    """

    inputs = {"image": "image", "instruction": "text"}
    #: the target image is trained on; the edited caption and which attribute of which object changed score it
    outputs: ClassVar[dict[str, str]] = {"target": "image", "text": "text", "edit": "label", "edited": "label"}
    checkpoint_monitor = ("val/l1", "min")

    def __init__(self, vocab_size: int = 0, pad_id: int = 0, image_size: int = 64,
                 widths: tuple[int, ...] = (16, 32, 64, 128), text_embed_dim: int = 64, text_hidden_dim: int = 128,
                 attention_levels: int = 2, evaluator: str | None = None, geometric_reader: bool = True,
                 changed_weight: float = 1.0,
                 lr: float = 1e-3, weight_decay: float = 0.0, warmup_steps: int = 0,
                 lr_decay: LrDecay = "constant") -> None:
        super().__init__()

    def configure_models(self) -> None:
        hp = self.hparams
        if hp.image_size % 2 ** (len(hp.widths) - 1):
            raise ConfigError(f"image_size {hp.image_size} must divide by {2 ** (len(hp.widths) - 1)} for a U-Net "
                              f"of {len(hp.widths)} levels (--model.init_args.widths)")
        self.instruction_encoder = ConvLSTMTextEncoder(hp.vocab_size, hp.pad_id, embed_dim=hp.text_embed_dim,
                                                       conv_layers=0, hidden_dim=hp.text_hidden_dim)
        if not 0 <= hp.attention_levels <= len(hp.widths):
            raise ConfigError(f"attention_levels must lie between 0 and the {len(hp.widths)} levels of "
                              f"--model.init_args.widths, got {hp.attention_levels}")
        dim = self.instruction_encoder.out_dim
        self.unet = FiLMUNet(dim, tuple(hp.widths), word_dim=dim, attention_levels=hp.attention_levels)
        self.evaluator: Any = None

    def configure_metrics(self) -> None:
        for stage in ("val", "test"):
            setattr(self, f"{stage}_l1", MeanMetric())
            setattr(self, f"{stage}_psnr", PeakSignalNoiseRatio(data_range=1.0))
            for name in ("edit", "preserve"):
                for prefix in ("", "real_", "read_", "real_read_"):
                    setattr(self, f"{stage}_{prefix}{name}", MeanMetric())

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if self.hparams.evaluator and self.evaluator is None and stage != "predict":
            from multimodal_kit.evaluation import CycleEvaluator

            self.evaluator = CycleEvaluator(self.hparams.evaluator)
            if self.evaluator.media != "image":
                raise ConfigError(f"--model.init_args.evaluator {self.hparams.evaluator} reads {self.evaluator.media}"
                                  "; the edits are images: give an image captioner's checkpoint.")
            rank_zero_info(f"TextGuidedEditing: {self.hparams.evaluator} reads the edited images.")
        elif not self.hparams.evaluator and stage in ("fit", "test"):
            rank_zero_info("TextGuidedEditing: no evaluator (--model.init_args.evaluator), so */edit_accuracy and "
                           "*/preserve_accuracy are not scored (the geometric reader's */read_* are); train a "
                           "captioner first to have them.")

    # ------------------------------------------------------------------ forward
    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        """The batch's images edited by their instructions: (B, 3, S, S), normalized as the data's images."""
        states, lengths = self.instruction_encoder(batch["instruction_tokens"], batch["instruction_lengths"])
        mask = length_mask(lengths.to(states.device), states.shape[1])  # (B, L)
        return self.unet(batch["image"], masked_mean(states, mask), states, mask)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        target = batch["target"].float()
        error = (self(batch).float() - target).abs()  # (B, 3, S, S)
        changed = ((target - batch["image"].float()).abs().amax(1, keepdim=True) > 0.1).expand_as(error)
        l1 = error.mean()
        loss = l1 + self.hparams.changed_weight * (error * changed).sum() / changed.sum().clamp(min=1)
        self.log("train/l1", l1 / 2, prog_bar=True, batch_size=len(target))  # on the 0–1 pixel scale
        self.log("train/loss", loss, batch_size=len(target))
        return loss

    def evaluation_step(self, batch: dict[str, Any], stage: str) -> dict[str, Any]:
        edited = self(batch).float().clamp(-1, 1)
        n = len(edited)
        codec = self.trainer.datamodule.codec
        target_codec = next(c for c in self.trainer.datamodule.codecs if c.key == "target")
        outputs, targets = codec.uncollate({"image": edited}), target_codec.uncollate(batch)
        as_unit = [torch.stack(items).float() / 255 for items in (outputs, targets)]  # (B, 3, S, S) in 0–1
        getattr(self, f"{stage}_l1").update((as_unit[0] - as_unit[1]).abs().mean((1, 2, 3)))
        getattr(self, f"{stage}_psnr").update(*as_unit)
        self.log(f"{stage}/l1", getattr(self, f"{stage}_l1"), prog_bar=stage == "val", batch_size=n)
        self.log(f"{stage}/psnr", getattr(self, f"{stage}_psnr"), batch_size=n)
        names, which = self.label_classes["edit"], self.label_classes["edited"]
        edits = [names[i] for i in batch["edit"].tolist()], [int(which[i]) for i in batch["edited"].tolist()]
        shown = {"": outputs, **({"real_": targets} if stage == "test" else {})}  # real_: the reader's ceiling
        for reader, read in self.readers().items():
            for prefix, images in shown.items():
                texts = read(images)
                for name, right in zip(("edit", "preserve"), edit_scores(texts, batch["text"], *edits), strict=True):
                    metric = getattr(self, f"{stage}_{prefix}{reader}{name}")
                    metric.update(torch.tensor(right, dtype=torch.float))
                    self.log(f"{stage}/{prefix}{reader}{name}_accuracy", metric, batch_size=n,
                             prog_bar=stage == "val" and name == "edit" and prefix == "")
        return {"edited": outputs}

    def readers(self) -> dict[str, Any]:
        """The readers scoring this run, by metric prefix (``read_``: the geometric one; ``""``: the captioner),
        each a function of images (a list of (3, S, S) uint8 tensors) → captions."""
        readers: dict[str, Any] = {}
        if self.hparams.geometric_reader:
            readers["read_"] = lambda images: [read_scene(i.permute(1, 2, 0).cpu().numpy()) for i in images]
        if self.evaluator is not None:
            codec = self.trainer.datamodule.codec
            readers[""] = lambda images: self.evaluator.to(self.device).read(
                self.evaluator.batch(codec.to_values(images)))
        return readers

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        """One record per input: ``id``, ``input`` (the image), ``instruction``, and the edited image saved as a
        file (its path under ``file``)."""
        codec = self.trainer.datamodule.codec
        values = codec.to_values(codec.uncollate({"image": self(batch).float().clamp(-1, 1)}))
        return [{"id": i, "input": x, "instruction": t, "_media": v}
                for i, x, t, v in zip(batch["id"], batch.get("input", batch["id"]), batch["instruction"], values,
                                      strict=True)]
