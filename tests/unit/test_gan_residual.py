"""The conditional GAN's residual generator (``generator_blocks: residual``; BigGAN / SNGAN's pre-activation
blocks): two convs per scale and a skip path that carries the coarser map up."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from multimodal_kit.errors import ConfigError
from multimodal_kit.models.gan_generator import ConvGenerator, ResidualUpBlock
from tests.unit.test_gan import _changed, _snapshot, gan_for, tiny_audio, tiny_images, tiny_trainer


@pytest.mark.parametrize("upsample", ["transpose", "resize"])
@pytest.mark.parametrize(("channels", "size", "dims", "edge"), [(3, 64, 2, 4), (3, 16, 2, 4), (64, 128, 1, 8)])
def test_residual_generator_draws_the_plain_generators_shapes(channels: int, size: int, dims: int, edge: int,
                                                              upsample: str) -> None:
    generator = ConvGenerator(8, 16, channels, size, spatial_dims=dims, start=edge, width=4, upsample=upsample,
                              blocks="residual")
    samples = generator(torch.randn(5, 8), torch.randn(5, 16))
    assert samples.shape == (5, channels, *(size,) * dims)
    blocks = [m for m in generator.modules() if isinstance(m, ResidualUpBlock)]
    assert len(blocks) == len(generator.ups) and len(generator.norms) == 1  # one last norm before the output conv


def test_the_skip_path_carries_the_coarser_map_up_unchanged() -> None:
    """With the main path's last conv at zero and the skip's 1-wide conv the identity, a block's output is its input
    upsampled (nearest ×2): the coarser map reaches the finer scale as it is."""
    block = ResidualUpBlock(2, 4, 4, cond_dim=6, upsample="resize")
    with torch.no_grad():
        block.conv.weight.zero_()
        block.skip[1].weight.copy_(torch.eye(4).view(4, 4, 1, 1))
    x = torch.randn(3, 4, 5, 5)
    out = block(x, torch.randn(3, 6))
    assert out.shape == (3, 4, 10, 10)
    assert torch.equal(out, x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3))


def test_the_plain_generator_keeps_its_modules_and_unknown_blocks_are_refused() -> None:
    plain = ConvGenerator(8, 16, 3, 16, width=4)
    assert not any(isinstance(m, ResidualUpBlock) for m in plain.modules())
    assert len(plain.norms) == len(plain.ups) == 2  # one per block, as before the option (checkpoints still load)
    assert sorted(plain.state_dict()) == sorted(
        ["fc.weight", *(f"fc_norm.{k}" for k in ("affine.weight", "affine.bias", "norm.running_mean",
                                                 "norm.running_var", "norm.num_batches_tracked")),
         "ups.0.weight", "ups.1.weight", "out.weight", "out.bias",
         *(f"norms.{i}.{k}" for i in (0, 1) for k in ("affine.weight", "affine.bias", "norm.running_mean",
                                                      "norm.running_var", "norm.num_batches_tracked"))])
    with pytest.raises(ConfigError, match="'plain' or 'residual'"):
        ConvGenerator(8, 16, 3, 16, blocks="dense")  # type: ignore[arg-type]


@pytest.mark.parametrize("make_data", [tiny_images, tiny_audio], ids=["image", "audio"])
def test_a_gan_with_residual_blocks_trains_its_generator(tmp_path: Path, make_data) -> None:
    dm = make_data()
    gan = gan_for(dm, generator_blocks="residual")
    assert isinstance(gan.generator.ups[0], ResidualUpBlock)
    generator, ema = _snapshot(gan.generator), _snapshot(gan.generator_ema)
    tiny_trainer(tmp_path, limit_val_batches=0).fit(gan, dm)  # one batch: one D step and one G step
    assert _changed(generator, gan.generator) and _changed(ema, gan.generator_ema)
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in gan.generator.parameters())
