"""``TextGuidedEditing``: an image and an instruction in, the edited image out — a FiLM U-Net (:mod:`.unet`)
trained with L1 to the target (plus L1 over the changed pixels, ``changed_weight``) and, optionally, a conditional
discriminator (pix2pix, Isola et al. 2017, with the kit's GAN parts: ``adversarial_weight``). Scored by L1 and PSNR
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
from multimodal_kit.models.gan import ProjectionDiscriminator, matching_scores
from multimodal_kit.models.gan_losses import LossKind, discriminator_loss, generator_loss, mismatched_texts
from multimodal_kit.models.masking import length_mask, masked_mean
from multimodal_kit.models.text_encoders import ConvLSTMTextEncoder
from multimodal_kit.tasks.editing.unet import FiLMUNet
from multimodal_kit.utils import rank_zero_info

SLOTS = {"size": 0, "color": 1, "shape": 2}  # an object's attributes as read_caption gives them


#: where an output can fail to keep what it should: the edited object's other attributes, the other object, and
#: the number of objects with their relation (``preserve_accuracy`` asks all three)
PARTS = ("edited_object", "other_object", "layout")


def edit_reading(read: list[str], truth: list[str], edits: list[str], edited: list[int]) -> list[dict[str, bool]]:
    """Per item, what the reader's text shows as in ``truth``: ``edit`` (the edited object's edited attribute) and
    each of :data:`PARTS`. ``edited`` indexes the objects in ``truth``'s order. A text the shapes grammar cannot
    read, or with another number of objects, fails all."""
    items = []
    for text, target, edit, k in zip(read, truth, edits, edited, strict=True):
        seen, wanted = read_caption(text), read_caption(target)
        if seen is None or wanted is None or len(seen[0]) != len(wanted[0]):
            items.append(dict.fromkeys(("edit", *PARTS), False))
            continue
        seen, canonical = canonical_scene(*seen), canonical_scene(*wanted)  # "b right of a" reads "a left of b"
        if canonical[1] != wanted[1]:  # the truth was in the other order: its object k is canonical object 1 - k
            k = len(wanted[0]) - 1 - k
        wanted = canonical
        slot = SLOTS[edit]
        items.append({"edit": seen[0][k][slot] == wanted[0][k][slot],
                      "edited_object": all(seen[0][k][s] == wanted[0][k][s] for s in range(3) if s != slot),
                      "other_object": all(seen[0][j] == wanted[0][j] for j in range(len(wanted[0])) if j != k),
                      "layout": seen[1] == wanted[1]})
    return items


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
        composite: the U-Net predicts a mask and a colour per pixel and composites them over the input (what the
            mask leaves shut passes through exactly); ``False``: it predicts a change added to the input.
        evaluator: a captioner checkpoint of the kit (``mmkit fit -c experiments/attention_image_caption.yaml``)
            that reads the outputs for ``*/edit_accuracy`` and ``*/preserve_accuracy``; ``None``: not scored.
        geometric_reader: score ``*/read_edit_accuracy`` and ``*/read_preserve_accuracy`` with the geometric
            reader of ``shapes`` scenes (for ``shapes_edit`` and other data drawn by the ``shapes`` generator).
        changed_weight: the weight of a second L1 term over the pixels the edit changes (where input and target
            differ): an edit touches a few hundred of 4,096 pixels, and plain L1 is content to return the input.
        unchanged_weight: in that term, the weight of each pixel the edit leaves alone beside a changed one (the
            term's sum is still divided by the changed pixels alone). At 0 an object changed that should not be
            costs about 1/20 of what a missed edit costs, per pixel, and the network recolours both objects where
            it is unsure which the instruction names; at 1 every pixel counts alike, and the network learns to
            return its input (validation edit accuracy 0.000 over the first 50k samples): ``mask_weight`` instead.
        mask_weight: the weight of a loss on the composite's mask itself (``composite`` only): binary
            cross-entropy against the pixels the edit changes, summed per changed pixel. The mask then opens
            exactly there, with sharp edges; without it, only through the colours it lets in.
        adversarial_weight: the weight of a pix2pix generator loss (0: none, no discriminator). The discriminator
            scores (input, image) pairs with the instruction — a projection discriminator
            (:class:`~multimodal_kit.models.gan.ProjectionDiscriminator`) trained matching-aware: (input, target)
            with its own instruction is real; with another item's instruction, or (input, output) with its own,
            fake. Both networks step together on one optimizer: the generator's adversarial term passes through a
            discriminator held still, the discriminator's loss through detached outputs.
        gan_loss: ``hinge`` or ``bce`` (:mod:`multimodal_kit.models.gan_losses`).
        discriminator_width: the discriminator's first block's channels.
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
                 attention_levels: int = 2, composite: bool = True, evaluator: str | None = None,
                 geometric_reader: bool = True,
                 changed_weight: float = 1.0, unchanged_weight: float = 0.0, mask_weight: float = 0.0,
                 adversarial_weight: float = 0.0,
                 gan_loss: LossKind = "hinge",
                 discriminator_width: int = 32,
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
        if hp.mask_weight and not hp.composite:
            raise ConfigError("mask_weight trains the composite's mask: set --model.init_args.composite true, or "
                              "mask_weight 0")
        dim = self.instruction_encoder.out_dim
        self.unet = FiLMUNet(dim, tuple(hp.widths), word_dim=dim, attention_levels=hp.attention_levels,
                             composite=hp.composite)
        self.discriminator = ProjectionDiscriminator(6, dim, hp.image_size, width=hp.discriminator_width) \
            if hp.adversarial_weight > 0 else None
        self.evaluator: Any = None

    def configure_metrics(self) -> None:
        for stage in ("val", "test"):
            setattr(self, f"{stage}_l1", MeanMetric())
            setattr(self, f"{stage}_psnr", PeakSignalNoiseRatio(data_range=1.0))
            for name in ("edit", "preserve"):
                for prefix in ("", "real_", "read_", "real_read_"):
                    setattr(self, f"{stage}_{prefix}{name}", MeanMetric())
        # at test, where the geometric reader finds the outputs failing: each part kept, preserve per kind of edit
        for key in (*(f"kept_{part}" for part in PARTS), *(f"preserve_accuracy_{kind}" for kind in SLOTS)):
            setattr(self, f"test_read_{key}", MeanMetric())

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
        return self.edit(batch)[0]

    def edit(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The edited images (B, 3, S, S), the instructions' pooled encodings (B, T), the condition, and the
        composite's mask logits (B, 1, S, S) (``None`` without ``composite``)."""
        states, lengths = self.instruction_encoder(batch["instruction_tokens"], batch["instruction_lengths"])
        mask = length_mask(lengths.to(states.device), states.shape[1])  # (B, L)
        condition = masked_mean(states, mask)
        edited, mask_logits = self.unet.edit(batch["image"], condition, states, mask)
        return edited, condition, mask_logits

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        target, source = batch["target"].float(), batch["image"].float()
        edited, condition, mask_logits = self.edit(batch)
        changed = self.changed_pixels(target, source)
        l1, loss = self.reconstruction_loss(edited.float(), target, changed)  # float32 under mixed precision
        if self.hparams.mask_weight:
            loss = loss + self.hparams.mask_weight * self.mask_loss(mask_logits.float(), changed)
        n = len(target)
        if self.discriminator is not None:
            loss = loss + self.adversarial_losses(source, edited, target, condition.detach(), batch["instruction"])
        self.log("train/l1", l1 / 2, prog_bar=True, batch_size=n)  # on the 0–1 pixel scale
        self.log("train/loss", loss, batch_size=n)
        return loss

    @staticmethod
    def changed_pixels(target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """Where the edit changes the image: images (B, 3, S, S) → (B, 1, S, S) bool."""
        return (target - source).abs().amax(1, keepdim=True) > 0.1

    @staticmethod
    def mask_loss(mask_logits: torch.Tensor, changed: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy of the composite's mask (logits (B, 1, S, S)) against the changed pixels
        (:meth:`changed_pixels`, (B, 1, S, S) bool), summed over every pixel per changed pixel: the mask should
        open exactly where the edit changes the image."""
        bce = torch.nn.functional.binary_cross_entropy_with_logits(mask_logits, changed.float(), reduction="sum")
        return bce / changed.sum().clamp(min=1)

    def reconstruction_loss(self, edited: torch.Tensor, target: torch.Tensor, changed: torch.Tensor
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        """L1 to the target, and the loss: that plus ``changed_weight`` × the L1 summed over the changed pixels (and
        ``unchanged_weight`` × over the others) per changed pixel. Images (B, 3, S, S), the changed pixels
        (:meth:`changed_pixels`, (B, 1, S, S) bool) → two scalars."""
        error = (edited - target).abs()  # (B, 3, S, S)
        changed = changed.expand_as(error)
        l1 = error.mean()
        weights = changed + self.hparams.unchanged_weight * ~changed  # (B, 3, S, S)
        return l1, l1 + self.hparams.changed_weight * (error * weights).sum() / changed.sum().clamp(min=1)

    def adversarial_losses(self, source: torch.Tensor, edited: torch.Tensor, target: torch.Tensor,
                           condition: torch.Tensor, instructions: list[str]) -> torch.Tensor:
        """pix2pix's two losses, summed for one backward pass: the discriminator's (on detached outputs) and
        ``adversarial_weight`` × the generator's (through the discriminator with its parameters held still).
        Images (B, 3, S, S), condition (B, T) detached."""
        discriminator, kind = self.discriminator, self.hparams.gan_loss
        permutation, differ = mismatched_texts(instructions)
        real, fake = torch.cat([source, target], 1), torch.cat([source, edited], 1)  # (B, 6, S, S)
        _, real_scores, wrong_scores, fake_scores = matching_scores(
            discriminator, real, fake.detach(), condition, permutation.to(condition.device))
        d_loss = discriminator_loss(real_scores, wrong_scores, fake_scores, kind, differ.to(condition.device))
        discriminator.requires_grad_(False)  # the generator's term trains the generator alone
        g_loss = generator_loss(discriminator(fake, condition), kind)
        discriminator.requires_grad_(True)
        self.log_dict({"train/d_loss": d_loss, "train/g_adversarial": g_loss}, batch_size=len(source))
        return d_loss + self.hparams.adversarial_weight * g_loss

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
                items = edit_reading(read(images), batch["text"], *edits)
                scores = {"edit": [i["edit"] for i in items], "preserve": [all(i[p] for p in PARTS) for i in items]}
                for name, right in scores.items():
                    metric = getattr(self, f"{stage}_{prefix}{reader}{name}")
                    metric.update(torch.tensor(right, dtype=torch.float))
                    self.log(f"{stage}/{prefix}{reader}{name}_accuracy", metric, batch_size=n,
                             prog_bar=stage == "val" and name == "edit" and prefix == "")
                if stage == "test" and reader == "read_" and prefix == "":
                    self.log_failures(items, scores["preserve"], edits[0])
        return {"edited": outputs}

    def log_failures(self, items: list[dict[str, bool]], preserved: list[bool], edits: list[str]) -> None:
        """At test, where the geometric reader finds what an output fails to keep: ``test/read_kept_<part>`` for
        each of :data:`PARTS`, and ``test/read_preserve_accuracy_<edit>`` for each kind of edit (colour, size,
        shape)."""
        for part in PARTS:
            metric = getattr(self, f"test_read_kept_{part}")
            metric.update(torch.tensor([i[part] for i in items], dtype=torch.float))
            self.log(f"test/read_kept_{part}", metric, batch_size=len(items))
        for kind in SLOTS:
            chosen = torch.tensor([e == kind for e in edits], dtype=torch.float)
            metric = getattr(self, f"test_read_preserve_accuracy_{kind}")
            metric.update(torch.tensor(preserved, dtype=torch.float), weight=chosen)
            self.log(f"test/read_preserve_accuracy_{kind}", metric, batch_size=len(items))

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
