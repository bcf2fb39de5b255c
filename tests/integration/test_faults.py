"""Faults lose nothing and say so: damaged checkpoint files are errors naming the file (exit 2, no traceback),
``--ckpt_path last|best`` resolve for test, validate and predict as at fit (never random weights), ``fit
--ckpt_path last`` skips a damaged newest file for the previous good one, plain config mistakes are refused before
any data is read naming the flag or file, ``predict`` opens no W&B run, a failed or interrupted checkpoint write
keeps every earlier checkpoint, and a lost DDP rank ends the job naming it."""

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


def test_ckpt_path_last_and_best_find_the_newest_run_for_validate_and_predict(
        run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
        caplog: pytest.LogCaptureFixture) -> None:
    """Without --run_dir, the experiment's newest run under runs/ (as fit --ckpt_path last finds it); none there
    is an error naming the experiment, never an evaluation of untrained weights."""
    from tests.conftest import TINY_SHAPES
    from tests.helpers import write_imagefolder
    from tests.integration.test_cli import EXPERIMENT, TINY_MODEL

    monkeypatch.chdir(tmp_path)
    given = ["-c", EXPERIMENT, *TINY_MODEL, "--data.init_args.embedded_options", json.dumps(TINY_SHAPES), *QUIET]
    err = exits_2(["validate", *given, "--ckpt_path", "last"], capsys)
    assert "no run of Seq2Seq-ImageCaption under runs/ holds a checkpoint" in err and "Traceback" not in err
    found = tmp_path / "runs" / "Seq2Seq-ImageCaption-20260101-000000"
    shutil.copytree(run, found)
    main(["validate", *given, "--ckpt_path", "last"])
    assert f"--ckpt_path last: {found / 'checkpoints' / 'last.ckpt'}" in caplog.text
    images = write_imagefolder(tmp_path / "imgs", {"train": 2})
    main(["predict", *given, "--ckpt_path", "best", "--data.predict_path", str(images / "train"), "--output_dir",
          str(tmp_path / "out")])
    assert f"--ckpt_path best: {next((found / 'checkpoints').glob('epoch*.ckpt'))}" in caplog.text
    assert len((tmp_path / "out" / "predictions.jsonl").read_text().splitlines()) == 2


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


@pytest.mark.parametrize(("given", "said"), [
    (["--data.init_args.batch_size", "0"], "--data.init_args.batch_size 0: a batch holds at least 1 pair"),
    (["--trainer.max_epochs", "-5"], "--trainer.max_epochs -5: give a count of at least 0, or -1 for no limit"),
    (["--data.batch_size", "0"], "--data.batch_size 0: a batch holds"),  # the short form, not the experiment file
    ("data:\n  init_args:\n    eval_batch_size: 0\n", "{file}: data.init_args.eval_batch_size 0: a batch holds at "
                                                      "least 1 pair"),
    ("trainer:\n  max_steps: -3\n", "{file}: trainer.max_steps -3: give a count of at least 0, or -1"),
])
def test_plain_config_mistakes_are_refused_before_any_data_is_read(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                   given: list[str] | str, said: str) -> None:
    """A count no run can have is refused before anything is built, naming the flag or the config file that
    gave it."""
    from tests.integration.test_cli import EXPERIMENT

    mistakes = tmp_path / "mistakes.yaml"
    if isinstance(given, str):
        mistakes.write_text(given)
        given = ["-c", str(mistakes)]
    err = exits_2(["fit", "-c", EXPERIMENT, "--run_dir", str(tmp_path / "run"), *given, *QUIET], capsys)
    assert said.format(file=mistakes) in err and not (tmp_path / "run").exists()


def test_predict_opens_no_wandb_run(run: Path, tmp_path: Path) -> None:
    from tests.helpers import write_imagefolder

    before = sorted((run / "wandb").glob("offline-run-*")) if (run / "wandb").is_dir() else []
    images = write_imagefolder(tmp_path / "imgs", {"train": 2})
    main(["predict", "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--data.predict_path",
          str(images / "train"), "--output_dir", str(tmp_path / "out"), "--trainer.enable_progress_bar", "false"])
    after = sorted((run / "wandb").glob("offline-run-*")) if (run / "wandb").is_dir() else []
    assert (tmp_path / "out" / "predictions.jsonl").is_file() and after == before


@pytest.mark.parametrize(("fault", "good", "said"), [
    ("silent", 2, "not on disk after the save"),  # Lightning's atomic save passes over a PermissionError
    ("disk_full", 2, "No space left on device"),
    ("half", 2, "it does not read back"),  # a write cut short that no one reported
    ("silent", 0, "not on disk after the save"),  # an unwritable folder from the first save on
])
def test_a_failed_checkpoint_write_ends_the_fit_naming_the_file_and_keeps_the_earlier_ones(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, fault: str, good: int,
        said: str) -> None:
    """The first ``good`` checkpoint writes (epoch 0's best and last.ckpt) succeed; the next one fails: nothing
    written and nothing said, a full disk (ENOSPC), or half the file written. The fit ends with exit 2 naming the
    file and the cause, and every earlier checkpoint stays whole."""
    import errno

    from lightning.fabric.plugins.io import torch_io

    from multimodal_kit.checkpoints import load_checkpoint
    from tests.integration.test_cli import EXPERIMENT, TINY_MODEL

    real_save, calls = torch_io._atomic_save, []

    def flaky_save(checkpoint: dict, path: str) -> None:
        calls.append(path)
        if len(calls) <= good:
            return real_save(checkpoint, path)
        if fault == "disk_full":
            raise OSError(errno.ENOSPC, "No space left on device")
        if fault == "half":
            real_save(checkpoint, path)
            Path(path).write_bytes(Path(path).read_bytes()[: Path(path).stat().st_size // 2])
        return None  # silent: written nowhere, said nowhere

    monkeypatch.setattr(torch_io, "_atomic_save", flaky_save)
    run = tmp_path / "run"
    from tests.conftest import TINY_SHAPES

    err = exits_2(["fit", "-c", EXPERIMENT, "--run_dir", str(run), *TINY_MODEL, "--data.init_args.embedded_options",
                   json.dumps(TINY_SHAPES), "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "2",
                   "--trainer.limit_val_batches", "1", *QUIET], capsys)
    assert f"could not write the checkpoint {calls[good]}" in err and said in err and "Traceback" not in err
    cut = Path(calls[good]).name if fault == "half" else None  # on disk, cut short, and named in the error
    kept = sorted(p.name for p in (run / "checkpoints").glob("*.ckpt") if p.name != cut)
    assert kept == [n for n in (["epoch000-step2.ckpt", "last.ckpt"] if good else []) if n != cut]
    assert all(load_checkpoint(run / "checkpoints" / name)["epoch"] == 0 for name in kept)


def test_a_checkpoint_of_another_method_than_the_config_is_refused_naming_both(run: Path, tmp_path: Path,
                                                                              capsys: pytest.CaptureFixture) -> None:
    attention = str(Path(__file__).resolve().parents[2] / "experiments" / "attention_image_caption.yaml")
    err = exits_2(["test", "-c", attention, "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), *QUIET], capsys)
    assert "is a checkpoint of Seq2Seq (model), but the config asks for CrossModalAttention" in err
    speech = str(Path(__file__).resolve().parents[2] / "experiments" / "seq2seq_text_audio.yaml")  # same method
    err = exits_2(["test", "-c", speech, "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), *QUIET], capsys)
    assert "is a checkpoint of ImageCaptionDataModule (data), but the config asks for TextAudioDataModule" in err


def test_a_crash_between_the_checkpoint_write_and_its_rename_keeps_the_earlier_ones_and_resumes(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The process is killed inside epoch 1's first checkpoint write, after the bytes are written and before the
    rename (a separate process: it dies). Epoch 0's checkpoints are whole and ``--ckpt_path last`` resumes."""
    import subprocess
    import sys

    from multimodal_kit.checkpoints import load_checkpoint
    from tests.conftest import TINY_SHAPES
    from tests.integration.test_cli import EXPERIMENT, REPO, TINY_MODEL

    faults = tmp_path / "faults.yaml"
    faults.write_text("trainer:\n  callbacks:\n    - class_path: tests.helpers.CrashBeforeRenameAfterSaves\n"
                      "      init_args: {saves: 2}\n")
    run = tmp_path / "run"
    common = ["--run_dir", str(run), *TINY_MODEL, "--data.init_args.embedded_options", json.dumps(TINY_SHAPES),
              "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1", *QUIET]
    crashed = subprocess.run([sys.executable, "-m", "multimodal_kit", "fit", "-c", EXPERIMENT, "-c", str(faults),
                              "--trainer.max_epochs", "2", *common], cwd=REPO, capture_output=True, text=True,
                             env={**os.environ, "WANDB_MODE": "offline", "TMPDIR": str(tmp_path)}, timeout=300)
    assert crashed.returncode == -9, crashed.stderr[-2000:]  # killed in the write, as injected
    kept = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert kept == ["epoch000-step2.ckpt", "last.ckpt"]  # no half-written file under a checkpoint's name
    assert load_checkpoint(run / "checkpoints" / "last.ckpt")["epoch"] == 0  # epoch 0's, whole
    main(["fit", "-c", EXPERIMENT, "--ckpt_path", "last", "--trainer.max_epochs", "2", *common])
    assert "Restoring states from the checkpoint path at" in caplog.text
    assert load_checkpoint(run / "checkpoints" / "last.ckpt")["epoch"] == 1  # the resumed fit's epoch 1


@pytest.mark.timeout(300)  # ends in about 30 s; a hang on a collective fails here
@pytest.mark.parametrize(("how", "said"), [("kill", "it ended with signal SIGKILL"),
                                           ("raise", "RuntimeError: injected fault on rank 1 after step 5")])
@pytest.mark.slow
def test_a_rank_lost_under_ddp_ends_the_job_naming_it_and_the_run_resumes(tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture,
                                                                            caplog: pytest.LogCaptureFixture,
                                                                            how: str, said: str) -> None:
    """ddp_spawn on 2 CPU processes: rank 1 is killed (SIGKILL) or raises in the second epoch. The job ends at
    once, not hanging on a collective, with exit 2 and a message naming the rank and why; epoch 0's checkpoints
    are intact and ``--ckpt_path last`` resumes from them."""
    from tests.conftest import TINY_SHAPES
    from tests.integration.test_cli import EXPERIMENT

    faults = tmp_path / "faults.yaml"
    faults.write_text("trainer:\n  callbacks:\n    - class_path: tests.helpers.FailRankAtStep\n"
                      f"      init_args: {{step: 5, rank: 1, how: {how}}}\n")
    run = tmp_path / "run"
    common = ["--run_dir", str(run), "--data.init_args.embedded_options", json.dumps(TINY_SHAPES),
              "--model.init_args.embed_dim", "16", "--model.init_args.hidden_dim", "16",
              "--data.init_args.batch_size", "16", *QUIET]
    err = exits_2(["fit", "-c", EXPERIMENT, "-c", str(faults), "--trainer.max_epochs", "3", "--trainer.accelerator",
                   "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp_spawn", *common], capsys)
    assert f"rank 1 of the DDP job failed ({said})" in err and "Traceback" not in err
    assert (run / "checkpoints" / "last.ckpt").is_file()  # epoch 0's (3 steps of 2 × 16 scenes)
    main(["fit", "-c", EXPERIMENT, "--ckpt_path", "last", "--trainer.max_epochs", "2", *common])
    assert "Restoring states from the checkpoint path at" in caplog.text


@pytest.mark.slow
@pytest.mark.timeout(300)  # ends in about 30 s; a hang on a collective fails here
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
