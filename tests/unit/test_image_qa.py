"""Image question answering: the embedded questions (families, naming, answers true to the scene, balance), the
three fusions' shapes, a loss that falls, per-family accuracy against hand-worked values, and one-token answers."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from multimodal_kit.data.embedded.shapes import SceneObject, sample_scene
from multimodal_kit.data.embedded.shapes_questions import (
    FAMILIES,
    ShapesQuestionsConfig,
    ask,
    generate_split,
    name,
    sample_question,
    scene_questions,
)
from multimodal_kit.data.text import encode_texts, train_tokenizer
from multimodal_kit.tasks.image_qa import ImageQuestionAnswering

RED_CIRCLE = SceneObject("circle", "red", "small", 10, 10)
BLUE_CIRCLE = SceneObject("circle", "blue", "large", 40, 10)
RED_SQUARE = SceneObject("square", "red", "large", 40, 10)


def test_objects_are_named_by_the_fewest_attributes_that_tell_them_apart_never_the_asked_one() -> None:
    assert name(RED_CIRCLE, [RED_SQUARE], "color") == "circle"
    assert name(RED_CIRCLE, [BLUE_CIRCLE], "color") == "small circle"  # shape alone is ambiguous; colour is asked
    assert name(RED_CIRCLE, [RED_SQUARE], "shape") == "small red object"  # colour alone is ambiguous
    assert name(RED_CIRCLE, [SceneObject("square", "red", "small", 0, 0)], "shape") is None  # cannot be asked


def test_relation_questions_follow_the_scene() -> None:
    rng = np.random.default_rng(0)
    asked = {ask("relation", [RED_CIRCLE, RED_SQUARE], "left of", rng) for _ in range(40)}
    assert asked == {("what color is the object left of the square?", "red"),
                     ("what shape is the object left of the square?", "circle"),
                     ("what color is the object right of the circle?", "red"),
                     ("what shape is the object right of the circle?", "square")}
    assert ask("relation", [RED_CIRCLE], "", rng) is None  # one object: no relation to ask about


def test_every_answer_is_true_of_its_scene() -> None:
    config = ShapesQuestionsConfig(num_train=200)
    for i in range(200):
        _, question, answer, family = sample_question(config, "train", i)
        _, objects, _ = sample_scene(config, "train", i)
        if family == "count":
            assert answer == {1: "one", 2: "two"}[len(objects)]
        elif family == "exists":
            color, shape = question.removeprefix("is there a ").removesuffix("?").split()
            assert answer == ("yes" if any((o.color, o.shape) == (color, shape) for o in objects) else "no")
        elif family in ("color", "shape", "size"):
            assert any(getattr(o, family) == answer for o in objects)


def test_the_set_is_deterministic_and_balanced_enough_that_the_question_alone_is_near_chance() -> None:
    config = ShapesQuestionsConfig(num_train=1200, num_validation=8, num_test=8)
    columns = generate_split(config, "train", progress=False)
    assert generate_split(config, "train", progress=False)["question"] == columns["question"]
    families = Counter(columns["family"])
    assert set(families) == set(FAMILIES)
    by_family: dict[str, Counter] = {}
    for family, answer in zip(columns["family"], columns["answer"], strict=True):
        by_family.setdefault(family, Counter())[answer] += 1
    for family, answers in by_family.items():
        top = answers.most_common(1)[0][1] / sum(answers.values())
        assert top < 0.65, (family, answers)  # no family is answered by its most common answer


def test_several_questions_per_scene_are_different_rows_of_one_image_the_first_as_with_one() -> None:
    config = ShapesQuestionsConfig(num_train=30, num_validation=8, num_test=8, questions_per_scene=4)
    columns = generate_split(config, "train", progress=False)
    assert len(columns["question"]) == 4 * 30
    assert columns["id"][:5] == [f"shapes_qa-train-000000-{j}" for j in range(4)] + ["shapes_qa-train-000001-0"]
    for i in range(30):
        rows = slice(4 * i, 4 * i + 4)
        assert len(set(columns["question"][rows])) == 4  # different questions ...
        assert len({image["bytes"] for image in columns["image"][rows]}) == 1  # ... about one image
        assert columns["question"][4 * i] == sample_question(config, "train", i)[1]  # the first: as with one
    one = generate_split(ShapesQuestionsConfig(num_train=3, questions_per_scene=1), "train", progress=False)
    assert one["id"] == ["shapes_qa-train-000000", "shapes_qa-train-000001", "shapes_qa-train-000002"]
    with pytest.raises(ValueError, match="questions_per_scene"):  # count alone has one question to ask
        scene_questions(ShapesQuestionsConfig(families=("count",), questions_per_scene=2), "train", 0)


def qa_model(fusion: str, vocab: int = 30, **options) -> ImageQuestionAnswering:
    from multimodal_kit.models.encoders import ConvImageEncoder

    return ImageQuestionAnswering(vocab_size=vocab, image_size=16, fusion=fusion, encoder=ConvImageEncoder((8, 16)),
                                  embed_dim=8, hidden_dim=16, attention_dim=8, hops=2, d_model=16, num_heads=2,
                                  num_layers=1, ff_dim=32, dropout=0.0, families=("a", "b"), **options)


def qa_batch(tokenizer, n: int = 4) -> dict:
    questions = ["what color is it?", "is there a cat?", "what color is it?", "is there a cat?"][:n]
    answers = ["red", "yes", "blue", "no"][:n]
    tokens, lengths = encode_texts(tokenizer, answers)
    q_tokens, q_lengths = encode_texts(tokenizer, questions)
    torch.manual_seed(0)
    return {"image": torch.rand(n, 3, 16, 16), "text_tokens": tokens, "text_lengths": lengths,
            "question_tokens": q_tokens, "question_lengths": q_lengths, "question": questions,
            "family": torch.tensor([0, 1, 0, 1][:n]), "references": [[a] for a in answers], "id": [str(i) for i in range(n)]}


@pytest.fixture(scope="module")
def qa_tokenizer():
    return train_tokenizer(["what color is it?", "is there a cat?", "red", "blue", "yes", "no"])


@pytest.mark.parametrize("fusion", ["transformer", "attention", "pooled", "blind"])
def test_each_fusion_gives_answer_logits_and_learns_a_batch(fusion: str, qa_tokenizer) -> None:
    torch.manual_seed(0)
    model = qa_model(fusion, vocab=len(qa_tokenizer))
    model.tokenizer = qa_tokenizer
    batch = qa_batch(qa_tokenizer)
    logits, weights = model.answer_logits(batch)
    assert logits.shape == (4, len(qa_tokenizer))
    assert (weights is not None) == (fusion in ("transformer", "attention"))
    if weights is not None:
        assert weights.shape == (4, 16) and torch.allclose(weights.sum(-1), torch.ones(4))  # 4×4 regions
    assert (model.encoder is None) == (fusion == "blind")  # the blind model has no image encoder at all
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        loss = model.loss_fn(model.answer_logits(batch)[0], model.targets(batch))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        first = first or float(loss.detach())
    assert float(loss.detach()) < 0.3 * first
    if fusion != "blind":  # the blind one cannot tell "red" from "blue" for the same question
        assert model(batch) == ["red", "yes", "blue", "no"]


def test_accuracy_per_family_by_hand(qa_tokenizer) -> None:
    model = qa_model("blind", vocab=len(qa_tokenizer))
    model.tokenizer = qa_tokenizer
    batch = qa_batch(qa_tokenizer)
    ids = [qa_tokenizer.convert_tokens_to_ids(w) for w in ("red", "yes", "red", "yes")]  # right, right, wrong, wrong
    model.answer_logits = lambda b: (torch.nn.functional.one_hot(torch.tensor(ids), len(qa_tokenizer)).float(), None)
    model.log = model.log_dict = lambda *a, **k: None
    model.label_classes = {"family": ["a", "b"]}  # the data's classes of the label field (batch: their indices)
    out = model.evaluation_step(batch, "test")
    assert out["predictions"] == ["red", "yes", "red", "yes"]
    assert float(model.test_accuracy.compute()) == pytest.approx(0.5)
    families = model.test_families.compute()
    assert float(families["test/accuracy_a"]) == pytest.approx(0.5)  # red ✓, blue → red ✗
    assert float(families["test/accuracy_b"]) == pytest.approx(0.5)  # yes ✓, no → yes ✗


def test_region_positions_tell_the_attention_where_each_region_is(qa_tokenizer) -> None:
    torch.manual_seed(0)
    model = qa_model("attention", vocab=len(qa_tokenizer), region_positions=True).eval()
    assert model.positions is not None and model.positions.shape == (1, 16, model.encoder.out_dim)  # 4×4 regions
    batch = qa_batch(qa_tokenizer)
    plain, _ = model.encode_source(batch)
    placed, _ = model.regions(batch)
    # the same feature in two places now differs by the two places' embeddings
    assert torch.allclose(placed - plain, model.positions.expand_as(plain), atol=1e-6)
    assert model.positions.requires_grad and qa_model("attention", vocab=len(qa_tokenizer)).positions is None
