"""Determinism: with the experiment's seed and ``--trainer.deterministic true``, two runs of the same config end
with identical weights and identical validation metrics (CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from multimodal_kit.cli import main
from tests.conftest import TINY_SPOKEN

REPO = Path(__file__).resolve().parents[2]


def fit(run: Path) -> dict:
    """A tiny attention recognizer on speech: shuffling, length-grouped batches, SpecAugment and dropout all draw
    random numbers."""
    main(["fit", "-c", str(REPO / "experiments" / "attention_text_audio.yaml"), "--run_dir", str(run),
          "--model.init_args.embed_dim", "16", "--model.init_args.hidden_dim", "16",
          "--model.init_args.attention_dim", "16", "--model.init_args.encoder",
          '{"class_path": "multimodal_kit.models.audio_encoders.ConvLSTMAudioEncoder", '
          '"init_args": {"conv_channels": 4, "hidden_dim": 16}}',
          "--data.init_args.embedded_options", json.dumps(TINY_SPOKEN), "--data.init_args.batch_size", "8",
          "--data.init_args.eval_batch_size", "8", "--trainer.deterministic", "true", "--trainer.max_epochs", "1", "--trainer.logger", "false", "--trainer.enable_progress_bar", "false"])
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
