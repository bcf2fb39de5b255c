"""The losses of one training step of :class:`~multimodal_kit.methods.gan.ConditionalGAN`: the discriminator's
(matching-aware, plus the feature discriminator's, the contrastive matching loss and the gradient penalty when
set) and the generator's. The step itself (optimizers, noise, EMA, schedules, logging) stays in the method."""

from __future__ import annotations

from collections.abc import Callable

import torch

from multimodal_kit.models.gan import matching_scores
from multimodal_kit.models.gan_losses import (
    contrastive_matching_loss,
    discriminator_loss,
    generator_loss,
    matching_aware_penalty,
)

Augment = Callable[[torch.Tensor], torch.Tensor]


class AdversarialLosses:
    """Mixin: the two losses of a step, from the method's ``discriminator``, ``feature_discriminator`` (or
    ``None``) and hyperparameters (``loss``, ``feature_weight``, ``contrastive``, ``gradient_penalty``)."""

    def discriminator_step_loss(self, real: torch.Tensor, fake: torch.Tensor, c: torch.Tensor,
                                permutation: torch.Tensor, mismatch: torch.Tensor, same: torch.Tensor | None,
                                augment: Augment) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Real samples (B, …) with their texts c (B, D) → real; with the texts ``permutation`` (B,) gives them
        (where ``mismatch`` (B,) says they differ) and generated samples ``fake`` (B, …) → fake. ``same`` (B, B):
        which of the batch's texts are equal (the contrastive loss; ``None``: off). ``augment`` is applied to
        what the scratch discriminator sees. Returns the loss and the real, wrong and fake scores (B,) each."""
        hp = self.hparams
        real_features, d_real, d_wrong, d_fake = matching_scores(self.discriminator, augment(real), augment(fake),
                                                                 c, permutation)
        loss = discriminator_loss(d_real, d_wrong, d_fake, hp.loss, mismatch)
        if self.feature_discriminator is not None:
            _, *feature_scores = matching_scores(self.feature_discriminator, real, fake, c, permutation)
            loss = loss + hp.feature_weight * discriminator_loss(*feature_scores, hp.loss, mismatch)
        if same is not None:
            loss = loss + hp.contrastive * contrastive_matching_loss(real_features, self.discriminator.embed(c), same)
        if hp.gradient_penalty > 0:
            x, cond = real.detach().requires_grad_(True), c.detach().requires_grad_(True)
            loss = loss + hp.gradient_penalty * matching_aware_penalty(self.discriminator(x, cond), (x, cond))
        return loss, (d_real, d_wrong, d_fake)

    def generator_step_loss(self, fake: torch.Tensor, c: torch.Tensor, same: torch.Tensor | None,
                            augment: Augment) -> torch.Tensor:
        """Generated samples (B, …) for texts c (B, D): the loss that makes the discriminators call them real and
        matching (and, with ``same``, each closer to its own text than to the batch's others)."""
        hp = self.hparams
        fake_features = self.discriminator.features(augment(fake))
        loss = generator_loss(self.discriminator.scores(fake_features, c), hp.loss)
        if self.feature_discriminator is not None:
            loss = loss + hp.feature_weight * generator_loss(self.feature_discriminator(fake, c), hp.loss)
        if same is not None:
            loss = loss + hp.contrastive * contrastive_matching_loss(fake_features, self.discriminator.embed(c), same)
        return loss
