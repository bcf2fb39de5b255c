"""Image question answering through the real CLI on a tiny embedded question set: fit (sample table with the
question, attention maps), test (accuracy overall and per family), predict from a JSONL of image/question pairs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from multimodal_kit.cli import main
from multimodal_kit.data.embedded.shapes import ShapesConfig, sample_scene
from multimodal_kit.data.embedded.shapes_questions import FAMILIES

REPO = Path(__file__).resolve().parents[2]
TINY = ["--data.init_args.embedded_options", '{"num_train": 96, "num_validation": 32, "num_test": 32}',
        "--data.init_args.image_size", "16", "--data.init_args.batch_size", "16", "--data.init_args.eval_batch_size",
        "32", "--model.init_args.embed_dim", "8", "--model.init_args.hidden_dim", "16",
        "--model.init_args.attention_dim", "8", "--model.init_args.d_model", "16", "--model.init_args.num_heads", "2",
        "--model.init_args.num_layers", "1", "--model.init_args.ff_dim", "32", "--model.init_args.encoder",
        '{"class_path": "multimodal_kit.models.encoders.ConvImageEncoder", "init_args": {"widths": [8, 16]}}',
        "--trainer.max_epochs", "1", "--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]


@pytest.mark.parametrize(("experiment", "options"), [("attention", []),  # the transformer fusion
                                                     ("attention", ["--model.init_args.fusion", "attention"]),  # SAN
                                                     ("blind", [])], ids=["transformer", "san", "blind"])
def test_image_qa_fits_tests_and_predicts(tmp_path: Path, experiment: str, options: list[str]) -> None:
    from PIL import Image

    run = tmp_path / "run"
    main(["fit", "-c", str(REPO / "experiments" / f"{experiment}_image_qa.yaml"), "--run_dir", str(run), *TINY,
          *options])
    assert (run / "media" / "val_samples" / "epoch_000.png").is_file()
    assert (run / "media" / "attention" / "epoch_000.png").is_file() == (experiment == "attention")
    if experiment == "attention":  # four items, each row with three lines of its question under the image
        assert Image.open(run / "media" / "attention" / "epoch_000.png").height == 4 * (96 + 3 * 13 + 6)
    results = tmp_path / "test.json"
    main(["test", "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--results_path", str(results),
          "--trainer.logger", "false"])
    metrics = json.loads(results.read_text())
    assert {"test/accuracy", "test/loss", *(f"test/accuracy_{f}" for f in FAMILIES)} <= set(metrics)
    assert all(0 <= metrics[f"test/accuracy_{f}"] <= 1 for f in FAMILIES)

    pixels, _, _ = sample_scene(ShapesConfig(), "test", 0)
    Image.fromarray(pixels).save(tmp_path / "scene.png")
    records = tmp_path / "questions.jsonl"
    records.write_text(json.dumps({"file_name": "scene.png", "question": "how many objects are there?"}) + "\n"
                       + json.dumps({"file_name": "scene.png", "question": "what color is the circle?"}) + "\n")
    out = tmp_path / "predictions"
    main(["predict", "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--data.predict_path", str(records),
          "--output_dir", str(out), "--trainer.logger", "false"])
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["question"] for r in rows] == ["how many objects are there?", "what color is the circle?"]
    assert all(isinstance(r["answer"], str) and r["answer"] for r in rows)


def test_predict_records_name_the_bad_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    main(["fit", "-c", str(REPO / "experiments" / "blind_image_qa.yaml"), "--run_dir", str(run), *TINY])
    records = tmp_path / "questions.jsonl"
    records.write_text(json.dumps({"file_name": "scene.png"}) + "\n")
    with pytest.raises(SystemExit):
        main(["predict", "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--data.predict_path", str(records),
              "--output_dir", str(tmp_path / "out"), "--trainer.logger", "false"])
    error = capsys.readouterr().err
    assert "line 1" in error and "'question'" in error
    # a blank question, and one in words the model never saw, are named like training rows, not answered
    from PIL import Image

    Image.new("RGB", (64, 64), (120, 120, 120)).save(tmp_path / "scene.png")
    records.write_text(json.dumps({"file_name": "scene.png", "question": "   "}) + "\n\n"  # a blank line between
                       + json.dumps({"file_name": "scene.png", "question": "qu'est-ce que c'est"}) + "\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--data.predict_path", str(records),
              "--output_dir", str(tmp_path / "out"), "--trainer.logger", "false"])
    error = capsys.readouterr().err
    # each named by its own line of the file (both records show the same image)
    assert exit_info.value.code == 2 and "line 1 (scene.png): 'question' is empty" in error
    assert "line 3 (scene.png): 'question' holds words the model never saw in training: \"qu'est-ce que c'est\"" \
        in error
