"""Config mistakes end ``mmkit`` with one short paragraph (exit status 2) naming the flag and the fix — no usage
listing of every Trainer option, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from multimodal_kit.cli import main
from tests.conftest import TINY_SHAPES, TINY_SPOKEN

REPO = Path(__file__).resolve().parents[2]


def error_of(capsys: pytest.CaptureFixture, *args: str) -> str:
    """Run ``mmkit *args``, expect exit status 2 and return its one error line (progress bars and logs aside)."""
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    assert exit_.value.code == 2
    stderr = capsys.readouterr().err
    errors = [line for line in stderr.splitlines() if line.startswith("mmkit ") and ": error: " in line]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    return errors[0]


def experiment(name: str) -> list[str]:
    tiny = TINY_SPOKEN if name.endswith("text_audio") else TINY_SHAPES
    return ["fit", "-c", str(REPO / "experiments" / f"{name}.yaml"), "--data.init_args.embedded_options",
            json.dumps(tiny), "--trainer.logger", "false"]


def test_unknown_key_suggests_the_right_one(capsys) -> None:
    error = error_of(capsys, *experiment("seq2seq_image_caption"), "--model.init_args.hiden_dim", "8")
    assert error.startswith("mmkit fit: error: --model: (Seq2Seq) Option 'hiden_dim' is not accepted")
    assert "did you mean 'hidden_dim'?" in error


def test_unknown_key_in_a_config_file(capsys, tmp_path: Path) -> None:
    config = tmp_path / "mine.yaml"
    config.write_text("data:\n  init_args:\n    batchsize: 8\n")
    error = error_of(capsys, *experiment("attention_text_audio"), "-c", str(config))
    assert "(TextAudioDataModule) Option 'batchsize' is not accepted (did you mean 'batch_size'" in error


def test_wrong_type_names_the_key_and_the_type(capsys) -> None:
    error = error_of(capsys, *experiment("seq2seq_image_caption"), "--data.init_args.batch_size", "many")
    assert "--batch_size: expected a value of type int. Got value: many" in error


def test_unknown_class_suggests_the_kit_classes(capsys) -> None:
    error = error_of(capsys, *experiment("seq2seq_image_caption"), "--model", "Seq2Sek")
    assert "--model: no class named 'Seq2Sek' (did you mean 'Seq2Seq'?)" in error


def test_missing_data_source(capsys, tmp_path: Path) -> None:
    error = error_of(capsys, "fit", "-c", str(REPO / "experiments" / "seq2seq_image_caption.yaml"),
                     "--data.init_args.source", str(tmp_path / "nope"), "--trainer.logger", "false")
    assert error.startswith("mmkit fit: error: --data.source=") and "no such directory" in error


def test_incompatible_method_and_pair(capsys) -> None:
    """An image encoder on speech: named at model construction, not as a shape error inside the first step."""
    error = error_of(capsys, *experiment("attention_text_audio"), "--model.init_args.encoder",
                     "multimodal_kit.models.encoders.ConvImageEncoder")
    assert "--model.init_args.encoder ConvImageEncoder cannot read this data's audio input" in error
    assert "use an audio encoder (default: ConvLSTMAudioEncoder)" in error


def test_gan_on_normalized_audio_features(capsys) -> None:
    error = error_of(capsys, *experiment("gan_text_audio"), "--data.init_args.normalize", "utterance")
    assert "--data.normalize none" in error


def test_a_directory_that_is_not_a_tokenizer(capsys, tmp_path: Path) -> None:
    (tmp_path / "tok").mkdir()
    error = error_of(capsys, *experiment("seq2seq_image_caption"), "--data.init_args.tokenizer", str(tmp_path / "tok"))
    assert f"--data.tokenizer={str(tmp_path / 'tok')!r}: could not load a tokenizer" in error


def test_bad_rows_fail_with_one_message(capsys, tmp_path: Path) -> None:
    from tests.helpers import write_imagefolder

    root = write_imagefolder(tmp_path / "caps", {"train": 4, "validation": 2})
    next((root / "train").glob("*.png")).write_bytes(b"garbage")
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "-c", str(REPO / "experiments" / "seq2seq_image_caption.yaml"), "--data.init_args.source",
              str(root), "--trainer.logger", "false"])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert "mmkit fit: error: 1 bad row(s) in split 'train'" in error and "not a readable image" in error
    assert "--data.bad_rows skip" in error and "Traceback" not in error


def test_a_yaml_syntax_error_names_the_file_and_the_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "mine.yaml"
    bad.write_text("model:\n  class_path: Seq2Seq\n  init_args: {lr: 0.1\ntrainer:\n  max_epochs: 1\n")
    error = error_of(capsys, "fit", "-c", str(REPO / "experiments" / "seq2seq_image_caption.yaml"), "-c", str(bad))
    assert f"{bad}: not valid YAML — line 4, column 8" in error and "<unicode string>" not in error
