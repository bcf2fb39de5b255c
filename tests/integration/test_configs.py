"""Every config the kit ships (experiments/, experiments/real/, examples/) parses with the real CLI and
instantiates its data module and method — without downloading anything: data modules load lazily, and pretrained
encoders are swapped for tiny random models of the same kind saved here."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from jsonargparse import ArgumentParser

from multimodal_kit.cli import main
from multimodal_kit.data.base import PairDataModule
from multimodal_kit.methods.base import MultimodalMethod
from tests.helpers import save_encoder_run, save_gpt2, save_vit, save_wav2vec2

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted([*(REPO / "experiments").glob("*.yaml"), *(REPO / "experiments" / "real").glob("*.yaml"),
                  *(REPO / "examples").glob("*.yaml")])
TINY = {"PretrainedImageEncoder": save_vit, "PretrainedAudioEncoder": save_wav2vec2}


@pytest.mark.parametrize("path", CONFIGS, ids=[str(p.relative_to(REPO)) for p in CONFIGS])
def test_config_parses_and_instantiates(path: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "-c", str(path), "--print_config"])
    assert exit_.value.code in (0, None)
    config = yaml.safe_load(capsys.readouterr().out)

    model, data = config["model"], config["data"]
    encoder = model["init_args"].get("encoder")
    if encoder and encoder["class_path"].rsplit(".", 1)[-1] in TINY:
        kind = encoder["class_path"].rsplit(".", 1)[-1]
        encoder["init_args"]["name_or_path"] = str(TINY[kind](tmp_path / kind))
    features = model["init_args"].get("feature_encoder")
    if features and features["class_path"].endswith("EncoderFromCheckpoint"):  # another run's encoder: a tiny one
        from multimodal_kit.models.encoders import ConvImageEncoder

        tiny = {"class_path": "multimodal_kit.models.encoders.ConvImageEncoder", "init_args": {"widths": [4, 8]}}
        features["init_args"]["checkpoint"] = str(save_encoder_run(tmp_path / "captioner.ckpt",
                                                                  ConvImageEncoder((4, 8)), tiny))
    modality = "audio" if data["class_path"].endswith("TextAudioDataModule") else "image"
    vocab = 40
    if model["init_args"].get("language_model"):  # a pretrained decoder: a tiny GPT-2 and its tokenizer
        from transformers import AutoTokenizer

        model["init_args"]["language_model"] = lm = str(save_gpt2(tmp_path / "lm"))
        vocab = len(AutoTokenizer.from_pretrained(lm)) + 1  # and the PAD the kit adds
    links = dict(vocab_size=vocab, pad_id=0, bos_id=1, eos_id=2, media=modality,
                 image_size=data["init_args"].get("image_size", 64), n_mels=data["init_args"].get("n_mels", 64))
    from multimodal_kit.methods.contract import declared_arguments
    from multimodal_kit.utils import import_class

    declared = declared_arguments(import_class(model["class_path"]), MultimodalMethod)
    model["init_args"].update({k: v for k, v in links.items() if k in declared})  # what the CLI would link
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(PairDataModule, "data")
    parser.add_subclass_arguments(MultimodalMethod, "model")
    objects = parser.instantiate_classes(parser.parse_object({"data": data, "model": model}))
    assert isinstance(objects.data, PairDataModule) and "splits" not in objects.data.__dict__  # nothing loaded
    assert isinstance(objects.model, MultimodalMethod)
