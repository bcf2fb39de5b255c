"""``TextAudioDataModule``: audio with its transcript (embedded ``spoken``, audiofolder, hub)."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import datasets
import numpy as np
import torch
from PIL import Image
from torch.utils.data import BatchSampler

from multimodal_kit.data.audio import (
    AUDIO_EXTENSIONS,
    AudioDecodeError,
    LogMel,
    SpecAugment,
    load_waveform,
    resample,
    to_mono,
)
from multimodal_kit.data.base import DataError, PairDataModule, PairDataset
from multimodal_kit.data.sampling import LengthGroupedBatchSampler
from multimodal_kit.errors import ConfigError
from multimodal_kit.visualize import attention_heatmap, spectrogram_image


class TextAudioDataModule(PairDataModule):
    """Text–audio pairs; batches carry ``audio`` float (B, T, n_mels) log-mel frames, zero-padded, and
    ``audio_lengths`` long (B,) true frame counts.

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

    media_key = "audio"
    media_extensions = AUDIO_EXTENSIONS
    media_feature = datasets.Audio()

    def __init__(self, source: str = "spoken", sample_rate: int = 16_000, n_mels: int = 64, n_fft: int = 512,
                 win_length: int = 400, hop_length: int = 160, normalize: Literal["utterance", "none"] = "utterance",
                 max_seconds: float = 30.0, spec_augment: SpecAugment | None = None, sort_by_length: bool = False,
                 inputs: Literal["log_mel", "waveform"] = "log_mel", **kwargs: Any) -> None:
        super().__init__(source=source, **kwargs)
        if inputs == "waveform" and spec_augment is not None:
            raise ConfigError("--data.spec_augment masks log-mel frames; with --data.inputs waveform the encoder "
                              "computes its own features: remove spec_augment.")
        self.inputs = inputs
        # checkpoints hold plain data only (they load with weights_only=True)
        self.hparams["spec_augment"] = dataclasses.asdict(spec_augment) if spec_augment else None
        self.sample_rate = sample_rate
        self.n_mels = n_mels
        self.max_seconds = max_seconds
        self.spec_augment = spec_augment
        self.sort_by_length = sort_by_length
        self.features = LogMel(sample_rate, n_mels, n_fft=n_fft, win_length=win_length, hop_length=hop_length,
                               normalize=normalize)

    # ------------------------------------------------------------------ decoding
    def waveform(self, value: Any, row_id: str) -> torch.Tensor:
        """A dataset value (``{bytes, path}``, ``{array, sampling_rate}`` or a path) → mono float (N,) at
        :attr:`sample_rate`."""
        try:
            if isinstance(value, dict) and value.get("array") is not None:
                samples = np.asarray(value["array"], dtype=np.float32)
                samples = to_mono(samples.T if samples.ndim == 2 and samples.shape[0] < samples.shape[1] else samples)
                wave = torch.from_numpy(resample(samples, int(value["sampling_rate"]), self.sample_rate).copy())
            elif isinstance(value, dict) and value.get("bytes") is not None:
                wave = load_waveform(value["bytes"], self.sample_rate, name=value.get("path") or row_id)
            elif isinstance(value, dict) and value.get("path"):
                wave = load_waveform(value["path"], self.sample_rate, name=row_id)
            elif isinstance(value, str | Path):
                wave = load_waveform(value, self.sample_rate, name=row_id)
            else:
                raise DataError(f"{row_id}: column {self.media_column!r} holds {type(value).__name__}, not audio; "
                                "set --data.media_column to the audio column.")
        except AudioDecodeError as error:
            raise DataError(str(error) if row_id in str(error) else f"{row_id}: {error}") from error
        seconds = wave.numel() / self.sample_rate
        if seconds > self.max_seconds:
            raise DataError(f"{row_id}: {seconds:.1f} s of audio, more than --data.max_seconds="
                            f"{self.max_seconds:g}; trim the file or raise the limit.")
        return wave

    def conversion_note(self, value: Any) -> str | None:
        """Several channels (mixed to mono) or another sample rate (resampled), read from the file's header."""
        import soundfile

        if not isinstance(value, dict) or (value.get("bytes") is None and not value.get("path")):
            return None
        source = io.BytesIO(value["bytes"]) if value.get("bytes") is not None else value["path"]
        info = soundfile.info(source)
        changes = []
        if info.channels > 1:
            changes.append(f"{info.channels} channels mixed to mono")
        if info.samplerate != self.sample_rate:
            changes.append(f"resampled from {info.samplerate} Hz to {self.sample_rate} Hz")
        return ", ".join(changes) or None

    def load_media(self, value: Any, row_id: str) -> torch.Tensor:
        """→ log-mel frames (T, n_mels), or the waveform (N,) with ``inputs: waveform``."""
        wave = self.waveform(value, row_id)
        return wave if self.inputs == "waveform" else self.features(wave)

    def load_media_file(self, path: Path) -> torch.Tensor:
        return self.load_media(str(path), str(path))

    def media_nbytes(self) -> int:  # ~10 s of audio: an estimate for preload='auto'
        return 4 * 10 * (self.sample_rate if self.inputs == "waveform" else 100 * self.n_mels)

    def collate_media(self, items: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        lengths = torch.tensor([item.shape[0] for item in items], dtype=torch.long)
        audio = torch.nn.utils.rnn.pad_sequence(items, batch_first=True)  # zeros after each item's end
        return {"audio": audio, "audio_lengths": lengths}

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        if self.spec_augment is not None and self.trainer is not None and self.trainer.training:
            batch["audio"] = self.spec_augment(batch["audio"], batch["audio_lengths"])
        return batch

    def train_batch_sampler(self, dataset: PairDataset) -> BatchSampler | None:
        if not self.sort_by_length:
            return None
        return LengthGroupedBatchSampler(self.train_order(dataset), self.batch_size, drop_last=False,
                                         lengths=self.item_lengths(dataset))

    def item_lengths(self, dataset: PairDataset) -> list[int]:
        """Frames per item: from the preloaded features, else from each file's header (no decoding)."""
        if dataset.media is not None:
            return [m.shape[0] for m in dataset.media]
        import soundfile

        lengths = []
        for value in dataset.split[self.media_column]:
            source = io.BytesIO(value["bytes"]) if value.get("bytes") is not None else value["path"]
            info = soundfile.info(source)
            lengths.append(self.features.num_frames(int(info.frames * self.sample_rate / info.samplerate)))
        return lengths

    # ------------------------------------------------------------------ pictures and sound
    def preview(self, media: torch.Tensor) -> Image.Image:
        """log-mel (T, n_mels) or a waveform (N,) → its spectrogram."""
        return spectrogram_image(self.as_log_mel(media))

    def as_log_mel(self, media: torch.Tensor) -> torch.Tensor:
        """An item's media as log-mel frames (T, n_mels) (computed from a waveform, for pictures)."""
        return self.features(media) if media.ndim == 1 else media

    def attention_picture(self, media: torch.Tensor, words: Sequence[str], weights: torch.Tensor) -> Image.Image:
        """The spectrogram with a tokens × frames heatmap under it; trailing padded frames (zero weight) cut."""
        valid = torch.nonzero(weights.sum(0) > 0)
        frames = int(valid.max()) + 1 if len(valid) else weights.shape[1]
        return attention_heatmap(self.as_log_mel(media), words, weights[:, :frames])

    def wandb_media(self, split: str, item_id: str, caption: str | None = None) -> Any:
        """A playable ``wandb.Audio`` of item ``item_id`` (its original waveform)."""
        dataset = self.dataset(split)
        value = dataset.split[dataset.index_of(item_id)][self.media_column]
        return self.wandb_value({"array": self.waveform(value, item_id).numpy(), "sampling_rate": self.sample_rate},
                                caption)

    # ------------------------------------------------------------------ generated audio
    def unbatch_media(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """``audio`` (B, T, n_mels) and ``audio_lengths`` (B,) → log-mel (T_i, n_mels) per item."""
        audio = batch["audio"].detach().float().cpu()
        lengths = batch.get("audio_lengths")
        lengths = lengths.tolist() if lengths is not None else [audio.shape[1]] * len(audio)
        return [item[:n] for item, n in zip(audio, lengths, strict=True)]

    def media_values(self, media: list[torch.Tensor]) -> list[Any]:
        """Raw log-mel frames → waveforms by Griffin-Lim (:meth:`LogMel.invert`, one clip at a time); needs
        ``--data.normalize none``."""
        return [{"array": self.features.invert(item), "sampling_rate": self.sample_rate} for item in media]

    def save_media(self, value: dict[str, Any], stem: Path) -> Path:
        import soundfile

        path = stem.with_suffix(".wav")
        soundfile.write(path, np.clip(value["array"], -1.0, 1.0), value["sampling_rate"], subtype="PCM_16")
        return path

    def wandb_value(self, value: dict[str, Any], caption: str | None = None) -> Any:
        import wandb

        return wandb.Audio(np.asarray(value["array"]), sample_rate=value["sampling_rate"], caption=caption)
