"""``TextGenerationMethod``: what every media → text method shares (Seq2Seq, cross-modal attention).

Training is teacher-forced cross-entropy; validation and test decode freely (greedy or beam search) and score the
decoded text against all references. A subclass says how to encode the source and how one decoder step runs.

Decoding stops at ``max_length`` tokens: by default the longest training text plus a margin, said once. Every
output cut there without its end token is counted: its share is logged (``val/truncated``, ``test/truncated``), a
prediction record says ``truncated: true``, and a warning gives the count; never silently shortened.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, Literal

import torch
from torch import nn
from torchmetrics import MeanMetric

from multimodal_kit.compat import attached_trainer
from multimodal_kit.data.text import canonical_text, decode_tokens, token_counts, token_words
from multimodal_kit.errors import ConfigError
from multimodal_kit.media import TextKind, medium_spec
from multimodal_kit.methods.base import MultimodalMethod
from multimodal_kit.methods.media_source import MediaSource
from multimodal_kit.methods.schedule import LrDecay
from multimodal_kit.methods.truncation import CountsTruncation
from multimodal_kit.metrics import monitor_of, text_metrics
from multimodal_kit.models.search import SearchResult, State, beam_search, greedy_search
from multimodal_kit.utils import rank_zero_info

FALLBACK_MAX_LENGTH = 40  # tokens, where no training texts are at hand to take the limit from


def decode_limit(longest: int) -> int:
    """The tokens to generate at most for data whose longest text takes ``longest`` (EOS included): a quarter
    more, at least 4 more."""
    return longest + max(4, longest // 4)


class TextGenerationMethod(CountsTruncation, MediaSource, MultimodalMethod):
    """Base of the methods that generate text from an image or audio.

    Args:
        vocab_size: output vocabulary (linked from the data by the CLI).
        pad_id: padding id (linked).
        bos_id: start-of-sequence id (linked).
        eos_id: end-of-sequence id (linked).
        media: the pair's medium, the source here: ``image`` or ``audio`` (linked).
        image_size: input image side, for encoders that need an example input (linked).
        n_mels: mel bands of audio features (linked).
        encoder: the source encoder. Images: any ``nn.Module`` mapping (B, 3, H, W) to (B, N, D), (B, C, H, W)
            or (B, D) features; default: a small CNN trained from scratch. Audio: any module mapping features
            (B, T, n_mels) and lengths (B,) to frames (B, T', D) and their lengths (B,); default: conv
            subsampling + BiLSTM (:class:`~multimodal_kit.models.audio_encoders.ConvLSTMAudioEncoder`).
        max_length: the most tokens generated (EOS included); default: the longest training text's plus a
            quarter (at least 4), set at fit and kept in the checkpoint (40 without training texts at hand,
            e.g. ``Trainer.fit`` on bare dataloaders; said either way). The share of outputs cut there is
            logged (``*/truncated``) and their count warned about.
        beam_size: 1 for greedy search, more for beam search (validation, test and predict).
        length_penalty: beam search divides scores by ``length ** length_penalty``.
        label_smoothing: cross-entropy label smoothing.
        lr: AdamW learning rate (``--optimizer``/``--lr_scheduler`` on the CLI replace the default optimizer).
        weight_decay: AdamW weight decay.
        warmup_steps: raise the learning rate linearly from 0 over this many steps (0: constant from the start).
        lr_decay: after warmup, ``constant`` or ``cosine`` (to zero at the run's last step: needs
            ``--trainer.max_steps`` or ``max_epochs``).
        encoder_lr: the encoder's own learning rate (e.g. lower, to fine-tune a pretrained one); default ``lr``.
            Frozen parameters (a pretrained encoder with ``trainable: false``) are never given to the optimizer.
        text_kind: what the generated text is, which picks its metrics: ``caption`` (BLEU-1…4, CIDEr, exact
            match; best checkpoint by BLEU-4) or ``transcript`` (WER, CER, exact match; by WER); default: the
            medium's (:class:`~multimodal_kit.media.MediumSpec`: captions of images, transcripts of audio), so
            audio captioning sets ``caption``.
    """

    def __init__(
        self,
        vocab_size: int = 0,
        pad_id: int = 0,
        bos_id: int = 1,
        eos_id: int = 2,
        media: Literal["image", "audio"] = "image",
        image_size: int = 64,
        n_mels: int = 64,
        encoder: nn.Module | None = None,
        max_length: int | None = None,
        beam_size: int = 1,
        length_penalty: float = 0.0,
        label_smoothing: float = 0.0,
        lr: float = 2e-3,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        lr_decay: LrDecay = "constant",
        encoder_lr: float | None = None,
        text_kind: TextKind | None = None,
    ) -> None:
        self.give(encoder=encoder)
        super().__init__()

    @property
    def text_kind(self) -> TextKind:
        """``caption`` or ``transcript``: the ``text_kind`` argument, else the medium's default."""
        return self.hparams.get("text_kind") or medium_spec(self.hparams.media).text

    @property
    def checkpoint_monitor(self) -> tuple[str, str]:
        """Best checkpoint: highest validation BLEU-4 for captions, lowest validation WER for transcripts."""
        return monitor_of(self.text_kind)

    def configure_losses(self) -> None:
        self.loss_fn = nn.CrossEntropyLoss(ignore_index=self.hparams.pad_id,
                                           label_smoothing=self.hparams.label_smoothing)

    def configure_metrics(self) -> None:
        self.val_metrics = text_metrics(self.text_kind, "val", full=False)
        self.test_metrics = text_metrics(self.text_kind, "test", full=True)
        # the evaluation loss per target token over the whole split, reduced by torchmetrics across processes:
        # independent of batching and sharding (Lightning's own sync_dist mean floors its integer batch-size
        # count when ranks hold unequal shares, Lightning-AI/pytorch-lightning#21859)
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()
        # outputs that reached max_length without their end token, over the whole split
        self.val_truncated, self.test_truncated = MeanMetric(), MeanMetric()  # the share cut

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if self.hparams.max_length is None:
            self.hparams.max_length = self.data_decode_limit(stage)

    def data_decode_limit(self, stage: str) -> int:
        """``max_length`` from the training texts (every reference): :func:`decode_limit` of the longest, said
        once."""
        datamodule = getattr(attached_trainer(self), "datamodule", None)
        counted = getattr(datamodule, "longest_training_text", None)  # the kit's data modules count it in their check
        try:
            texts = [] if counted else [r for refs in datamodule.dataset("train").references for r in refs]
        except Exception:  # no data module, or its training split is not loaded (evaluation of a bare config)
            texts = []
        if not texts and not counted:  # e.g. Trainer.fit on bare dataloaders: a fixed limit, said, and cut outputs still counted
            rank_zero_info(f"{type(self).__name__}: max_length {FALLBACK_MAX_LENGTH} tokens (no training texts loaded "
                           f"to take it from in {stage}); set --model.init_args.max_length to change it.")
            return FALLBACK_MAX_LENGTH
        longest = (counted or max(token_counts(self.require_tokenizer(), texts))) - 1  # generated: no BOS, with EOS
        limit = decode_limit(longest)
        rank_zero_info(f"{type(self).__name__}: max_length {limit} tokens (the longest training text has {longest}, "
                       "EOS included); set --model.init_args.max_length to change it.")
        return limit

    def count_truncated(self, result: SearchResult) -> torch.Tensor:
        """Which outputs (B,) reached ``max_length`` without the end token."""
        return ~(result.tokens == self.hparams.eos_id).any(1)

    # ------------------------------------------------------------------ what a method implements
    @abstractmethod
    def encode(self, batch: dict[str, Any]) -> State:
        """Encode the batch's source into what the decoder reads (its *memory*)."""

    @abstractmethod
    def initial_state(self, memory: State) -> State:
        """The decoder state before the first token; batch-first tensors (see :mod:`..models.search`)."""

    @abstractmethod
    def decode_step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State, torch.Tensor | None]:
        """tokens (N,) → logits (N, V), next state, attention (N, S) or None."""

    @abstractmethod
    def teacher_forced_logits(self, memory: State, inputs: torch.Tensor) -> torch.Tensor:
        """inputs (B, T) (BOS … second to last token) → logits (B, T, V)."""

    def parameter_groups(self) -> list[dict[str, Any]]:
        """The encoder's trainable parameters apart, at ``encoder_lr`` (frozen ones are left out)."""
        encoder = [p for p in self.encoder.parameters() if p.requires_grad]
        mine = {id(p) for p in self.encoder.parameters()}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in mine]
        return [{"params": rest}, {"params": encoder, "lr": self.hparams.get("encoder_lr") or self.hparams.lr}]

    # ------------------------------------------------------------------ inference
    def generate(self, batch: dict[str, Any], beam_size: int | None = None, max_length: int | None = None,
                 memory: State | None = None) -> SearchResult:
        """Decode freely from the batch's source (greedy for ``beam_size`` 1, else beam search); ``memory``
        reuses an encoding of this batch already computed."""
        hp = self.hparams
        beam_size = beam_size or hp.beam_size
        memory = self.encode(batch) if memory is None else memory
        state = self.initial_state(memory)
        n = batch[hp.media].shape[0]

        def step(tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State, torch.Tensor | None]:
            logits, state, attn = self.decode_step(tokens, state)
            return logits.float().log_softmax(-1), state, attn

        limit = max_length or hp.max_length
        if limit is None:
            raise ConfigError(f"{type(self).__name__}: max_length is unset (it is taken from the training texts in "
                              "setup): pass max_length, or set --model.init_args.max_length.")
        kwargs = dict(batch_size=n, bos=hp.bos_id, eos=hp.eos_id, max_length=limit, device=self.device)
        if beam_size == 1:
            return greedy_search(step, state, **kwargs)
        return beam_search(step, state, beam_size=beam_size, length_penalty=hp.length_penalty, **kwargs)

    def forward(self, batch: dict[str, Any]) -> list[str]:
        """Inference: the generated text for each item of the batch."""
        return decode_tokens(self.require_tokenizer(), self.generate(batch).tokens)

    # ------------------------------------------------------------------ training and evaluation
    def token_loss(self, logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of logits (B, T-1, V) predicting tokens[:, 1:] (padding ignored)."""
        return self.loss_fn(logits.reshape(-1, logits.shape[-1]).float(), tokens[:, 1:].reshape(-1))

    def loss(self, batch: dict[str, Any], memory: State | None = None) -> torch.Tensor:
        """Teacher-forced cross-entropy of the batch's tokens."""
        tokens = batch["text_tokens"]
        memory = self.encode(batch) if memory is None else memory
        return self.token_loss(self.teacher_forced_logits(memory, tokens[:, :-1]), tokens)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self.loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["text_tokens"]))
        return loss

    def evaluation_step(self, batch: dict[str, Any], stage: str) -> dict[str, Any]:
        tokenizer = self.require_tokenizer()
        tokens = batch["text_tokens"]
        n = len(tokens)
        memory = self.encode(batch)  # once, for the loss and for decoding
        mean_loss = self.loss(batch, memory)
        loss_metric = self.val_loss if stage == "val" else self.test_loss
        loss_metric.update(mean_loss, weight=(tokens[:, 1:] != self.hparams.pad_id).sum())
        self.log(f"{stage}/loss", loss_metric, prog_bar=stage == "val", batch_size=n)
        result = self.generate(batch, memory=memory)
        predictions = decode_tokens(tokenizer, result.tokens)
        self.count_cut(stage, self.count_truncated(result))
        self.log(f"{stage}/truncated", getattr(self, f"{stage}_truncated"), batch_size=n)
        metrics = self.val_metrics if stage == "val" else self.test_metrics
        metrics.update([canonical_text(tokenizer, p) for p in predictions],
                       [[canonical_text(tokenizer, r) for r in refs] for refs in batch["references"]])
        self.log_dict(metrics, prog_bar=stage == "val", batch_size=n)
        return {"predictions": predictions}

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        """One record per input: ``id``, ``input``, ``text``; with attention, also ``_words`` and ``_attention``
        (T, N) for the prediction writer, which draws them and drops them from the JSON."""
        tokenizer = self.require_tokenizer()
        result = self.generate(batch)
        texts = decode_tokens(tokenizer, result.tokens)
        inputs = batch.get("input", batch["id"])
        records = [{"id": i, "input": x, "text": t} for i, x, t in zip(batch["id"], inputs, texts, strict=True)]
        cut = self.count_truncated(result).tolist()
        self.predict_truncated += sum(cut)
        for record, was_cut in zip(records, cut, strict=True):
            if was_cut:
                record["truncated"] = True
        if result.attention is not None:
            for k, record in enumerate(records):
                n = int(result.lengths[k])
                record["_words"] = token_words(tokenizer, result.tokens[k, :n])
                record["_attention"] = result.attention[k, :n].float().cpu()
        return records
