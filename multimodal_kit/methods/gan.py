"""``ConditionalGAN``: text → image and text → audio (log-mel, turned into sound by Griffin-Lim).

A text encoder gives the condition c; the generator maps noise and c to a sample; a matching-aware projection
discriminator scores (sample, text) pairs. Manual optimization (two optimizers, Lightning's ``toggled_optimizer``,
``manual_backward`` and ``clip_gradients``). Scores come from networks the kit trains
(:mod:`multimodal_kit.evaluation`): a captioner or speech recognizer given as ``evaluator`` reads the generated
media back (``*/cycle_*``) and its features give the Fréchet distance (``*/fid``).
"""

from __future__ import annotations

import math
import zlib
from typing import Any, Literal

import torch
from lightning.pytorch.cli import OptimizerCallable
from lightning.pytorch.strategies import DDPStrategy
from torch import nn
from torch.optim.swa_utils import AveragedModel

from multimodal_kit.errors import ConfigError
from multimodal_kit.evaluation import CycleEvaluator, frechet_distance
from multimodal_kit.methods.base import MultimodalMethod
from multimodal_kit.metrics import ExactMatch, text_metrics
from multimodal_kit.models.gan import (
    ConvGenerator,
    PretrainedTextEncoder,
    ProjectionDiscriminator,
    TextEncoder,
    trainable_parameters,
)
from multimodal_kit.models.gan_losses import (
    discriminator_loss,
    generator_loss,
    matching_aware_penalty,
    mismatched_texts,
)
from multimodal_kit.utils import rank_zero_info

SILENCE = math.log(1e-6)  # the raw log-mel value of digital silence (see LogMel)
#: a frame whose mean log-mel, averaged over 5 frames, stays below this is silence: the quietest real `spoken`
#: frame averages -12.94; generated silence -13.8 ± 0.4 per frame
SILENT_FRAME = SILENCE + 0.9
STATS_ITEMS = 1000  # training items the audio feature statistics are estimated from


class EMAWithWarmup:
    """An ``avg_fn`` for ``AveragedModel``: an exponential moving average whose decay grows as
    ``min(decay, (1 + n) / (10 + n))`` with the update count n, so short runs are not dominated by the first
    weights (TensorFlow's ``ExponentialMovingAverage(num_updates=…)``). A class, so it pickles for ``ddp_spawn``."""

    def __init__(self, decay: float) -> None:
        self.decay = decay

    def __call__(self, averaged: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor) -> torch.Tensor:
        d = min(self.decay, (1 + float(num_averaged)) / (10 + float(num_averaged)))
        return averaged * d + current * (1 - d)


class ConditionalGAN(MultimodalMethod):
    """A text-conditional GAN for images (B, 3, S, S) or log-mel spectrograms (B, n_mels, max_frames).

    Args:
        vocab_size: the text vocabulary (linked from the data by the CLI).
        pad_id: padding id (linked).
        bos_id: start-of-sequence id (linked).
        eos_id: end-of-sequence id (linked).
        modality: what is generated, ``image`` or ``audio`` (linked).
        image_size: the generated image's side (linked).
        n_mels: mel bands of generated spectrograms (linked).
        max_frames: frames of a generated spectrogram (16 times a power of two; 128 = 1.28 s at 100 frames/s).
            Training audio is padded with silence to this length (longer audio is cut, with a warning).
        noise_dim: size of the noise z.
        cond_dim: size of the text condition c.
        text_encoder: ``None``: a small GRU encoder trained from scratch with the discriminator; or a Hugging
            Face text model's hub name or local path (then use its tokenizer: ``--data.tokenizer`` the same).
        train_text_encoder: fine-tune a pretrained text encoder (default: frozen, only a projection learns).
        trust_remote_code: let a hub text encoder run the Python code it ships (``auto_map``); off by default.
        generator_width: channels of the generator's last block (earlier blocks double it).
        discriminator_width: channels of the discriminator's first block (later blocks double it).
        loss: ``bce`` (GAN-CLS) or ``hinge`` (DF-GAN).
        gradient_penalty: weight of DF-GAN's matching-aware gradient penalty (0: off; DF-GAN uses 2).
        spectral_norm: spectral normalization in the discriminator.
        ema_decay: keep an exponential moving average of the generator's weights with this decay, used for
            validation, test and predict (``None``: off).
        optimizer_g: the generator's optimizer (default Adam, lr 2e-4, betas (0.5, 0.999)).
        optimizer_d: the discriminator's (and scratch text encoder's) optimizer (default as ``optimizer_g``).
        clip_grad_norm: clip each network's gradient norm to this value (Lightning's ``clip_gradients``); the
            Trainer's own ``gradient_clip_val`` does not apply to manual optimization.
        evaluator: a captioner (images) or speech recognizer (audio) checkpoint of the kit that reads generated
            media for ``*/cycle_*`` and gives the features of ``*/fid``; without it those are skipped.
        griffin_lim_iters: Griffin-Lim iterations when generated audio becomes sound.
    """

    def __init__(
        self,
        vocab_size: int = 0,
        pad_id: int = 0,
        bos_id: int = 1,
        eos_id: int = 2,
        modality: Literal["image", "audio"] = "image",
        image_size: int = 64,
        n_mels: int = 64,
        max_frames: int = 128,
        noise_dim: int = 64,
        cond_dim: int = 128,
        text_encoder: str | None = None,
        train_text_encoder: bool = False,
        trust_remote_code: bool = False,
        generator_width: int = 16,
        discriminator_width: int = 16,
        loss: Literal["bce", "hinge"] = "bce",
        gradient_penalty: float = 0.0,
        spectral_norm: bool = False,
        ema_decay: float | None = 0.999,
        optimizer_g: OptimizerCallable | None = None,
        optimizer_d: OptimizerCallable | None = None,
        clip_grad_norm: float | None = None,
        evaluator: str | None = None,
        griffin_lim_iters: int = 32,
    ) -> None:
        if vocab_size <= 0:
            raise ConfigError("vocab_size must be positive: the CLI links it from the data module; in Python pass "
                             "`vocab_size=datamodule.vocab_size`.")
        super().__init__()
        self.automatic_optimization = False
        self.optimizer_g = optimizer_g
        self.optimizer_d = optimizer_d
        self.evaluator: CycleEvaluator | None = None

    # ------------------------------------------------------------------ models
    def configure_models(self) -> None:
        hp = self.hparams
        if hp.text_encoder:
            self.text_encoder: nn.Module = PretrainedTextEncoder(hp.text_encoder, hp.cond_dim, hp.vocab_size,
                                                                 trainable=hp.train_text_encoder,
                                                                 trust_remote_code=hp.trust_remote_code)
        else:
            self.text_encoder = TextEncoder(hp.vocab_size, hp.pad_id, output_dim=hp.cond_dim)
        if hp.modality == "image":
            channels, size, dims, edge, activation = 3, hp.image_size, 2, 4, "tanh"
        elif hp.modality == "audio":
            channels, size, dims, edge, activation = hp.n_mels, hp.max_frames, 1, 8, "none"
        else:
            raise ConfigError(f"ConditionalGAN generates 'image' or 'audio', not {hp.modality!r}")
        self.generator = ConvGenerator(hp.noise_dim, hp.cond_dim, channels, size, spatial_dims=dims, start=edge,
                                       width=hp.generator_width, output_activation=activation)
        self.discriminator = ProjectionDiscriminator(channels, hp.cond_dim, size, spatial_dims=dims, end=edge,
                                                     width=hp.discriminator_width, spectral_norm=hp.spectral_norm)
        self.generator_ema: AveragedModel | None = None
        if hp.ema_decay is not None:
            self.generator_ema = AveragedModel(self.generator, avg_fn=EMAWithWarmup(hp.ema_decay), use_buffers=True)
            self.generator_ema.requires_grad_(False)
        # audio is generated in standardized log-mel space: per-band statistics of the training data
        self.register_buffer("feature_mean", torch.zeros(channels if hp.modality == "audio" else 0))
        self.register_buffer("feature_std", torch.ones(channels if hp.modality == "audio" else 0))
        self.register_buffer("stats_ready", torch.tensor(hp.modality != "audio"))

    @property
    def checkpoint_monitor(self) -> tuple[str | None, str]:
        """Best checkpoint by the evaluator's reading of generated samples; without an evaluator, the latest."""
        if not self.hparams.evaluator:
            return (None, "min")
        return ("val/cycle_wer", "min") if self.hparams.modality == "audio" else ("val/cycle_bleu4", "max")

    def configure_callbacks(self) -> list:
        """Generated samples for fixed prompts each validation epoch; refuses Trainer options that manual
        optimization cannot honour (checked here because Lightning attaches model callbacks before it validates
        the loop configuration, so this message comes first)."""
        from multimodal_kit.callbacks import GeneratedSamples

        trainer = self._trainer
        if trainer is not None and trainer.gradient_clip_val:
            raise ConfigError("ConditionalGAN steps its two optimizers itself, so the Trainer cannot clip its "
                             "gradients: remove --trainer.gradient_clip_val and set --model.clip_grad_norm.")
        if trainer is not None and trainer.accumulate_grad_batches != 1:
            raise ConfigError("ConditionalGAN steps its two optimizers itself, so the Trainer cannot accumulate "
                             "gradients: remove --trainer.accumulate_grad_batches (raise --data.batch_size instead).")
        return [GeneratedSamples()]

    # ------------------------------------------------------------------ setup: DDP, evaluator, audio statistics
    def setup(self, stage: str) -> None:
        super().setup(stage)
        strategy = self.trainer.strategy
        if isinstance(strategy, DDPStrategy) and not strategy._ddp_kwargs.get("find_unused_parameters"):
            # each of the two backward passes leaves the other network's parameters without gradients; DDP must
            # be told to look for them or it fails with "Expected to have finished reduction in the prior iteration"
            strategy._ddp_kwargs["find_unused_parameters"] = True
        datamodule = getattr(self.trainer, "datamodule", None)
        if self.hparams.modality == "audio" and datamodule is not None:
            if getattr(datamodule, "inputs", "log_mel") != "log_mel":
                raise ConfigError("ConditionalGAN generates log-mel frames: use --data.inputs log_mel.")
            if getattr(datamodule, "features", None) is not None and datamodule.features.normalize != "none":
                raise ConfigError("ConditionalGAN on audio needs raw log-mel features (per-utterance normalized ones "
                                 "cannot become sound again): set --data.normalize none.")
            if stage == "fit" and not bool(self.stats_ready):
                self._estimate_feature_statistics(datamodule)
        if stage in ("fit", "validate", "test"):
            self._load_evaluator(stage)

    def _estimate_feature_statistics(self, datamodule: Any) -> None:
        dataset = datamodule.dataset("train")
        n = min(len(dataset), STATS_ITEMS)
        items = [dataset.media_at(i) for i in range(n)]
        padded = self._fit_frames(**datamodule.codec.collate(items))  # (n, max_frames, n_mels)
        self.feature_mean.copy_(padded.mean(dim=(0, 1)))
        self.feature_std.copy_(padded.std(dim=(0, 1)).clamp(min=1e-3))
        self.stats_ready.fill_(True)
        too_long = sum(item.shape[0] > self.hparams.max_frames for item in dataset.preloaded or items)
        if too_long:
            rank_zero_info(f"ConditionalGAN: {too_long} training clip(s) are longer than --model.max_frames="
                           f"{self.hparams.max_frames} and are cut to it; raise max_frames to keep them whole.")

    def _load_evaluator(self, stage: str) -> None:
        path = self.hparams.evaluator
        if not path:
            rank_zero_info("ConditionalGAN: no evaluator checkpoint (--model.evaluator), so */fid and */cycle_* are "
                           "skipped; train a captioner or speech recognizer of the kit and pass its checkpoint.")
            return
        if self.evaluator is None:
            self.evaluator = CycleEvaluator(path)
            if self.evaluator.media != self.hparams.modality:
                raise ConfigError(f"--model.evaluator {path} reads {self.evaluator.media}, but this GAN generates "
                                 f"{self.hparams.modality}.")
            dim = self.evaluator.feature_dim()
            modality = self.hparams.modality
            self.val_fid = frechet_distance(dim)
            self.val_cycle = text_metrics(modality, "val", full=False, name="cycle_")
            self.val_cycle.add_metrics({"exact_match": ExactMatch()})  # single words: the word accuracy
            self.test_fid = frechet_distance(dim)
            self.test_cycle = text_metrics(modality, "test", full=True, name="cycle_")
            self.test_real_cycle = text_metrics(modality, "test", full=True, name="real_cycle_")
            rank_zero_info(f"ConditionalGAN: evaluator {path} reads the generated {modality}.")

    # ------------------------------------------------------------------ data space ↔ model space
    def _fit_frames(self, audio: torch.Tensor, audio_lengths: torch.Tensor) -> torch.Tensor:
        """Raw log-mel (B, T, n_mels) with true lengths (B,) → (B, max_frames, n_mels): cut, or padded with
        silence (past each item's length)."""
        max_frames = self.hparams.max_frames
        frames = torch.arange(max_frames, device=audio.device)
        audio = nn.functional.pad(audio[:, :max_frames], (0, 0, 0, max(0, max_frames - audio.shape[1])))
        return torch.where((frames[None, :] < audio_lengths.to(audio.device)[:, None])[..., None], audio, SILENCE)

    def to_model(self, batch: dict[str, Any]) -> torch.Tensor:
        """The batch's media → what D sees: images as they are; audio (B, T, n_mels) padded/cut to
        ``max_frames``, standardized per band, as (B, n_mels, max_frames)."""
        if self.hparams.modality == "image":
            return batch["image"]
        audio = self._fit_frames(batch["audio"], batch["audio_lengths"])
        return ((audio - self.feature_mean) / self.feature_std).transpose(1, 2)

    def from_model(self, samples: torch.Tensor) -> dict[str, torch.Tensor]:
        """Generated samples → the media entries of a batch (what the data module's ``unbatch_media`` reads);
        audio as raw log-mel (B, max_frames, n_mels) with ``audio_lengths`` up to the last non-silent frame."""
        if self.hparams.modality == "image":
            return {"image": samples}
        audio = samples.transpose(1, 2) * self.feature_std + self.feature_mean  # (B, T, n_mels)
        # the clip ends at its last non-silent frame: real clips are padded with silence to max_frames, so the
        # generator learns to end words in silence; what trails is cut (as it would be from the real clip)
        level = nn.functional.avg_pool1d(audio.mean(-1, keepdim=True).transpose(1, 2), 5, stride=1, padding=2,
                                         count_include_pad=False).squeeze(1)  # (B, T): mean level, 5-frame average
        loud = level > SILENT_FRAME  # (B, T)
        last = audio.shape[1] - loud.flip(1).float().argmax(1)  # one past the last loud frame
        lengths = torch.where(loud.any(1), last, torch.ones_like(last))
        return {"audio": audio, "audio_lengths": lengths}

    # ------------------------------------------------------------------ inference
    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Noise z (n, noise_dim), from ``generator`` or the global RNG."""
        return torch.randn(n, self.hparams.noise_dim, generator=generator).to(self.device)

    def item_noise(self, ids: list[str]) -> torch.Tensor:
        """Noise z (B, noise_dim) fixed per item id: evaluation and prediction draw the same sample for an item
        whatever it is batched with and however many processes share the split, so scores are reproducible."""
        return torch.stack([torch.randn(self.hparams.noise_dim,
                                        generator=torch.Generator().manual_seed(zlib.crc32(str(i).encode())))
                            for i in ids]).to(self.device)

    @torch.no_grad()
    def generate(self, tokens: torch.Tensor, lengths: torch.Tensor, noise: torch.Tensor | None = None
                 ) -> dict[str, torch.Tensor]:
        """tokens (B, L), lengths (B,) → generated media entries of a batch (``image`` (B, 3, S, S), or
        ``audio`` (B, max_frames, n_mels) raw log-mel with ``audio_lengths``, see :meth:`from_model`), from the
        EMA generator if kept."""
        generator = self.generator_ema.module if self.generator_ema is not None else self.generator
        c = self.text_encoder(tokens, lengths)
        z = self.noise(len(tokens)) if noise is None else noise.to(self.device)
        return self.from_model(generator(z, c))

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Inference: media for the batch's texts."""
        return self.generate(batch["tokens"], batch["token_lengths"])

    def media_values(self, media: dict[str, torch.Tensor]) -> list[Any]:
        """Media entries of a batch → values the data module saves and evaluators read (PIL / waveforms)."""
        codec = self.trainer.datamodule.codec
        return codec.to_values(codec.uncollate(media))

    # ------------------------------------------------------------------ training
    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        def default(params: Any) -> torch.optim.Optimizer:
            return torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999))

        generator = (self.optimizer_g or default)(trainable_parameters([self.generator]))
        discriminator = (self.optimizer_d or default)(trainable_parameters([self.discriminator, self.text_encoder]))
        return [generator, discriminator]

    def _step(self, optimizer: Any, loss: torch.Tensor, name: str) -> None:
        finite = bool(torch.isfinite(loss.detach()).item())
        if not self.trainer.strategy.reduce_boolean_decision(finite, all=True):
            raise FloatingPointError(
                f"ConditionalGAN: {name} is not finite ({loss.item()}) at step {self.global_step} (epoch "
                f"{self.current_epoch}); training stopped. Lower the learning rates (--model.optimizer_g/"
                "--model.optimizer_d), set --model.clip_grad_norm, or use --model.loss hinge with spectral_norm.")
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if self.hparams.clip_grad_norm:
            self.clip_gradients(optimizer, gradient_clip_val=self.hparams.clip_grad_norm,
                                gradient_clip_algorithm="norm")
        optimizer.step()

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        hp = self.hparams
        opt_g, opt_d = self.optimizers()
        real = self.to_model(batch)
        tokens, lengths = batch["tokens"], batch["token_lengths"]
        n = len(tokens)
        permutation, mismatch = mismatched_texts(batch["text"])
        permutation, mismatch = permutation.to(self.device), mismatch.to(self.device)

        # discriminator (and the scratch text encoder): real/right → real; real/wrong and fake/right → fake
        with self.toggled_optimizer(opt_d):
            c = self.text_encoder(tokens, lengths)  # (B, D)
            with torch.no_grad():
                fake = self.generator(self.noise(n), c)
            d_real = self.discriminator(real, c)
            d_wrong = self.discriminator(real, c[permutation])
            d_fake = self.discriminator(fake, c)
            d_loss = discriminator_loss(d_real, d_wrong, d_fake, hp.loss, mismatch)
            if hp.gradient_penalty > 0:
                x, cond = real.detach().requires_grad_(True), c.detach().requires_grad_(True)
                d_loss = d_loss + hp.gradient_penalty * matching_aware_penalty(self.discriminator(x, cond), (x, cond))
            self._step(opt_d, d_loss, "train/d_loss")

        # generator: make D call its samples real and matching
        with self.toggled_optimizer(opt_g):
            c = self.text_encoder(tokens, lengths).detach()
            g_loss = generator_loss(self.discriminator(self.generator(self.noise(n), c), c), hp.loss)
            self._step(opt_g, g_loss, "train/g_loss")
        if self.generator_ema is not None:
            self.generator_ema.update_parameters(self.generator)

        self.log_dict({"train/d_loss": d_loss.detach(), "train/g_loss": g_loss.detach()}, prog_bar=True,
                      batch_size=n)
        # D's mean scores go to the logger only: computed and logged on the steps it writes (each self.log costs
        # about a third of a millisecond, a few % of a small GAN's step; Lightning's own callbacks ask the same)
        if self.trainer._logger_connector.should_update_logs:
            self.log_dict({"train/d_real": d_real.detach().mean(), "train/d_wrong": d_wrong.detach().mean(),
                           "train/d_fake": d_fake.detach().mean()}, batch_size=n)

    # ------------------------------------------------------------------ evaluation
    def _score(self, batch: dict[str, Any], fid: Any, cycle: Any, real_cycle: Any | None) -> None:
        """The evaluator reads generated (and, for ``real_cycle``, real) media; both feed the FID."""
        assert self.evaluator is not None
        evaluator = self.evaluator.to(self.device)
        references = [[evaluator.canonical(r) for r in refs] for refs in batch["references"]]
        fake = evaluator.batch(self.media_values(self.generate(batch["tokens"], batch["token_lengths"],
                                                               self.item_noise(batch["id"]))))
        real = evaluator.batch(self.media_values(self.from_model(self.to_model(batch))))
        fid.update(evaluator.features(real), real=True)
        fid.update(evaluator.features(fake), real=False)
        cycle.update(evaluator.read(fake), references)
        if real_cycle is not None:
            real_cycle.update(evaluator.read(real), references)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        if self.evaluator is None:
            return
        self._score(batch, self.val_fid, self.val_cycle, None)
        n = len(batch["tokens"])
        self.log_dict(self.val_cycle, prog_bar=True, batch_size=n)
        self.log("val/fid", self.val_fid, prog_bar=True, batch_size=n)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        if self.evaluator is None:
            return
        self._score(batch, self.test_fid, self.test_cycle, self.test_real_cycle)
        n = len(batch["tokens"])
        self.log_dict(self.test_cycle, batch_size=n)
        self.log_dict(self.test_real_cycle, batch_size=n)
        self.log("test/fid", self.test_fid, batch_size=n)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        """One record per prompt: ``id``, ``input`` (the prompt) and ``_media`` (the generated value), which the
        prediction writer saves as a PNG/WAV file and replaces by its path."""
        values = self.media_values(self.generate(batch["tokens"], batch["token_lengths"], self.item_noise(batch["id"])))
        return [{"id": i, "input": text, "_media": value}
                for i, text, value in zip(batch["id"], batch["text"], values, strict=True)]
