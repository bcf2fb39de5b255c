"""The presets stack on any experiment: bf16 mixed precision and the debug preset, for every method."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from multimodal_kit.cli import main
from tests.conftest import TINY_SHAPES
from tests.helpers import TINY_GAN_ARGS

REPO = Path(__file__).resolve().parents[2]
PRESETS = REPO / "experiments" / "presets"
TINY = {
    "seq2seq": ["--model.init_args.embed_dim", "16", "--model.init_args.hidden_dim", "16"],
    "attention": ["--model.init_args.embed_dim", "16", "--model.init_args.hidden_dim", "16",
                  "--model.init_args.attention_dim", "16"],
    "gan": TINY_GAN_ARGS,
}
ENCODER = ["--model.init_args.encoder", '{"class_path": "multimodal_kit.models.encoders.ConvImageEncoder", '
           '"init_args": {"widths": [8, 16]}}']


@pytest.mark.parametrize("method", list(TINY))
def test_bf16_mixed_fit_on_cpu_with_the_debug_preset(tmp_path: Path, method: str) -> None:
    run = tmp_path / "run"
    main(["fit", "-c", str(REPO / "experiments" / f"{method}_image_caption.yaml"), "-c", str(PRESETS / "bf16.yaml"),
          "-c", str(PRESETS / "debug.yaml"), "--run_dir", str(run), *TINY[method],
          *(ENCODER if method != "gan" else ["--data.init_args.image_size", "16"]),
          "--data.init_args.embedded_options", json.dumps(TINY_SHAPES), "--data.init_args.batch_size", "8",
          "--data.init_args.eval_batch_size", "8", "--trainer.enable_progress_bar", "false"])
    config = (run / "config.yaml").read_text()
    assert "precision: bf16-mixed" in config and "limit_train_batches: 10" in config
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert state["global_step"] == (20 if method == "gan" else 10)  # 10 batches; the GAN steps twice per batch
    weights = [v for v in state["state_dict"].values() if v.is_floating_point()]
    assert all(w.dtype == torch.float32 and torch.isfinite(w).all() for w in weights)  # fp32 master weights


def test_bf16_mixed_fit_on_cpu_for_speech(tmp_path: Path) -> None:
    """The BiLSTM audio encoder under bf16 autocast (its recurrence runs in fp32: oneDNN has no bf16 CPU LSTM)."""
    from tests.conftest import TINY_SPOKEN

    run = tmp_path / "run"
    main(["fit", "-c", str(REPO / "experiments" / "attention_text_audio.yaml"), "-c", str(PRESETS / "bf16.yaml"),
          "-c", str(PRESETS / "debug.yaml"), "--run_dir", str(run), *TINY["attention"],
          "--model.init_args.encoder", '{"class_path": "multimodal_kit.models.audio_encoders.ConvLSTMAudioEncoder", '
          '"init_args": {"conv_channels": 4, "hidden_dim": 16}}',
          "--data.init_args.embedded_options", json.dumps(TINY_SPOKEN), "--data.init_args.batch_size", "8",
          "--data.init_args.eval_batch_size", "8", "--trainer.enable_progress_bar", "false"])
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert state["global_step"] == 8  # 64 utterances / 8 per batch
