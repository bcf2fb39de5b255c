"""Mel-cepstral distortion (Kubichek 1993) between generated and real speech, after dynamic time warping: a
speech score that needs no trained reader, only the real recording of the same text.

The cepstra are the DCT-II (orthonormal) of the kit's raw log-mel frames (``log(mel power + 1e-6)``), coefficients
1–13 (``c0``, the loudness, left out); each aligned pair of frames costs
``10 / ln 10 · sqrt(2 · Σ_d (c_d − c'_d)²)`` dB, averaged along the DTW path (``librosa.sequence.dtw``).
Computed from log-mel power rather than a vocoder's spectral envelope, so comparable between runs of the kit,
not with published MCDs.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torchmetrics import Metric

COEFFICIENTS = 13
_DB = 10.0 / math.log(10.0) * math.sqrt(2.0)


def mel_cepstra(log_mel: np.ndarray, coefficients: int = COEFFICIENTS) -> np.ndarray:
    """Log-mel frames (T, n_mels) → cepstra (T, ``coefficients``): the orthonormal DCT-II, ``c1`` onwards."""
    from scipy.fft import dct

    return dct(log_mel, type=2, norm="ortho", axis=-1)[:, 1: coefficients + 1]


def mel_cepstral_distortion(generated: np.ndarray, real: np.ndarray) -> float:
    """MCD in dB between two log-mel sequences (T1, n_mels) and (T2, n_mels), aligned by DTW."""
    import librosa

    a, b = mel_cepstra(generated), mel_cepstra(real)
    cost = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))  # (T1, T2)
    _, path = librosa.sequence.dtw(C=cost)
    return float(_DB * cost[path[:, 0], path[:, 1]].mean())


class MelCepstralDistortion(Metric):
    """Mean MCD (dB) over pairs of utterances: ``update(generated (B, T1, n_mels), generated_lengths (B,),
    real (B, T2, n_mels), real_lengths (B,))``, raw log-mel frames, each cut to its length."""

    full_state_update = False
    higher_is_better = False

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, generated: torch.Tensor, generated_lengths: torch.Tensor, real: torch.Tensor,
               real_lengths: torch.Tensor) -> None:
        fake_frames, real_frames = generated.detach().float().cpu().numpy(), real.detach().float().cpu().numpy()
        for k in range(len(fake_frames)):
            n, m = int(generated_lengths[k]), int(real_lengths[k])
            if n == 0 or m == 0:
                raise ValueError(f"MelCepstralDistortion: item {k} has no frames (generated {n}, real {m})")
            self.total += mel_cepstral_distortion(fake_frames[k, :n], real_frames[k, :m])
            self.count += 1

    def compute(self) -> torch.Tensor:
        return (self.total / self.count.clamp(min=1)).float()
