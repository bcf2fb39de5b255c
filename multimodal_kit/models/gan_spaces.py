"""What a conditional GAN's networks see of each medium — its *space* — and the way back to the batch layout.

Images are generated as they are: (B, 3, S, S) in the data's normalization (tanh output). Audio is generated as
standardized log-mel (B, n_mels, max_frames): real clips are cut or padded with silence to ``max_frames`` and
standardized per band with statistics of the training data (kept as buffers, so they travel in checkpoints);
generated clips end at their last non-silent frame. A new medium adds a space here.
"""

from __future__ import annotations

import math

import torch
from torch import nn

SILENCE = math.log(1e-6)  # the raw log-mel value of digital silence (see LogMel)
#: a frame whose mean log-mel, averaged over 5 frames, stays below this is silence: the quietest real `spoken`
#: frame averages -12.94; generated silence -13.8 ± 0.4 per frame
SILENT_FRAME = SILENCE + 0.9


class ImageSpace(nn.Module):
    """Images: (B, 3, S, S), 2-D convolutions from a 4×4 start, tanh output."""

    spatial_dims, edge, activation = 2, 4, "tanh"
    sound = False  # whether generated samples become sound (and the data must allow it)

    def __init__(self, image_size: int) -> None:
        super().__init__()
        self.channels, self.size = 3, image_size

    @property
    def ready(self) -> bool:
        return True

    def to_model(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return batch["image"]

    def from_model(self, samples: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"image": samples}


class AudioSpace(nn.Module):
    """Raw log-mel audio as standardized (B, n_mels, max_frames): 1-D convolutions over time, linear output.

    Args:
        n_mels: mel bands.
        max_frames: frames of a generated spectrogram.
    """

    spatial_dims, edge, activation = 1, 8, "none"
    sound = True

    def __init__(self, n_mels: int, max_frames: int) -> None:
        super().__init__()
        self.channels, self.size = n_mels, max_frames
        self.register_buffer("feature_mean", torch.zeros(n_mels))
        self.register_buffer("feature_std", torch.ones(n_mels))
        self.register_buffer("stats_ready", torch.tensor(False))

    @property
    def ready(self) -> bool:
        """Whether the per-band statistics were estimated (:meth:`estimate`)."""
        return bool(self.stats_ready)

    def fit_frames(self, audio: torch.Tensor, audio_lengths: torch.Tensor) -> torch.Tensor:
        """Raw log-mel (B, T, n_mels) with true lengths (B,) → (B, max_frames, n_mels): cut, or padded with
        silence (past each item's length)."""
        frames = torch.arange(self.size, device=audio.device)
        audio = nn.functional.pad(audio[:, :self.size], (0, 0, 0, max(0, self.size - audio.shape[1])))
        return torch.where((frames[None, :] < audio_lengths.to(audio.device)[:, None])[..., None], audio, SILENCE)

    def estimate(self, batch: dict[str, torch.Tensor]) -> None:
        """Per-band mean and standard deviation of a batch of training clips (``audio``, ``audio_lengths``)."""
        padded = self.fit_frames(batch["audio"], batch["audio_lengths"])  # (n, max_frames, n_mels)
        self.feature_mean.copy_(padded.mean(dim=(0, 1)))
        self.feature_std.copy_(padded.std(dim=(0, 1)).clamp(min=1e-3))
        self.stats_ready.fill_(True)

    def to_model(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``audio`` (B, T, n_mels) → padded/cut to ``max_frames``, standardized per band, (B, n_mels, max_frames)."""
        audio = self.fit_frames(batch["audio"], batch["audio_lengths"])
        return ((audio - self.feature_mean) / self.feature_std).transpose(1, 2)

    def from_model(self, samples: torch.Tensor) -> dict[str, torch.Tensor]:
        """Generated (B, n_mels, max_frames) → raw log-mel ``audio`` (B, max_frames, n_mels) with ``audio_lengths``
        up to the last non-silent frame."""
        audio = samples.transpose(1, 2) * self.feature_std + self.feature_mean  # (B, T, n_mels)
        # the clip ends at its last non-silent frame: real clips are padded with silence to max_frames, so the
        # generator learns to end words in silence; what trails is cut (as it would be from the real clip)
        level = nn.functional.avg_pool1d(audio.mean(-1, keepdim=True).transpose(1, 2), 5, stride=1, padding=2,
                                         count_include_pad=False).squeeze(1)  # (B, T): mean level, 5-frame average
        loud = level > SILENT_FRAME  # (B, T)
        last = audio.shape[1] - loud.flip(1).float().argmax(1)  # one past the last loud frame
        lengths = torch.where(loud.any(1), last, torch.ones_like(last))
        return {"audio": audio, "audio_lengths": lengths}


def media_space(media: str, **settings: int) -> nn.Module:
    """The GAN space of ``media`` (its :class:`~multimodal_kit.media.MediumSpec`'s ``gan_space``) with the data's
    ``settings`` (``image_size``, ``n_mels``, ``max_frames``)."""
    from multimodal_kit.errors import ConfigError
    from multimodal_kit.media import medium_spec

    factory = medium_spec(media).gan_space
    if factory is None:
        raise ConfigError(f"ConditionalGAN cannot generate {media!r}: its MediumSpec has no gan_space.")
    return factory(**settings)
