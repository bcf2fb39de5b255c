"""Mel-cepstral distortion: hand-worked values, invariance to time warping and to loudness (c0), and the metric
over a batch cut to each item's length."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.fft import idct

from multimodal_kit.mcd import MelCepstralDistortion, mel_cepstral_distortion


def test_one_unit_of_c1_costs_10_over_ln10_times_root_2_db() -> None:
    cepstrum = np.zeros((1, 64))
    cepstrum[0, 1] = 1.0
    frame = idct(cepstrum, type=2, norm="ortho", axis=-1)  # log-mel whose only cepstral coefficient is c1 = 1
    assert mel_cepstral_distortion(np.zeros((1, 64)), frame) == pytest.approx(10 / math.log(10) * math.sqrt(2))


def test_a_slower_copy_and_a_louder_copy_cost_nothing_a_different_utterance_does() -> None:
    x = np.random.default_rng(0).normal(size=(40, 32))
    assert mel_cepstral_distortion(x, np.repeat(x, 2, axis=0)) == pytest.approx(0.0, abs=1e-9)  # DTW aligns
    assert mel_cepstral_distortion(x, x + 3.0) == pytest.approx(0.0, abs=1e-5)  # a level shift is c0 alone
    assert mel_cepstral_distortion(x, np.random.default_rng(1).normal(size=(40, 32))) > 5.0


def test_the_metric_averages_items_cut_to_their_lengths() -> None:
    x = torch.randn(2, 10, 16, generator=torch.Generator().manual_seed(0))
    padded = torch.cat([x, torch.full((2, 5, 16), 50.0)], 1)  # padding a cut would ignore
    metric = MelCepstralDistortion()
    metric.update(x, torch.tensor([10, 6]), padded, torch.tensor([10, 6]))
    assert float(metric.compute()) == pytest.approx(0.0, abs=1e-5)
    metric.update(x[:1], torch.tensor([10]), x[1:], torch.tensor([10]))
    expected = mel_cepstral_distortion(x[0].numpy(), x[1].numpy()) / 3
    assert float(metric.compute()) == pytest.approx(expected, rel=1e-5)
