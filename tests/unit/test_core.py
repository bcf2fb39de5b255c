"""The modular core: a task's fields travel from columns to the batch; each piece works alone; the defects found
on the way stay fixed."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch
from PIL import Image

from multimodal_kit.data.datasets import PairCollator
from multimodal_kit.data.image import ImageCodec
from multimodal_kit.data.image_caption import ImageCaptionDataModule
from multimodal_kit.data.text import train_tokenizer
from multimodal_kit.methods import CrossModalAttention
from multimodal_kit.models.masking import length_mask, masked_mean
from multimodal_kit.visualize import attention_heatmap, attention_strip, captioned_grid


def question_folder(root, with_captions_in_validation: bool = True):  # noqa: ANN001, ANN201
    """An imagefolder whose rows carry a question, an answer and a family besides the caption."""
    for split, n in (("train", 6), ("validation", 3)):
        folder = root / split
        folder.mkdir(parents=True)
        rows = []
        for i in range(n):
            Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(folder / f"{split}_{i}.png")
            row = {"file_name": f"{split}_{i}.png", "text": f"a red square {i}", "question": f"what colour is {i}",
                   "answer": "red", "family": "shape" if i % 2 else "colour"}
            if split == "train" or with_captions_in_validation:
                row["captions"] = [row["text"], f"one red square {i}"]
            if split == "train":
                row["id"] = f"item-{i}"
            rows.append(row)
        (folder / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return root


def test_a_tasks_text_and_label_fields_reach_the_batch_and_the_tokenizer(tmp_path) -> None:
    dm = ImageCaptionDataModule(str(question_folder(tmp_path / "qa")), image_size=8, batch_size=6,
                                text_fields={"question": "question", "answer": "answer"},
                                label_fields={"family": "family"})
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert {"question_tokens", "question_lengths", "answer_tokens", "answer_lengths", "family"} <= set(batch)
    assert dm.labels == {"family": ["colour", "shape"]}  # the training split's classes, sorted
    assert batch["family"].dtype == torch.long  # class indices, whatever order the batch came in
    assert [dm.labels["family"][k] for k in batch["family"].tolist()] == [
        "shape" if int(q.split()[-1]) % 2 else "colour" for q in batch["question"]]
    assert batch["question"][0].startswith("what colour is")
    assert "what" in dm.tokenizer.get_vocab()  # the trained tokenizer learnt the question's words
    for row, n in zip(batch["question_tokens"], batch["question_lengths"].tolist(), strict=True):
        assert row[0] == dm.bos_id and row[n - 1] == dm.eos_id and n == 6  # BOS what colour is <i> EOS


def test_columns_one_split_lacks_change_nothing_for_the_others(tmp_path) -> None:
    """validation has no captions and no id column: train keeps its references and ids (the columns were once
    switched off for every split by the first split that lacked them)."""
    dm = ImageCaptionDataModule(str(question_folder(tmp_path / "qa", with_captions_in_validation=False)),
                                image_size=8)
    dm.setup("fit")
    assert dm.fields.captions_column == "captions" and dm.fields.id_column is None
    train, validation = dm.dataset("train"), dm.dataset("validation")
    assert all(len(refs) == 2 for refs in train.references) and train.ids[0] == "item-0"
    assert all(len(refs) == 1 for refs in validation.references) and validation.ids[0] == "validation_0.png"


def test_the_collator_batches_any_fields_without_a_data_module() -> None:
    codec = ImageCodec(image_size=4)
    tokenizer = train_tokenizer(["is it red", "yes no"])
    items = [{"image": torch.zeros(3, 4, 4, dtype=torch.uint8), "text": "yes", "references": ["yes"], "id": "a",
              "question": "is it red", "speaker": 3},
             {"image": torch.full((3, 4, 4), 255, dtype=torch.uint8), "text": "no", "references": ["no"], "id": "b",
              "question": "red", "speaker": 5}]
    batch = PairCollator(codec, tokenizer, text_fields=("question",))(items)
    assert batch["image"].shape == (2, 3, 4, 4) and batch["speaker"] == [3, 5]
    assert batch["question_lengths"].tolist() == [5, 3] and batch["text_lengths"].tolist() == [3, 3]
    assert [torch.equal(a, b) for a, b in zip(codec.uncollate(batch), [i["image"] for i in items], strict=True)] == [
        True, True]


def test_validation_loss_is_the_per_token_loss_without_the_attention_penalty() -> None:
    torch.manual_seed(0)
    method = CrossModalAttention(vocab_size=12, image_size=16, embed_dim=8, hidden_dim=8, attention_dim=8,
                                 doubly_stochastic=5.0)
    batch = {"image": torch.randn(3, 3, 16, 16), "text_tokens": torch.tensor([[1, 5, 6, 2], [1, 7, 2, 0], [1, 4, 2, 0]])}
    method.eval()
    with torch.no_grad():
        memory = method.encode(batch)
        per_token = method.token_loss(method.teacher_forced_logits(memory, batch["text_tokens"][:, :-1]), batch["text_tokens"])
        assert torch.allclose(method.loss(batch), per_token)
        method.train()
        assert method.loss(batch) > per_token + 1e-3  # training adds the penalty


def test_masked_mean_and_length_mask_by_hand() -> None:
    mask = length_mask(torch.tensor([1, 3]), 3)
    assert mask.tolist() == [[True, False, False], [True, True, True]]
    values = torch.tensor([[[2.0], [10.0], [10.0]], [[1.0], [2.0], [6.0]]])
    assert masked_mean(values, mask).tolist() == [[2.0], [3.0]]
    assert masked_mean(torch.tensor([[1.0, 5.0]]), torch.tensor([[False, False]])).tolist() == [0.0]


def test_a_grid_shows_every_line_of_a_wrapped_prediction_and_reference() -> None:
    long = "pred: a small red circle to the left of a large blue square\nref: a large blue square right of a circle"
    short = captioned_grid([Image.new("RGB", (8, 8))], ["pred: a circle\nref: a circle"], cell=160)
    tall = captioned_grid([Image.new("RGB", (8, 8))], [long], cell=160)
    lines = sum(len(textwrap.wrap(part, width=160 // 6)) for part in long.split("\n"))
    assert lines == 5 and tall.height - short.height == 13 * (lines - 2)  # 13 pixels a line: nothing cut


def test_attention_pictures_show_what_else_the_model_read_under_the_media() -> None:
    image, weights = Image.new("RGB", (16, 16), "white"), torch.full((1, 16), 1 / 16)
    plain = attention_strip(image, ["green"], weights)
    asked = attention_strip(image, ["green"], weights, caption="what color is the diamond?")
    assert asked.height - plain.height == 13 * 2  # three lines under the image for the question, not one
    assert asked.crop((0, 96, 96, asked.height)).getextrema() != plain.crop((0, 96, 96, plain.height)).getextrema()
    features = torch.zeros(20, 8)
    labelled = attention_heatmap(features, ["yes"], torch.full((1, 20), 0.05), title="is it loud?")
    assert labelled.size == attention_heatmap(features, ["yes"], torch.full((1, 20), 0.05)).size
    assert labelled.tobytes() != attention_heatmap(features, ["yes"], torch.full((1, 20), 0.05)).tobytes()


def test_data_without_text_needs_no_tokenizer_and_batches_labels(tmp_path) -> None:
    """text_column null: no tokenizer is trained, batches carry no text keys, the label field is the target."""
    dm = ImageCaptionDataModule(str(question_folder(tmp_path / "qa")), image_size=8, batch_size=3, text_column=None,
                                captions_column=None, label_fields={"family": "family"}, train_text="first")
    dm.setup("fit")
    assert dm.tokenizer is None and dm.field_kinds == {"image": "image", "references": "references", "id": "id",
                                                        "family": "label"}
    assert dm.num_classes == 2
    batch = next(iter(dm.val_dataloader()))
    assert set(batch) == {"image", "family", "references", "id"}
    assert batch["family"].tolist() == [0, 1, 0] and batch["references"] == [[], [], []]


def test_a_label_the_training_split_never_had_is_a_bad_row(tmp_path) -> None:
    from multimodal_kit.data.problems import DataError

    root = question_folder(tmp_path / "qa")
    meta = root / "validation" / "metadata.jsonl"
    rows = [json.loads(line) for line in meta.read_text().splitlines()]
    rows[1]["family"] = "size"
    meta.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    dm = ImageCaptionDataModule(str(root), image_size=8, label_fields={"family": "family"})
    with pytest.raises(DataError, match=r"validation_1\.png.*label 'size' in column 'family' is not one of its 2 "
                                        r"classes \(the training split's values, or the checkpoint's\)"):
        dm.setup("fit")


def test_data_without_text_draws_no_text_from_its_captions_and_refuses_prompts(tmp_path) -> None:
    from multimodal_kit.data.predict_inputs import predict_inputs
    from multimodal_kit.data.problems import DataError

    dm = ImageCaptionDataModule(str(question_folder(tmp_path / "qa")), image_size=8, text_column=None,
                                label_fields={"family": "family"})  # captions present, train_text random
    dm.setup("fit")
    item = dm.dataset("train")[0]
    assert "text" not in item and len(item["references"]) == 2  # the captions stay references only
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red square\n")
    with pytest.raises(DataError, match="prompts.txt: a prompts file, but this data has no text field"):
        predict_inputs(str(prompts), dm.codec, lambda: dm.tokenizer, "fail", ())
