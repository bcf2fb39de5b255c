"""The audio front end and the embedded ``spoken`` set."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from multimodal_kit.data.audio import AudioDecodeError, LogMel, SpecAugment, load_waveform
from multimodal_kit.data.embedded import load_embedded
from multimodal_kit.data.embedded.spoken import VOCABULARY, SpokenConfig, voices
from tests.conftest import TINY_SPOKEN


def _waves(split) -> list[tuple[np.ndarray, int]]:
    return [soundfile.read(io.BytesIO(v["bytes"]), dtype="float32") for v in split.cast_column(
        "audio", __import__("datasets").Audio(decode=False))["audio"]]


def test_spoken_is_deterministic_16k_speech_of_one_to_five_words(tmp_path: Path) -> None:
    a = load_embedded("spoken", TINY_SPOKEN, cache_dir=tmp_path / "a", progress=False)
    b = load_embedded("spoken", TINY_SPOKEN, cache_dir=tmp_path / "b", progress=False)
    for split in ("train", "validation", "test"):
        assert list(a[split]["text"]) == list(b[split]["text"])
        wa, wb = _waves(a[split]), _waves(b[split])
        assert all(np.array_equal(x[0], y[0]) for x, y in zip(wa, wb, strict=True))
    waves = _waves(a["train"])
    assert {rate for _, rate in waves} == {16_000}
    seconds = [len(w) / rate for w, rate in waves]
    assert 0.3 < min(seconds) and max(seconds) < 4.0
    assert min(float(np.sqrt(np.mean(w**2))) for w, _ in waves) > 0.02  # speech, not silence
    texts = list(a["train"]["text"])
    assert all(1 <= len(t.split()) <= 5 and set(t.split()) <= set(VOCABULARY) for t in texts)
    assert len({len(t.split()) for t in texts}) == 5


def test_spoken_test_voices_are_never_heard_in_training(tmp_path: Path) -> None:
    data = load_embedded("spoken", TINY_SPOKEN, cache_dir=tmp_path, progress=False)
    train, test = set(data["train"]["voice"]), set(data["test"]["voice"])
    assert test and not train & test
    assert test <= set(voices(SpokenConfig())["test"])
    variant = lambda voice: voice.split("+")[1]  # noqa: E731 — a speaker is accent + variant
    assert not {variant(v) for v in train} & {variant(v) for v in test}  # in no accent


def test_spoken_speakers_are_variants_in_every_accent() -> None:
    per_utterance, per_voice = voices(SpokenConfig()), voices(SpokenConfig(accent_per_utterance=False))
    assert len(per_voice["train"]) == 32 and len(per_utterance["train"]) == 32 * 7
    assert {v.split("+")[1] for v in per_utterance["train"]} == {v.split("+")[1] for v in per_voice["train"]}
    assert set(per_voice["train"]) <= set(per_utterance["train"])


def test_spoken_single_word_mode(tmp_path: Path) -> None:
    data = load_embedded("spoken", {**TINY_SPOKEN, "single_word": True}, cache_dir=tmp_path, progress=False)
    assert all(len(t.split()) == 1 for t in data["train"]["text"])


@pytest.mark.parametrize(("fmt", "rate", "channels"), [("WAV", 16_000, 1), ("FLAC", 16_000, 1), ("WAV", 44_100, 2)])
def test_decoding_gives_mono_at_the_target_rate(tmp_path: Path, fmt: str, rate: int, channels: int) -> None:
    t = np.arange(int(0.5 * rate)) / rate
    tone = 0.5 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    samples = np.stack([tone, -0.2 * tone], axis=1) if channels == 2 else tone
    path = tmp_path / f"tone.{fmt.lower()}"
    soundfile.write(path, samples, rate, format=fmt)
    wave = load_waveform(path, 16_000)
    assert wave.dim() == 1 and wave.dtype == torch.float32
    assert abs(wave.numel() - 8_000) <= 2  # 0.5 s at 16 kHz
    expected = 0.5 * ((1 - 0.2) / 2 if channels == 2 else 1)  # the mean of the two channels
    assert float(wave.abs().max()) == pytest.approx(expected, rel=0.05)
    assert torch.equal(load_waveform(path.read_bytes(), 16_000), wave)  # bytes decode like the file


def test_unreadable_audio_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF....WAVEfmt garbage")
    with pytest.raises(AudioDecodeError, match="broken.wav: not a readable audio file"):
        load_waveform(bad, 16_000)
    with pytest.raises(AudioDecodeError, match="missing.wav"):
        load_waveform(tmp_path / "missing.wav", 16_000)


def test_log_mel_frames_match_the_hop() -> None:
    features = LogMel(16_000, n_mels=40, hop_length=160)
    for n in (1, 400, 16_000, 16_123):
        out = features(torch.randn(n))
        assert out.shape == (1 + n // 160, 40) == (features.num_frames(n), 40)
        assert torch.isfinite(out).all()
    normalized = features(torch.randn(16_000))
    assert normalized.mean(0).abs().max() < 1e-4 and (normalized.std(0, unbiased=False) - 1).abs().max() < 1e-3


def test_log_mel_puts_a_tone_in_the_right_band() -> None:
    features = LogMel(16_000, n_mels=64, normalize="none")
    t = torch.arange(16_000) / 16_000
    low, high = (features(torch.sin(2 * torch.pi * f * t)).mean(0).argmax() for f in (300.0, 4_000.0))
    assert int(low) < int(high)


def test_spec_augment_masks_only_inside_each_utterance() -> None:
    torch.manual_seed(0)
    features = torch.ones(4, 50, 16)
    lengths = torch.tensor([50, 30, 20, 10])
    augment = SpecAugment(freq_masks=1, freq_width=4, time_masks=2, time_width=0.2)
    out = augment(features, lengths)
    assert out.shape == features.shape
    assert (out == 0).any()
    for b, n in enumerate(lengths.tolist()):
        zero_frames = (out[b] == 0).all(1).nonzero().flatten()
        assert all(f < n for f in zero_frames.tolist())  # time masks inside the true length
        assert int((out[b] == 0).all(1).sum()) <= 2 * int(n * 0.2)
        assert int((out[b] == 0).all(0).sum()) <= 4  # at most one band of ≤ 4 bins
