"""The real CLI, end to end, on tiny data: fit → test → predict from a checkpoint alone."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from multimodal_kit.cli import main
from tests.conftest import TINY_SHAPES
from tests.helpers import assert_wandb_logged, write_hub_style_repo, write_imagefolder

REPO = Path(__file__).resolve().parents[2]
EXPERIMENT = str(REPO / "experiments" / "seq2seq_image_caption.yaml")
TINY_MODEL = ["--model.init_args.embed_dim", "32", "--model.init_args.hidden_dim", "32",
              "--model.init_args.encoder", '{"class_path": "multimodal_kit.models.encoders.ConvImageEncoder", '
              '"init_args": {"widths": [8, 16]}}']
TINY_TRAINER = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
                "--trainer.log_every_n_steps", "1", "--trainer.enable_progress_bar", "false"]


def fit_tiny(run_dir: Path, *extra: str, logger: bool = False) -> Path:
    args = ["fit", "-c", EXPERIMENT, "--run_dir", str(run_dir), *TINY_MODEL, *TINY_TRAINER,
            "--data.init_args.embedded_options", json.dumps(TINY_SHAPES), "--data.init_args.batch_size", "16",
            "--data.init_args.eval_batch_size", "16", *extra]
    if not logger:
        args += ["--trainer.logger", "false"]
    main(args)
    return run_dir


def test_fit_test_predict_from_checkpoint_alone(tmp_path: Path) -> None:
    run = fit_tiny(tmp_path / "run", logger=True)
    assert (run / "config.yaml").is_file() and (run / "tokenizer" / "tokenizer.json").is_file()
    assert (run / "checkpoints" / "last.ckpt").is_file()
    best = [p for p in (run / "checkpoints").glob("epoch*.ckpt")]
    assert len(best) == 1
    assert list((run / "media" / "val_samples").glob("epoch_*.png"))

    # W&B: one offline run in the run directory, holding the metrics, the full config and the validation table
    offline = list((run / "wandb").glob("offline-run-*"))
    assert len(offline) == 1
    assert_wandb_logged(offline[0], b"train/loss", b"val/loss", b"val/bleu4", b"results_path",
                        b"ImageCaptionDataModule")
    # and without W&B: the same curves on disk
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [r["epoch"] for r in rows if r["val/bleu4"]] == ["0"] and sum(bool(r["train/loss"]) for r in rows) == 2
    assert (run / "curves.png").is_file()
    (table,) = (offline[0] / "files" / "media" / "table" / "val").glob("samples_*.table.json")
    content = json.loads(table.read_text())
    assert content["columns"] == ["id", "image", "references", "prediction"] and len(content["data"]) == 8

    # test: only the checkpoint, no config file
    results = tmp_path / "results.json"
    main(["test", "--ckpt_path", str(best[0]), "--results_path", str(results), "--trainer.enable_progress_bar",
          "false"])
    metrics = json.loads(results.read_text())
    assert set(metrics) == {"test/loss", "test/bleu1", "test/bleu2", "test/bleu3", "test/bleu4", "test/cider",
                            "test/exact_match", "test/truncated"}
    assert all(isinstance(v, float) for v in metrics.values())
    assert (run / "config_test.yaml").is_file() and not list(run.glob("config_TrainerFn*"))  # the stage's name
    run_id = (run / "wandb_run_id").read_text().strip()
    fit_session, test_session = sorted((run / "wandb").glob(f"offline-run-*-{run_id}"))  # the test joins the fit's run
    assert_wandb_logged(test_session, b"test/bleu4", b"cli_test")

    # from the command line, no noise a user cannot act on: Lightning's args-and-argv warning with the whole config,
    # "No seed found", wandb's retired anonymous setting
    shown = subprocess.run([sys.executable, "-m", "multimodal_kit", "test", "--ckpt_path", str(best[0]),
                            "--trainer.enable_progress_bar", "false"], capture_output=True, text=True, check=True,
                           env={**os.environ, "WANDB_MODE": "offline"}, cwd=tmp_path)
    for noise in ("args parameter is intended", "No seed found", "anonymous setting"):
        assert noise not in shown.stdout + shown.stderr

    # predict: a directory of images → predictions.jsonl, from the checkpoint alone
    images = write_imagefolder(tmp_path / "imgs", {"train": 3})
    out = tmp_path / "preds"
    main(["predict", "--ckpt_path", str(best[0]), "--data.predict_path", str(images / "train"),
          "--output_dir", str(out), "--trainer.logger", "false", "--trainer.enable_progress_bar", "false"])
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == sorted(p.name for p in (images / "train").glob("*.png"))
    assert all(Path(r["input"]).is_file() and isinstance(r["text"], str) for r in records)


def test_the_decoding_limit_comes_from_the_data_and_every_cut_output_is_counted(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import torch

    run = fit_tiny(tmp_path / "run")
    said = [line for line in caplog.text.splitlines() if "max_length" in line and "longest training text" in line]
    assert said, "the limit taken from the data is said"
    limit = int(said[0].split("max_length ")[1].split()[0])
    longest = int(said[0].split("has ")[1].split()[0].rstrip(","))
    assert limit == longest + max(4, longest // 4)
    best = next((run / "checkpoints").glob("epoch*.ckpt"))
    assert torch.load(best, weights_only=False)["hyper_parameters"]["max_length"] == limit  # kept for test/predict

    # one token allowed: no caption of the data ends there, so every output is cut, counted and warned about
    results = tmp_path / "results.json"
    with pytest.warns(UserWarning, match="32 test outputs reached max_length=1"):
        main(["test", "--ckpt_path", str(best), "--results_path", str(results), "--model.init_args.max_length", "1",
              "--trainer.logger", "false", "--trainer.enable_progress_bar", "false"])
    assert json.loads(results.read_text())["test/truncated"] == 1.0  # the share: all 32 test scenes (TINY_SHAPES)
    images = write_imagefolder(tmp_path / "imgs", {"train": 2})
    out = tmp_path / "preds"
    main(["predict", "--ckpt_path", str(best), "--data.predict_path", str(images / "train"), "--output_dir", str(out),
          "--model.init_args.max_length", "1", "--trainer.logger", "false", "--trainer.enable_progress_bar", "false"])
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r.get("truncated") for r in records] == [True, True]


def test_checkpoint_metrics_reproduce(tmp_path: Path) -> None:
    run = fit_tiny(tmp_path / "run", "--trainer.limit_val_batches", "2")
    last = run / "checkpoints" / "last.ckpt"
    scores = []
    for name in ("a", "b"):
        main(["validate", "--ckpt_path", str(last), "--results_path", str(tmp_path / f"{name}.json"),
              "--trainer.logger", "false", "--trainer.enable_progress_bar", "false"])
        scores.append(json.loads((tmp_path / f"{name}.json").read_text()))
    assert scores[0] == scores[1] and "val/bleu4" in scores[0]


def test_local_imagefolder_source_and_default_run_dir(tmp_path: Path) -> None:
    root = write_imagefolder(tmp_path / "caps", {"train": 24, "validation": 8, "test": 8})
    main(["fit", "--model", "Seq2Seq", "--data", "ImageCaptionDataModule", "--data.source", str(root),
          "--data.batch_size", "8", "--data.image_size", "32", *TINY_MODEL, *TINY_TRAINER,
          "--trainer.logger", "false"])
    (run,) = (tmp_path / "runs").glob("Seq2Seq-ImageCaption-*")  # the tests run in tmp_path
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["data"]["init_args"]["source"] == str(root)
    assert (run / "checkpoints" / "last.ckpt").is_file()


def test_hub_dataset_with_own_columns_and_splits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hub branch (an id, not a path) with configured columns and splits, served from local files."""
    import datasets

    repo = write_hub_style_repo(tmp_path / "hub" / "tiny-captions", {"train": 24, "dev": 8})
    real_load = datasets.load_dataset
    calls = []

    def offline_hub(path, *args, **kwargs):
        calls.append((path, kwargs.get("revision")))
        assert path == "someone/tiny-captions"
        return real_load(str(repo), *args, **{k: v for k, v in kwargs.items() if k != "revision"})

    monkeypatch.setattr(datasets, "load_dataset", offline_hub)
    run = tmp_path / "run"
    main(["fit", "--model", "Seq2Seq", "--data", "ImageCaptionDataModule", "--data.source", "someone/tiny-captions",
          "--data.revision", "main", "--data.media_column", "img", "--data.text_column", "caption",
          "--data.captions_column", "refs", "--data.id_column", "key", "--data.validation_split", "dev",
          "--data.batch_size", "8", "--run_dir", str(run), *TINY_MODEL, *TINY_TRAINER, "--trainer.logger", "false"])
    assert calls == [("someone/tiny-captions", "main")]
    assert (run / "checkpoints" / "last.ckpt").is_file()


def test_print_config_round_trips(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["fit", "-c", EXPERIMENT, "--model.init_args.hidden_dim", "48", "--print_config"])
    printed = capsys.readouterr().out
    (tmp_path / "printed.yaml").write_text(printed)
    config = yaml.safe_load(printed)
    assert config["model"]["class_path"] == "multimodal_kit.methods.Seq2Seq"
    assert config["model"]["init_args"]["hidden_dim"] == 48
    assert "vocab_size" not in config["model"]["init_args"]  # linked from the data, never typed
    with pytest.raises(SystemExit):
        main(["fit", "-c", str(tmp_path / "printed.yaml"), "--print_config"])
    assert yaml.safe_load(capsys.readouterr().out) == config


def test_wrong_flag_is_a_clear_error(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["fit", "-c", EXPERIMENT, "--data.init_args.batchsize", "3"])
    assert "batchsize" in capsys.readouterr().err
