"""Shared fixtures: everything offline, on CPU, in temporary directories, on tiny data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.pop("WANDB_API_KEY", None)

#: a tiny embedded shapes set: generated in about a second
TINY_SHAPES = {"num_train": 96, "num_validation": 32, "num_test": 32}
#: a tiny embedded spoken set: generated in under a second
TINY_SPOKEN = {"num_train": 64, "num_validation": 16, "num_test": 16}


@pytest.fixture(autouse=True, scope="session")
def kit_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The kit's cache (embedded datasets, extracted tokenizers) in one temporary directory per session."""
    path = tmp_path_factory.mktemp("mmkit_cache")
    os.environ["MMKIT_CACHE"] = str(path)
    return path


@pytest.fixture(autouse=True)
def _in_tmp_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test runs in its own directory, so default run directories never land in the repository."""
    monkeypatch.chdir(tmp_path)

#: the tiny spoken set in single-voice mode, for speech synthesis
TINY_VOICE = {**TINY_SPOKEN, "voice": "en-us+m3"}
#: data flags of speech synthesis on TINY_VOICE: raw 16-band log-mel, characters, batches of 8
TTS_DATA = ["--data.init_args.embedded_options", '{"num_train": 64, "num_validation": 16, "num_test": 16, '
            '"voice": "en-us+m3"}', "--data.init_args.n_mels", "16", "--data.init_args.batch_size", "8",
            "--data.init_args.eval_batch_size", "8"]
#: model flags of a synthesizer of a few thousand parameters
TINY_TTS = ["--model.init_args.embed_dim", "16", "--model.init_args.encoder_dim", "16",
            "--model.init_args.hidden_dim", "16", "--model.init_args.prenet_dims", "[16, 16]",
            "--model.init_args.postnet_channels", "8", "--model.init_args.max_frames", "60"]


@pytest.fixture(scope="session")
def spoken_voice_module(kit_cache: Path):  # noqa: ANN201
    """A set-up text–audio module on TINY_VOICE as speech synthesis reads it (raw log-mel, characters)."""
    from multimodal_kit.data.text_audio import TextAudioDataModule

    dm = TextAudioDataModule(source="spoken", embedded_options=TINY_VOICE, normalize="none", n_mels=16,
                             n_fft=1024, win_length=1024, hop_length=256, tokenizer_kind="char", batch_size=8)
    dm.prepare_data()
    dm.setup("fit")
    return dm
