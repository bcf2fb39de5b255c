"""Pretrained encoders from ``transformers``: each family loads from a tiny random model saved here (by path, no
network), trains one step inside a method, and stays unchanged when frozen."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Trainer

from multimodal_kit.data.image_caption import ImageCaptionDataModule
from multimodal_kit.data.text_audio import TextAudioDataModule
from multimodal_kit.errors import ConfigError
from multimodal_kit.methods import CrossModalAttention, Seq2Seq
from multimodal_kit.models.pretrained import PretrainedAudioEncoder, PretrainedImageEncoder
from tests.conftest import TINY_SHAPES, TINY_SPOKEN
from tests.helpers import save_clip, save_resnet, save_vit, save_wav2vec2, save_whisper


def one_step(model, datamodule, tmp_path: Path):  # noqa: ANN001, ANN201
    """Fit one training step; the encoder's weights before and after."""
    before = copy.deepcopy(model.encoder.backbone.state_dict())
    Trainer(max_steps=1, limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, default_root_dir=str(tmp_path)).fit(model, datamodule)
    return before, model.encoder.backbone.state_dict()


def changed(before: dict, after: dict) -> bool:
    return any(not torch.equal(before[k], after[k]) for k in before if after[k].is_floating_point())


@pytest.mark.parametrize(("family", "output"), [("vit", "regions"), ("vit", "pooled"), ("resnet", "regions"),
                                                ("clip", "regions")])
def test_pretrained_image_encoder_trains_one_step_and_stays_frozen(tmp_path: Path, family: str, output: str) -> None:
    path = {"vit": save_vit, "resnet": save_resnet, "clip": save_clip}[family](tmp_path / family)
    dm = ImageCaptionDataModule(embedded_options=TINY_SHAPES, batch_size=8)  # 64×64 images: resized to 32
    dm.setup("fit")
    encoder = PretrainedImageEncoder(str(path), output=output)
    method = (CrossModalAttention if output == "regions" else Seq2Seq)(
        vocab_size=dm.vocab_size, pad_id=dm.pad_id, bos_id=dm.bos_id, eos_id=dm.eos_id, encoder=encoder,
        embed_dim=16, hidden_dim=16, **({"attention_dim": 16} if output == "regions" else {}))
    features = encoder(torch.zeros(2, 3, 64, 64))
    assert features.shape[0] == 2 and (features.shape[-1] == encoder.out_dim or features.shape[1] == encoder.out_dim)
    before, after = one_step(method, dm, tmp_path)
    assert not changed(before, after) and not encoder.backbone.training  # frozen, and in eval mode
    assert all(not p.requires_grad for p in encoder.backbone.parameters())


def test_a_trainable_encoder_learns_with_its_own_learning_rate(tmp_path: Path) -> None:
    dm = ImageCaptionDataModule(embedded_options=TINY_SHAPES, batch_size=8)
    dm.setup("fit")
    method = CrossModalAttention(vocab_size=dm.vocab_size, pad_id=dm.pad_id, bos_id=dm.bos_id, eos_id=dm.eos_id,
                                 encoder=PretrainedImageEncoder(str(save_vit(tmp_path / "vit")), trainable=True),
                                 embed_dim=16, hidden_dim=16, attention_dim=16, lr=1e-3, encoder_lr=1e-5)
    groups = method.configure_optimizers().param_groups
    assert [g["lr"] for g in groups] == [1e-3, 1e-5]
    assert len(groups[1]["params"]) == len(list(method.encoder.parameters()))
    before, after = one_step(method, dm, tmp_path)
    assert changed(before, after)
    assert method.encoder.train().backbone.training  # a trainable backbone follows train()/eval()


@pytest.mark.parametrize("family", ["wav2vec2", "whisper"])
def test_pretrained_audio_encoder_reads_waveforms_trains_and_stays_frozen(tmp_path: Path, family: str) -> None:
    path = {"wav2vec2": save_wav2vec2, "whisper": save_whisper}[family](tmp_path / family)
    dm = TextAudioDataModule(embedded_options=TINY_SPOKEN, batch_size=4, inputs="waveform")
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["audio"].ndim == 2 and batch["audio"].shape[1] == int(batch["audio_lengths"].max())  # samples
    encoder = PretrainedAudioEncoder(str(path))
    frames, lengths = encoder(batch["audio"], batch["audio_lengths"])
    assert frames.shape[:2] == (4, int(lengths.max())) and frames.shape[2] == encoder.out_dim
    assert (lengths <= frames.shape[1]).all() and (lengths > 0).all()
    method = CrossModalAttention(vocab_size=dm.vocab_size, pad_id=dm.pad_id, bos_id=dm.bos_id, eos_id=dm.eos_id,
                                 media="audio", encoder=encoder, embed_dim=16, hidden_dim=16, attention_dim=16)
    before, after = one_step(method, dm, tmp_path)
    assert not changed(before, after)


def test_a_waveform_encoder_on_log_mel_data_is_a_config_error(tmp_path: Path) -> None:
    dm = TextAudioDataModule(embedded_options=TINY_SPOKEN, batch_size=4)
    dm.setup("fit")
    method = CrossModalAttention(vocab_size=dm.vocab_size, media="audio", embed_dim=16, hidden_dim=16,
                                 attention_dim=16, encoder=PretrainedAudioEncoder(str(save_wav2vec2(tmp_path / "w"))))
    with pytest.raises(ConfigError, match="set --data.init_args.inputs waveform"):
        one_step(method, dm, tmp_path)


def test_waveform_inputs_at_another_rate_or_with_spec_augment_are_config_errors(tmp_path: Path) -> None:
    from multimodal_kit.data.audio import SpecAugment

    with pytest.raises(ConfigError, match="remove spec_augment"):
        TextAudioDataModule(embedded_options=TINY_SPOKEN, inputs="waveform", spec_augment=SpecAugment())
    dm = TextAudioDataModule(embedded_options=TINY_SPOKEN, batch_size=4, inputs="waveform", sample_rate=8_000)
    dm.setup("fit")
    method = CrossModalAttention(vocab_size=dm.vocab_size, media="audio", embed_dim=16, hidden_dim=16,
                                 attention_dim=16, encoder=PretrainedAudioEncoder(str(save_wav2vec2(tmp_path / "w"))))
    with pytest.raises(ConfigError, match="trained on 16000 Hz audio: set --data.init_args.sample_rate 16000"):
        one_step(method, dm, tmp_path)
