"""Image–text matching: hard negatives in the caption's own words, the same per item on every run, and the three
fusions through the CLI on tiny data (fit, test per swapped attribute, predict records)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from multimodal_kit.cli import main
from multimodal_kit.data.embedded.shapes import read_caption
from multimodal_kit.errors import ConfigError
from multimodal_kit.tasks.matching import ImageTextMatching
from multimodal_kit.tasks.matching.negatives import hard_negative, item_rng, swaps

REPO = Path(__file__).resolve().parents[2]


def test_every_swap_changes_one_attribute_in_the_captions_own_words() -> None:
    text = "there is a big red circle left of a little blue square"
    found = swaps(text)
    assert ("big", "little") in {(text[s:e], w) for s, e, w in found["size"]}
    assert len(found["color"]) == 2 * 5 and len(found["shape"]) == 2 * 3
    (relation,) = found["relation"]
    assert text[:relation[0]] + relation[2] + text[relation[1]:] == \
        "there is a little blue square left of a big red circle"  # the objects trade places, "left of" stays
    truth = read_caption(text)
    for attribute, spans in found.items():
        for start, end, word in spans:
            negative = text[:start] + word + text[end:]
            assert negative.startswith("there is a ") and " left of " in negative  # the wording stays
            objects, relation_word = read_caption(negative)
            assert relation_word == truth[1]
            changed = [k for k, (a, b) in enumerate(zip(truth[0], objects, strict=True)) if a != b]
            assert len(changed) == (2 if attribute == "relation" else 1)


def test_no_swap_makes_the_two_objects_the_same() -> None:
    text = "a small red circle above a little red square"  # "little": the size synonym names the same size
    first_shape = {w for s, e, w in swaps(text)["shape"] if s < 20}
    assert "triangle" in first_shape and "square" not in first_shape  # a small red square twice
    first_size = {w for s, e, w in swaps(text)["size"] if s < 20}
    assert first_size == {"large"}


def test_a_one_object_caption_has_no_relation_to_swap_and_other_text_none() -> None:
    assert swaps("one small green diamond")["relation"] == []
    rng = np.random.default_rng(0)
    drawn = Counter(hard_negative("a small green diamond", rng).attribute for _ in range(300))
    assert set(drawn) == {"color", "shape", "size"} and min(drawn.values()) > 60
    assert hard_negative("a photo of a dog", rng) is None


def test_evaluation_negatives_are_fixed_by_the_item_id() -> None:
    text = "a large red circle above a small green square"
    first = [hard_negative(text, item_rng(f"test_{i}")) for i in range(20)]
    again = [hard_negative(text, item_rng(f"test_{i}")) for i in range(20)]
    assert first == again and len({n.text for n in first}) > 5


def test_training_may_swap_one_attribute_more_often_and_the_shares_follow_the_weights() -> None:
    text = "a large red circle above a small green square"
    rng = np.random.default_rng(0)
    drawn = Counter(hard_negative(text, rng, {"relation": 3, "size": 0}).attribute for _ in range(1200))
    assert drawn["size"] == 0 and set(drawn) == {"color", "shape", "relation"}
    assert 0.52 < drawn["relation"] / 1200 < 0.68  # 3 / (1 + 1 + 3) = 0.6
    one_object = Counter(hard_negative("a small green diamond", rng, {"relation": 3}).attribute for _ in range(300))
    assert set(one_object) == {"color", "shape", "size"}  # a weight for an attribute a caption lacks is no matter
    with pytest.raises(ConfigError, match="swap_weights: colour"):
        ImageTextMatching(vocab_size=10, swap_weights={"colour": 2})  # the names are the negatives' attributes


TINY = ["--data.init_args.embedded_options", '{"num_train": 96, "num_validation": 32, "num_test": 40}',
        "--data.init_args.image_size", "16", "--data.init_args.batch_size", "32", "--data.init_args.eval_batch_size",
        "20", "--model.init_args.d_model", "16", "--model.init_args.num_heads", "2", "--model.init_args.num_layers",
        "1", "--model.init_args.ff_dim", "32", "--model.init_args.encoder",
        '{"class_path": "multimodal_kit.models.encoders.ConvImageEncoder", "init_args": {"widths": [8, 16]}}',
        "--trainer.max_epochs", "1", "--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]


@pytest.mark.parametrize("fusion", ["cross_attention", "dual", "blind"])
def test_matching_fits_tests_and_predicts(tmp_path: Path, fusion: str) -> None:
    from PIL import Image

    from multimodal_kit.data.embedded.shapes import ShapesConfig, sample_scene

    run = tmp_path / "run"
    only_cross = [] if fusion == "cross_attention" else \
        ["--model.init_args.region_colours", "false", "--model.init_args.caption_weight", "0"]
    main(["fit", "-c", str(REPO / "experiments" / "matching_image_caption.yaml"), "--run_dir", str(run), *TINY,
          "--model.init_args.fusion", fusion, *only_cross])
    results = tmp_path / "test.json"
    main(["test", "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--results_path", str(results),
          "--trainer.logger", "false"])
    metrics = json.loads(results.read_text())
    assert {"test/accuracy", "test/accuracy_match", "test/accuracy_color", "test/accuracy_shape"} <= set(metrics)
    pixels, objects, relation = sample_scene(ShapesConfig(), "test", 0)
    Image.fromarray(pixels).save(tmp_path / "scene.png")
    records = tmp_path / "pairs.jsonl"
    records.write_text(json.dumps({"file_name": "scene.png", "caption": "a large red circle"}) + "\n")
    out = tmp_path / "predictions"
    main(["predict", "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--data.predict_path", str(records),
          "--output_dir", str(out), "--trainer.logger", "false"])
    (row,) = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert row["caption"] == "a large red circle" and 0 < row["match"] < 1


def tiny_model_and_batch(**options: object) -> tuple[ImageTextMatching, dict]:
    """A tiny cross-attention model on 16×16 images and a training batch of 8 embedded scenes."""
    import torch

    from multimodal_kit.data.image_caption import ImageCaptionDataModule
    from multimodal_kit.models.encoders import ConvImageEncoder

    dm = ImageCaptionDataModule(embedded_options={"num_train": 16, "num_validation": 8, "num_test": 8},
                                image_size=16, batch_size=8, text_column=None, captions_column=None,
                                text_fields={"caption": "text"})
    dm.setup("fit")
    torch.manual_seed(0)
    model = ImageTextMatching(vocab_size=dm.vocab_size, image_size=16, d_model=32, num_heads=2, num_layers=1,
                              ff_dim=32, encoder=ConvImageEncoder(widths=[8, 16]), **options)
    model.tokenizer = dm.tokenizer
    return model, next(iter(dm.train_dataloader()))


def test_paired_training_shows_every_image_with_its_caption_and_a_swapped_one(kit_cache: Path) -> None:
    model, batch = tiny_model_and_batch()
    tokens, lengths, labels = model.paired(batch)
    assert tokens.shape[0] == 16 and labels.tolist() == [1.0] * 8 + [0.0] * 8
    texts = model.tokenizer.batch_decode(tokens, skip_special_tokens=True)
    for true, swapped in zip(texts[:8], texts[8:], strict=True):
        assert true != swapped and len(true.split()) == len(swapped.split())  # one attribute, in the same words
    assert model.logits(batch, tokens, lengths).shape == (16,)


def test_the_captioning_loss_reads_the_true_pairs_and_falls_when_overfitting_a_batch(kit_cache: Path) -> None:
    import torch

    model, batch = tiny_model_and_batch(dropout=0.0, caption_weight=1.0)
    tokens, lengths, labels = model.paired(batch)
    optimizer = torch.optim.Adam(model.parameters(), 3e-3)
    losses = []
    for _ in range(40):
        loss = model.caption_loss(tokens, lengths, labels, *model.region_memory(batch))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
    model.eval()
    with torch.no_grad():  # causal: a word's state does not depend on the words after it
        memory = model.region_memory(batch)
        mask = torch.ones(1, 5, dtype=torch.bool)
        one = model.read_words(tokens[:1, :5], mask, memory[0][:1], memory[1][:1], causal=True)
        changed = tokens[:1, :5].clone()
        changed[0, 4] = (changed[0, 4] + 1) % model.hparams.vocab_size
        two = model.read_words(changed, mask, memory[0][:1], memory[1][:1], causal=True)
    assert torch.allclose(one[:, :4], two[:, :4], atol=1e-5) and not torch.allclose(one[:, 4], two[:, 4])


def test_region_colours_give_each_region_its_mean_colour_and_need_a_square_grid() -> None:
    import torch
    from torch import nn

    from multimodal_kit.models.encoders import ConvImageEncoder

    model = ImageTextMatching(vocab_size=20, image_size=16, d_model=16, num_heads=2, num_layers=1, ff_dim=32,
                              encoder=ConvImageEncoder(widths=[8, 16]), region_colours=True)
    red, blue = torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16)
    red[:, 0, :4, :4], blue[:, 2, :4, :4] = 1.0, 1.0  # one corner region, coloured two ways
    seen = []
    model.fuse.register_forward_hook(lambda module, args, out: seen.append(args[1]))  # the regions' memory
    model.eval()
    tokens, lengths = torch.tensor([[1, 5, 6, 2]]), torch.tensor([4])
    with torch.no_grad():
        for module in model.encoder.modules():  # a CNN that sees nothing: only the mean colours can differ
            if isinstance(module, nn.Conv2d):
                nn.init.zeros_(module.weight)
        model.logits({"image": red}, tokens, lengths)
        model.logits({"image": blue}, tokens, lengths)
    differs = (seen[0] - seen[1]).abs().sum(-1)[0]  # (N,): 4×4 = 16 regions
    assert differs[0] > 0 and torch.all(differs[1:] == 0)  # the corner region alone, by its colour

    class Strip(nn.Module):  # 1 × 8 regions: no square grid to pool the pixels to
        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.avg_pool2d(images, (16, 2))

    with pytest.raises(ConfigError, match="region_colours"):
        ImageTextMatching(vocab_size=20, image_size=16, encoder=Strip(), region_colours=True)


def test_the_parts_of_cross_attention_are_refused_by_the_other_fusions() -> None:
    with pytest.raises(ConfigError, match="caption_weight 0"):
        ImageTextMatching(vocab_size=20, image_size=16, fusion="dual", caption_weight=1.0)
    with pytest.raises(ConfigError, match="region_colours false"):
        ImageTextMatching(vocab_size=20, image_size=16, fusion="blind", region_colours=True)
