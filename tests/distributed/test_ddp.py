"""Every method under DDP (``ddp_spawn``, two CPU processes, gloo): it fits, and testing its checkpoint on two
processes gives the same metrics as on one.

The test splits have an odd number of items, so the two shards differ in size and even in batches (33 items in
batches of 4: 5 on one process, 4 on the other; 9 items: 2 and 1), which would hang any collective call inside an
evaluation step. Lightning's default ``DistributedSampler`` would repeat an item to even the shards out (counting
it twice), and Lightning's own ``sync_dist`` mean floors the integer item count of unequal shards
(Lightning-AI/pytorch-lightning#21859); the kit shards evaluation without repeats and reduces its losses with
torchmetrics.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from multimodal_kit.cli import main
from tests.helpers import DDP_SPAWN_CPU, TINY_GAN_ARGS

pytestmark = pytest.mark.slow  # two processes per test: `make test-all` and CI run these

REPO = Path(__file__).resolve().parents[2]
QUIET = ["--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]
TRAIN = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1",
         "--data.init_args.batch_size", "8", "--data.init_args.eval_batch_size", "4"]
SHAPES = ["--data.init_args.embedded_options",
          json.dumps({"num_train": 64, "num_validation": 16, "num_test": 33})]
SPOKEN = ["--data.init_args.embedded_options",
          json.dumps({"num_train": 48, "num_validation": 8, "num_test": 9})]
SMALL_TEXT = ["--model.init_args.embed_dim", "16", "--model.init_args.hidden_dim", "16"]
SMALL_IMAGE_ENCODER = ["--model.init_args.encoder", '{"class_path": "multimodal_kit.models.encoders.ConvImageEncoder",'
                       ' "init_args": {"widths": [8, 16]}}']
SMALL_AUDIO_ENCODER = ["--model.init_args.encoder", '{"class_path": "multimodal_kit.models.audio_encoders.'
                       'ConvLSTMAudioEncoder", "init_args": {"conv_channels": 4, "hidden_dim": 16}}']


def fit(run: Path, experiment: str, *args: str) -> dict[str, Any]:
    """``mmkit fit`` under ddp_spawn on two CPU processes; the last checkpoint's contents."""
    main(["fit", "-c", str(REPO / "experiments" / f"{experiment}.yaml"), "--run_dir", str(run), *TRAIN,
          *DDP_SPAWN_CPU, *args])
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


def test_metrics(run: Path, *args: str) -> dict[str, float]:
    """``mmkit test`` of the run's last checkpoint (with ``args``, e.g. DDP flags); the metrics it reports."""
    results = run / f"test{len(args)}.json"
    main(["test", "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--results_path", str(results),
          "--data.init_args.eval_batch_size", "4", *QUIET, *args])
    return json.loads(results.read_text())


test_metrics.__test__ = False  # a helper, not a test


def assert_same_metrics(run: Path) -> dict[str, float]:
    one = test_metrics(run)
    two = test_metrics(run, *DDP_SPAWN_CPU)
    assert set(one) == set(two) and len(one) >= 3
    for name in one:
        assert two[name] == pytest.approx(one[name], rel=1e-5, abs=1e-6), name
    return one


@pytest.fixture(scope="module")
def captioner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An attention captioner fitted under DDP with a W&B run (offline) and its media callbacks."""
    run = tmp_path_factory.mktemp("captioner")
    state = fit(run, "attention_image_caption", *SMALL_TEXT, "--model.init_args.d_model", "16",
                "--model.init_args.ff_dim", "32",
                *SMALL_IMAGE_ENCODER, *SHAPES, "--trainer.enable_progress_bar", "false")
    assert state["global_step"] == 3  # 3 batches of 8 per process: 48 of the 64 training items in all
    return run


def test_attention_fits_under_ddp_with_one_wandb_run_and_rank_zero_media(captioner: Path) -> None:
    assert len(list((captioner / "wandb").glob("offline-run-*"))) == 1  # one W&B run, not one per process
    # media callbacks run on rank 0 only, with no collective call there (trainer.log_dir deadlocked both ranks)
    assert (captioner / "media" / "val_samples" / "epoch_000.png").is_file()
    assert (captioner / "media" / "attention" / "epoch_000.png").is_file()


def test_attention_test_metrics_are_the_same_on_two_processes(captioner: Path) -> None:
    metrics = assert_same_metrics(captioner)
    assert {"test/bleu4", "test/cider", "test/exact_match", "test/loss"} <= set(metrics)


def test_seq2seq_on_speech_fits_and_tests_the_same_on_two_processes(tmp_path: Path) -> None:
    """With ``sort_by_length``, speech batches come from the length-grouped batch sampler, which Lightning rebuilds
    around its DistributedSampler: each process draws batches of its own half."""
    state = fit(tmp_path, "seq2seq_text_audio", *SMALL_TEXT, *SMALL_AUDIO_ENCODER, *SPOKEN, *QUIET,
                "--data.init_args.sort_by_length", "true", "--trainer.limit_train_batches", "1.0")
    assert state["global_step"] == 3  # a whole epoch of 48 items: 24 per process, 3 batches of 8 (not 6)
    metrics = assert_same_metrics(tmp_path)
    assert {"test/wer", "test/cer", "test/loss"} <= set(metrics)


def test_gan_fits_and_tests_the_same_on_two_processes(tmp_path: Path, captioner: Path) -> None:
    """Two optimizers stepping in turn leave each network without gradients in the other's backward pass (DDP's
    "Expected to have finished reduction" failure, avoided by the strategy that finds unused parameters, as
    presets/ddp_gan.yaml sets); evaluation noise is fixed per item, so the generated test media do not depend on the
    process that draws them."""
    state = fit(tmp_path, "gan_image_caption", *TINY_GAN_ARGS, *SHAPES, "--data.init_args.image_size", "16",
                "--model.init_args.evaluator", str(captioner / "checkpoints" / "last.ckpt"), *QUIET,
                "--trainer.strategy", "ddp_spawn_find_unused_parameters_true")
    assert state["global_step"] == 6  # 3 batches × (one D step + one G step), taken in both processes
    assert (tmp_path / "media" / "generated" / "epoch_000.png").is_file()
    metrics = assert_same_metrics(tmp_path)
    assert {"test/cycle_bleu4", "test/real_cycle_bleu4", "test/fid"} <= set(metrics)


def test_predict_on_two_processes_writes_predictions_in_input_order(tmp_path: Path, captioner: Path) -> None:
    from tests.helpers import write_imagefolder

    images = write_imagefolder(tmp_path / "images", {"test": 5}) / "test"
    out = tmp_path / "predictions"
    main(["predict", "--ckpt_path", str(captioner / "checkpoints" / "last.ckpt"), "--data.init_args.predict_path",
          str(images), "--output_dir", str(out), "--data.init_args.eval_batch_size", "2", *QUIET, *DDP_SPAWN_CPU])
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == sorted(p.name for p in images.glob("*.png"))  # rank parts joined in order
    assert all(set(r) == {"id", "input", "text"} for r in records)
    assert not list(out.glob("predictions.rank*.jsonl"))
