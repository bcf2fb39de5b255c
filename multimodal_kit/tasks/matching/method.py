"""``ImageTextMatching``: an image and a caption in, match or no match out. Half of the pairs are made false by
swapping one attribute of the caption (:mod:`.negatives`): drawn anew each time in training, fixed per item id in
evaluation. Three fusions of the same parts: ``cross_attention`` (the caption's words attend over the image
regions, a transformer), ``dual`` (the contrastive dual encoder's cosine, scaled and shifted), ``blind`` (the
caption alone: what the text gives away, which should be nothing).

The data declares the caption as a text field (``text_fields: {caption: text}``, ``text_column: null``), so a
``predict`` record is an image and its caption.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric

from multimodal_kit.data.problems import DataError
from multimodal_kit.data.text import encode_texts
from multimodal_kit.errors import ConfigError
from multimodal_kit.methods.base import MultimodalMethod
from multimodal_kit.methods.media_source import MediaSource
from multimodal_kit.methods.schedule import LrDecay
from multimodal_kit.models.masking import length_mask
from multimodal_kit.models.text_encoders import ConvLSTMTextEncoder
from multimodal_kit.tasks.contrastive.towers import Pooling
from multimodal_kit.tasks.matching.negatives import ATTRIBUTES, hard_negative, item_rng

FUSIONS = ("cross_attention", "dual", "blind")


def grid_coordinates(regions: int) -> torch.Tensor:
    """The (x, y) of each of ``regions`` regions in [-1, 1], (N, 2), in the row-major order of a square grid
    (a CNN's flattened map); a count that is no square is a line of positions (y = 0)."""
    side = round(regions ** 0.5)
    if side * side != regions:
        return torch.stack([torch.linspace(-1, 1, regions), torch.zeros(regions)], dim=-1)
    y, x = torch.meshgrid(torch.linspace(-1, 1, side), torch.linspace(-1, 1, side), indexing="ij")
    return torch.stack([x.flatten(), y.flatten()], dim=-1)


class ImageTextMatching(MediaSource, MultimodalMethod):
    """Image + caption → P(the caption describes the image).

    Args:
        vocab_size: the vocabulary (linked from the data).
        pad_id: padding id (linked).
        media: the pair's medium (linked): ``image``.
        image_size: input image side (linked).
        fusion: ``cross_attention``, ``dual`` or ``blind`` (see the module docstring).
        encoder: the image encoder, any module giving regions (B, N, D); default: the kit's CNN.
        d_model: the width every part works in.
        num_heads: attention heads (the transformer's and the pooling's).
        num_layers: transformer layers, each with self-attention over the words and cross-attention to the
            regions (``cross_attention``).
        ff_dim: their MLP hidden size.
        dropout: dropout in the transformer and before the classifier.
        negative_share: the share of pairs made false (half, by default) in evaluation, and in training
            without ``paired``.
        paired: train on every image twice, with its caption and with a swapped one: the two differ by the one
            attribute, so every step shows the model what to look at (the training samples are the pairs).
        swap_weights: in training, how often each attribute is the one swapped, relative to the others (1 for an
            attribute left out; e.g. ``{relation: 3}``), among those a caption has; evaluation always draws
            uniformly, so the scores stay comparable.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: raise the learning rate linearly from 0 over this many steps.
        lr_decay: after warmup, ``constant`` or ``cosine``.
        region_colours: ``cross_attention`` on a square grid of image regions: add to each region its mean colour
            (the pixels average-pooled to the grid, through a linear map), so "red" finds red from the first step
            rather than once the CNN has learnt to pass colour on.
        caption_weight: ``cross_attention``, in training: the weight of a second loss, captioning the true pairs
            with the same transformer (causal, a next-word head): every word of the caption is a target that
            only the image's regions can predict, a denser signal than one match bit per pair (as BLIP trains
            matching and captioning together); 0: matching alone.
    """

    inputs = {"media": "media", "caption": "text"}
    outputs: ClassVar[dict[str, str]] = {}  # match / no match: made by the task from the caption, not a field
    checkpoint_monitor = ("val/accuracy", "max")

    def __init__(self, vocab_size: int = 0, pad_id: int = 0, media: Literal["image"] = "image", image_size: int = 64,
                 fusion: Literal["cross_attention", "dual", "blind"] = "cross_attention",
                 encoder: nn.Module | None = None, d_model: int = 256, num_heads: int = 4, num_layers: int = 2,
                 ff_dim: int = 512, dropout: float = 0.1, negative_share: float = 0.5, paired: bool = True,
                 swap_weights: dict[str, float] | None = None, lr: float = 5e-4,
                 weight_decay: float = 0.0, warmup_steps: int = 0, lr_decay: LrDecay = "constant",
                 region_colours: bool = False, caption_weight: float = 0.0) -> None:
        self.give(encoder=encoder)
        super().__init__()

    # ------------------------------------------------------------------ models and metrics
    def configure_models(self) -> None:
        hp = self.hparams
        if hp.fusion not in FUSIONS:
            raise ConfigError(f"fusion must be one of {FUSIONS}, got {hp.fusion!r}")
        if not 0 < hp.negative_share < 1:
            raise ConfigError(f"negative_share must lie between 0 and 1, got {hp.negative_share}")
        for name, weight in (hp.swap_weights or {}).items():
            if name not in ATTRIBUTES or not weight >= 0:
                raise ConfigError(f"swap_weights: {name}: {weight} — the names are {ATTRIBUTES}, the weights >= 0")
        if hp.caption_weight < 0:
            raise ConfigError(f"caption_weight must be >= 0, got {hp.caption_weight}")
        for name, value in (("caption_weight", hp.caption_weight), ("region_colours", hp.region_colours)):
            if value and hp.fusion != "cross_attention":  # the words meet the regions in cross_attention alone
                raise ConfigError(f"{name}: {value} is a part of fusion cross_attention, not of {hp.fusion}: add "
                                  f"--model.init_args.{name} {'0' if name == 'caption_weight' else 'false'}")
        self.encoder, dim = self.build_encoder() if hp.fusion != "blind" else (None, 0)  # blind: no image at all
        self.text_encoder = ConvLSTMTextEncoder(hp.vocab_size, hp.pad_id, embed_dim=hp.d_model // 2, conv_layers=0,
                                                hidden_dim=hp.d_model) if hp.fusion != "cross_attention" else None
        self.text_pool = Pooling(hp.d_model, "attention", hp.num_heads)
        if hp.fusion == "cross_attention":
            regions = self.source_regions()
            self.words = nn.Embedding(hp.vocab_size, hp.d_model, padding_idx=hp.pad_id)
            nn.init.normal_(self.words.weight, std=0.02)  # the scale of the places: word order is heard from step 1
            self.regions = nn.Linear(dim, hp.d_model)
            self.region_places = nn.Parameter(torch.randn(1, regions, hp.d_model) * 0.02)
            # where each region lies, as coordinates: "left of" and "above" become comparisons of two numbers
            self.register_buffer("region_grid", grid_coordinates(regions), persistent=False)
            self.region_coordinates = nn.Linear(2, hp.d_model)
            if hp.region_colours and (hp.media != "image" or round(regions ** 0.5) ** 2 != regions):
                raise ConfigError(f"region_colours: true needs image regions on a square grid; the encoder gives "
                                  f"{regions} regions of {hp.media!r}: set region_colours: false")
            self.region_colours = nn.Linear(3, hp.d_model) if hp.region_colours else None
            self.next_word = nn.Linear(hp.d_model, hp.vocab_size) if hp.caption_weight else None
            self.word_places = nn.Parameter(torch.randn(1, 64, hp.d_model) * 0.02)
            layer = nn.TransformerDecoderLayer(hp.d_model, hp.num_heads, hp.ff_dim, hp.dropout, batch_first=True,
                                               norm_first=True)
            self.fuse = nn.TransformerDecoder(layer, hp.num_layers)
        elif hp.fusion == "dual":
            self.image_pool = Pooling(dim, "attention", hp.num_heads, self.source_regions())
            self.image_projection, self.text_projection = nn.Linear(dim, hp.d_model), nn.Linear(hp.d_model, hp.d_model)
            self.scale, self.shift = nn.Parameter(torch.tensor(10.0)), nn.Parameter(torch.tensor(-5.0))
        self.classifier = nn.Sequential(nn.Dropout(hp.dropout), nn.Linear(hp.d_model, hp.d_model), nn.ReLU(),
                                        nn.Linear(hp.d_model, 1)) if hp.fusion != "dual" else None

    def configure_metrics(self) -> None:
        for stage in ("val", "test"):
            names = ("accuracy", "accuracy_match", *(f"accuracy_{a}" for a in ATTRIBUTES))
            setattr(self, f"{stage}_metrics", nn.ModuleDict({name: MeanMetric() for name in names}))

    # ------------------------------------------------------------------ forward
    def logits(self, batch: dict[str, Any], tokens: torch.Tensor, lengths: torch.Tensor,
               memory: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """The batch's B images with captions ``tokens`` (K·B, L) of ``lengths`` (K·B,): caption row j goes with
        image j mod B (K = 1, or 2 in paired training: every image with its caption, then with a swapped one) →
        match logits (K·B,). ``memory``: the images' :meth:`region_memory`, where the caller has it already."""
        hp = self.hparams
        mask = length_mask(lengths.to(tokens.device), tokens.shape[1])  # (K·B, L)
        if hp.fusion == "cross_attention":
            fused = self.read_words(tokens, mask, *(memory or self.region_memory(batch)))
            return self.classifier(self.text_pool(fused, mask)).squeeze(-1)
        states, _ = self.text_encoder(tokens, lengths)
        text = self.text_pool(states, mask)  # (B, D)
        if hp.fusion == "blind":
            return self.classifier(text).squeeze(-1)
        regions, region_mask = self.encode_source(batch)
        image = F.normalize(self.image_projection(self.image_pool(regions, region_mask)), dim=-1)
        image = image.repeat(len(tokens) // len(image), 1)
        return self.scale * (image * F.normalize(self.text_projection(text), dim=-1)).sum(-1) + self.shift

    def region_memory(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """``cross_attention``: the batch's B images as what the words attend to: each region's features mapped
        to ``d_model`` plus its place, (x, y) and (``region_colours``) mean colour → (B, N, D), mask (B, N)."""
        hp = self.hparams
        regions, region_mask = self.encode_source(batch)  # (B, N, D_encoder), (B, N)
        places = self.region_places + self.region_coordinates(self.region_grid)
        memory = self.regions(regions) + places.to(regions.dtype)
        if self.region_colours is not None:  # each region's mean colour, straight from the pixels
            if hp.media not in batch:
                raise ConfigError("region_colours: true reads the pixels, and this batch carries cached features "
                                  "instead: set region_colours: false or leave the cache off")
            colours = F.adaptive_avg_pool2d(batch[hp.media], round(regions.shape[1] ** 0.5))  # (B, 3, S, S)
            memory = memory + self.region_colours(colours.flatten(2).transpose(1, 2).to(memory.dtype))
        return memory, region_mask

    def read_words(self, tokens: torch.Tensor, mask: torch.Tensor, memory: torch.Tensor, region_mask: torch.Tensor,
                   causal: bool = False) -> torch.Tensor:
        """Captions ``tokens`` (K·B, L) with their ``mask`` through the transformer whose words attend over the
        regions of image j mod B (``memory`` (B, N, D), ``region_mask`` (B, N)) → (K·B, L, D); ``causal``: each
        word sees only those before it (the captioning loss)."""
        if tokens.shape[1] > self.word_places.shape[1]:
            raise DataError(f"a caption of {tokens.shape[1]} tokens; ImageTextMatching reads at most "
                            f"{self.word_places.shape[1]} (BOS and EOS included): shorten it.")
        times = len(tokens) // len(memory)
        words = self.words(tokens) + self.word_places[:, : tokens.shape[1]]
        causal_mask = torch.ones(tokens.shape[1], tokens.shape[1], dtype=torch.bool, device=tokens.device).triu(1) \
            if causal else None  # True: not attended (bool, as the padding masks)
        return self.fuse(words, memory.repeat(times, 1, 1), tgt_mask=causal_mask, tgt_is_causal=causal,
                         tgt_key_padding_mask=~mask, memory_key_padding_mask=~region_mask.repeat(times, 1))

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        """P(match) of each item's image and caption, (B,)."""
        return torch.sigmoid(self.logits(batch, batch["caption_tokens"], batch["caption_lengths"]).float())

    def with_negatives(self, batch: dict[str, Any], stage: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                          list[str | None]]:
        """The batch's captions with a share made false: tokens (B, L), lengths (B,), labels (B,) (1: match) and
        each item's swapped attribute (``None``: its own caption). Training draws anew each time; evaluation
        draws from each item's id, so every run and process sees the same pairs."""
        captions, swapped = list(batch["caption"]), [None] * len(batch["caption"])
        for i, (caption, item_id) in enumerate(zip(batch["caption"], batch["id"], strict=True)):
            rng = np.random.default_rng(int(torch.randint(2**31, ()))) if stage == "train" else item_rng(item_id)
            if rng.random() < self.hparams.negative_share:
                negative = hard_negative(caption, rng, self.hparams.swap_weights if stage == "train" else None)
                if negative is not None:
                    captions[i], swapped[i] = negative.text, negative.attribute
        tokens, lengths = encode_texts(self.require_tokenizer(), captions)
        labels = torch.tensor([s is None for s in swapped], dtype=torch.float, device=self.device)
        return tokens.to(self.device), lengths.to(self.device), labels, swapped

    # ------------------------------------------------------------------ steps
    def paired(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every image with its caption and with a swapped one (drawn anew): tokens (2B, L), lengths (2B,) and
        labels (2B,), the true pairs first."""
        rng = np.random.default_rng(int(torch.randint(2**31, ())))
        negatives = [hard_negative(c, rng, self.hparams.swap_weights) for c in batch["caption"]]
        others = [batch["caption"][(i + 1) % len(negatives)] for i in range(len(negatives))]  # not a shapes caption
        texts = [*batch["caption"], *(n.text if n else o for n, o in zip(negatives, others, strict=True))]
        tokens, lengths = encode_texts(self.require_tokenizer(), texts)
        labels = torch.cat([torch.ones(len(negatives)), torch.zeros(len(negatives))]).to(self.device)
        return tokens.to(self.device), lengths.to(self.device), labels

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        tokens, lengths, labels = self.paired(batch) if self.hparams.paired else \
            self.with_negatives(batch, "train")[:3]
        memory = self.region_memory(batch) if self.hparams.caption_weight else None
        loss = F.binary_cross_entropy_with_logits(self.logits(batch, tokens, lengths, memory).float(), labels)
        if memory is not None:
            caption_loss = self.caption_loss(tokens, lengths, labels, *memory)
            self.log("train/caption_loss", caption_loss, batch_size=len(labels))
            loss = loss + self.hparams.caption_weight * caption_loss
        self.log("train/loss", loss, prog_bar=True, batch_size=len(labels))
        return loss

    def caption_loss(self, tokens: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor, memory: torch.Tensor,
                     region_mask: torch.Tensor) -> torch.Tensor:
        """Next-word cross-entropy of the true captions (``labels`` 1 among ``tokens`` (K·B, L), row j with image
        j mod B) read causally over their image's regions (``memory`` (B, N, D), ``region_mask`` (B, N))."""
        true = labels.bool()
        if not true.any():  # unpaired training can draw a batch of negatives only: no caption to learn
            return self.next_word.weight.sum() * 0.0
        image = (torch.arange(len(tokens), device=tokens.device) % len(memory))[true]
        inputs, targets = tokens[true, :-1], tokens[true, 1:]
        mask = length_mask(lengths[true].to(tokens.device) - 1, inputs.shape[1])
        states = self.read_words(inputs, mask, memory[image], region_mask[image], causal=True)
        return F.cross_entropy(self.next_word(states).float()[mask], targets[mask])

    def evaluation_step(self, batch: dict[str, Any], stage: str) -> None:
        tokens, lengths, labels, swapped = self.with_negatives(batch, stage)
        logits = self.logits(batch, tokens, lengths).float()
        right = ((logits > 0).float() == labels).float()
        metrics = getattr(self, f"{stage}_metrics")
        metrics["accuracy"].update(right)
        groups = {"match": [s is None for s in swapped], **{a: [s == a for s in swapped] for a in ATTRIBUTES}}
        for name, chosen in groups.items():
            chosen_ = torch.tensor(chosen, device=right.device)
            if chosen_.any():
                metrics[f"accuracy_{name}"].update(right[chosen_])
        for name, metric in metrics.items():
            self.log(f"{stage}/{name}", metric, prog_bar=stage == "val" and name == "accuracy",
                     batch_size=len(labels))

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        """One record per input: ``id``, ``input`` (the image), ``caption``, ``match`` (the probability)."""
        probabilities = self(batch).tolist()
        return [{"id": i, "input": x, "caption": c, "match": round(p, 4)}
                for i, x, c, p in zip(batch["id"], batch.get("input", batch["id"]), batch["caption"], probabilities,
                                      strict=True)]
