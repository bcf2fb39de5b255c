"""The audio :class:`~multimodal_kit.data.codec.MediaCodec`: a value → mono waveform at the model's rate →
log-mel frames (or the waveform itself, for encoders with their own front end); batches padded with lengths;
generated log-mel back to sound by Griffin-Lim."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Literal

import datasets
import numpy as np
import torch

from multimodal_kit.data.audio import (
    AUDIO_EXTENSIONS,
    AudioDecodeError,
    LogMel,
    load_waveform,
    resample,
    to_mono,
)
from multimodal_kit.data.codec import MediaCodec
from multimodal_kit.data.problems import DataError


def _source(value: dict[str, Any]) -> Any:
    return io.BytesIO(value["bytes"]) if value.get("bytes") is not None else value["path"]


class AudioCodec(MediaCodec):
    """Audio: a value → log-mel (T, n_mels) or waveform (N,) per item; a batch's ``audio`` is float
    (B, T, n_mels) (or (B, N)), zero-padded, with ``audio_lengths`` long (B,) true frame (or sample) counts.

    Args:
        features: the log-mel front end (its sample rate is the codec's).
        inputs: ``log_mel`` frames, or the ``waveform`` for encoders with their own front end.
        max_seconds: longer audio is a data error.
        media_column: the column name used in messages.
    """

    media = "audio"
    extensions = AUDIO_EXTENSIONS

    def __init__(self, features: LogMel, inputs: Literal["log_mel", "waveform"] = "log_mel",
                 max_seconds: float = 30.0, media_column: str = "audio") -> None:
        self.features = features
        self.sample_rate = features.sample_rate
        self.inputs = inputs
        self.max_seconds = max_seconds
        self.media_column = media_column

    def feature(self) -> datasets.Audio:
        return datasets.Audio()

    def waveform(self, value: Any, row_id: str) -> torch.Tensor:
        """A value (``{bytes, path}``, ``{array, sampling_rate}`` or a path) → mono float (N,) at
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
                                f"set {self.column_flag} to the audio column.")
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
        info = soundfile.info(_source(value))
        changes = []
        if info.channels > 1:
            changes.append(f"{info.channels} channels mixed to mono")
        if info.samplerate != self.sample_rate:
            changes.append(f"resampled from {info.samplerate} Hz to {self.sample_rate} Hz")
        return ", ".join(changes) or None

    def load(self, value: Any, row_id: str) -> torch.Tensor:
        """→ log-mel frames (T, n_mels), or the waveform (N,) with ``inputs: waveform``."""
        wave = self.waveform(value, row_id)
        return wave if self.inputs == "waveform" else self.features(wave)

    def length(self, value: dict[str, Any]) -> int:
        """The item length (frames, or samples) of an undecoded value, from its file header (no decoding)."""
        import soundfile

        info = soundfile.info(_source(value))
        samples = int(info.frames * self.sample_rate / info.samplerate)
        return samples if self.inputs == "waveform" else self.features.num_frames(samples)

    def nbytes(self) -> int:  # ~10 s of audio
        return 4 * 10 * (self.sample_rate if self.inputs == "waveform" else 100 * self.features.n_mels)

    def collate(self, items: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        lengths = torch.tensor([item.shape[0] for item in items], dtype=torch.long)
        audio = torch.nn.utils.rnn.pad_sequence(items, batch_first=True)  # zeros after each item's end
        return {self.key: audio, f"{self.key}_lengths": lengths}

    def uncollate(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """``audio`` (B, T, n_mels) and ``audio_lengths`` (B,) → (T_i, n_mels) per item."""
        audio = batch[self.key].detach().float().cpu()
        lengths = batch.get(f"{self.key}_lengths")
        lengths = lengths.tolist() if lengths is not None else [audio.shape[1]] * len(audio)
        return [item[:n] for item, n in zip(audio, lengths, strict=True)]

    def as_log_mel(self, item: torch.Tensor) -> torch.Tensor:
        """An item as log-mel frames (T, n_mels) (computed from a waveform, for pictures)."""
        return self.features(item) if item.ndim == 1 else item

    def to_values(self, items: list[torch.Tensor]) -> list[dict[str, Any]]:
        """Raw log-mel frames → waveforms by Griffin-Lim (:meth:`LogMel.invert`, one clip at a time); needs
        ``--data.normalize none``."""
        return [{"array": self.features.invert(item), "sampling_rate": self.sample_rate} for item in items]

    def save(self, value: dict[str, Any], stem: Path) -> Path:
        import soundfile

        path = stem.with_suffix(".wav")
        soundfile.write(path, np.clip(value["array"], -1.0, 1.0), value["sampling_rate"], subtype="PCM_16")
        return path
