"""The losses of one training step of :class:`~multimodal_kit.methods.gan.ConditionalGAN`: the discriminator's
(matching-aware, plus the feature discriminator's, the contrastive matching loss and the gradient penalty when
set) and the generator's (plus the cVAE-GAN reconstruction when set). The step itself (optimizers, noise, EMA,
schedules, logging) stays in the method."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from multimodal_kit.models.gan import matching_scores
from multimodal_kit.models.gan_losses import (
    contrastive_matching_loss,
    discriminator_loss,
    generator_loss,
    matching_aware_penalty,
)

Augment = Callable[[torch.Tensor], torch.Tensor]


def half(samples: torch.Tensor) -> torch.Tensor:
    """Samples (B, C, S, S) or (B, C, T) → at half the resolution, each value the mean of its 2×2 (2) block."""
    return (F.avg_pool2d if samples.dim() == 4 else F.avg_pool1d)(samples, 2)


class AdversarialLosses:
    """Mixin: the two losses of a step, from the method's ``generator``, ``discriminator``, ``discriminator_half``,
    ``feature_discriminator`` and ``latent_encoder`` (each of the last three ``None`` when off) and hyperparameters
    (``loss``, ``feature_weight``, ``contrastive``, ``gradient_penalty``, ``reconstruction``, ``reconstruction_kl``)."""

    def discriminator_step_loss(self, real: torch.Tensor, fake: torch.Tensor, c: torch.Tensor,
                                permutation: torch.Tensor, mismatch: torch.Tensor, same: torch.Tensor | None,
                                augment: Augment) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Real samples (B, …) with their texts c (B, D) → real; with the texts ``permutation`` (B,) gives them
        (where ``mismatch`` (B,) says they differ) and generated samples ``fake`` (B, …) → fake. ``same`` (B, B):
        which of the batch's texts are equal (the contrastive loss; ``None``: off). ``augment`` is applied to
        what the scratch discriminator sees. Returns the loss and the real, wrong and fake scores (B,) each."""
        hp = self.hparams
        real_seen, fake_seen = augment(real), augment(fake)
        real_features, d_real, d_wrong, d_fake = matching_scores(self.discriminator, real_seen, fake_seen, c,
                                                                 permutation)
        loss = discriminator_loss(d_real, d_wrong, d_fake, hp.loss, mismatch)
        if self.discriminator_half is not None:
            _, *half_scores = matching_scores(self.discriminator_half, half(real_seen), half(fake_seen), c, permutation)
            loss = loss + discriminator_loss(*half_scores, hp.loss, mismatch)
        if self.feature_discriminator is not None:
            _, *feature_scores = matching_scores(self.feature_discriminator, real, fake, c, permutation)
            loss = loss + hp.feature_weight * discriminator_loss(*feature_scores, hp.loss, mismatch)
        if same is not None:
            loss = loss + hp.contrastive * contrastive_matching_loss(real_features, self.discriminator.embed(c), same)
        if hp.gradient_penalty > 0:
            x, cond = real.detach().requires_grad_(True), c.detach().requires_grad_(True)
            loss = loss + hp.gradient_penalty * matching_aware_penalty(self.discriminator(x, cond), (x, cond))
        if self.latent_encoder is not None:  # the text encoder (D's optimizer owns it) learns what G needs
            loss = loss + self.reconstruction_loss(real, c)
        return loss, (d_real, d_wrong, d_fake)

    def generator_step_loss(self, fake: torch.Tensor, c: torch.Tensor, same: torch.Tensor | None,
                            augment: Augment, real: torch.Tensor) -> torch.Tensor:
        """Generated samples (B, …) for texts c (B, D): the loss that makes the discriminators call them real and
        matching (and, with ``same``, each closer to its own text than to the batch's others; with the
        ``latent_encoder``, the batch's ``real`` samples (B, …) redrawn)."""
        hp = self.hparams
        fake_seen = augment(fake)
        fake_features = self.discriminator.features(fake_seen)
        loss = generator_loss(self.discriminator.scores(fake_features, c), hp.loss)
        if self.discriminator_half is not None:
            loss = loss + generator_loss(self.discriminator_half(half(fake_seen), c), hp.loss)
        if self.feature_discriminator is not None:
            loss = loss + hp.feature_weight * generator_loss(self.feature_discriminator(fake, c), hp.loss)
        if same is not None:
            loss = loss + hp.contrastive * contrastive_matching_loss(fake_features, self.discriminator.embed(c), same)
        if self.latent_encoder is not None:
            loss = loss + self.reconstruction_loss(real, c)
        return loss

    def reconstruction_loss(self, real: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """BicycleGAN's cVAE-GAN term: real samples (B, …) encoded into noise by the method's ``latent_encoder``
        (reparameterized), redrawn by the generator with their texts c (B, D): ``reconstruction`` × the mean L1
        error + ``reconstruction_kl`` × KL(q(z | x) ‖ N(0, I)) (summed over z, mean over the batch). In G's step
        it trains G and the encoder; in D's step (their weights frozen) the text encoder behind c."""
        hp = self.hparams
        mean, log_var = self.latent_encoder(real)  # (B, Z) each
        z = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
        kl = 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var).sum(1).mean()
        return hp.reconstruction * (self.generator(z, c) - real).abs().mean() + hp.reconstruction_kl * kl
