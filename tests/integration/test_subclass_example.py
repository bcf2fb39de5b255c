"""The subclassing guide's example (examples/caption_retrieval.py + .yaml) fits and tests through the CLI, by
import path, on tiny data."""

from __future__ import annotations

import json
from pathlib import Path

from multimodal_kit.cli import main
from tests.conftest import TINY_SHAPES

REPO = Path(__file__).resolve().parents[2]


def test_caption_retrieval_fits_and_tests_by_import_path(tmp_path: Path) -> None:
    run = tmp_path / "run"
    main(["fit", "-c", str(REPO / "examples" / "caption_retrieval.yaml"), "--run_dir", str(run),
          "--model.init_args.embed_dim", "16", "--model.init_args.hidden_dim", "16",
          "--model.init_args.attention_dim", "16", "--model.init_args.encoder",
          '{"class_path": "multimodal_kit.models.encoders.ConvImageEncoder", "init_args": {"widths": [8, 16]}}',
          "--data.init_args.embedded_options", json.dumps(TINY_SHAPES), "--data.init_args.eval_batch_size", "16",
          "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
          "--trainer.logger", "false", "--trainer.enable_progress_bar", "false"])
    [best] = (run / "checkpoints").glob("epoch*.ckpt")  # picked by val/recall@1
    results = tmp_path / "test.json"
    main(["test", "--ckpt_path", str(best), "--results_path", str(results), "--trainer.logger", "false",
          "--trainer.enable_progress_bar", "false", "--data.init_args.eval_batch_size", "8"])  # 4 test batches
    metrics = json.loads(results.read_text())
    assert {"test/recall@1", "test/recall@5", "test/bleu4"} <= set(metrics)
    assert 0 <= metrics["test/recall@1"] <= metrics["test/recall@5"] <= 1
    # each batch is its own gallery of 8 images: even an untrained model finds a caption's image among 5 of 8 about
    # 5/8 of the time (pooling the batches' queries into one, a bug this catches, gave about 5/32)
    assert metrics["test/recall@5"] > 0.4
