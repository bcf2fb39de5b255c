"""``ConditionalGAN``: text → image and text → audio (log-mel, turned into sound by Griffin-Lim).

A text encoder gives the condition c; the generator maps noise and c to a sample; a matching-aware projection
discriminator scores (sample, text) pairs. Manual optimization (two optimizers, Lightning's ``toggled_optimizer``,
``manual_backward`` and ``clip_gradients``). Scores come from networks the kit trains
(:mod:`multimodal_kit.evaluation`): a captioner or speech recognizer given as ``evaluator`` reads the generated
media back (``*/cycle_*``) and its features give the Fréchet distance (``*/fid``).
"""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

import torch
from lightning.pytorch.cli import OptimizerCallable
from torch import nn
from torch.optim.swa_utils import AveragedModel

from multimodal_kit.compat import logs_this_step
from multimodal_kit.errors import ConfigError
from multimodal_kit.methods.base import MultimodalMethod
from multimodal_kit.methods.gan_steps import AdversarialLosses
from multimodal_kit.methods.generated_media import (
    CycleScoring,
    LatentNoise,
    estimate_audio_statistics,
    generator_monitor,
    require_sound,
)
from multimodal_kit.methods.manual_optimization import ManualOptimization
from multimodal_kit.methods.schedule import LrDecay, with_schedule
from multimodal_kit.models.gan import (
    EMAWithWarmup,
    FeatureDiscriminator,
    ProjectionDiscriminator,
    condition_encoder,
    trainable_parameters,
)
from multimodal_kit.models.gan_augment import diff_augment
from multimodal_kit.models.gan_generator import ConvGenerator, LatentEncoder
from multimodal_kit.models.gan_losses import mismatched_texts, nearest_texts, same_texts
from multimodal_kit.models.gan_spaces import media_space


class ConditionalGAN(AdversarialLosses, ManualOptimization, LatentNoise, CycleScoring, MultimodalMethod):
    """A text-conditional GAN for images (B, 3, S, S) or log-mel spectrograms (B, n_mels, max_frames).

    Args:
        vocab_size: the text vocabulary (linked from the data by the CLI).
        pad_id: padding id (linked).
        bos_id: start-of-sequence id (linked).
        eos_id: end-of-sequence id (linked).
        media: the pair's medium, what is generated here: ``image`` or ``audio`` (linked).
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
        generator_upsample: how each generator block doubles the resolution: ``transpose`` (transposed conv) or
            ``resize`` (nearest ×2, then a conv: no checkerboard).
        generator_blocks: ``plain`` (one conv per scale, DCGAN) or ``residual`` (two and a skip path, BigGAN); both
            as in :class:`~multimodal_kit.models.gan_generator.ConvGenerator`.
        discriminator_width: channels of the discriminator's first block (later blocks double it).
        loss: ``bce`` (GAN-CLS) or ``hinge`` (DF-GAN).
        gradient_penalty: weight of DF-GAN's matching-aware gradient penalty (0: off; DF-GAN uses 2).
        wrong_texts: D's wrong pairs pair each real sample with another item's text: ``random``, or ``nearest``
            (:func:`~multimodal_kit.models.gan_losses.nearest_texts`: the batch's most similar other text).
        contrastive: weight of a contrastive matching loss over the batch (XMC-GAN's InfoNCE on D's sample
            features and text projections): D learns to tell each real sample's text from all the batch's other
            texts, G to make its samples win that test (0: off).
        spectral_norm: spectral normalization in the discriminator.
        discriminator_scales: 2 adds a second projection discriminator on the samples at half the resolution
            (average-pooled; pix2pixHD's multi-scale D): one judges fine detail, the other whole shapes.
        d_steps: the discriminator's updates per generator update, each on its own batch (the generator steps on
            every ``d_steps``-th batch; WGAN-style training uses 5).
        augment: DiffAugment — D sees real and generated samples randomly translated and cut out, in both
            networks' steps (:mod:`~multimodal_kit.models.gan_augment`), so it cannot memorize a small training set.
        ema_decay: keep an exponential moving average of the generator's weights with this decay, used for
            validation, test and predict (``None``: off).
        optimizer_g: the generator's optimizer (default Adam, lr 2e-4, betas (0.5, 0.999)).
        optimizer_d: the discriminator's (and scratch text encoder's) optimizer (default as ``optimizer_g``).
        clip_grad_norm: clip each network's gradient norm to this value (Lightning's ``clip_gradients``); the
            Trainer's own ``gradient_clip_val`` does not apply to manual optimization.
        lr_decay: both learning rates ``constant``, or ``cosine`` (to zero at the run's last batch: needs
            ``--trainer.max_epochs`` or ``max_steps``).
        evaluator: a captioner (images) or speech recognizer (audio) checkpoint of the kit that reads generated
            media for ``*/cycle_*`` and gives the features of ``*/fid``; without it those are skipped.
        geometric_reader: ``shapes`` images read by the geometric reader (``*/read_*``); best ``val/read_exact_match``.
        r_precision_judge: a dual encoder checkpoint of the kit, trained apart: ``test/r_precision`` (AttnGAN).
        griffin_lim_iters: Griffin-Lim iterations when generated audio becomes sound.
        truncation: the truncation trick (BigGAN, Brock et al. 2019): validation, test, predict and the media
            callbacks draw z from a standard normal truncated to [-t, t], trading variety for samples nearer the
            typical one (smaller t: less varied); ``None``: the plain normal training draws from.
        feature_encoder: a frozen pretrained image encoder for a second, feature discriminator
            (:class:`~multimodal_kit.models.gan.FeatureDiscriminator`; Projected / Vision-aided GAN), e.g.
            ``EncoderFromCheckpoint`` of a captioner the kit trained with ``trainable: false``. Its losses are added
            to both networks' with ``feature_weight``. Use another network than ``evaluator``: a generator
            trained against the evaluator's own encoder could fool the score it is judged by.
        feature_weight: weight of the feature discriminator's losses.
        reconstruction: weight of BicycleGAN's cVAE-GAN term (Zhu et al. 2017): G redraws each real sample (L1)
            from its text and the noise an encoder reads in it, so G (and, in D's step, the text encoder) learns
            from data what words draw (0: off).
        reconstruction_kl: weight of that term's KL(q(z | x) ‖ N(0, I)), which keeps the read noise drawable.
    """

    inputs = {"text": "text"}
    outputs = {"media": "media"}
    fix_hint = ("lower the learning rates (--model.optimizer_g/--model.optimizer_d), set --model.clip_grad_norm, "
                "or use --model.loss hinge with spectral_norm")

    def __init__(
        self,
        vocab_size: int = 0,
        pad_id: int = 0,
        bos_id: int = 1,
        eos_id: int = 2,
        media: Literal["image", "audio"] = "image",
        image_size: int = 64,
        n_mels: int = 64,
        max_frames: int = 128,
        noise_dim: int = 64,
        cond_dim: int = 128,
        text_encoder: str | None = None,
        train_text_encoder: bool = False,
        trust_remote_code: bool = False,
        generator_width: int = 16,
        generator_upsample: Literal["transpose", "resize"] = "transpose",
        generator_blocks: Literal["plain", "residual"] = "plain",
        discriminator_width: int = 16,
        loss: Literal["bce", "hinge"] = "bce",
        gradient_penalty: float = 0.0,
        wrong_texts: Literal["random", "nearest"] = "random",
        contrastive: float = 0.0,
        spectral_norm: bool = False,
        discriminator_scales: Literal[1, 2] = 1,
        d_steps: int = 1,
        augment: bool = False,
        ema_decay: float | None = 0.999,
        optimizer_g: OptimizerCallable | None = None,
        optimizer_d: OptimizerCallable | None = None,
        clip_grad_norm: float | None = None,
        lr_decay: LrDecay = "constant",
        evaluator: str | None = None,
        geometric_reader: bool = False,
        r_precision_judge: str | None = None,
        griffin_lim_iters: int = 32,
        truncation: float | None = None,
        feature_encoder: nn.Module | None = None,
        feature_weight: float = 1.0,
        reconstruction: float = 0.0,
        reconstruction_kl: float = 0.01,
    ) -> None:
        self.give(optimizer_g=optimizer_g, optimizer_d=optimizer_d, feature_encoder=feature_encoder)
        if d_steps < 1:
            raise ConfigError(f"--model.init_args.d_steps {d_steps}: D steps at least once per G step (use 1 or more).")
        if truncation is not None and truncation <= 0:
            raise ConfigError(f"--model.init_args.truncation {truncation}: the noise bound t must be positive "
                              "(1.0 is common), or null for the plain normal.")
        super().__init__()
        self.automatic_optimization = False
        self.optimizer_g = optimizer_g
        self.optimizer_d = optimizer_d

    # ------------------------------------------------------------------ models
    def configure_models(self) -> None:
        hp = self.hparams
        self.text_encoder = condition_encoder(hp.text_encoder, hp.cond_dim, hp.vocab_size, hp.pad_id,
                                              trainable=hp.train_text_encoder, trust_remote_code=hp.trust_remote_code)
        # what the networks see of the medium (standardized log-mel for audio), and the way back
        self.space = space = media_space(hp.media, image_size=hp.image_size, n_mels=hp.n_mels,
                                         max_frames=hp.max_frames)
        self.generator = ConvGenerator(hp.noise_dim, hp.cond_dim, space.channels, space.size, space.spatial_dims,
                                       space.edge, hp.generator_width, space.activation,
                                       hp.get("generator_upsample", "transpose"), hp.get("generator_blocks", "plain"))
        blocks = {"spatial_dims": space.spatial_dims, "end": space.edge, "width": hp.discriminator_width}
        self.discriminator = ProjectionDiscriminator(space.channels, hp.cond_dim, space.size,
                                                     spectral_norm=hp.spectral_norm, **blocks)
        self.discriminator_half: ProjectionDiscriminator | None = (  # the second scale, if asked
            ProjectionDiscriminator(space.channels, hp.cond_dim, space.size // 2, spectral_norm=hp.spectral_norm,
                                    **blocks) if hp.get("discriminator_scales", 1) == 2 else None)
        self.feature_discriminator: FeatureDiscriminator | None = None
        if self.given_objects.get("feature_encoder") is not None:
            if hp.media != "image":
                raise ConfigError("--model.init_args.feature_encoder reads images: drop it for the audio GAN.")
            self.feature_discriminator = FeatureDiscriminator(self.given_objects["feature_encoder"], hp.cond_dim,
                                                              hp.image_size)
        self.latent_encoder: LatentEncoder | None = (  # the cVAE-GAN term's encoder, if asked
            LatentEncoder(space.channels, hp.noise_dim, space.size, **blocks) if hp.get("reconstruction", 0) else None)
        self.generator_ema: AveragedModel | None = None
        if hp.ema_decay is not None:
            self.generator_ema = AveragedModel(self.generator, avg_fn=EMAWithWarmup(hp.ema_decay), use_buffers=True)
            self.generator_ema.requires_grad_(False)

    @property
    def checkpoint_monitor(self) -> tuple[str | None, str]:  # the reader's exact match, the evaluator's, or latest
        return generator_monitor(self.hparams.media, self.hparams.evaluator, self.hparams.geometric_reader)

    def setup(self, stage: str) -> None:
        super().setup(stage)  # DDP's unused-parameter search (ManualOptimization), the codec, the evaluator
        datamodule = getattr(self.trainer, "datamodule", None)
        if self.space.sound and datamodule is not None:
            require_sound("ConditionalGAN", datamodule)
            if stage == "fit" and not self.space.ready:
                estimate_audio_statistics(self.space, datamodule, self.hparams.max_frames)

    # ------------------------------------------------------------------ data space ↔ model space
    def to_model(self, batch: dict[str, Any]) -> torch.Tensor:
        """The batch's media → what D sees (:mod:`~multimodal_kit.models.gan_spaces`)."""
        return self.space.to_model(batch)

    def from_model(self, samples: torch.Tensor) -> dict[str, torch.Tensor]:
        """Generated samples → the media entries of a batch (what the data's codec ``uncollate`` s)."""
        return self.space.from_model(samples)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def generate(self, batch: dict[str, Any], noise: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The batch's ``text_tokens`` (B, L) and ``text_lengths`` (B,), with ``noise`` (B, noise_dim) (default: a
        fresh draw, truncated for inference) → generated media entries of a batch (``image`` (B, 3, S, S), or
        ``audio`` (B, max_frames, n_mels) raw log-mel with ``audio_lengths``, see :meth:`from_model`), from the
        EMA generator if kept."""
        generator = self.generator_ema.module if self.generator_ema is not None else self.generator
        c = self.text_encoder(batch["text_tokens"], batch["text_lengths"])
        z = self.noise(len(c), inference=True) if noise is None else noise.to(self.device)
        return self.from_model(generator(z, c))

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Inference: media for the batch's texts."""
        return self.generate(batch)

    # ------------------------------------------------------------------ training
    def configure_optimizers(self) -> list[Any]:
        """The generator's optimizer, then the discriminator's (each with its schedule when ``lr_decay`` is not
        constant; manual optimization steps the schedules in :meth:`training_step`)."""
        default = partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999))
        generator = (self.optimizer_g or default)(
            trainable_parameters([self.generator, *filter(None, [self.latent_encoder])]))
        discriminator = (self.optimizer_d or default)(trainable_parameters(
            [self.discriminator, self.text_encoder, *filter(None, [self.discriminator_half, self.feature_discriminator])]))
        decay = self.hparams.get("lr_decay", "constant")
        return [with_schedule(self, optimizer, decay=decay) for optimizer in (generator, discriminator)]

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        hp = self.hparams
        opt_g, opt_d = self.optimizers()
        real = self.to_model(batch)
        tokens, lengths = batch["text_tokens"], batch["text_lengths"]
        n = len(tokens)
        permutation, mismatch = (nearest_texts if hp.get("wrong_texts") == "nearest" else mismatched_texts)(batch["text"])
        permutation, mismatch = permutation.to(self.device), mismatch.to(self.device)
        same = same_texts(batch["text"]).to(self.device) if hp.get("contrastive", 0.0) > 0 else None
        augment = diff_augment if hp.get("augment", False) else (lambda x: x)

        # discriminator (and the scratch text encoder): real/right → real; real/wrong and fake/right → fake
        with self.toggled_optimizer(opt_d):
            c = self.text_encoder(tokens, lengths)  # (B, D)
            with torch.no_grad():
                fake = self.generator(self.noise(n), c)
            d_loss, (d_real, d_wrong, d_fake) = self.discriminator_step_loss(real, fake, c, permutation, mismatch,
                                                                             same, augment)
            self.optimizer_step_on(opt_d, d_loss, "train/d_loss")

        # generator: make D call its samples real and matching (on every d_steps-th batch)
        losses = {"train/d_loss": d_loss.detach()}
        if (batch_idx + 1) % hp.get("d_steps", 1) == 0:
            with self.toggled_optimizer(opt_g):
                c = self.text_encoder(tokens, lengths).detach()
                g_loss = self.generator_step_loss(self.generator(self.noise(n), c), c, same, augment, real)
                self.optimizer_step_on(opt_g, g_loss, "train/g_loss")
            losses["train/g_loss"] = g_loss.detach()
            if self.generator_ema is not None:
                self.generator_ema.update_parameters(self.generator)
        for config in self.trainer.lr_scheduler_configs:  # manual optimization steps its schedules itself
            config.scheduler.step()

        self.log_dict(losses, prog_bar=True, batch_size=n)
        # D's mean scores go to the logger only: computed and logged on the steps it writes (each self.log costs
        # about a third of a millisecond, a few % of a small GAN's step; Lightning's own callbacks ask the same)
        if logs_this_step(self.trainer):
            self.log_dict({"train/d_real": d_real.detach().mean(), "train/d_wrong": d_wrong.detach().mean(),
                           "train/d_fake": d_fake.detach().mean()}, batch_size=n)
            self.check_finite()

    def evaluation_step(self, batch: dict[str, Any], stage: str) -> None:
        """The evaluator's reading of the media generated for the batch's texts, and the FID."""
        self.score_cycle(batch, stage)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        """One record per prompt: ``id``, ``input`` (the prompt) and ``_media`` (the generated value), which the
        prediction writer saves as a PNG/WAV file and replaces by its path."""
        values = self.media_values(self.generate(batch, self.item_noise(batch["id"])))
        return [{"id": i, "input": text, "_media": value}
                for i, text, value in zip(batch["id"], batch["text"], values, strict=True)]
