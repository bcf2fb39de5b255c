"""A new task in one file: image–text retrieval with the cross-modal attention captioner.

``CaptionRetrieval`` subclasses :class:`~multimodal_kit.methods.CrossModalAttention` and changes only what is new:
it trains exactly like the captioner, and at validation and test time it also ranks, for each caption of a batch,
every image of that batch by how likely the captioner finds the caption given the image (length-normalized
log-probability; ranking images for a caption cancels the caption's own prior, which would otherwise dominate),
scored by Recall@K (torchmetrics' ``RetrievalRecall``; an image counts as relevant when the caption is one of its
references). Run it by import path::

    python -m multimodal_kit fit -c examples/caption_retrieval.yaml

Everything else — data, tokenizer, checkpoints, W&B, ``mmkit test --ckpt_path …`` — comes with the base class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torchmetrics import MetricCollection
from torchmetrics.retrieval import RetrievalRecall

from multimodal_kit.data.text import canonical_text
from multimodal_kit.methods import CrossModalAttention


class CaptionRetrieval(CrossModalAttention):
    """A captioner that also retrieves images: Recall@K of each caption's image among a batch's images.

    Args:
        recall_at: the K of each ``val/recall@K`` and ``test/recall@K``; the gallery is one evaluation batch
            (``--data.init_args.eval_batch_size`` images).
        **kwargs: the options of :class:`~multimodal_kit.methods.CrossModalAttention`.
    """

    checkpoint_monitor = ("val/recall@1", "max")

    def __init__(self, recall_at: Sequence[int] = (1, 5), **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def configure_metrics(self) -> None:
        super().configure_metrics()
        recalls = {f"recall@{k}": RetrievalRecall(top_k=k) for k in self.hparams.recall_at}
        self.val_retrieval = MetricCollection(recalls, prefix="val/")
        self.test_retrieval = self.val_retrieval.clone(prefix="test/")

    def on_validation_epoch_start(self) -> None:
        self._queries_seen = 0

    def on_test_epoch_start(self) -> None:
        self._queries_seen = 0

    def pair_scores(self, batch: dict[str, Any]) -> torch.Tensor:
        """(B, B): mean log-probability of caption j given image i, for every pair of the batch."""
        tokens = batch["text_tokens"]  # (B, L)
        b = len(tokens)
        memory = self.encode(batch)  # memory (B, N, D), mask (B, N)
        tiled = {k: v.repeat_interleave(b, dim=0) for k, v in memory.items()}  # image i, b times in a row
        captions = tokens.repeat(b, 1)  # (B·B, L): every caption after every image
        logits = self.teacher_forced_logits(tiled, captions[:, :-1]).float()  # (B·B, L-1, V)
        targets = captions[:, 1:]
        real = targets != self.hparams.pad_id
        logp = logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1) * real
        return (logp.sum(1) / real.sum(1)).view(b, b)

    def evaluation_step(self, batch: dict[str, Any], stage: str) -> dict[str, Any]:
        out = super().evaluation_step(batch, stage)
        tokenizer = self.require_tokenizer()
        scores = self.pair_scores(batch)  # (B, B)
        texts = [canonical_text(tokenizer, t) for t in batch["text"]]
        refs = [{canonical_text(tokenizer, r) for r in rs} for rs in batch["references"]]
        relevant = torch.tensor([[t in r for t in texts] for r in refs], device=scores.device)  # (B images, B)
        # one query per caption of the epoch: numbered across batches (and processes), or torchmetrics would pool
        # caption j of every batch into one query
        first = self._queries_seen + self.global_rank * 10**9
        self._queries_seen += len(texts)
        queries = (first + torch.arange(len(texts), device=scores.device)).unsqueeze(0).expand_as(scores)
        metrics = self.val_retrieval if stage == "val" else self.test_retrieval
        # as per-token probabilities (> 0): torchmetrics 1.9's RetrievalRecall ranks negative scores below its zero
        # padding and reports 0 for log-probabilities
        metrics.update(scores.exp().flatten(), relevant.flatten(), indexes=queries.flatten())
        self.log_dict(metrics, prog_bar=stage == "val", batch_size=len(texts))
        return out
