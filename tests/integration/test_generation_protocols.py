"""The two generation protocols: each media callback declares the one it needs, checked at setup — a speech
synthesizer draws with GeneratedSamples as the GAN does (it once crashed at the first validation), and a callback
that does not fit the method is refused before the first step, naming both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile

from multimodal_kit.cli import main
from multimodal_kit.methods import ConditionalGAN, CrossModalAttention
from multimodal_kit.methods.generation import GeneratesMedia, GeneratesText, follows
from multimodal_kit.tasks.speech_synthesis import Seq2SeqSpeechSynthesis
from tests.conftest import TINY_TTS, TTS_DATA
from tests.integration.test_speech_synthesis_cli import QUIET, TINY_TRAINER, experiment


def test_each_method_follows_the_protocol_of_its_outputs() -> None:
    captioner = CrossModalAttention(vocab_size=12, embed_dim=8, hidden_dim=8, attention_dim=8)
    gan = ConditionalGAN(vocab_size=12, noise_dim=4, cond_dim=8, generator_width=4, discriminator_width=4,
                         image_size=16)
    synthesizer = Seq2SeqSpeechSynthesis(vocab_size=12, n_mels=8, embed_dim=8, encoder_dim=8, hidden_dim=8,
                                         prenet_dims=(8, 8), postnet_channels=4)
    assert follows(captioner, GeneratesText) and not follows(captioner, GeneratesMedia)
    assert follows(gan, GeneratesMedia) and not follows(gan, GeneratesText)  # it has generate(), but makes media
    assert follows(synthesizer, GeneratesMedia) and synthesizer.noise(3, inference=True) is None
    # SynthesisSamples draws the alignment too: it needs the synthesizers' own class, which the GAN is not
    from multimodal_kit.errors import ConfigError
    from multimodal_kit.methods.generation import check_protocol
    from multimodal_kit.tasks.speech_synthesis.samples import SynthesisSamples

    check_protocol(SynthesisSamples(), synthesizer)
    with pytest.raises(ConfigError, match="SynthesisSamples draws what a method that is a FrameGenerationMethod"):
        check_protocol(SynthesisSamples(), gan)


def test_a_speech_synthesizer_draws_with_generated_samples(tmp_path: Path) -> None:
    run = tmp_path / "run"
    callbacks = tmp_path / "callbacks.yaml"
    callbacks.write_text(json.dumps({"trainer": {"callbacks": [
        {"class_path": "multimodal_kit.callbacks.GeneratedSamples", "init_args": {"num_prompts": 3}}]}}))
    main(["fit", *experiment("seq2seq_speech_synthesis"), "-c", str(callbacks), "--run_dir", str(run), *TTS_DATA,
          *TINY_TTS, *TINY_TRAINER, *QUIET])
    assert (run / "media" / "generated" / "epoch_000.png").is_file()
    wavs = sorted((run / "media" / "generated" / "epoch_000").glob("*.wav"))
    assert len(wavs) == 3 and soundfile.info(str(wavs[0])).samplerate == 16_000


def test_a_callback_that_does_not_fit_the_method_is_refused_at_setup(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    callbacks = tmp_path / "callbacks.yaml"
    callbacks.write_text(json.dumps({"trainer": {"callbacks": [
        {"class_path": "multimodal_kit.callbacks.AttentionMaps"}]}}))
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *experiment("seq2seq_speech_synthesis"), "-c", str(callbacks), "--run_dir", str(run),
              *TTS_DATA, *TINY_TTS, *TINY_TRAINER, *QUIET])
    assert exit_info.value.code == 2
    message = " ".join(capsys.readouterr().err.split())
    assert ("the callback AttentionMaps draws what a method that writes text (GeneratesText) generates, and "
            "Seq2SeqSpeechSynthesis does not (its outputs: ['audio'])") in message
    assert "drop it from trainer.callbacks" in message and not (run / "checkpoints").exists()
