"""A text method under DDP (ddp_spawn, two CPU processes): its media callbacks run on rank 0 only and must not
make collective calls there (``trainer.log_dir`` broadcasts; asking it on one rank deadlocked both)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from multimodal_kit.cli import main
from tests.conftest import TINY_SHAPES
from tests.helpers import DDP_SPAWN_CPU

REPO = Path(__file__).resolve().parents[2]


def test_attention_captioner_trains_under_ddp_spawn_with_media_callbacks(tmp_path: Path) -> None:
    run = tmp_path / "run"
    main(["fit", "-c", str(REPO / "experiments" / "attention_image_caption.yaml"), "--run_dir", str(run),
          "--model.init_args.embed_dim", "16", "--model.init_args.hidden_dim", "16",
          "--model.init_args.attention_dim", "16",
          "--model.init_args.encoder", '{"class_path": "multimodal_kit.models.encoders.ConvImageEncoder", '
          '"init_args": {"widths": [8, 16]}}',
          "--data.init_args.embedded_options", json.dumps(TINY_SHAPES), "--data.init_args.batch_size", "8",
          "--data.init_args.eval_batch_size", "8",
          *DDP_SPAWN_CPU,
          "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
          "--trainer.logger", "false", "--trainer.enable_progress_bar", "false"])
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert state["global_step"] == 2
    assert (run / "media" / "val_samples" / "epoch_000.png").is_file()
    assert (run / "media" / "attention" / "epoch_000.png").is_file()
