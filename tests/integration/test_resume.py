"""Interruption and resume: SIGTERM (or Ctrl-C) mid-epoch writes a checkpoint; ``--ckpt_path last`` resumes the
same run directory and W&B run and ends with exactly the weights of the uninterrupted run."""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from multimodal_kit.cli import main
from tests.conftest import TINY_SHAPES
from tests.helpers import TINY_RECOGNIZER

REPO = Path(__file__).resolve().parents[2]
SPEECH = [*TINY_RECOGNIZER, "--trainer.max_epochs", "2"]


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def logged_rows(run: Path) -> list[dict[str, str]]:
    """``metrics.csv``'s rows, values rounded (a resumed fit redoes the same steps, the same way)."""
    with (run / "metrics.csv").open(newline="") as file:
        return [{k: f"{float(v):.5f}" for k, v in row.items() if v} for row in csv.DictReader(file)]


def mmkit(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "offline"}
    return subprocess.run([sys.executable, "-m", "multimodal_kit", "fit", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_sigterm_mid_epoch_then_resume_gives_the_uninterrupted_weights(tmp_path: Path, monkeypatch, caplog) -> None:
    main(["fit", *SPEECH, "--run_dir", str(tmp_path / "whole"), "--trainer.logger", "false"])
    whole = weights(tmp_path / "whole" / "checkpoints" / "last.ckpt")

    # a job killed after step 5 of the 8 of epoch 0, started without --run_dir, with W&B (offline)
    killed = mmkit(tmp_path, *SPEECH, "--trainer.callbacks+",
                   '{"class_path": "tests.helpers.SignalAtStep", "init_args": {"step": 5}}')
    assert killed.returncode == 128 + signal.SIGTERM, killed.stderr[-3000:]
    [run] = (tmp_path / "runs").iterdir()
    interrupted = run / "checkpoints" / "interrupted.ckpt"
    assert "Stopped by SIGTERM at epoch 0, step 5" in killed.stderr and interrupted.is_file()
    state = torch.load(interrupted, map_location="cpu", weights_only=True)
    assert (state["epoch"], state["global_step"]) == (0, 5)
    run_id = (run / "wandb_run_id").read_text().strip()

    monkeypatch.chdir(tmp_path)  # runs/ is found relative to the working directory, as for the killed job
    with caplog.at_level(logging.INFO):
        main(["fit", *SPEECH, "--ckpt_path", "last"])
    assert [run] == list((tmp_path / "runs").iterdir())  # the same run directory
    assert f"--ckpt_path last: resuming the latest CrossModalAttention-TextAudio run, {run}" in caplog.text
    assert f"W&B: resuming run {run_id} of {run}" in caplog.text
    assert len(list((run / "wandb").glob(f"offline-run-*-{run_id}"))) == 2  # two sessions of one W&B run
    assert not interrupted.exists()  # a normal end removes the stale interrupted checkpoint
    final = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert (final["epoch"], final["global_step"]) == (1, 16)
    assert_same_weights(final["state_dict"], whole)
    assert logged_rows(run) == logged_rows(tmp_path / "whole")  # the curves continue, without the redone steps


@pytest.mark.parametrize("experiment", ["seq2seq_image_caption", "gan_image_caption"])
def test_resume_from_an_epoch_end_gives_the_uninterrupted_weights(tmp_path: Path, experiment: str) -> None:
    """Captions draw a random reference per item and epoch; the GAN draws noise and steps two optimizers."""
    tiny = {"seq2seq_image_caption": ["--model.init_args.embed_dim", "16", "--model.init_args.hidden_dim", "16",
                                      "--model.init_args.encoder",
                                      '{"class_path": "multimodal_kit.models.encoders.ConvImageEncoder", '
                                      '"init_args": {"widths": [8, 16]}}'],
            "gan_image_caption": ["--model.init_args.noise_dim", "8", "--model.init_args.cond_dim", "16",
                                  "--model.init_args.generator_width", "4", "--model.init_args.discriminator_width",
                                  "4"]}[experiment]
    args = ["fit", "-c", str(REPO / "experiments" / f"{experiment}.yaml"), *tiny, "--data.init_args.embedded_options",
            json.dumps(TINY_SHAPES), "--data.init_args.batch_size", "16", "--data.init_args.eval_batch_size", "32",
            "--trainer.limit_val_batches", "1", "--trainer.deterministic", "true", "--trainer.logger", "false",
            "--trainer.enable_progress_bar", "false", "--trainer.log_every_n_steps", "1"]
    args += ["--model.init_args.lr_decay", "constant"]  # a 1-epoch run extended to 2 would stretch a cosine
    main([*args, "--run_dir", str(tmp_path / "whole"), "--trainer.max_epochs", "2"])
    main([*args, "--run_dir", str(tmp_path / "parts"), "--trainer.max_epochs", "1"])
    main([*args, "--run_dir", str(tmp_path / "parts"), "--trainer.max_epochs", "2", "--ckpt_path", "last"])
    assert_same_weights(weights(tmp_path / "parts" / "checkpoints" / "last.ckpt"),
                        weights(tmp_path / "whole" / "checkpoints" / "last.ckpt"))
    assert logged_rows(tmp_path / "parts") == logged_rows(tmp_path / "whole")


def test_a_fit_without_ckpt_path_starts_anew_in_a_used_run_directory(tmp_path: Path, caplog, recwarn) -> None:
    """Only --ckpt_path resumes: a second fit into the same directory trains from scratch (and says so)."""
    run = tmp_path / "run"
    main(["fit", *SPEECH, "--run_dir", str(run), "--trainer.logger", "false"])
    with caplog.at_level(logging.INFO):
        main(["fit", *SPEECH, "--run_dir", str(run), "--trainer.logger", "false", "--trainer.max_epochs", "1"])
    assert f"{run} holds checkpoints of an earlier fit; this one starts anew" in caplog.text
    assert not [w for w in recwarn if "ckpt_path=" in str(w.message)]  # nor Lightning's warnings about ckpt_path
    final = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert (final["epoch"], final["global_step"]) == (0, 8)  # not the first fit's 16 steps
    assert {row["epoch"] for row in logged_rows(run)} == {"0.00000"}  # its curves start anew too


def test_ctrl_c_stops_at_the_step_boundary_with_a_checkpoint(tmp_path: Path, caplog) -> None:
    before = signal.getsignal(signal.SIGINT)  # the default handler, or SIG_IGN in a background job
    with caplog.at_level(logging.INFO), pytest.raises(SystemExit) as stopped:
        main(["fit", *SPEECH, "--run_dir", str(tmp_path / "run"), "--trainer.logger", "false", "--trainer.callbacks+",
              '{"class_path": "tests.helpers.SignalAtStep", "init_args": {"step": 3, "signum": 2}}'])
    assert stopped.value.code == 128 + signal.SIGINT
    assert "Interrupted: finishing this step" in caplog.text and "Stopped by SIGINT" in caplog.text
    state = torch.load(tmp_path / "run" / "checkpoints" / "interrupted.ckpt", map_location="cpu", weights_only=True)
    assert (state["epoch"], state["global_step"]) == (0, 3)
    assert signal.getsignal(signal.SIGINT) is before  # Ctrl-C is the user's again
