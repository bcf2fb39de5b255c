"""A frozen pretrained encoder's features, cached once per split: training on them gives the loss training on the
media gives, a second run reads the files instead of encoding again, DDP shards add up to the whole split, and a
trainable encoder or augmented media turn the cache off."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import datasets
import pytest
import torch
from lightning.pytorch import Callback, Trainer, seed_everything

from multimodal_kit.data.feature_cache import encoder_key, shard_bounds, use_cached_features
from multimodal_kit.data.image_caption import ImageCaptionDataModule
from multimodal_kit.methods import CrossModalAttention, Seq2Seq
from multimodal_kit.models.pretrained import PretrainedImageEncoder
from tests.conftest import TINY_SHAPES
from tests.helpers import save_vit


class FirstBatch(Callback):
    """Keeps the first training batch's keys and loss."""

    def on_train_batch_end(self, trainer: Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if batch_idx == 0:
            self.keys, self.loss = set(batch), float(outputs["loss"])


class TestBatches(Callback):
    """Keeps each test batch's keys."""

    def __init__(self) -> None:
        self.keys: list[set[str]] = []

    def on_test_batch_start(self, trainer: Trainer, pl_module: Any, batch: Any, batch_idx: int, *args: Any) -> None:
        self.keys.append(set(batch))


def first_batch(model: Any, datamodule: Any, tmp_path: Path) -> FirstBatch:
    seed_everything(0)
    seen = FirstBatch()
    Trainer(max_steps=1, limit_val_batches=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, num_sanity_val_steps=0, callbacks=[seen],
            default_root_dir=str(tmp_path)).fit(model, datamodule)
    return seen


def caption_data(cache: bool, tmp_path: Path) -> ImageCaptionDataModule:
    return ImageCaptionDataModule(embedded_options=TINY_SHAPES, batch_size=8, cache_features=cache,
                                  cache_dir=str(tmp_path / "cache"))


def method(cls: type, encoder: PretrainedImageEncoder, tmp_path: Path) -> Any:
    data = caption_data(False, tmp_path)
    data.setup("fit")
    return cls(vocab_size=data.vocab_size, pad_id=data.pad_id, bos_id=data.bos_id, eos_id=data.eos_id,
               encoder=encoder, embed_dim=16, hidden_dim=16)


def test_training_on_cached_features_gives_the_loss_of_training_on_images(tmp_path: Path, caplog) -> None:
    vit = save_vit(tmp_path / "vit")
    model = method(CrossModalAttention, PretrainedImageEncoder(str(vit)), tmp_path)
    uncached = first_batch(copy.deepcopy(model), caption_data(False, tmp_path), tmp_path)
    with caplog.at_level(logging.INFO):
        cached = first_batch(copy.deepcopy(model), caption_data(True, tmp_path), tmp_path)
    assert "image" in uncached.keys and "image_features" not in uncached.keys
    assert "image" not in cached.keys and {"image_features", "image_feature_lengths"} <= cached.keys
    assert cached.loss == pytest.approx(uncached.loss, rel=1e-5)

    folders = sorted((tmp_path / "cache" / "multimodal_kit_features").glob("*/*"))
    assert [f.name.split("-")[0] for f in folders] == ["train", "validation"]
    assert folders[0].parent.name.startswith("vit-")  # named by the model, keyed by its weights
    assert f"The frozen {vit}'s train features: {folders[0]}" in caplog.text
    shard = folders[0] / "shard000of001.arrow"
    table = datasets.Dataset.from_file(str(shard)).with_format("numpy")
    data = caption_data(False, tmp_path)
    data.setup("fit")
    assert len(table) == len(data.dataset("train"))
    assert table[0]["features"].shape == (17, model.encoder.out_dim)  # 4×4 patches of 8 pixels and the CLS token
    written = shard.stat().st_mtime_ns
    again = first_batch(copy.deepcopy(model), caption_data(True, tmp_path), tmp_path)
    assert shard.stat().st_mtime_ns == written and again.loss == pytest.approx(cached.loss, rel=1e-6)  # read back

    # test, with a DataLoader worker: the split is cached before its loader (and the worker's copy) exists
    data = ImageCaptionDataModule(embedded_options=TINY_SHAPES, batch_size=8, cache_dir=str(tmp_path / "cache"),
                                  num_workers=1)
    tested = TestBatches()
    Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[tested],
            default_root_dir=str(tmp_path)).test(copy.deepcopy(model), data)
    assert tested.keys and all({"image", "image_features"} <= keys for keys in tested.keys)
    assert [f.name.split("-")[0] for f in sorted(folders[0].parent.glob("*"))] == ["test", "train", "validation"]


def test_the_key_changes_with_the_weights(tmp_path: Path) -> None:
    encoder = PretrainedImageEncoder(str(save_vit(tmp_path / "vit")))
    key = encoder_key(encoder)
    assert encoder_key(copy.deepcopy(encoder)) == key
    with torch.no_grad():
        next(encoder.parameters()).add_(1.0)
    assert encoder_key(encoder) != key


def test_ddp_shards_add_up_to_the_split(tmp_path: Path) -> None:
    for n in (10, 11, 3):
        table = datasets.Dataset.from_dict({"x": list(range(n))})
        for i in range(3):
            assert list(range(*shard_bounds(n, 3, i))) == table.shard(3, i, contiguous=True)["x"]

    encoder = PretrainedImageEncoder(str(save_vit(tmp_path / "vit")))
    model = method(Seq2Seq, encoder, tmp_path)
    whole, rank0, rank1 = (caption_data(True, tmp_path / name) for name in ("whole", "ddp", "ddp"))
    for dm in (whole, rank0, rank1):
        dm.setup("fit")
    model.eval()
    encode = model.encode_source
    use_cached_features(whole, "validation", encoder, encode, encoder.out_dim, "32-true")
    # two processes, one after the other here: rank 0's barrier is where rank 1 computes its shard
    use_cached_features(rank0, "validation", encoder, encode, encoder.out_dim, "32-true", world=(2, 0), barrier=lambda: (
        use_cached_features(rank1, "validation", encoder, encode, encoder.out_dim, "32-true", world=(2, 1))))
    for dm in (rank0, rank1):
        features = dm.dataset("validation").features
        assert len(features) == len(whole.dataset("validation"))
        for i in range(len(features)):
            assert torch.equal(features[i], whole.dataset("validation").features[i])
    item = rank0.dataset("validation")[0]
    assert item["image"].shape == (3, 64, 64) and item["image_features"].shape == features[0].shape  # val: both


def test_a_trainable_encoder_or_augmented_audio_is_not_cached(tmp_path: Path, caplog) -> None:
    vit = save_vit(tmp_path / "vit")
    with caplog.at_level(logging.INFO):
        seen = first_batch(method(CrossModalAttention, PretrainedImageEncoder(str(vit), trainable=True), tmp_path),
                           caption_data(True, tmp_path), tmp_path)
    assert "image" in seen.keys and "image_features" not in seen.keys
    assert f"Feature cache off for {vit}: it trains (trainable: true), so it encodes every step." in caplog.text

    with caplog.at_level(logging.INFO):
        seen = first_batch(method(CrossModalAttention, PretrainedImageEncoder(str(vit)), tmp_path),
                           AugmentedCaptions(embedded_options=TINY_SHAPES, batch_size=8,
                                             cache_dir=str(tmp_path / "cache")), tmp_path)
    assert "image" in seen.keys and "image_features" not in seen.keys
    assert f"Feature cache off for {vit}: the training media are augmented" in caplog.text
    assert not (tmp_path / "cache" / "multimodal_kit_features").exists()


class AugmentedCaptions(ImageCaptionDataModule):
    """A user's data module that augments its training images (the property it declares)."""

    @property
    def augments_media(self) -> bool:
        return True
