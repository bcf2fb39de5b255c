"""Faults lose nothing and say so: damaged checkpoint files are errors naming the file (exit 2, no traceback),
``--ckpt_path last|best`` resolve at test time as at fit (never random weights), ``fit --ckpt_path last`` skips a
damaged newest file for the previous good one, plain config mistakes are refused before any data is read, and
``predict`` opens no W&B run."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from multimodal_kit.cli import main
from tests.integration.test_cli import fit_tiny

QUIET = ["--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]


def exits_2(args: list[str], capsys: pytest.CaptureFixture) -> str:
    """Run the CLI expecting a user error: exit status 2, the message on stderr (no traceback)."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fit_tiny(tmp_path_factory.mktemp("faults") / "run")


@pytest.mark.parametrize(("content", "said"), [
    (lambda good: good[: len(good) // 2], "cut short or damaged"),
    (lambda good: b"", "empty (0 bytes)"),
    (lambda good: b"epoch=3 step=100\n", "a text file, not a checkpoint"),
])
def test_a_damaged_checkpoint_is_an_error_naming_the_file(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                          content, said: str) -> None:
    damaged = tmp_path / "model.ckpt"
    damaged.write_bytes(content((run / "checkpoints" / "last.ckpt").read_bytes()))
    for command in ("test", "predict"):
        err = exits_2([command, "--ckpt_path", str(damaged), *QUIET], capsys)
        assert str(damaged) in err and said in err and "Traceback" not in err


def test_ckpt_path_last_and_best_resolve_for_test_and_never_mean_random_weights(
        run: Path, tmp_path: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture) -> None:
    config = str(run / "config.yaml")
    for which in ("last", "best"):
        results = tmp_path / f"{which}.json"
        main(["test", "-c", config, "--run_dir", str(run), "--ckpt_path", which, "--results_path", str(results),
              *QUIET])
        assert "test/bleu4" in json.loads(results.read_text())
    bare = tmp_path / "bare.json"  # no config at all: the checkpoint's own, found in --run_dir
    main(["test", "--run_dir", str(run), "--ckpt_path", "best", "--results_path", str(bare), *QUIET])
    assert json.loads(bare.read_text()) == json.loads((tmp_path / "best.json").read_text())
    assert f"--ckpt_path last: {run / 'checkpoints' / 'last.ckpt'}" in caplog.text
    assert f"--ckpt_path best: {next((run / 'checkpoints').glob('epoch*.ckpt'))}" in caplog.text
    empty = tmp_path / "empty_run"
    (empty / "checkpoints").mkdir(parents=True)
    err = exits_2(["test", "-c", config, "--run_dir", str(empty), "--ckpt_path", "last", *QUIET], capsys)
    assert str(empty / "checkpoints") in err and "holds no resumable checkpoint" in err


def test_resume_skips_a_damaged_newest_checkpoint_for_the_previous_good_one(run: Path, tmp_path: Path,
                                                                           caplog: pytest.LogCaptureFixture) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    last = copy / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])  # a crash mid-write
    os.utime(last)  # and the newest file
    main(["fit", "-c", str(copy / "config.yaml"), "--run_dir", str(copy), "--ckpt_path", "last",
          "--trainer.max_epochs", "2", *QUIET])
    assert f"skipping {last}" in caplog.text
    assert "Restoring states from the checkpoint path at" in caplog.text and "epoch000" in caplog.text


@pytest.mark.parametrize(("flag", "value", "said"), [
    ("--data.init_args.batch_size", "0", "--data.init_args.batch_size 0: a batch holds at least 1 pair"),
    ("--trainer.max_epochs", "-5", "--trainer.max_epochs -5: give a count of at least 0, or -1 for no limit"),
])
def test_plain_config_mistakes_are_refused_before_any_data_is_read(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                   flag: str, value: str, said: str) -> None:
    from tests.integration.test_cli import EXPERIMENT

    err = exits_2(["fit", "-c", EXPERIMENT, "--run_dir", str(tmp_path / "run"), flag, value, *QUIET], capsys)
    assert said in err and not (tmp_path / "run").exists()


def test_predict_opens_no_wandb_run(run: Path, tmp_path: Path) -> None:
    from tests.helpers import write_imagefolder

    before = sorted((run / "wandb").glob("offline-run-*")) if (run / "wandb").is_dir() else []
    images = write_imagefolder(tmp_path / "imgs", {"train": 2})
    main(["predict", "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--data.predict_path",
          str(images / "train"), "--output_dir", str(tmp_path / "out"), "--trainer.enable_progress_bar", "false"])
    after = sorted((run / "wandb").glob("offline-run-*")) if (run / "wandb").is_dir() else []
    assert (tmp_path / "out" / "predictions.jsonl").is_file() and after == before


@pytest.mark.parametrize("fault", ["silent", "disk_full"])
def test_a_failed_checkpoint_write_ends_the_fit_naming_the_file_and_keeps_the_earlier_ones(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    """Epoch 0 writes its checkpoints; epoch 1's first write fails — as Lightning's atomic save passes over a
    PermissionError (nothing written, no error), or with a full disk (ENOSPC)."""
    import errno

    from lightning.fabric.plugins.io import torch_io

    from tests.integration.test_cli import EXPERIMENT, TINY_MODEL

    real_save, calls = torch_io._atomic_save, []

    def flaky_save(checkpoint: dict, path: str) -> None:
        calls.append(path)
        if len(calls) <= 2:  # epoch 0: the best and last.ckpt
            return real_save(checkpoint, path)
        if fault == "disk_full":
            raise OSError(errno.ENOSPC, "No space left on device")
        return None  # written nowhere, said nowhere

    monkeypatch.setattr(torch_io, "_atomic_save", flaky_save)
    run = tmp_path / "run"
    from tests.conftest import TINY_SHAPES

    err = exits_2(["fit", "-c", EXPERIMENT, "--run_dir", str(run), *TINY_MODEL, "--data.init_args.embedded_options",
                   json.dumps(TINY_SHAPES), "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "2",
                   "--trainer.limit_val_batches", "1", *QUIET], capsys)
    assert f"could not write the checkpoint {calls[2]}" in err
    assert ("No space left on device" if fault == "disk_full" else "not on disk after the save") in err
    kept = sorted(p.name for p in (run / "checkpoints").glob("*.ckpt"))
    assert "last.ckpt" in kept and any(name.startswith("epoch000") for name in kept)  # epoch 0's, intact


def test_a_checkpoint_of_another_method_than_the_config_is_refused_naming_both(run: Path, tmp_path: Path,
                                                                              capsys: pytest.CaptureFixture) -> None:
    attention = str(Path(__file__).resolve().parents[2] / "experiments" / "attention_image_caption.yaml")
    err = exits_2(["test", "-c", attention, "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), *QUIET], capsys)
    assert "is a checkpoint of Seq2Seq (model), but the config asks for CrossModalAttention" in err


def test_a_rank_lost_under_ddp_ends_the_job_naming_it_and_the_run_resumes(tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture,
                                                                            caplog: pytest.LogCaptureFixture) -> None:
    """ddp_spawn on 2 CPU processes: rank 1 is killed (SIGKILL) in the second epoch. The job ends at once, not
    hanging on a collective, with exit 2 and a message naming the rank; epoch 0's checkpoints are intact and
    ``--ckpt_path last`` resumes from them."""
    from tests.conftest import TINY_SHAPES
    from tests.integration.test_cli import EXPERIMENT

    faults = tmp_path / "faults.yaml"
    faults.write_text("trainer:\n  callbacks:\n    - class_path: tests.helpers.FailRankAtStep\n"
                      "      init_args: {step: 5, rank: 1, how: kill}\n")
    run = tmp_path / "run"
    common = ["--run_dir", str(run), "--data.init_args.embedded_options", json.dumps(TINY_SHAPES),
              "--model.init_args.embed_dim", "16", "--model.init_args.hidden_dim", "16",
              "--data.init_args.batch_size", "16", *QUIET]
    err = exits_2(["fit", "-c", EXPERIMENT, "-c", str(faults), "--trainer.max_epochs", "3", "--trainer.accelerator",
                   "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp_spawn", *common], capsys)
    assert "rank 1 of the DDP job failed (it ended with signal SIGKILL)" in err and "Traceback" not in err
    assert (run / "checkpoints" / "last.ckpt").is_file()  # epoch 0's (3 steps of 2 × 16 scenes)
    main(["fit", "-c", EXPERIMENT, "--ckpt_path", "last", "--trainer.max_epochs", "2", *common])
    assert "Restoring states from the checkpoint path at" in caplog.text


def test_a_full_disk_under_ddp_ends_every_rank_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """ddp_spawn on 2 CPU processes: rank 0's write of epoch 1's checkpoint fails (ENOSPC) inside Lightning's save,
    before the save's barrier where rank 1 waits. Both ranks end with the error naming the file — none left
    waiting on a collective — and epoch 0's checkpoints are kept."""
    from tests.conftest import TINY_SHAPES
    from tests.integration.test_cli import EXPERIMENT

    faults = tmp_path / "faults.yaml"
    faults.write_text("trainer:\n  callbacks:\n    - class_path: tests.helpers.FullDiskAfterSaves\n"
                      "      init_args: {saves: 2}\n")
    run = tmp_path / "run"
    err = exits_2(["fit", "-c", EXPERIMENT, "-c", str(faults), "--run_dir", str(run), "--data.init_args.embedded_options",
                   json.dumps(TINY_SHAPES), "--model.init_args.embed_dim", "16", "--model.init_args.hidden_dim", "16",
                   "--data.init_args.batch_size", "16", "--trainer.max_epochs", "2", "--trainer.accelerator", "cpu",
                   "--trainer.devices", "2", "--trainer.strategy", "ddp_spawn", *QUIET], capsys)
    assert "could not write the checkpoint" in err and "No space left on device" in err and "Traceback" not in err
    kept = sorted(p.name for p in (run / "checkpoints").glob("*.ckpt"))
    assert "last.ckpt" in kept and any(name.startswith("epoch000") for name in kept)
