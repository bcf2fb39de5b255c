"""The GAN under DDP: two CPU processes (gloo), spawned. Two optimizers stepping in turn leave each network without
gradients in the other's backward pass — the classic "Expected to have finished reduction in the prior iteration"
failure of DDP, which ConditionalGAN avoids by enabling DDP's unused-parameter search itself."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from multimodal_kit.cli import main
from tests.conftest import TINY_SHAPES
from tests.helpers import DDP_SPAWN_CPU, TINY_GAN_ARGS

REPO = Path(__file__).resolve().parents[2]


def test_gan_trains_under_ddp_spawn_on_two_cpu_processes(tmp_path: Path) -> None:
    run = tmp_path / "run"
    main(["fit", "-c", str(REPO / "experiments" / "gan_image_caption.yaml"), "--run_dir", str(run),
          *TINY_GAN_ARGS,
          "--data.init_args.embedded_options", json.dumps(TINY_SHAPES), "--data.init_args.image_size", "16",
          "--data.init_args.batch_size", "8", "--data.init_args.eval_batch_size", "8",
          *DDP_SPAWN_CPU,
          "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1",
          "--trainer.logger", "false", "--trainer.enable_progress_bar", "false"])
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    # 2 epochs × 3 batches × (one D step + one G step), all taken in both processes
    assert state["global_step"] == 12
    assert (run / "media" / "generated" / "epoch_001.png").is_file()
