"""TextAudioDataModule: the batch contract, local audiofolders, and clear errors for bad data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from multimodal_kit.data.base import DataError
from multimodal_kit.data.sampling import LengthGroupedBatchSampler
from multimodal_kit.data.text_audio import TextAudioDataModule
from tests.conftest import TINY_SPOKEN
from tests.helpers import write_audiofolder, write_hub_style_audio_repo


def test_batches_follow_the_contract() -> None:
    dm = TextAudioDataModule(embedded_options=TINY_SPOKEN, batch_size=8, n_mels=40)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"audio", "audio_lengths", "text_tokens", "text_lengths", "text", "references", "id"}
    audio, lengths = batch["audio"], batch["audio_lengths"]
    assert audio.dtype == torch.float32 and lengths.dtype == torch.long
    assert audio.shape == (8, int(lengths.max()), 40)
    dataset = dm.dataset("train")
    for k, item_id in enumerate(batch["id"]):
        features = dataset.media_at(dataset.index_of(item_id))
        n = int(lengths[k])
        assert n == features.shape[0] and torch.equal(audio[k, :n], features)  # true length, then zeros
        assert audio[k, n:].eq(0).all()
        assert batch["text"][k] == dataset.texts[dataset.index_of(item_id)] == batch["references"][k][0]
    assert dm.vocab_size == 24  # 20 words + PAD/BOS/EOS/UNK


def test_audiofolder_with_csv_other_text_column_and_odd_files(tmp_path: Path) -> None:
    root = write_audiofolder(tmp_path / "speech", {"train": 6, "validation": 3}, fmt="csv",
                             text_column="sentence", sample_rate=22_050)
    stereo = root / "train" / "train_000.wav"  # make one file stereo at 44.1 kHz
    wave, rate = soundfile.read(stereo, dtype="float32")
    soundfile.write(stereo, np.stack([wave, wave], 1), rate)
    dm = TextAudioDataModule(str(root), text_column="sentence", batch_size=3)
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    assert batch["audio"].shape[0] == 3 and batch["id"][0] == "validation_000.wav"
    item = dm.dataset("train").media_at(0)  # the stereo file: mono at 16 kHz → 100 frames/s
    assert item.shape == (dm.features.num_frames(int(round(wave.shape[0] * 16_000 / rate))), 64)


def test_unknown_column_names_the_flag(tmp_path: Path) -> None:
    root = write_audiofolder(tmp_path / "speech", {"train": 4, "validation": 2})
    with pytest.raises(DataError, match=r"no column 'transcript' \(--data.text_column\)"):
        TextAudioDataModule(str(root), text_column="transcript").setup("fit")






def test_length_grouped_batches_cover_every_item_once_in_random_order() -> None:
    torch.manual_seed(0)
    lengths = list(np.random.default_rng(0).integers(10, 300, size=100))
    sampler = LengthGroupedBatchSampler(range(100), batch_size=8, drop_last=False, lengths=lengths,
                                        group_batches=4)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(100)) and len(batches) == len(sampler) == 13
    # within a group of 4 batches the items are sorted by length: each batch spans a narrow range
    spread = np.mean([max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches])
    assert spread < 0.5 * (max(lengths) - min(lengths))
    firsts = [min(lengths[i] for i in b) for b in batches[:4]]
    assert firsts != sorted(firsts) and firsts != sorted(firsts, reverse=True)  # batches are not in length order


def test_sort_by_length_reduces_padding() -> None:
    def padding(sort: bool) -> float:
        torch.manual_seed(0)
        dm = TextAudioDataModule(embedded_options=TINY_SPOKEN, batch_size=8, sort_by_length=sort)
        dm.setup("fit")
        batches = list(dm.train_dataloader())
        assert sum(len(b["id"]) for b in batches) == TINY_SPOKEN["num_train"]
        return sum(float(1 - b["audio_lengths"].sum() / b["audio"].shape[:2].numel()) for b in batches)

    assert padding(True) < 0.5 * padding(False)


def test_spec_augment_only_touches_training_batches() -> None:
    from multimodal_kit.data.audio import SpecAugment

    dm = TextAudioDataModule(embedded_options=TINY_SPOKEN, batch_size=8, spec_augment=SpecAugment())
    assert dm.hparams["spec_augment"] == {"freq_masks": 2, "freq_width": 8, "time_masks": 2, "time_width": 0.1}

    class FakeTrainer:
        training = True

    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    original = batch["audio"].clone()
    assert torch.equal(dm.on_after_batch_transfer(dict(batch), 0)["audio"], original)  # no trainer: untouched
    dm.trainer = FakeTrainer()
    assert not torch.equal(dm.on_after_batch_transfer(dict(batch), 0)["audio"], original)


def test_hub_dataset_with_audio_column_decodes_without_torchcodec(tmp_path: Path, monkeypatch) -> None:
    import datasets

    repo = write_hub_style_audio_repo(tmp_path / "hub" / "tiny-speech", {"train": 8, "dev": 4})
    assert isinstance(datasets.load_dataset(str(repo))["train"].features["speech"], datasets.Audio)
    real_load = datasets.load_dataset
    monkeypatch.setattr(datasets, "load_dataset", lambda path, *a, **k: real_load(str(repo), *a, **{
        key: v for key, v in k.items() if key != "revision"}) if path == "someone/tiny-speech" else None)
    dm = TextAudioDataModule("someone/tiny-speech", media_column="speech", text_column="sentence", id_column="key",
                             validation_split="dev", batch_size=4)
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    assert batch["id"] == ["dev-0", "dev-1", "dev-2", "dev-3"] and batch["audio"].shape[-1] == 64
    assert batch["audio_lengths"].min() > 20  # real speech frames, not an empty decode


def test_decoded_array_values_are_mixed_and_resampled() -> None:
    """Hub datasets whose audio column already holds ``{array, sampling_rate}`` (channels first or last)."""
    dm = TextAudioDataModule(embedded_options=TINY_SPOKEN)
    tone = np.sin(np.arange(8_000) / 8_000 * 2 * np.pi * 200).astype(np.float32)
    for array in (np.stack([tone, tone]), np.stack([tone, tone], 1), tone):
        wave = dm.codec.waveform({"array": array, "sampling_rate": 8_000}, "row 0")
        assert wave.shape == (16_000,) and float(wave.abs().max()) == pytest.approx(1.0, abs=0.02)


def test_lengths_for_grouping_read_from_headers_match_the_features() -> None:
    preloaded = TextAudioDataModule(embedded_options=TINY_SPOKEN, preload=True)
    lazy = TextAudioDataModule(embedded_options=TINY_SPOKEN, preload=False)
    assert lazy.dataset("train").preloaded == {}
    assert lazy.item_lengths(lazy.dataset("train")) == preloaded.item_lengths(preloaded.dataset("train"))
