"""Speech synthesis through the real CLI on the tiny single-voice set: a recognizer is trained first as the
evaluator, then the attention synthesizer fits (pictures and sound each validation), tests (every metric the
README names) and predicts WAVs from a prompts file; Seq2Seq fits and tests too; DDP and bf16 smoke."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile
import torch

from multimodal_kit.cli import main
from tests.conftest import TINY_TTS, TTS_DATA
from tests.helpers import DDP_SPAWN_CPU, assert_wandb_logged

REPO = Path(__file__).resolve().parents[2]
QUIET = ["--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]
TINY_TRAINER = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
                "--trainer.log_every_n_steps", "1"]


def monitor_of(checkpoint: Path) -> str:
    """The metric the run's ModelCheckpoint kept the best checkpoint by."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    (monitor,) = {c["monitor"] for c in state["callbacks"].values() if c.get("monitor")}
    return monitor


def experiment(name: str) -> list[str]:
    return ["-c", str(REPO / "experiments" / f"{name}.yaml")]


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny speech recognizer of the single voice (its own features: utterance-normalized, 16 bands)."""
    run = tmp_path_factory.mktemp("evaluator")
    main(["fit", *experiment("seq2seq_text_audio"), "--run_dir", str(run), *TTS_DATA[:2],
          "--data.init_args.n_mels", "16", "--data.init_args.batch_size", "8", "--data.init_args.eval_batch_size", "8",
          "--model.init_args.embed_dim", "16", "--model.init_args.hidden_dim", "16", "--model.init_args.encoder",
          '{"class_path": "multimodal_kit.models.audio_encoders.ConvLSTMAudioEncoder", '
          '"init_args": {"n_mels": 16, "conv_channels": 4, "hidden_dim": 16}}', *TINY_TRAINER, *QUIET])
    (best,) = (run / "checkpoints").glob("epoch*.ckpt")
    return best


def test_attention_synthesis_fits_tests_and_predicts_wavs(tmp_path: Path, evaluator: Path) -> None:
    run = tmp_path / "run"
    main(["fit", *experiment("attention_speech_synthesis"), "--run_dir", str(run), *TTS_DATA, *TINY_TTS,
          "--model.init_args.evaluator", str(evaluator), *TINY_TRAINER, "--trainer.enable_progress_bar", "false"])
    # each validation: target and generated spectrograms with the alignment under them, and the sound
    assert (run / "media" / "synthesis" / "epoch_000.png").is_file()
    wavs = sorted((run / "media" / "synthesis" / "epoch_000").glob("*.wav"))
    assert len(wavs) == 4 and soundfile.info(str(wavs[0])).samplerate == 16_000
    # W&B (offline): the losses, the scores, the picture and the table of playable audio are in the run log
    (offline,) = (run / "wandb").glob("offline-run-*")
    assert_wandb_logged(offline, *(b"train/frame_loss", b"train/guided_attention", b"val/cycle_wer", b"val/alignment_ok",
            b"val/synthesis", b"val/synthesized"))
    (best,) = (run / "checkpoints").glob("epoch*.ckpt")
    assert monitor_of(best) == "val/cycle_wer"  # the best checkpoint is picked by the evaluator's reading

    results = tmp_path / "test.json"
    main(["test", "--ckpt_path", str(best), "--results_path", str(results), *QUIET])
    metrics = json.loads(results.read_text())
    assert {"test/cycle_wer", "test/cycle_cer", "test/real_cycle_wer", "test/mel_l1", "test/stop_accuracy",
            "test/alignment_ok", "test/loss", "test/mcd", "test/truncated"} <= set(metrics)
    assert 0 <= metrics["test/stop_accuracy"] <= 1 and 0 <= metrics["test/alignment_ok"] <= 1
    assert metrics["test/mel_l1"] > 0

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("one two three\n\ngo left\n")
    out = tmp_path / "predictions"
    main(["predict", "--ckpt_path", str(best), "--data.predict_path", str(prompts), "--output_dir", str(out),
          *QUIET])
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["input"] for r in records] == ["one two three", "go left"]
    for record in records:
        samples, rate = soundfile.read(record["file"])
        assert rate == 16_000 and len(samples) > 0 and record["seconds"] == pytest.approx(len(samples) / rate, abs=0.01)
        assert isinstance(record["stopped"], bool)


def test_seq2seq_synthesis_fits_and_tests_without_an_evaluator(tmp_path: Path) -> None:
    run = tmp_path / "run"
    main(["fit", *experiment("seq2seq_speech_synthesis"), "--run_dir", str(run), *TTS_DATA, *TINY_TTS,
          *TINY_TRAINER, *QUIET])
    (best,) = (run / "checkpoints").glob("epoch*.ckpt")
    assert monitor_of(best) == "val/loss"  # no evaluator: the lowest validation loss
    results = tmp_path / "test.json"
    main(["test", "--ckpt_path", str(best), "--results_path", str(results), *QUIET])
    metrics = json.loads(results.read_text())
    assert {"test/mel_l1", "test/stop_accuracy", "test/loss", "test/mcd"} <= set(metrics)  # MCD needs no judge
    assert "test/alignment_ok" not in metrics and "test/cycle_wer" not in metrics  # nothing to align; no judge


def test_synthesis_refuses_per_utterance_normalized_features(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["fit", *experiment("seq2seq_speech_synthesis"), "--run_dir", str(tmp_path / "run"), *TTS_DATA,
              *TINY_TTS, "--data.init_args.normalize", "utterance", *TINY_TRAINER, *QUIET])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert "Seq2SeqSpeechSynthesis on audio needs raw log-mel features" in error
    assert "set --data.normalize none" in error  # the fix is named


def test_synthesis_fits_under_ddp_and_in_bf16(tmp_path: Path) -> None:
    main(["fit", *experiment("attention_speech_synthesis"), "--run_dir", str(tmp_path / "ddp"), *TTS_DATA, *TINY_TTS,
          *TINY_TRAINER, *QUIET, *DDP_SPAWN_CPU])
    state = torch.load(tmp_path / "ddp" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert state["global_step"] == 2
    assert bool(state["state_dict"]["normalizer.ready"])  # statistics estimated before the processes split
    main(["fit", *experiment("attention_speech_synthesis"), "--run_dir", str(tmp_path / "bf16"), *TTS_DATA,
          *TINY_TTS, *TINY_TRAINER, *QUIET, "--trainer.precision", "bf16-mixed"])
    state = torch.load(tmp_path / "bf16" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values() if v.is_floating_point())


def test_synthesis_trains_on_a_local_audiofolder(tmp_path: Path) -> None:
    """The same data module reads the user's own recordings: an audiofolder with a transcript column."""
    from tests.helpers import write_audiofolder

    data = write_audiofolder(tmp_path / "voice", {"train": 8, "validation": 4, "test": 4}, text_column="sentence")
    run = tmp_path / "run"
    main(["fit", *experiment("seq2seq_speech_synthesis"), "--run_dir", str(run), "--data.init_args.source", str(data),
          "--data.init_args.embedded_options", "null",
          "--data.init_args.text_column", "sentence", "--data.init_args.n_mels", "16",
          "--data.init_args.batch_size", "4", "--data.init_args.eval_batch_size", "4", *TINY_TTS, *TINY_TRAINER,
          *QUIET])
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert state["global_step"] == 2 and bool(state["state_dict"]["normalizer.ready"])
