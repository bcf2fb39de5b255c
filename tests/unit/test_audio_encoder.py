"""The audio encoder: frame counts, padding that never leaks into the valid frames, pooling."""

from __future__ import annotations

import pytest
import torch

from multimodal_kit.models.audio_encoders import ConvLSTMAudioEncoder
from multimodal_kit.models.masking import length_mask, masked_mean


@pytest.mark.parametrize("pyramid_layers", [0, 1])
def test_frames_and_lengths(pyramid_layers: int) -> None:
    encoder = ConvLSTMAudioEncoder(n_mels=40, conv_channels=4, hidden_dim=16, num_layers=2,
                                   pyramid_layers=pyramid_layers)
    features, lengths = torch.randn(3, 101, 40), torch.tensor([101, 60, 9])
    out, out_lengths = encoder(features, lengths)
    factor = 4 * 2**pyramid_layers
    expected = [-(-n // factor) for n in (101, 60, 9)]  # ⌈n / factor⌉ frames
    assert out_lengths.tolist() == expected and out.shape == (3, expected[0], 32)
    assert out[2, expected[2]:].eq(0).all()  # padding positions are zero


@pytest.mark.parametrize("pyramid_layers", [0, 1])
def test_padding_does_not_change_an_items_encoding(pyramid_layers: int) -> None:
    torch.manual_seed(0)
    encoder = ConvLSTMAudioEncoder(n_mels=16, conv_channels=4, hidden_dim=8, pyramid_layers=pyramid_layers).eval()
    short = torch.randn(1, 40, 16)
    alone, n_alone = encoder(short, torch.tensor([40]))
    padded = torch.cat([short, torch.zeros(1, 60, 16)], 1)
    batch = torch.cat([padded, torch.randn(1, 100, 16)])
    together, n_together = encoder(batch, torch.tensor([40, 100]))
    n = int(n_alone[0])
    assert int(n_together[0]) == n
    # the last conv frame sees one zero-padded frame either way; everything else must match exactly
    torch.testing.assert_close(together[0, :n], alone[0, :n], atol=1e-5, rtol=1e-4)


def test_wrong_feature_size_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="built for 64 mel bands but got features with 80"):
        ConvLSTMAudioEncoder()(torch.randn(1, 20, 80), torch.tensor([20]))


def test_masked_mean_ignores_padding() -> None:
    sequence = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [2.0], [2.0]]])
    mask = length_mask(torch.tensor([2, 3]), 3)
    assert mask.tolist() == [[True, True, False], [True, True, True]]
    assert masked_mean(sequence, mask).flatten().tolist() == [2.0, 2.0]
