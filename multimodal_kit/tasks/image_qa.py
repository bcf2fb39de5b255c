"""Image question answering: an image and a question in, a one-word answer out (a classifier over the answer
vocabulary). Four fusions from the same parts: ``transformer`` — the captioner's transformer decoder reads the
question, every word cross-attending to the image regions in every layer, and names the answer at the question's
last token (answer generation by the text decoder, one word long); ``attention`` — the question's encoding queries
the image regions, stacked over ``hops`` (SAN, Yang et al. 2016); ``pooled`` — the regions' mean beside the
question, no attention (the CNN+LSTM baseline of CLEVR); ``blind`` — the question alone (what the answer prior
gives).

The data declares the fields in its YAML: ``text_column: answer`` (the target, one token), ``text_fields:
{question: question}`` and ``label_fields: {family: family}`` (accuracy per question family).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from multimodal_kit.data.text import decode_tokens, token_counts
from multimodal_kit.errors import ConfigError
from multimodal_kit.methods.base import MultimodalMethod
from multimodal_kit.methods.media_source import MediaSource
from multimodal_kit.methods.schedule import LrDecay
from multimodal_kit.models.attention import AdditiveAttention
from multimodal_kit.models.attention_decoders import TransformerAttentionDecoder
from multimodal_kit.models.masking import length_mask, masked_mean
from multimodal_kit.models.search import SearchResult
from multimodal_kit.models.text_encoders import ConvLSTMTextEncoder

#: the question families of the embedded ``shapes_qa`` set
FAMILIES = ("color", "shape", "relation", "count", "exists", "size")


class ImageQuestionAnswering(MediaSource, MultimodalMethod):
    """Image + question → answer.

    Args:
        vocab_size: the vocabulary, questions and answers alike (linked from the data).
        pad_id: padding id (linked).
        bos_id: start-of-sequence id (linked).
        eos_id: end-of-sequence id (linked).
        media: the pair's medium (linked): ``image``.
        image_size: input image side (linked).
        n_mels: linked from the data; unused.
        fusion: ``transformer`` (the question through a transformer decoder cross-attending to the regions),
            ``attention`` (stacked attention over the regions), ``pooled`` (the regions' mean, no attention) or
            ``blind`` (the question alone).
        encoder: the image encoder, any module mapping (B, 3, H, W) to regions (B, N, D); default: the kit's CNN.
        embed_dim: question word embedding size.
        hidden_dim: the question encoding's size and the fused representation's.
        attention_dim: the attention's scoring MLP size.
        hops: stacked attention layers (``attention``).
        d_model: the transformer's width (``transformer``; also its heads, layers, MLP size below).
        num_heads: its attention heads.
        num_layers: its layers, each with self-attention over the question and cross-attention to the regions.
        ff_dim: its MLP hidden size.
        region_positions: add a learned embedding of each region's place to its features, so what a hop attends
            to says where it is (relations: "left of the red circle").
        dropout: dropout before the classifier.
        families: question families reported as ``*/accuracy_<family>`` (from the label field ``family``).
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: raise the learning rate linearly from 0 over this many steps.
        lr_decay: after warmup, ``constant`` or ``cosine`` (to zero at the run's last step).
    """

    inputs = {"media": "media", "question": "text"}
    outputs = {"text": "text"}  # the answer: the data's text column
    checkpoint_monitor = ("val/accuracy", "max")

    def __init__(self, vocab_size: int = 0, pad_id: int = 0, bos_id: int = 1, eos_id: int = 2,
                 media: Literal["image"] = "image", image_size: int = 64, n_mels: int = 64,
                 fusion: Literal["transformer", "attention", "pooled", "blind"] = "attention",
                 encoder: nn.Module | None = None, embed_dim: int = 128, hidden_dim: int = 256,
                 attention_dim: int = 256, hops: int = 2, d_model: int = 256, num_heads: int = 4, num_layers: int = 2,
                 ff_dim: int = 512,
                 region_positions: bool = False, dropout: float = 0.1, families: tuple[str, ...] = FAMILIES, lr: float = 1e-3,
                 weight_decay: float = 0.0, warmup_steps: int = 0, lr_decay: LrDecay = "constant") -> None:
        self.give(encoder=encoder)
        super().__init__()

    # ------------------------------------------------------------------ models and metrics
    def configure_models(self) -> None:
        hp = self.hparams
        self.encoder, dim = self.build_encoder() if hp.fusion != "blind" else (None, 0)  # blind: no image at all
        self.decoder: TransformerAttentionDecoder | None = None
        self.positions: nn.Parameter | None = None
        if hp.fusion == "transformer":  # its own word embeddings and output layer: no question encoder below
            self.decoder = TransformerAttentionDecoder(hp.vocab_size, dim, hp.d_model, hp.num_heads, hp.num_layers,
                                                       hp.ff_dim, hp.dropout, hp.pad_id)
            return
        if hp.fusion not in ("attention", "pooled", "blind"):
            raise ConfigError(f"fusion must be transformer, attention, pooled or blind, got {hp.fusion!r}")
        self.question_encoder = ConvLSTMTextEncoder(hp.vocab_size, hp.pad_id, embed_dim=hp.embed_dim, conv_layers=0,
                                                    hidden_dim=hp.hidden_dim)
        width = self.question_encoder.out_dim
        hops = hp.hops if hp.fusion == "attention" else 0
        self.attention = nn.ModuleList(AdditiveAttention(width, dim, hp.attention_dim) for _ in range(hops))
        self.project = nn.ModuleList(nn.Linear(dim, width) for _ in range(hops))
        fused = width + (dim if hp.fusion == "pooled" else 0)
        if hp.get("region_positions") and self.encoder is not None:
            self.positions = nn.Parameter(torch.randn(1, self.source_regions(), dim) * 0.02)  # (1, N, D)
        self.classifier = nn.Sequential(nn.Dropout(hp.dropout), nn.Linear(fused, hp.hidden_dim), nn.ReLU(),
                                        nn.Dropout(hp.dropout), nn.Linear(hp.hidden_dim, hp.vocab_size))

    def configure_losses(self) -> None:
        self.loss_fn = nn.CrossEntropyLoss()

    def configure_metrics(self) -> None:
        def accuracy() -> MulticlassAccuracy:
            return MulticlassAccuracy(num_classes=self.hparams.vocab_size, average="micro")

        for stage in ("val", "test"):
            per_family = {f"accuracy_{family}": accuracy() for family in self.hparams.families}
            setattr(self, f"{stage}_accuracy", accuracy())
            setattr(self, f"{stage}_families", MetricCollection(per_family, prefix=f"{stage}/", compute_groups=False))

    def setup(self, stage: str) -> None:
        super().setup(stage)
        datamodule = getattr(self.trainer, "datamodule", None)
        if stage == "fit" and datamodule is not None and hasattr(datamodule, "rows"):
            answers = sorted(set(datamodule.rows["train"].texts))
            long = [a for a, n in zip(answers, token_counts(self.require_tokenizer(), answers), strict=True) if n != 3]
            if long:
                raise ConfigError(f"{type(self).__name__} classifies one-token answers; {len(long)} training "
                                  f"answer(s) are longer, e.g. {long[:3]}: use one-word answers (a word-level "
                                  "tokenizer) or generate answers with CrossModalAttention and text_fields.")

    # ------------------------------------------------------------------ forward
    def answer_logits(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The batch's images and questions → answer logits (B, V) and the last hop's attention over the
        regions (B, N) (``None`` without attention)."""
        hp = self.hparams
        if self.decoder is not None:  # the answer is the word after the question: read at its last token
            tokens, lengths = batch["question_tokens"], batch["question_lengths"]
            logits, attention = self.decoder(tokens, self.decoder.initial_state(*self.regions(batch)))
            last = torch.arange(len(tokens), device=logits.device), lengths.to(logits.device) - 1
            return logits[last], attention[last]  # (B, V), (B, N)
        states, lengths = self.question_encoder(batch["question_tokens"], batch["question_lengths"])
        query = masked_mean(states, length_mask(lengths.to(states.device), states.shape[1]))  # (B, H)
        weights = None
        if hp.fusion == "attention":
            regions, mask = self.regions(batch)  # (B, N, D), (B, N)
            for attend, project in zip(self.attention, self.project, strict=True):
                context, weights = attend(query, regions, attend.prepare(regions), mask)
                query = query + torch.tanh(project(context))  # SAN: u_k = u_{k-1} + v_k
        elif hp.fusion == "pooled":
            query = torch.cat([query, masked_mean(*self.regions(batch))], -1)
        return self.classifier(query), weights

    def regions(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """The image's region features (B, N, D), with their places added (``region_positions``), and mask."""
        regions, mask = self.encode_source(batch)
        return (regions if self.positions is None else regions + self.positions.to(regions.dtype)), mask

    def targets(self, batch: dict[str, Any]) -> torch.Tensor:
        """The answers' token ids (B,): ``BOS answer EOS``, so position 1."""
        return batch["text_tokens"][:, 1]

    def generate(self, batch: dict[str, Any]) -> SearchResult:
        """The predicted answer as a one-token result, with the attention it came from (what
        :class:`~multimodal_kit.callbacks.AttentionMaps` draws)."""
        logits, weights = self.answer_logits(batch)
        scores, tokens = logits.float().log_softmax(-1).max(-1)
        n = len(tokens)
        return SearchResult(tokens=tokens[:, None], lengths=torch.ones(n, dtype=torch.long, device=tokens.device),
                            scores=scores, attention=None if weights is None else weights[:, None])

    def forward(self, batch: dict[str, Any]) -> list[str]:
        """Inference: the answer to each item's question."""
        return decode_tokens(self.require_tokenizer(), self.generate(batch).tokens)

    # ------------------------------------------------------------------ steps
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        logits, _ = self.answer_logits(batch)
        loss = self.loss_fn(logits.float(), self.targets(batch))
        self.log("train/loss", loss, prog_bar=True, batch_size=len(logits))
        return loss

    def evaluation_step(self, batch: dict[str, Any], stage: str) -> dict[str, Any]:
        logits, _ = self.answer_logits(batch)
        target, n = self.targets(batch), len(logits)
        self.log(f"{stage}/loss", self.loss_fn(logits.float(), target), batch_size=n, sync_dist=True)
        accuracy, families = getattr(self, f"{stage}_accuracy"), getattr(self, f"{stage}_families")
        predicted = logits.argmax(-1)
        accuracy.update(predicted, target)
        self.log(f"{stage}/accuracy", accuracy, prog_bar=stage == "val", batch_size=n)
        labels, classes = batch.get("family"), self.label_classes.get("family", [])
        if labels is not None:
            for family in self.hparams.families:
                if family not in classes:
                    continue
                chosen = labels.to(target.device) == classes.index(family)
                if chosen.any():
                    families[f"accuracy_{family}"].update(predicted[chosen], target[chosen])
            self.log_dict(families, batch_size=n)
        return {"predictions": decode_tokens(self.require_tokenizer(), predicted[:, None])}

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        """One record per input: ``id``, ``input`` (the image), ``question``, ``answer``."""
        answers = self(batch)
        return [{"id": i, "input": x, "question": q, "answer": a}
                for i, x, q, a in zip(batch["id"], batch.get("input", batch["id"]), batch["question"], answers,
                                      strict=True)]
