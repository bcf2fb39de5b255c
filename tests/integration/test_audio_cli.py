"""Speech recognition through the real CLI: fit → test → predict on WAV files, for both text methods."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from multimodal_kit.cli import main
from tests.conftest import TINY_SPOKEN
from tests.helpers import assert_wandb_logged, write_audiofolder

REPO = Path(__file__).resolve().parents[2]
TINY_MODEL = ["--model.init_args.embed_dim", "16", "--model.init_args.hidden_dim", "32",
              "--model.init_args.encoder", '{"class_path": "multimodal_kit.models.audio_encoders.ConvLSTMAudioEncoder",'
              ' "init_args": {"conv_channels": 4, "hidden_dim": 16}}']
TINY_RUN = ["--data.init_args.embedded_options", json.dumps(TINY_SPOKEN), "--data.init_args.batch_size", "16",
            "--data.init_args.eval_batch_size", "16", "--trainer.max_epochs", "1",
            "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
            "--trainer.enable_progress_bar", "false"]
QUIET = ["--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]


@pytest.mark.parametrize("method", ["seq2seq", "attention"])
def test_fit_test_predict_speech(tmp_path: Path, method: str) -> None:
    run = tmp_path / "run"
    extra = ["--model.init_args.attention_dim", "16"] if method == "attention" else []
    main(["fit", "-c", str(REPO / "experiments" / f"{method}_text_audio.yaml"), "--run_dir", str(run),
          *TINY_MODEL, *extra, *TINY_RUN])
    (best,) = (run / "checkpoints").glob("epoch*.ckpt")  # picked by val/wer
    assert list((run / "media" / "val_samples").glob("epoch_000.png"))

    # W&B: the validation table carries playable audio next to the reference and the transcript (offline, the
    # table's media travel in its artifact, which the run log references; `wandb sync` uploads them)
    (offline,) = (run / "wandb").glob("offline-run-*")
    (table,) = (offline / "files" / "media" / "table" / "val").glob("samples_*.table.json")
    content = json.loads(table.read_text())
    assert content["columns"] == ["id", "audio", "references", "prediction"] and len(content["data"]) == 8
    assert content["data"][0][1] == "Audio"
    assert_wandb_logged(offline, *(b"val/wer", b"media/audio/", b".wav"))

    if method == "attention":  # tokens × frames heatmaps of the same validation items every epoch
        assert (run / "media" / "attention" / "epoch_000.png").stat().st_size > 0

    results = tmp_path / "test.json"
    main(["test", "--ckpt_path", str(best), "--results_path", str(results), *QUIET])
    metrics = json.loads(results.read_text())
    assert set(metrics) == {"test/loss", "test/wer", "test/cer", "test/exact_match", "test/truncated"}
    assert 0.0 <= metrics["test/cer"] and 0.0 <= metrics["test/wer"]

    wavs = write_audiofolder(tmp_path / "speech", {"train": 3})
    out = tmp_path / "preds"
    main(["predict", "--ckpt_path", str(best), "--data.predict_path", str(wavs / "train"), "--output_dir", str(out),
          "--attention_maps", "true", *QUIET])
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == ["train_000.wav", "train_001.wav", "train_002.wav"]
    for record in records:
        assert isinstance(record["text"], str) and Path(record["input"]).is_file()
        assert ("attention_map" in record) == (method == "attention")
        if method == "attention":
            assert Path(record["attention_map"]).is_file()
