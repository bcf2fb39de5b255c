"""``FrameGenerationMethod``: what every text → speech method shares (the attention and Seq2Seq synthesizers).

The text's characters are encoded (:class:`~multimodal_kit.models.text_encoders.ConvLSTMTextEncoder`); a
:class:`~multimodal_kit.models.frame_decoders.FrameDecoder` emits standardized log-mel frames, ``reduction`` at a
time, and a stop logit per step. Training is teacher-forced (L1 on the frames before and after the postnet, and
the stop token's cross-entropy); validation and test also decode freely, up to ``max_frames``, and score what
was generated: the alignment's health, and — with a speech recognizer of the kit as ``evaluator`` — what it reads
from the Griffin-Lim sound (``*/cycle_wer``). A subclass says only whether and how the decoder attends
(:meth:`configure_attention`).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any, Literal

import torch
from torch import nn
from torchmetrics import MeanMetric

from multimodal_kit.errors import ConfigError
from multimodal_kit.methods.base import MultimodalMethod
from multimodal_kit.methods.generated_media import (
    STATS_ITEMS,
    CycleScoring,
    cycle_monitor,
    require_sound,
    training_items,
)
from multimodal_kit.methods.schedule import LrDecay
from multimodal_kit.methods.truncation import CountsTruncation
from multimodal_kit.models.attention import alignment_ok, guided_attention_penalty
from multimodal_kit.models.band_norm import BandNormalizer
from multimodal_kit.models.frame_decoders import FrameDecoder
from multimodal_kit.models.masking import length_mask
from multimodal_kit.models.text_encoders import ConvLSTMTextEncoder
from multimodal_kit.utils import rank_zero_info

EVAL_SEED = 0  # the prenet's dropout at inference is drawn from this seed, so evaluations repeat


FALLBACK_MAX_FRAMES = 400  # where no training audio is at hand to take the limit from


class FrameGenerationMethod(CountsTruncation, CycleScoring, MultimodalMethod):
    """Base of the text → speech methods (spectrogram frames, turned into sound by Griffin-Lim).

    Args:
        vocab_size: the text vocabulary (linked from the data; characters: ``--data.tokenizer_kind char``).
        pad_id: padding id (linked).
        bos_id: start-of-sequence id (linked).
        eos_id: end-of-sequence id (linked).
        media: the pair's medium, what is generated: ``audio`` (linked).
        image_size: linked from the data; unused.
        n_mels: mel bands of the generated frames (linked).
        embed_dim: the text encoder's embedding and convolution width.
        encoder_dim: the text encoder's output size (a BiLSTM, half each way).
        encoder_convs: the text encoder's convolutions.
        reduction: r, frames per decoder step (Tacotron 2's reduction factor).
        prenet_dims: the prenet's layer sizes.
        hidden_dim: the decoder LSTMs' size.
        postnet_layers: convolutions of the postnet (0: none).
        postnet_channels: their width.
        dropout: dropout on the decoder LSTMs' outputs.
        max_frames: the most frames generated freely (stops earlier when the stop token fires); default: the
            longest training utterance's frames plus a quarter (at least 16), set at fit and kept in the
            checkpoint (400 without training audio at hand; said either way). The share of utterances cut there
            without their stop token is logged (``*/truncated``) and their count warned about.
        stop_threshold: the stop probability that ends an utterance.
        stop_weight: weight of the positive (last-step) class in the stop token's cross-entropy.
        guided_attention: weight of the guided attention penalty in training (attention far from the diagonal of
            characters × frames costs; ESPnet's Tacotron 2 recipes use 1.0), which makes the alignment form in a
            fraction of the steps; 0 turns it off.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        warmup_steps: raise the learning rate linearly from 0 over this many steps.
        lr_decay: after warmup, ``constant`` or ``cosine`` (to zero at the run's last step).
        evaluator: a speech recognizer checkpoint of the kit that reads the synthesized speech
            (``*/cycle_wer``, ``*/cycle_cer``, ``*/fid``); without it those are skipped.
    """

    inputs = {"text": "text"}
    outputs = {"media": "media"}
    optimizer_class = torch.optim.Adam  # Tacotron 2's (L2 weight decay, not AdamW's decoupled one)
    limit_name, unit, predict_mark = "max_frames", "utterances", "stopped: false"  # CountsTruncation

    def __init__(
        self,
        vocab_size: int = 0,
        pad_id: int = 0,
        bos_id: int = 1,
        eos_id: int = 2,
        media: Literal["audio"] = "audio",
        image_size: int = 64,
        n_mels: int = 80,
        embed_dim: int = 256,
        encoder_dim: int = 256,
        encoder_convs: int = 3,
        reduction: int = 2,
        prenet_dims: tuple[int, ...] = (256, 128),
        hidden_dim: int = 512,
        postnet_layers: int = 5,
        postnet_channels: int = 256,
        dropout: float = 0.1,
        max_frames: int | None = None,
        stop_threshold: float = 0.5,
        stop_weight: float = 5.0,
        guided_attention: float = 1.0,
        lr: float = 1e-3,
        weight_decay: float = 1e-6,
        warmup_steps: int = 0,
        lr_decay: LrDecay = "constant",
        evaluator: str | None = None,
    ) -> None:
        if media != "audio":
            raise ConfigError(f"{type(self).__name__} synthesizes speech: use a TextAudioDataModule, not {media}.")
        super().__init__()

    # ------------------------------------------------------------------ models
    @abstractmethod
    def configure_attention(self, query_dim: int, key_dim: int) -> nn.Module | None:
        """The decoder's attention over the text's states (query (B, query_dim), keys (B, N, key_dim)), or
        ``None``: the decoder reads their mean at every step (Seq2Seq)."""

    def configure_models(self) -> None:
        hp = self.hparams
        self.text_encoder = ConvLSTMTextEncoder(hp.vocab_size, hp.pad_id, embed_dim=hp.embed_dim,
                                                conv_layers=hp.encoder_convs, hidden_dim=hp.encoder_dim)
        dim = self.text_encoder.out_dim
        self.decoder = FrameDecoder(hp.n_mels, dim, self.configure_attention(hp.hidden_dim, dim),
                                    reduction=hp.reduction, prenet_dims=tuple(hp.prenet_dims),
                                    hidden_dim=hp.hidden_dim, postnet_channels=hp.postnet_channels,
                                    postnet_layers=hp.postnet_layers, dropout=hp.dropout)
        self.normalizer = BandNormalizer(hp.n_mels)

    def configure_metrics(self) -> None:
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()
        self.test_mel_l1, self.test_stop_accuracy = MeanMetric(), MeanMetric()
        self.val_mel_l1, self.val_stop_accuracy = MeanMetric(), MeanMetric()
        self.val_alignment_ok, self.test_alignment_ok = MeanMetric(), MeanMetric()
        # utterances that reached max_frames without the stop token firing, over the whole split
        self.val_truncated, self.test_truncated = MeanMetric(), MeanMetric()  # the share cut

    @property
    def checkpoint_monitor(self) -> tuple[str, str]:
        """Best checkpoint: lowest validation cycle WER with an evaluator, else the lowest validation loss."""
        return cycle_monitor("audio", self.hparams.evaluator) if self.hparams.evaluator else ("val/loss", "min")

    def setup(self, stage: str) -> None:
        super().setup(stage)  # the data's codec and the evaluator (CycleScoring)
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None:
            require_sound(type(self).__name__, datamodule)
            if stage == "fit" and not self.normalizer.ready:
                self.normalizer.estimate(training_items(datamodule, STATS_ITEMS))
        if self.hparams.max_frames is None:
            self.hparams.max_frames = self.data_frame_limit(datamodule, stage)

    def data_frame_limit(self, datamodule: Any, stage: str) -> int:
        """``max_frames`` from the training audio (frame counts from the preloaded features or the files' headers,
        no decoding): the longest plus a quarter, at least 16 more; said once."""
        try:
            longest = max(datamodule.item_lengths(datamodule.dataset("train")))
        except Exception:  # no data module, or its training split is not loaded: a fixed limit, said
            rank_zero_info(f"{type(self).__name__}: max_frames {FALLBACK_MAX_FRAMES} (no training audio loaded to "
                           f"take it from in {stage}); set --model.init_args.max_frames to change it.")
            return FALLBACK_MAX_FRAMES
        limit = longest + max(16, longest // 4)
        rank_zero_info(f"{type(self).__name__}: max_frames {limit} (the longest training utterance has {longest} "
                       "frames); set --model.init_args.max_frames to change it.")
        return limit

    # ------------------------------------------------------------------ encoding and decoding
    def initial_state(self, tokens: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """tokens (B, L), lengths (B,) → the decoder's state before its first step."""
        states, lengths = self.text_encoder(tokens, lengths)
        return self.decoder.initial_state(states, length_mask(lengths.to(states.device), states.shape[1]))

    def teacher_forced(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The decoder's outputs on the batch's own frames (:meth:`FrameDecoder.forward`), standardized."""
        state = self.initial_state(batch["text_tokens"], batch["text_lengths"])
        return self.decoder(self.normalizer(batch["audio"]), state)

    @torch.no_grad()
    def synthesize(self, tokens: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """Free running (:meth:`FrameDecoder.generate`) with the prenet's dropout drawn from a fixed seed;
        ``audio`` (B, T, n_mels) raw log-mel and ``audio_lengths`` (B,) added."""
        tokens, lengths = tokens.to(self.device), lengths.to(self.device)
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(EVAL_SEED)
            out = self.decoder.generate(self.initial_state(tokens, lengths),
                                        math.ceil(self.hparams.max_frames / self.hparams.reduction),
                                        self.hparams.stop_threshold)
        return out | {"audio": self.normalizer.inverse(out["refined"]).float(), "audio_lengths": out["lengths"]}

    def generate(self, batch: dict[str, Any], noise: None = None) -> dict[str, torch.Tensor]:
        """The batch's ``text_tokens`` (B, L) and ``text_lengths`` (B,) → generated media entries of a batch:
        ``audio`` (B, T, n_mels) raw log-mel and ``audio_lengths`` (B,) (the media generation protocol; speech
        synthesis takes no noise)."""
        out = self.synthesize(batch["text_tokens"], batch["text_lengths"])
        return {"audio": out["audio"], "audio_lengths": out["audio_lengths"]}

    def noise(self, n: int, generator: torch.Generator | None = None, inference: bool = False) -> None:
        """No noise: the prenet's dropout is the only randomness."""
        return None

    def item_noise(self, ids: list[str]) -> None:
        return None

    def real_media(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"audio": batch["audio"], "audio_lengths": batch["audio_lengths"]}

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Inference: speech for the batch's texts."""
        return self.generate(batch)

    # ------------------------------------------------------------------ training and evaluation
    def losses(self, batch: dict[str, Any], out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``frame`` (L1 of the standardized frames before and after the postnet, valid frames only), ``stop``
        (weighted cross-entropy of the stop logit over the valid steps), in training with attention ``guided``
        (the guided attention penalty, else ``None``), and their weighted sum ``loss`` (validation and test
        report frames and stop alone, as the per-item loss)."""
        target, lengths = self.normalizer(batch["audio"]), batch["audio_lengths"].to(self.device)
        valid = length_mask(lengths, target.shape[1]).unsqueeze(-1).float()  # (B, T, 1)
        count = valid.sum() * target.shape[-1]
        frame = sum(((out[k][:, :target.shape[1]].float() - target).abs() * valid).sum() / count
                    for k in ("frames", "refined"))
        r, steps = self.hparams.reduction, out["stop"].shape[1]
        last = (lengths + r - 1) // r - 1  # (B,) the step holding each item's last frame
        k = torch.arange(steps, device=self.device)[None, :]
        stop_target, stop_valid = (k >= last[:, None]).float(), (k <= last[:, None]).float()
        stop = nn.functional.binary_cross_entropy_with_logits(
            out["stop"].float(), stop_target, weight=stop_valid,
            pos_weight=torch.tensor(self.hparams.stop_weight, device=self.device), reduction="sum") / stop_valid.sum()
        loss = frame + stop
        guided = None
        if "attention" in out and self.training and self.hparams.guided_attention > 0:
            guided = guided_attention_penalty(out["attention"], last + 1, batch["text_lengths"].to(self.device))
            loss = loss + self.hparams.guided_attention * guided
        return {"loss": loss, "frame": frame, "stop": stop, "guided": guided, "stop_target": stop_target,
                "stop_valid": stop_valid, "valid": valid}

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        losses = self.losses(batch, self.teacher_forced(batch))
        n = len(batch["text_tokens"])
        self.log("train/loss", losses["loss"], prog_bar=True, batch_size=n)
        self.log_dict({"train/frame_loss": losses["frame"], "train/stop_loss": losses["stop"]}, batch_size=n)
        if losses["guided"] is not None:
            self.log("train/guided_attention", losses["guided"], batch_size=n)
        return losses["loss"]

    def evaluation_step(self, batch: dict[str, Any], stage: str) -> dict[str, Any]:
        n = len(batch["text_tokens"])
        out = self.teacher_forced(batch)
        losses = self.losses(batch, out)
        metric = lambda name: getattr(self, f"{stage}_{name}")  # noqa: E731
        metric("loss").update(losses["loss"], weight=n)
        raw = self.normalizer.inverse(out["refined"][:, :batch["audio"].shape[1]].float())
        valid = losses["valid"]
        metric("mel_l1").update(((raw - batch["audio"]).abs() * valid).sum() / (valid.sum() * raw.shape[-1]),
                                weight=valid.sum())
        correct = ((out["stop"] > 0).float() == losses["stop_target"]).float() * losses["stop_valid"]
        metric("stop_accuracy").update(correct.sum() / losses["stop_valid"].sum(), weight=losses["stop_valid"].sum())
        self.log_dict({f"{stage}/loss": metric("loss"), f"{stage}/mel_l1": metric("mel_l1"),
                       f"{stage}/stop_accuracy": metric("stop_accuracy")}, prog_bar=stage == "val", batch_size=n)
        generated = self.synthesize(batch["text_tokens"], batch["text_lengths"])
        self.count_cut(stage, ~generated["stopped"])
        self.log(f"{stage}/truncated", getattr(self, f"{stage}_truncated"), batch_size=n)
        if "attention" in generated:
            healthy = alignment_ok(generated["attention"], generated["steps"], batch["text_lengths"],
                                   generated["stopped"])
            metric("alignment_ok").update(healthy.float().mean(), weight=n)
            self.log(f"{stage}/alignment_ok", metric("alignment_ok"), prog_bar=stage == "val", batch_size=n)
        self.score_cycle(batch, stage, {"audio": generated["audio"], "audio_lengths": generated["audio_lengths"]})
        return {"generated": generated}

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        """One record per prompt: ``id``, ``input`` (the text), ``seconds``, ``stopped`` (whether the stop token
        ended it before ``max_frames``) and ``_media`` (the sound), which the prediction writer saves as a WAV
        file and replaces by its path."""
        out = self.synthesize(batch["text_tokens"], batch["text_lengths"])
        media = {"audio": out["audio"], "audio_lengths": out["audio_lengths"]}
        values = self.media_values(media)
        self.predict_truncated += int((~out["stopped"]).sum())
        return [{"id": i, "input": text, "seconds": round(len(value["array"]) / value["sampling_rate"], 3),
                 "stopped": bool(stopped), "_media": value}
                for i, text, value, stopped in zip(batch["id"], batch["text"], values, out["stopped"].tolist(),
                                                   strict=True)]
