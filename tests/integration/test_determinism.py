"""Determinism: with the experiment's seed and ``--trainer.deterministic true``, two runs of the same config end
with identical weights and identical validation metrics (CPU). And ``last.ckpt`` is the latest epoch, to resume
from."""

from __future__ import annotations

from pathlib import Path

import torch

from multimodal_kit.cli import main
from tests.helpers import TINY_RECOGNIZER


def fit(run: Path, *args: str) -> dict:
    """A tiny attention recognizer on speech with shuffling, length-grouped batches, SpecAugment and dropout: all
    draw random numbers. The last checkpoint's contents."""
    main(["fit", *TINY_RECOGNIZER, "--run_dir", str(run), "--trainer.max_epochs", "1", "--trainer.logger", "false",
          *args])
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


def test_two_runs_of_one_config_give_identical_weights_and_metrics(tmp_path: Path) -> None:
    first, second = fit(tmp_path / "a"), fit(tmp_path / "b")
    assert first["global_step"] == second["global_step"] == 8  # 64 utterances, batches of 8
    assert first["state_dict"].keys() == second["state_dict"].keys()
    for name, value in first["state_dict"].items():
        assert torch.equal(value, second["state_dict"][name]), name

    def scores(state: dict) -> list:
        return [(c.get("best_model_score"), c.get("current_score")) for c in state["callbacks"].values()
                if "best_model_score" in c]

    assert scores(first) == scores(second) and scores(first)  # the validation WER the checkpoints were picked by


def test_last_checkpoint_is_the_latest_epoch_and_resumes(tmp_path: Path) -> None:
    """Lightning's ``save_last`` refreshes last.ckpt only when a new best is written; a tiny model's WER stays at
    1.0 (no improvement), which left last.ckpt at epoch 0."""
    run = tmp_path / "run"
    state = fit(run, "--trainer.max_epochs", "3", "--trainer.limit_train_batches", "2")
    assert (state["epoch"], state["global_step"]) == (2, 6)
    state = fit(run, "--trainer.max_epochs", "4", "--trainer.limit_train_batches", "2", "--ckpt_path", "last")
    assert (state["epoch"], state["global_step"]) == (3, 8)  # resumed at step 6, one more epoch of 2 steps
