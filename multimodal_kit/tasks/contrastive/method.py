"""``ContrastiveDualEncoder``: CLIP/CLAP-style retrieval — a media tower and a text tower project into one space,
trained with CLIP's symmetric InfoNCE and a learned temperature over in-batch negatives gathered from every
process; scored over the whole split by Recall@K both ways and zero-shot accuracy from prompts.

The data declares the pair's medium and its ``text`` (the caption or transcript); nothing else. ``mmkit predict``
embeds the inputs of ``--data.predict_path`` (media, or a ``.txt`` file of texts) into ``embeddings.npy``, and with
``--model.init_args.queries queries.txt`` ranks the media for each query (``retrieval.jsonl``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from multimodal_kit.compat import attached_trainer
from multimodal_kit.data.predict_inputs import checked_prompts
from multimodal_kit.data.problems import DataError
from multimodal_kit.data.text import encode_texts
from multimodal_kit.errors import ConfigError
from multimodal_kit.methods.base import MultimodalMethod
from multimodal_kit.methods.media_source import MediaSource
from multimodal_kit.methods.schedule import LrDecay
from multimodal_kit.models.masking import length_mask
from multimodal_kit.models.text_encoders import ConvLSTMTextEncoder
from multimodal_kit.tasks.contrastive.index import all_processes, write_embeddings, write_retrieval
from multimodal_kit.tasks.contrastive.loss import clip_loss, gather_rows, text_keys
from multimodal_kit.tasks.contrastive.retrieval import recall_scores, zero_shot_accuracy, zero_shot_truth
from multimodal_kit.tasks.contrastive.towers import Pooling, PretrainedTextEncoder
from multimodal_kit.utils import rank_zero_info

MAX_LOGIT_SCALE = math.log(100.0)  # CLIP clips the inverse temperature at 100


class ContrastiveDualEncoder(MediaSource, MultimodalMethod):
    """Media and text → embeddings in one space (a dual encoder).

    Args:
        vocab_size: the text vocabulary (linked from the data).
        pad_id: padding id (linked).
        media: the pair's medium (linked): ``image`` or ``audio``.
        image_size: input image side (linked).
        n_mels: log-mel bands (linked).
        encoder: the media encoder, any module giving a feature sequence (B, N, D) or vector (B, D), e.g.
            :class:`~multimodal_kit.models.pretrained.PretrainedImageEncoder` (CLIP's vision tower by name) or
            :class:`~multimodal_kit.tasks.contrastive.towers.ClapAudioEncoder`; default: the medium's.
        text_encoder: the text encoder: (tokens, lengths) → states (B, L, D) and lengths, or vectors (B, D), e.g.
            :class:`~multimodal_kit.tasks.contrastive.towers.PretrainedTextEncoder` (CLIP's or CLAP's text tower,
            with ``--data.init_args.tokenizer`` the same model); default: word embeddings and a BiLSTM.
        embed_dim: P, the shared space's size.
        text_embed_dim: the default text encoder's word embedding size.
        text_hidden_dim: its BiLSTM's output size.
        text_conv_layers: its convolutions before the BiLSTM.
        pooling: ``attention`` (a learned query over the sequence, with learned region positions for images) or
            ``mean``: how either tower's sequence becomes one vector.
        pool_heads: the attention pooling's heads.
        temperature: the softmax temperature at the start (CLIP: 0.07); learned with ``learn_temperature``.
        learn_temperature: train the temperature (its inverse clipped at 100).
        zero_shot_classes: classes scored zero-shot (``*/zero_shot_accuracy``): each class's prompt is
            ``zero_shot_template`` filled with its name, and an item is of the class whose words all occur in
            its text (items matching none or several are not scored).
        zero_shot_template: the prompt of a class, ``{}`` its name (e.g. ``"a {}"``).
        queries: for ``predict``: a ``.txt`` file of text queries, one per line: each gets the ``top_k`` media
            of the index of ``--data.predict_path`` (``retrieval.jsonl``).
        top_k: media listed per query.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        warmup_steps: raise the learning rate linearly from 0 over this many steps.
        lr_decay: after warmup, ``constant`` or ``cosine``.
    """

    inputs = {"media": "media", "text": "text"}
    outputs: ClassVar[dict[str, str]] = {}  # embeddings: scored by retrieval, no field of the data
    checkpoint_monitor = ("val/t2m_r5", "max")

    def __init__(self, vocab_size: int = 0, pad_id: int = 0, media: Literal["image", "audio"] = "image",
                 image_size: int = 64, n_mels: int = 64, encoder: nn.Module | None = None,
                 text_encoder: nn.Module | None = None, embed_dim: int = 256, text_embed_dim: int = 128,
                 text_hidden_dim: int = 256, text_conv_layers: int = 0,
                 pooling: Literal["attention", "mean"] = "attention", pool_heads: int = 4, temperature: float = 0.07,
                 learn_temperature: bool = True, zero_shot_classes: list[str] | None = None,
                 zero_shot_template: str = "{}", queries: str | None = None, top_k: int = 5, lr: float = 1e-3,
                 weight_decay: float = 0.0, warmup_steps: int = 0, lr_decay: LrDecay = "constant") -> None:
        self.give(encoder=encoder, text_encoder=text_encoder)
        super().__init__()

    # ------------------------------------------------------------------ models
    def configure_models(self) -> None:
        hp = self.hparams
        if "{}" not in hp.zero_shot_template:
            raise ConfigError(f"zero_shot_template must hold {{}} where a class's name goes, got "
                              f"{hp.zero_shot_template!r}")
        self.encoder, media_dim = self.build_encoder()
        positions = self.source_regions() if hp.media == "image" and hp.pooling == "attention" else None
        self.media_pool = Pooling(media_dim, hp.pooling, hp.pool_heads, positions)
        self.text_encoder = self.given_objects.get("text_encoder") or ConvLSTMTextEncoder(
            hp.vocab_size, hp.pad_id, embed_dim=hp.text_embed_dim, conv_layers=hp.text_conv_layers,
            hidden_dim=hp.text_hidden_dim)
        text_dim = int(self.text_encoder.out_dim)
        self.text_pool = Pooling(text_dim, hp.pooling, hp.pool_heads)
        self.media_projection = nn.Linear(media_dim, hp.embed_dim)
        self.text_projection = nn.Linear(text_dim, hp.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / hp.temperature)),
                                        requires_grad=hp.learn_temperature)
        self.stored: dict[str, dict[str, list[torch.Tensor]]] = {}  # per stage: the split's embeddings so far
        self.predicted: list[dict[str, Any]] = []

    def setup(self, stage: str) -> None:
        super().setup(stage)
        tokenizer = self.tokenizer
        if isinstance(self.text_encoder, PretrainedTextEncoder) and tokenizer is not None \
                and len(tokenizer) > self.text_encoder.vocab_size:
            raise ConfigError(f"the text encoder knows {self.text_encoder.vocab_size} tokens but the data's "
                              f"tokenizer has {len(tokenizer)}: set --data.init_args.tokenizer to the text "
                              "encoder's own (the same name or path).")
        classes = self.hparams.zero_shot_classes
        if classes and tokenizer is not None and tokenizer.unk_token_id is not None and stage != "predict":
            prompts = [self.hparams.zero_shot_template.format(c) for c in classes]
            unknown = [p for p, ids in zip(prompts, tokenizer(prompts, add_special_tokens=False)["input_ids"],
                                           strict=True) if tokenizer.unk_token_id in ids]
            if unknown:
                raise ConfigError(f"zero-shot prompts with words the tokenizer does not know: {unknown}; use the "
                                  "training texts' words in --model.init_args.zero_shot_classes/_template.")
        if stage == "predict" and self.hparams.queries and not Path(self.hparams.queries).expanduser().is_file():
            raise DataError(f"--model.init_args.queries={self.hparams.queries!r}: no such file; give a .txt file "
                            "of text queries, one per line.")

    # ------------------------------------------------------------------ embeddings
    def embed_media(self, batch: dict[str, Any]) -> torch.Tensor:
        """The batch's media → L2-normalized embeddings (B, P)."""
        features, mask = self.encode_source(batch)
        return F.normalize(self.media_projection(self.media_pool(features, mask)).float(), dim=-1)

    def embed_text(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Token ids (B, L) with their lengths (B,) → L2-normalized embeddings (B, P)."""
        out = self.text_encoder(tokens, lengths)
        if isinstance(out, tuple):
            states, lengths = out
            out = self.text_pool(states, length_mask(lengths.to(states.device), states.shape[1]))
        return F.normalize(self.text_projection(out).float(), dim=-1)

    def embed_texts(self, texts: list[str]) -> torch.Tensor:
        """Texts → L2-normalized embeddings (B, P), tokenized as the data tokenizes them."""
        tokens, lengths = encode_texts(self.require_tokenizer(), texts)
        return self.embed_text(tokens.to(self.device), lengths.to(self.device))

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's media and text embeddings, (B, P) each."""
        return self.embed_media(batch), self.embed_text(batch["text_tokens"], batch["text_lengths"])

    # ------------------------------------------------------------------ steps
    @property
    def world(self) -> tuple[int, int]:
        """(processes, this one's rank); one process outside a trainer."""
        trainer = attached_trainer(self)
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def contrastive_loss(self, media: torch.Tensor, text: torch.Tensor, texts: list[str]) -> torch.Tensor:
        """CLIP's loss of the batch's pairs against every process's (:func:`~.loss.clip_loss`)."""
        return clip_loss(media, text, text_keys(texts).to(media.device),
                         self.logit_scale.clamp(max=MAX_LOGIT_SCALE), self.all_gather, self.world)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        media, text = self(batch)
        loss = self.contrastive_loss(media, text, batch["text"])
        self.log("train/loss", loss, prog_bar=True, batch_size=len(media))
        self.log("train/temperature", 1 / self.logit_scale.detach().clamp(max=MAX_LOGIT_SCALE).exp(),
                 batch_size=len(media))
        return loss

    def evaluation_step(self, batch: dict[str, Any], stage: str) -> None:
        media, text = self(batch)  # scored over the whole split at the epoch's end: no batch loss, which would
        # depend on how the items were batched and sharded across processes
        store = self.stored.setdefault(stage, {"media": [], "text": [], "keys": [], "truth": []})
        store["media"].append(media)
        store["text"].append(text)
        store["keys"].append(text_keys(batch["text"]).to(media.device))
        if self.hparams.zero_shot_classes:
            truth = zero_shot_truth(batch["text"], self.hparams.zero_shot_classes)
            store["truth"].append(torch.tensor(truth, dtype=torch.long, device=media.device))

    def on_validation_epoch_end(self) -> None:
        self.score_split("val")

    def on_test_epoch_end(self) -> None:
        self.score_split("test")

    @torch.no_grad()
    def score_split(self, stage: str) -> None:
        """Recall@1/5/10 both ways and zero-shot accuracy over every item the stage saw, on every process."""
        store = self.stored.pop(stage, None)
        if not store or not store["media"]:
            return
        split = {name: gather_rows(torch.cat(parts), self.all_gather, self.world)[0]
                 for name, parts in store.items() if parts}
        scores = recall_scores(split["media"], split["text"], split["keys"])
        if "truth" in split:
            classes = self.hparams.zero_shot_classes
            prompts = self.embed_texts([self.hparams.zero_shot_template.format(c) for c in classes])
            accuracy, scored = zero_shot_accuracy(split["media"], prompts, split["truth"])
            if scored:
                scores["zero_shot_accuracy"] = accuracy
            elif stage == "test":
                rank_zero_info(f"zero-shot: no {stage} item's text names exactly one of {classes}; not scored.")
        self.log_dict({f"{stage}/{name}": value for name, value in scores.items()},
                      prog_bar=stage == "val", batch_size=len(split["media"]))

    # ------------------------------------------------------------------ predict: embeddings and an index
    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        """One record per input (``id``, ``input``); its embedding is kept for ``embeddings.npy``."""
        reads_media = any(key in batch for key in (self.hparams.media, f"{self.hparams.media}_features"))
        embeddings = self.embed_media(batch) if reads_media else self.embed_text(batch["text_tokens"],
                                                                                  batch["text_lengths"])
        records = [{"id": i, "input": x} for i, x in zip(batch["id"], batch.get("input", batch["id"]), strict=True)]
        self.predicted += [{**record, "embedding": e, "media": reads_media}
                           for record, e in zip(records, embeddings.float().cpu().numpy(), strict=True)]
        return records

    def on_predict_epoch_end(self) -> None:
        rows, self.predicted = all_processes(self.predicted), []
        if not self.trainer.is_global_zero or not rows:
            return
        writer = next((c for c in self.trainer.callbacks if hasattr(c, "output_dir")), None)
        folder = Path(writer.output_dir if writer else Path(self.trainer.default_root_dir) / "predictions")
        write_embeddings(rows, folder)
        if self.hparams.queries:
            if not rows[0]["media"]:
                raise ConfigError("--model.init_args.queries ranks media: give --data.predict_path a media file "
                                  "or a directory of them (the index), not texts.")
            queries = checked_prompts(Path(self.hparams.queries).expanduser(), self.require_tokenizer()).prompts
            with torch.no_grad():
                embedded = torch.cat([self.embed_texts(queries[i:i + 256]) for i in range(0, len(queries), 256)])
            write_retrieval(queries, embedded, rows, self.hparams.top_k, folder)
