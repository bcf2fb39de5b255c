"""CrossModalAttention through the real CLI: fit → test → predict with attention maps, and swaps in YAML."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from multimodal_kit.cli import main
from tests.conftest import TINY_SHAPES
from tests.helpers import write_imagefolder

REPO = Path(__file__).resolve().parents[2]
EXPERIMENT = str(REPO / "experiments" / "attention_image_caption.yaml")
TINY_MODEL = ["--model.init_args.embed_dim", "32", "--model.init_args.hidden_dim", "32",
              "--model.init_args.attention_dim", "32", "--model.init_args.d_model", "32",
              "--model.init_args.ff_dim", "64", "--model.init_args.encoder",
              '{"class_path": "multimodal_kit.models.encoders.ConvImageEncoder", "init_args": {"widths": [8, 16, 16]}}']
TINY_RUN = ["--data.init_args.embedded_options", json.dumps(TINY_SHAPES), "--data.init_args.batch_size", "16",
            "--data.init_args.eval_batch_size", "16", "--trainer.max_epochs", "1",
            "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1", "--trainer.logger", "false",
            "--trainer.enable_progress_bar", "false"]
TINY = TINY_MODEL + TINY_RUN


@pytest.mark.parametrize("kind", ["additive", "multihead"])
def test_fit_test_predict_with_attention_maps(tmp_path: Path, kind: str) -> None:
    run = tmp_path / "run"
    main(["fit", "-c", EXPERIMENT, "--model.init_args.attention", kind, "--run_dir", str(run), *TINY])
    (attention_png,) = (run / "media" / "attention").glob("epoch_000.png")
    assert attention_png.stat().st_size > 0
    (best,) = (run / "checkpoints").glob("epoch*.ckpt")

    results = tmp_path / "test.json"
    main(["test", "--ckpt_path", str(best), "--results_path", str(results), "--trainer.logger", "false",
          "--trainer.enable_progress_bar", "false"])
    assert {"test/bleu4", "test/cider", "test/exact_match"} <= set(json.loads(results.read_text()))

    images = write_imagefolder(tmp_path / "imgs", {"train": 2})
    out = tmp_path / "preds"
    main(["predict", "--ckpt_path", str(best), "--data.predict_path", str(images / "train"), "--output_dir",
          str(out), "--attention_maps", "true", "--trainer.logger", "false", "--trainer.enable_progress_bar",
          "false"])
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(records) == 2
    for record in records:
        assert set(record) - {"truncated"} == {"id", "input", "text", "attention_map"}  # no tensors leak into the JSON
        assert Path(record["attention_map"]).is_file()


def test_attention_module_and_encoder_swapped_in_yaml(tmp_path: Path) -> None:
    config = tmp_path / "mine.yaml"
    config.write_text(
        "model:\n"
        "  class_path: CrossModalAttention\n"
        "  init_args:\n"
        "    attention:\n"
        "      class_path: tests.helpers.UniformAttention\n"
        "      init_args: {temperature: 2.0}\n"
        "    encoder:\n"
        "      class_path: multimodal_kit.models.encoders.ConvImageEncoder\n"
        "      init_args: {widths: [8, 12]}\n"
    )
    run = tmp_path / "run"
    main(["fit", "-c", EXPERIMENT, "-c", str(config), "--run_dir", str(run), *TINY_RUN])
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    attention = ckpt["hyper_parameters"]["attention"]
    assert attention["class_path"] == "tests.helpers.UniformAttention"
    assert ckpt["state_dict"]["encoder.net.0.0.weight"].shape[0] == 8

    from multimodal_kit.methods import CrossModalAttention
    from tests.helpers import UniformAttention

    model = CrossModalAttention.load_from_checkpoint(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert isinstance(model.decoder.attention, UniformAttention) and model.decoder.attention.temperature == 2.0
