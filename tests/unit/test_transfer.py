"""Transfer: another run's encoder, rebuilt from its checkpoint with its weights, as a method's encoder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from multimodal_kit.errors import ConfigError
from multimodal_kit.models.encoders import ConvImageEncoder
from multimodal_kit.models.transfer import EncoderFromCheckpoint
from tests.helpers import save_encoder_run


@pytest.mark.parametrize("spec", [None, {"class_path": "multimodal_kit.models.encoders.ConvImageEncoder",
                                         "init_args": {"widths": [8, 16, 32]}}])
def test_the_encoder_comes_back_as_its_run_built_and_trained_it(tmp_path: Path, spec: dict | None) -> None:
    torch.manual_seed(0)
    trained = ConvImageEncoder() if spec is None else ConvImageEncoder((8, 16, 32))
    for p in trained.parameters():  # weights no fresh encoder has
        p.data.normal_()
    trained.eval()
    loaded = EncoderFromCheckpoint(str(save_encoder_run(tmp_path / "run.ckpt", trained, spec))).eval()
    images = torch.rand(2, 3, 64, 64)
    assert torch.equal(loaded(images), trained(images))  # (2, N, D), the same numbers
    assert loaded.media == "image" and loaded.out_dim == trained.out_dim
    assert loaded.trainable and all(p.requires_grad for p in loaded.parameters())


def test_frozen_it_keeps_its_weights_and_batch_norm_statistics(tmp_path: Path) -> None:
    path = save_encoder_run(tmp_path / "run.ckpt", ConvImageEncoder((8, 16)),
                    {"class_path": "multimodal_kit.models.encoders.ConvImageEncoder", "init_args": {"widths": [8, 16]}})
    frozen = EncoderFromCheckpoint(str(path), trainable=False).train()
    assert not any(p.requires_grad for p in frozen.parameters()) and not frozen.backbone.training


def test_a_missing_file_or_module_says_what_to_give(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no checkpoint at"):
        EncoderFromCheckpoint(str(tmp_path / "none.ckpt"))
    path = tmp_path / "gan.ckpt"
    torch.save({"hyper_parameters": {}, "state_dict": {"generator.weight": torch.zeros(1)}}, path)
    with pytest.raises(ConfigError, match=r"no 'encoder' module \(its modules: \['generator'\]\)"):
        EncoderFromCheckpoint(str(path))


def test_a_method_takes_it_as_its_encoder(tmp_path: Path) -> None:
    from multimodal_kit.tasks.image_qa import ImageQuestionAnswering

    trained = ConvImageEncoder((8, 16))
    path = save_encoder_run(tmp_path / "run.ckpt", trained, {"class_path": "multimodal_kit.models.encoders.ConvImageEncoder",
                                                     "init_args": {"widths": [8, 16]}})
    model = ImageQuestionAnswering(vocab_size=20, image_size=16, fusion="transformer", d_model=16, num_heads=2,
                                   num_layers=1, ff_dim=32, encoder=EncoderFromCheckpoint(str(path)))
    batch = {"image": torch.rand(3, 3, 16, 16), "question_tokens": torch.randint(3, 20, (3, 5)),
             "question_lengths": torch.tensor([5, 4, 3])}
    logits, weights = model.answer_logits(batch)
    assert logits.shape == (3, 20) and weights.shape == (3, 16)  # 16×16 → 4×4 regions of 16 features
