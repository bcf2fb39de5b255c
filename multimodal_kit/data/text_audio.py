"""``TextAudioDataModule``: audio with its transcript (embedded ``spoken``, audiofolder, hub)."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from torch.utils.data import BatchSampler

from multimodal_kit.data.audio import LogMel, SpecAugment
from multimodal_kit.data.audio_codec import AudioCodec
from multimodal_kit.data.base import PairDataModule
from multimodal_kit.data.datasets import PairDataset
from multimodal_kit.data.loaders import train_order
from multimodal_kit.data.sampling import LengthGroupedBatchSampler
from multimodal_kit.errors import ConfigError


class TextAudioDataModule(PairDataModule):
    """Text–audio pairs; batches carry ``audio`` float (B, T, n_mels) log-mel frames, zero-padded, and
    ``audio_lengths`` long (B,) true frame counts (:class:`~multimodal_kit.data.audio_codec.AudioCodec`).

    Audio is decoded with ``soundfile`` from the dataset's bytes or files (no torchcodec/FFmpeg), mixed to mono
    and resampled to ``sample_rate``; features are computed once per item (kept in memory with ``preload``).

    Args:
        source: ``spoken`` (embedded), an ``audiofolder`` directory (WAV/FLAC/… plus ``metadata.jsonl`` or
            ``metadata.csv`` with ``file_name`` and the transcript column), or a hub dataset id.
        sample_rate: the rate audio is resampled to, in Hz.
        n_mels: mel bands of the features.
        n_fft: FFT size.
        win_length: analysis window in samples.
        hop_length: frame shift in samples (160 at 16 kHz: 100 frames per second).
        normalize: ``utterance`` (each band to zero mean, unit variance per utterance) or ``none``.
        max_seconds: longer audio is a data error (it would dominate memory and time).
        spec_augment: SpecAugment-style masking of training batches (frequency bands and time spans); ``None``
            turns it off. Applied on the device after the batch is moved there.
        sort_by_length: training batches of items of similar length (less padding), in random order
            (:class:`~multimodal_kit.data.sampling.LengthGroupedBatchSampler`).
        inputs: what a batch's ``audio`` holds: ``log_mel`` frames (B, T, n_mels), or the ``waveform`` (B, N) at
            ``sample_rate`` for encoders with their own front end
            (:class:`~multimodal_kit.models.pretrained.PretrainedAudioEncoder`); ``audio_lengths`` counts frames or
            samples accordingly.
        **kwargs: the options of :class:`~multimodal_kit.data.base.PairDataModule`.
    """

    def __init__(self, source: str = "spoken", sample_rate: int = 16_000, n_mels: int = 64, n_fft: int = 512,
                 win_length: int = 400, hop_length: int = 160, normalize: Literal["utterance", "none"] = "utterance",
                 max_seconds: float = 30.0, spec_augment: SpecAugment | None = None, sort_by_length: bool = False,
                 inputs: Literal["log_mel", "waveform"] = "log_mel", **kwargs: Any) -> None:
        if inputs == "waveform" and spec_augment is not None:
            raise ConfigError("--data.spec_augment masks log-mel frames; with --data.inputs waveform the encoder "
                              "computes its own features: remove spec_augment.")
        features = LogMel(sample_rate, n_mels, n_fft=n_fft, win_length=win_length, hop_length=hop_length,
                          normalize=normalize)
        codec = AudioCodec(features, inputs, max_seconds)
        super().__init__(codec=codec, source=source, **kwargs)
        # checkpoints hold plain data only (they load with weights_only=True)
        self.hparams["spec_augment"] = dataclasses.asdict(spec_augment) if spec_augment else None
        self.inputs = inputs
        self.sample_rate = sample_rate
        self.n_mels = n_mels
        self.features = features
        self.spec_augment = spec_augment
        self.sort_by_length = sort_by_length

    @property
    def augments_media(self) -> bool:
        return self.spec_augment is not None

    def augment(self, batch: dict[str, Any]) -> dict[str, Any]:
        batch["audio"] = self.spec_augment(batch["audio"], batch["audio_lengths"])
        return batch

    def train_batch_sampler(self, dataset: PairDataset) -> BatchSampler | None:
        if not self.sort_by_length:
            return None
        return LengthGroupedBatchSampler(train_order(dataset), self.batch_size, drop_last=False,
                                         lengths=self.item_lengths(dataset))

    def item_lengths(self, dataset: PairDataset) -> list[int]:
        """Frames per item: from the preloaded features, else from each file's header (no decoding)."""
        if self.codec.key in dataset.preloaded:
            return [m.shape[0] for m in dataset.preloaded[self.codec.key]]
        return [self.codec.length(dataset.value_at(i)) for i in range(len(dataset))]
