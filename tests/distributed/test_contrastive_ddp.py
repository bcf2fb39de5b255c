"""The contrastive dual encoder under DDP (``ddp_spawn``, two CPU processes, gloo): in-batch negatives gathered
from both processes (batches of unequal size at the epoch's end), Recall@K over the whole test split the same on
two processes as on one (33 items: shards of 17 and 16), and predict's embeddings from both processes in input
order."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.distributed.test_ddp import QUIET, SHAPES, fit, test_metrics
from tests.helpers import DDP_SPAWN_CPU, write_imagefolder

pytestmark = pytest.mark.slow  # two processes per test: `make test-all` and CI run these

SMALL = ["--model.init_args.embed_dim", "16", "--model.init_args.text_embed_dim", "8",
         "--model.init_args.text_hidden_dim", "16", "--model.init_args.pool_heads", "2", "--model.init_args.encoder",
         '{"class_path": "multimodal_kit.models.encoders.ConvImageEncoder", "init_args": {"widths": [8, 16]}}',
         "--data.init_args.image_size", "16", "--data.init_args.num_workers", "0"]


def test_contrastive_fits_and_scores_the_whole_split_the_same_on_two_processes(tmp_path: Path) -> None:
    from multimodal_kit.cli import main

    # batches of 8 on each of two processes (3 of them, limit_train_batches): every loss over both, 16 pairs
    state = fit(tmp_path, "contrastive_image_caption", *SMALL, *SHAPES, *QUIET, "--data.init_args.train_text",
                "first")
    assert state["global_step"] == 3
    one, two = test_metrics(tmp_path), test_metrics(tmp_path, *DDP_SPAWN_CPU)
    assert set(one) == set(two) and {"test/t2m_r1", "test/m2t_r10", "test/zero_shot_accuracy"} <= set(one)
    for name, value in one.items():
        assert abs(value - two[name]) < 1e-6, name

    images = write_imagefolder(tmp_path / "images", {"test": 5}) / "test"
    out = tmp_path / "predictions"
    main(["predict", "--ckpt_path", str(tmp_path / "checkpoints" / "last.ckpt"), "--data.init_args.predict_path",
          str(images), "--output_dir", str(out), "--data.init_args.eval_batch_size", "2", *QUIET, *DDP_SPAWN_CPU])
    rows = [json.loads(line) for line in (out / "embeddings.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == sorted(p.name for p in images.glob("*.png"))
    assert np.load(out / "embeddings.npy").shape == (5, 16)
