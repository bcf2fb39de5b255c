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

TINY_VIT = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)


def save_vit(path: Path) -> Path:
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    ViTModel(ViTConfig(image_size=32, patch_size=8, **TINY_VIT)).save_pretrained(path)
    ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.4, 0.4, 0.4],
                      image_std=[0.2, 0.2, 0.2]).save_pretrained(path)
    return path


def save_resnet(path: Path) -> Path:  # no preprocessor_config.json: ImageNet statistics
    from transformers import ResNetConfig, ResNetModel

    ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1])).save_pretrained(path)
    return path


def save_clip(path: Path) -> Path:  # a two-tower checkpoint: the vision tower is loaded alone
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    CLIPModel(CLIPConfig(text_config={**TINY_VIT, "vocab_size": 50}, vision_config={
        **TINY_VIT, "image_size": 32, "patch_size": 8}, projection_dim=8)).save_pretrained(path)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(path)
    return path


def save_wav2vec2(path: Path) -> Path:
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    Wav2Vec2Model(Wav2Vec2Config(**TINY_VIT, conv_dim=(8, 8), conv_kernel=(10, 3), conv_stride=(5, 2),
                                 num_feat_extract_layers=2, num_conv_pos_embeddings=16,
                                 num_conv_pos_embedding_groups=2)).save_pretrained(path)
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True).save_pretrained(path)
    return path


def save_whisper(path: Path) -> Path:
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    WhisperModel(WhisperConfig(d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                               decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, vocab_size=60,
                               num_mel_bins=80, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                               decoder_start_token_id=1)).save_pretrained(path)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(path)
    return path


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
                                 modality="audio", encoder=encoder, embed_dim=16, hidden_dim=16, attention_dim=16)
    before, after = one_step(method, dm, tmp_path)
    assert not changed(before, after)


def test_a_waveform_encoder_on_log_mel_data_is_a_config_error(tmp_path: Path) -> None:
    dm = TextAudioDataModule(embedded_options=TINY_SPOKEN, batch_size=4)
    dm.setup("fit")
    method = CrossModalAttention(vocab_size=dm.vocab_size, modality="audio", embed_dim=16, hidden_dim=16,
                                 attention_dim=16, encoder=PretrainedAudioEncoder(str(save_wav2vec2(tmp_path / "w"))))
    with pytest.raises(ConfigError, match="set --data.init_args.inputs waveform"):
        one_step(method, dm, tmp_path)
