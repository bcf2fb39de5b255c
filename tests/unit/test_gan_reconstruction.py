"""The conditional GAN's cVAE-GAN term (BicycleGAN): an encoder reads each real sample into noise, the generator
redraws it from that noise and its text."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from multimodal_kit.models.gan_generator import LatentEncoder
from tests.unit.test_gan import _changed, _snapshot, gan_for, tiny_audio, tiny_images, tiny_trainer


@pytest.mark.parametrize(("channels", "size", "dims", "edge"), [(3, 64, 2, 4), (3, 16, 2, 4), (16, 32, 1, 8)])
def test_latent_encoder_gives_a_mean_and_log_variance_per_noise_dimension(channels: int, size: int, dims: int,
                                                                          edge: int) -> None:
    encoder = LatentEncoder(channels, noise_dim=8, size=size, spatial_dims=dims, end=edge, width=4)
    mean, log_var = encoder(torch.randn(5, channels, *(size,) * dims))
    assert mean.shape == log_var.shape == (5, 8)


class _Fixed(nn.Module):
    def __init__(self, *outputs: torch.Tensor) -> None:
        super().__init__()
        self.outputs = outputs

    def forward(self, *_: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        return self.outputs if len(self.outputs) > 1 else self.outputs[0]


def test_reconstruction_loss_is_the_weighted_l1_and_kl_worked_by_hand() -> None:
    gan = gan_for(tiny_images(), reconstruction=10.0, reconstruction_kl=0.5)
    real = torch.zeros(2, 3, 16, 16)
    # mean 1 in every one of the 8 noise dimensions, variance 1: KL = ½ Σ (μ² + σ² − 1 − log σ²) = ½ · 8 = 4
    gan.latent_encoder = _Fixed(torch.ones(2, 8), torch.zeros(2, 8))
    gan.generator = _Fixed(torch.full((2, 3, 16, 16), 0.25))  # every pixel 0.25 off: L1 = 0.25
    loss = gan.reconstruction_loss(real, torch.zeros(2, 16))
    assert loss.item() == pytest.approx(10.0 * 0.25 + 0.5 * 4.0)


def test_the_discriminator_step_adds_the_reconstruction_so_the_text_encoder_learns_what_g_needs() -> None:
    """D's optimizer owns the text encoder: its step carries the same term (G and the encoder frozen there)."""
    gan = gan_for(tiny_images(), reconstruction=10.0, reconstruction_kl=0.5)
    gan.generator = _Fixed(torch.full((2, 3, 16, 16), 0.25))
    real, c = torch.zeros(2, 3, 16, 16), torch.zeros(2, 16)
    fake, permutation, mismatch = gan.generator(), torch.tensor([1, 0]), torch.ones(2, dtype=torch.bool)
    with_term, _ = gan.discriminator_step_loss(real, fake, c, permutation, mismatch, None, lambda x: x)
    gan.latent_encoder = _Fixed(torch.ones(2, 8), torch.zeros(2, 8))
    with_known_term, _ = gan.discriminator_step_loss(real, fake, c, permutation, mismatch, None, lambda x: x)
    gan.latent_encoder = None
    without, _ = gan.discriminator_step_loss(real, fake, c, permutation, mismatch, None, lambda x: x)
    assert (with_known_term - without).item() == pytest.approx(10.0 * 0.25 + 0.5 * 4.0, rel=1e-5)
    assert with_term.item() > without.item()


def test_without_reconstruction_there_is_no_encoder_and_the_checkpoint_keys_are_as_before() -> None:
    plain, redrawing = gan_for(tiny_images()), gan_for(tiny_images(), reconstruction=1.0)
    assert plain.latent_encoder is None
    extra = set(redrawing.state_dict()) - set(plain.state_dict())
    assert extra and all(key.startswith("latent_encoder.") for key in extra)


@pytest.mark.parametrize("make_data", [tiny_images, tiny_audio], ids=["image", "audio"])
def test_the_encoder_trains_with_the_generator(tmp_path: Path, make_data) -> None:
    dm = make_data()
    gan = gan_for(dm, reconstruction=1.0)
    encoder, discriminator = _snapshot(gan.latent_encoder), _snapshot(gan.discriminator)
    tiny_trainer(tmp_path, limit_val_batches=0).fit(gan, dm)  # one D step, one G step
    assert _changed(encoder, gan.latent_encoder) and _changed(discriminator, gan.discriminator)
    opt_g, _ = gan.optimizers()
    in_g = {id(p) for group in opt_g.optimizer.param_groups for p in group["params"]}
    assert all(id(p) in in_g for p in gan.latent_encoder.parameters())


def test_the_generator_learns_to_redraw_a_batch_it_overfits() -> None:
    torch.manual_seed(0)
    dm = tiny_images()
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    gan = gan_for(dm, reconstruction=1.0, reconstruction_kl=0.01)
    real = gan.to_model(batch)
    c = gan.text_encoder(batch["text_tokens"], batch["text_lengths"]).detach()
    optimizer = torch.optim.Adam([*gan.generator.parameters(), *gan.latent_encoder.parameters()], lr=1e-2)
    losses = []
    for _ in range(60):
        loss = gan.reconstruction_loss(real, c)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]
