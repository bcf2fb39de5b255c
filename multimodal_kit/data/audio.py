"""The audio front end: decode, mix to mono, resample, log-mel features, SpecAugment-style masking.

Decoding uses ``soundfile`` (libsndfile: WAV, FLAC, OGG, MP3 …) from a path or bytes — no torchcodec or FFmpeg.
Resampling uses ``soxr``; the mel filterbank is ``transformers.audio_utils.mel_filter_bank`` (Slaney-style, as
librosa's default), applied to a ``torch.stft`` power spectrum. Generated spectrograms go back to sound with
``librosa``: the filterbank's pseudo-inverse, then Griffin-Lim phase recovery.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from multimodal_kit.errors import ConfigError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")


class AudioDecodeError(ValueError):
    """An audio file or blob could not be decoded; the message names it."""


def decode_audio(source: str | Path | bytes, name: str | None = None) -> tuple[np.ndarray, int]:
    """Decode a file path or encoded bytes → float32 samples (N, C) in [-1, 1] and the file's sample rate.

    Raises :class:`AudioDecodeError` naming the file for unreadable, truncated (fewer samples than the header
    declares) and empty audio.
    """
    import soundfile

    label = name or (str(source) if not isinstance(source, bytes) else "audio bytes")
    try:
        with soundfile.SoundFile(io.BytesIO(source) if isinstance(source, bytes) else str(source)) as file:
            truncated = TRUNCATED.search(file.extra_info)
            data = file.read(dtype="float32", always_2d=True)
            rate = file.samplerate
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        raise AudioDecodeError(f"{label}: not a readable audio file ({error}). Re-encode it as WAV or FLAC, or "
                               "remove the row.") from error
    except FileNotFoundError as error:
        raise AudioDecodeError(f"{label}: audio file not found.") from error
    if truncated:
        raise AudioDecodeError(f"{label}: truncated audio file (its header declares {truncated[1]} bytes of "
                               f"samples, the file holds {truncated[2]}). Re-encode or re-download it, or remove "
                               "the row.")
    if data.shape[0] == 0:
        raise AudioDecodeError(f"{label}: the audio holds no samples (zero length).")
    return data, int(rate)


#: libsndfile's diagnostic for a data chunk cut short, e.g. ``data : 32000 (should be 15978)``
TRUNCATED = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """(N, C) or (N,) → (N,), the mean of the channels."""
    return samples.mean(axis=1) if samples.ndim == 2 else samples


def resample(samples: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """(N,) at ``rate`` Hz → (N · target_rate / rate,) at ``target_rate`` Hz (soxr, high quality)."""
    if rate == target_rate:
        return samples
    import soxr

    return soxr.resample(samples, rate, target_rate, quality="HQ").astype(np.float32, copy=False)


def load_waveform(source: str | Path | bytes, sample_rate: int, name: str | None = None) -> torch.Tensor:
    """Decode, mix to mono and resample → float32 (N,) at ``sample_rate`` Hz."""
    samples, rate = decode_audio(source, name)
    return torch.from_numpy(np.ascontiguousarray(resample(to_mono(samples), rate, sample_rate)))


class LogMel:
    """Waveform (N,) → log-mel frames (T, n_mels), ``T = 1 + N // hop_length`` (centred STFT frames).

    Args:
        sample_rate: the waveform's rate in Hz.
        n_mels: mel bands.
        n_fft: FFT size.
        win_length: analysis window in samples (default 25 ms at 16 kHz).
        hop_length: frame shift in samples (default 10 ms at 16 kHz).
        f_min: lowest band edge in Hz.
        f_max: highest band edge in Hz; default: half the sample rate.
        normalize: ``utterance``: each band to zero mean and unit variance over the utterance (robust to
            loudness and channel); ``none``: raw ``log(mel + 1e-6)``.
    """

    def __init__(self, sample_rate: int = 16_000, n_mels: int = 64, n_fft: int = 512, win_length: int = 400,
                 hop_length: int = 160, f_min: float = 20.0, f_max: float | None = None,
                 normalize: str = "utterance") -> None:
        from transformers.audio_utils import mel_filter_bank

        if normalize not in ("utterance", "none"):
            raise ConfigError(f"normalize must be 'utterance' or 'none', got {normalize!r}")
        self.sample_rate, self.n_mels, self.n_fft = sample_rate, n_mels, n_fft
        self.win_length, self.hop_length, self.normalize = win_length, hop_length, normalize
        filters = mel_filter_bank(num_frequency_bins=n_fft // 2 + 1, num_mel_filters=n_mels, min_frequency=f_min,
                                  max_frequency=f_max or sample_rate / 2, sampling_rate=sample_rate,
                                  norm="slaney", mel_scale="slaney")
        self.filters = torch.from_numpy(filters.astype(np.float32))  # (F, n_mels)
        self.window = torch.hann_window(win_length)

    def num_frames(self, num_samples: int) -> int:
        return 1 + num_samples // self.hop_length

    def __call__(self, waveform: torch.Tensor) -> torch.Tensor:
        """waveform (N,) → features (T, n_mels), float32."""
        if waveform.numel() < 2:
            waveform = torch.nn.functional.pad(waveform, (0, 2 - waveform.numel()))
        spec = torch.stft(waveform.float(), self.n_fft, self.hop_length, self.win_length, self.window,
                          center=True, pad_mode="reflect" if waveform.numel() > self.n_fft // 2 else "constant",
                          return_complex=True)
        mel = spec.abs().pow(2).T @ self.filters  # (T, n_mels)
        features = torch.log(mel + 1e-6)
        if self.normalize == "utterance":
            features = (features - features.mean(0)) / features.std(0, unbiased=False).clamp(min=1e-3)
        return features

    def invert(self, features: torch.Tensor, n_iter: int = 32) -> np.ndarray:
        """Raw log-mel features (T, n_mels) of one clip (``normalize='none'``) → its waveform, float32
        (hop · (T - 1),).

        The mel power is mapped back to a linear-frequency power through the filterbank's pseudo-inverse
        (clipped at 0; librosa's exact non-negative least squares is ~10× slower for a barely audible difference)
        and ``librosa.griffinlim`` recovers a phase for it from a seeded random start. One clip at a time (as fast
        as a batch), so a clip's sound never depends on what it was batched with.
        """
        if self.normalize != "none":
            raise ConfigError("log-mel features normalized per utterance cannot be turned back into sound (their "
                             "level is gone); use raw features: --data.normalize none")
        import librosa

        mel = (features.detach().float().cpu().clamp(max=20).exp() - 1e-6).clamp(min=0)  # (T, n_mels)
        power = self.inverse_filters @ mel.T  # (F, n_mels) @ (n_mels, T) → (F, T)
        magnitude = np.sqrt(power.clamp(min=0).numpy())
        wave = librosa.griffinlim(magnitude, n_iter=n_iter, hop_length=self.hop_length, win_length=self.win_length,
                                  n_fft=self.n_fft, window="hann", center=True, random_state=0)
        return np.asarray(wave, dtype=np.float32)

    @cached_property
    def inverse_filters(self) -> torch.Tensor:
        """The pseudo-inverse of the mel filterbank, (F, n_mels)."""
        return torch.linalg.pinv(self.filters.T)


@dataclass(frozen=True)
class SpecAugment:
    """SpecAugment-style masking of training features (Park et al. 2019), without time warping.

    Args:
        freq_masks: frequency bands masked per utterance.
        freq_width: the widest frequency mask, in mel bands.
        time_masks: time spans masked per utterance.
        time_width: the widest time mask, as a fraction of the utterance's true length.
    """

    freq_masks: int = 2
    freq_width: int = 8
    time_masks: int = 2
    time_width: float = 0.1

    def __call__(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """features (B, T, F), lengths (B,) → features with masked spans set to 0 (the normalized mean)."""
        b, t, f = features.shape
        device = features.device
        keep = torch.ones(b, t, f, dtype=torch.bool, device=device)
        bins = torch.arange(f, device=device)
        frames = torch.arange(t, device=device)
        for _ in range(self.freq_masks):
            width = torch.randint(0, self.freq_width + 1, (b, 1), device=device)
            start = (torch.rand(b, 1, device=device) * (f - width + 1)).long()
            keep &= ~((bins >= start) & (bins < start + width)).unsqueeze(1)
        max_time = (lengths.to(device).float() * self.time_width).long().unsqueeze(1)  # (B, 1)
        for _ in range(self.time_masks):
            width = (torch.rand(b, 1, device=device) * (max_time + 1).float()).long()
            start = (torch.rand(b, 1, device=device) * (lengths.to(device).unsqueeze(1) - width + 1).float()).long()
            keep &= ~((frames >= start) & (frames < start + width)).unsqueeze(2)
        return features * keep
