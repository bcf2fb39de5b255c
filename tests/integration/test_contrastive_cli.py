"""The contrastive dual encoder through the real CLI on tiny data: fit, test (Recall@K both ways over the whole
split, zero-shot accuracy), predict (embeddings and an index answering text queries), pretrained CLIP towers by
path, and the loss falling when it overfits one batch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from multimodal_kit.cli import main
from multimodal_kit.data.embedded.shapes import ShapesConfig, sample_scene
from tests.helpers import save_clip

REPO = Path(__file__).resolve().parents[2]
EXPERIMENT = str(REPO / "experiments" / "contrastive_image_caption.yaml")
QUIET = ["--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]
TINY = ["--data.init_args.embedded_options", '{"num_train": 96, "num_validation": 32, "num_test": 40}',
        "--data.init_args.image_size", "16", "--data.init_args.batch_size", "32", "--data.init_args.eval_batch_size",
        "16", "--model.init_args.embed_dim", "16", "--model.init_args.text_embed_dim", "8",
        "--model.init_args.text_hidden_dim", "16", "--model.init_args.pool_heads", "2", "--model.init_args.encoder",
        '{"class_path": "multimodal_kit.models.encoders.ConvImageEncoder", "init_args": {"widths": [8, 16]}}',
        "--trainer.max_epochs", "1", *QUIET]
RECALLS = [f"test/{d}_r{k}" for d in ("t2m", "m2t") for k in (1, 5, 10)]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("contrastive") / "run"
    main(["fit", "-c", EXPERIMENT, "--run_dir", str(run), *TINY])
    return run


def test_it_tests_over_the_whole_split(run: Path, tmp_path: Path) -> None:
    results = tmp_path / "test.json"
    main(["test", "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--results_path", str(results), *QUIET])
    metrics = json.loads(results.read_text())
    assert set(RECALLS) | {"test/t2m_r1_same_text", "test/zero_shot_accuracy"} <= set(metrics)
    assert "test/loss" not in metrics  # a batch's loss depends on the batching; the split's recall does not
    for direction in ("t2m", "m2t"):
        assert metrics[f"test/{direction}_r1"] <= metrics[f"test/{direction}_r5"] <= metrics[f"test/{direction}_r10"]
    assert metrics["test/t2m_r1"] <= metrics["test/t2m_r1_same_text"]


def write_scenes(folder: Path, count: int) -> list[str]:
    from PIL import Image

    folder.mkdir()
    for i in range(count):
        Image.fromarray(sample_scene(ShapesConfig(), "test", i)[0]).save(folder / f"scene{i}.png")
    return [f"scene{i}.png" for i in range(count)]


def test_predict_writes_embeddings_and_answers_text_queries(run: Path, tmp_path: Path) -> None:
    names = write_scenes(tmp_path / "index", 5)
    queries = tmp_path / "queries.txt"
    queries.write_text("a large red circle\n\na small blue square left of a large green triangle\n")
    out = tmp_path / "out"
    main(["predict", "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--data.predict_path",
          str(tmp_path / "index"), "--model.init_args.queries", str(queries), "--model.init_args.top_k", "3",
          "--output_dir", str(out), *QUIET])
    embeddings = np.load(out / "embeddings.npy")
    assert embeddings.shape == (5, 16) and np.allclose(np.linalg.norm(embeddings, axis=1), 1, atol=1e-5)
    rows = [json.loads(line) for line in (out / "embeddings.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == names and [r["row"] for r in rows] == list(range(5))
    answers = [json.loads(line) for line in (out / "retrieval.jsonl").read_text().splitlines()]
    assert [a["query"] for a in answers] == ["a large red circle", "a small blue square left of a large green triangle"]
    for answer in answers:
        scores = [r["score"] for r in answer["results"]]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True) and all(-1 <= s <= 1 for s in scores)
        assert len({r["id"] for r in answer["results"]} & set(names)) == 3


def test_a_query_with_unknown_words_is_named_and_exits_2(run: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    write_scenes(tmp_path / "index", 2)
    queries = tmp_path / "queries.txt"
    queries.write_text("a red circle\na purple elephant\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--data.predict_path",
              str(tmp_path / "index"), "--model.init_args.queries", str(queries), "--output_dir",
              str(tmp_path / "out"), *QUIET])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "line 2" in err and "elephant" in err and "Traceback" not in err


def test_pretrained_clip_towers_by_path(run: Path, tmp_path: Path) -> None:
    """CLIP's vision and text towers named in the same experiment file, the data tokenized by a tokenizer the
    text tower knows (here the run's own, saved in its directory: 50 ids in the tiny CLIP)."""
    clip = str(save_clip(tmp_path / "clip"))
    main(["fit", "-c", EXPERIMENT, "--run_dir", str(tmp_path / "clip_run"), *TINY, "--trainer.fast_dev_run", "2",
          "--data.init_args.image_size", "32", "--data.init_args.tokenizer", str(run / "tokenizer"),
          "--model.init_args.encoder", json.dumps({"class_path": "multimodal_kit.models.pretrained."
                                                                 "PretrainedImageEncoder",
                                                   "init_args": {"name_or_path": clip, "output": "pooled"}}),
          "--model.init_args.text_encoder", json.dumps({"class_path": "multimodal_kit.tasks.contrastive.towers."
                                                                      "PretrainedTextEncoder",
                                                        "init_args": {"name_or_path": clip}})])


def test_the_loss_falls_when_overfitting_a_batch(kit_cache: Path) -> None:
    from multimodal_kit.data.image_caption import ImageCaptionDataModule
    from multimodal_kit.models.encoders import ConvImageEncoder
    from multimodal_kit.tasks.contrastive import ContrastiveDualEncoder

    torch.manual_seed(0)
    dm = ImageCaptionDataModule(embedded_options={"num_train": 32, "num_validation": 8, "num_test": 8},
                                image_size=16, batch_size=16)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    model = ContrastiveDualEncoder(vocab_size=dm.vocab_size, pad_id=dm.pad_id, image_size=16, embed_dim=16,
                                   encoder=ConvImageEncoder(widths=[8, 16]), text_hidden_dim=16, pool_heads=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = model.contrastive_loss(*model(batch), batch["text"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert losses[-1] < 0.3 * losses[0]


def test_zero_shot_prompts_with_unknown_words_are_refused_before_any_step(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "-c", EXPERIMENT, "--run_dir", str(tmp_path / "run"), *TINY,
              "--model.init_args.zero_shot_template", "a photo of a {}"])
    assert exit_info.value.code == 2
    assert "a photo of a red circle" in capsys.readouterr().err
