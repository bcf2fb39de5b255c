"""The conditional GAN through the real CLI: an evaluator is trained first, then the GAN fits, tests (cycle metrics
and FID from the evaluator) and predicts media from a prompts file — for text → image and text → audio."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile
from PIL import Image

from multimodal_kit.cli import main
from tests.conftest import TINY_SHAPES, TINY_SPOKEN
from tests.helpers import TINY_GAN_ARGS, assert_wandb_logged

REPO = Path(__file__).resolve().parents[2]
QUIET = ["--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]
TINY_TRAINER = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
                "--trainer.log_every_n_steps", "1",
                "--trainer.enable_progress_bar", "false"]
PAIRS = {
    "image_caption": {
        "data": ["--data.init_args.embedded_options", json.dumps(TINY_SHAPES), "--data.init_args.image_size", "16"],
        "evaluator": ["--model.init_args.embed_dim", "16", "--model.init_args.hidden_dim", "16",
                      "--model.init_args.encoder", '{"class_path": "multimodal_kit.models.encoders.ConvImageEncoder", '
                      '"init_args": {"widths": [8, 16]}}'],
        "metric": "bleu4", "suffix": ".png", "prompts": "a small red circle\na large blue square above a small red circle\n",
    },
    "text_audio": {
        "data": ["--data.init_args.embedded_options", json.dumps({**TINY_SPOKEN, "single_word": True}),
                 "--data.init_args.n_mels", "16"],
        "evaluator": ["--model.init_args.embed_dim", "16", "--model.init_args.hidden_dim", "16",
                      "--model.init_args.encoder", '{"class_path": "multimodal_kit.models.audio_encoders.'
                      'ConvLSTMAudioEncoder", "init_args": {"n_mels": 16, "conv_channels": 4, "hidden_dim": 16}}'],
        "metric": "wer", "suffix": ".wav", "prompts": "seven\n\nyes\n",
    },
}
BATCHES = ["--data.init_args.batch_size", "8", "--data.init_args.eval_batch_size", "8"]


def train_evaluator(tmp_path: Path, pair: str) -> Path:
    run = tmp_path / "evaluator"
    main(["fit", "-c", str(REPO / "experiments" / f"seq2seq_{pair}.yaml"), "--run_dir", str(run),
          *PAIRS[pair]["evaluator"], *PAIRS[pair]["data"], *BATCHES, *TINY_TRAINER, "--trainer.logger", "false"])
    (best,) = (run / "checkpoints").glob("epoch*.ckpt")
    return best


@pytest.mark.parametrize("pair", list(PAIRS))
def test_gan_fit_test_predict(tmp_path: Path, pair: str) -> None:
    spec = PAIRS[pair]
    evaluator = train_evaluator(tmp_path, pair)
    run = tmp_path / "gan"
    main(["fit", "-c", str(REPO / "experiments" / f"gan_{pair}.yaml"), "--run_dir", str(run), *TINY_GAN_ARGS,
          *spec["data"], *BATCHES, *TINY_TRAINER, "--model.init_args.evaluator", str(evaluator)])
    (best,) = (run / "checkpoints").glob("epoch*.ckpt")  # picked by the evaluator's reading of generated media
    generated = run / "media" / "generated"
    assert (generated / "epoch_000.png").stat().st_size > 0
    if pair == "text_audio":
        clips = sorted((generated / "epoch_000").glob("*.wav"))
        assert clips and soundfile.info(str(clips[0])).samplerate == 16_000

    # W&B: losses, the cycle metric and the generated samples of fixed prompts are in the run log
    (offline,) = (run / "wandb").glob("offline-run-*")
    assert_wandb_logged(offline, *(b"train/d_loss", b"train/g_loss", b"train/d_real",  # D scores: logged on logging steps (every step here)
            f"val/cycle_{spec['metric']}".encode(), b"val/fid", b"val/generated"))

    results = tmp_path / "test.json"
    main(["test", "--ckpt_path", str(best), "--results_path", str(results), *QUIET])
    metrics = json.loads(results.read_text())
    metric = spec["metric"]
    assert {"test/fid", f"test/cycle_{metric}", f"test/real_cycle_{metric}", "test/cycle_exact_match"} <= set(metrics)
    assert metrics["test/fid"] >= 0
    assert ("test/mcd" if pair == "text_audio" else "test/read_exact_match") in metrics  # no judge needed for these

    prompts = tmp_path / "prompts.txt"
    prompts.write_text(spec["prompts"])
    out = tmp_path / "preds"
    main(["predict", "--ckpt_path", str(best), "--data.predict_path", str(prompts), "--output_dir", str(out), *QUIET])
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    expected = [line for line in spec["prompts"].splitlines() if line]
    assert [r["input"] for r in records] == expected  # blank lines skipped, order kept
    assert [r["id"] for r in records] == [f"prompt_{i:03d}" for i in range(len(expected))]
    for record in records:
        path = Path(record["file"])
        assert path.suffix == spec["suffix"] and path.stat().st_size > 0
        if pair == "image_caption":
            assert Image.open(path).size == (16, 16)
        else:
            assert 0 < soundfile.info(str(path)).duration <= 127 * 160 / 16_000 + 1e-6  # trailing silence cut


def test_without_an_evaluator_the_scores_are_skipped_with_a_notice(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    spec = PAIRS["image_caption"]
    run = tmp_path / "gan"
    main(["fit", "-c", str(REPO / "experiments" / "gan_image_caption.yaml"), "--run_dir", str(run), *TINY_GAN_ARGS,
          *spec["data"], *BATCHES, *TINY_TRAINER, "--trainer.logger", "false"])
    (last,) = (run / "checkpoints").glob("epoch*.ckpt")
    results = tmp_path / "test.json"
    main(["test", "--ckpt_path", str(last), "--results_path", str(results), *QUIET])
    assert "no evaluator checkpoint (--model.evaluator)" in caplog.text
    assert not any(k.startswith(("test/cycle", "test/fid")) for k in json.loads(results.read_text()))


def test_unknown_prompt_words_are_named(tmp_path: Path, capsys) -> None:
    spec = PAIRS["image_caption"]
    run = tmp_path / "gan"
    main(["fit", "-c", str(REPO / "experiments" / "gan_image_caption.yaml"), "--run_dir", str(run), *TINY_GAN_ARGS,
          *spec["data"], *BATCHES, *TINY_TRAINER, "--trainer.logger", "false"])
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a small red circle\na glorious unicorn\n")
    with pytest.raises(SystemExit) as exit_:
        main(["predict", "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--data.predict_path", str(prompts),
              *QUIET])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert "mmkit predict: error: " in error and "Traceback" not in error
    assert "line 2: holds words the model never saw in training: 'a glorious unicorn'" in error


def test_a_dual_encoder_judges_r_precision_of_generated_and_real_images(tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    judge = tmp_path / "judge"
    main(["fit", "-c", str(REPO / "experiments" / "contrastive_image_caption.yaml"), "--run_dir", str(judge),
          *PAIRS["image_caption"]["data"], *BATCHES, "--model.init_args.embed_dim", "16",
          "--model.init_args.text_embed_dim", "8", "--model.init_args.text_hidden_dim", "16",
          "--model.init_args.pool_heads", "2", "--model.init_args.encoder",
          '{"class_path": "multimodal_kit.models.encoders.ConvImageEncoder", "init_args": {"widths": [8, 16]}}',
          *TINY_TRAINER, "--trainer.logger", "false"])
    run = tmp_path / "gan"
    main(["fit", "-c", str(REPO / "experiments" / "gan_image_caption.yaml"), "--run_dir", str(run), *TINY_GAN_ARGS,
          *PAIRS["image_caption"]["data"], *BATCHES, *TINY_TRAINER, "--trainer.logger", "false"])
    (best,) = (run / "checkpoints").glob("epoch*.ckpt")
    results = tmp_path / "test.json"
    main(["test", "--ckpt_path", str(best), "--results_path", str(results), *QUIET,
          "--model.init_args.r_precision_judge", str(judge / "checkpoints" / "last.ckpt")])
    metrics = json.loads(results.read_text())
    assert {"test/r_precision", "test/real_r_precision"} <= set(metrics)
    assert "ranked among" in caplog.text  # 32 test scenes: fewer than 99 other captions, and it says so
