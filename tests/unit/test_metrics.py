import math

import pytest

from multimodal_kit.metrics import CIDEr, ExactMatch, caption_metrics


def test_bleu_against_a_hand_worked_example() -> None:
    # pred "the cat sat on the mat" vs ref "the cat is on the mat" (same length, brevity penalty 1):
    # unigram precision 5/6, bigram 3/5, trigram 1/4, 4-gram 0/3
    metrics = caption_metrics("test", full=True)
    metrics.update(["the cat sat on the mat"], [["the cat is on the mat"]])
    scores = {k: float(v) for k, v in metrics.compute().items()}
    assert scores["test/bleu1"] == pytest.approx(5 / 6)
    assert scores["test/bleu2"] == pytest.approx(math.sqrt(5 / 6 * 3 / 5))
    assert scores["test/bleu3"] == pytest.approx((5 / 6 * 3 / 5 * 1 / 4) ** (1 / 3))
    assert scores["test/bleu4"] == pytest.approx(0.0)
    assert scores["test/exact_match"] == 0.0


def test_cider_against_a_hand_worked_example() -> None:
    # Two images, N = 2, every n-gram in one image's references only: idf = log 2 for all of them.
    # Image 1: pred "a" vs ref "a b": n=1 cosine 1/sqrt(2), length penalty exp(-(1-2)^2 / (2*6^2)); n=2..4 give 0.
    # Image 2: pred "c d" equals its ref: n=1 and n=2 cosine 1, n=3, 4 give 0 (no such n-grams).
    # CIDEr-D = 10 * mean_n, averaged over images.
    image1 = 10 * (1 / math.sqrt(2)) * math.exp(-1 / 72) / 4
    image2 = 10 * (1 + 1) / 4
    metric = CIDEr()
    metric.update(["a"], [["a b"]])
    metric.update(["c d"], [["c d"]])
    assert float(metric.compute()) == pytest.approx((image1 + image2) / 2, rel=1e-6)
    metric.reset()
    metric.update(["c d"], [["c d"]])
    metric.update(["a b"], [["a b"]])
    assert float(metric.compute()) == pytest.approx(5.0)


def test_exact_match_counts_any_reference() -> None:
    metric = ExactMatch()
    metric.update(["a red circle", "a blue square", "a big red circle"],
                  [["a small red circle", "a red circle"], ["a blue circle"], ["a large red circle"]])
    assert float(metric.compute()) == pytest.approx(1 / 3)


def test_speech_metrics_against_hand_worked_values() -> None:
    from multimodal_kit.metrics import speech_metrics

    metrics = speech_metrics("test", full=True)
    # "two" → "too": 1 substitution of 3 words; "yes no" → "yes": 1 deletion of 2 words → WER 2/5.
    # characters: one substitution (w → o) of 13; " no" deleted, 3 of 6 → CER 4/19.
    metrics.update(["one two three", "yes"], [["one too three"], ["yes no"]])
    scores = {k: float(v) for k, v in metrics.compute().items()}
    assert scores["test/wer"] == pytest.approx(2 / 5)
    assert scores["test/cer"] == pytest.approx(4 / 19)
    assert scores["test/exact_match"] == 0.0
    assert set(speech_metrics("val", full=False).keys()) == {"val/wer", "val/exact_match"}


def test_validation_caption_metrics_are_bleu4_and_exact_match() -> None:
    from multimodal_kit.metrics import caption_metrics

    assert set(caption_metrics("val", full=False).keys()) == {"val/bleu4", "val/exact_match"}


def test_label_metrics_by_hand() -> None:
    """Predictions 0 0 1 2 against 0 1 1 2: accuracy 3/4; F1 per class 2/3, 2/3, 1 → macro 7/9."""
    import torch

    from multimodal_kit.metrics import label_metrics

    metrics = label_metrics(3, "test")
    metrics.update(torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 1, 2]))
    scores = {k: float(v) for k, v in metrics.compute().items()}
    assert scores == pytest.approx({"test/accuracy": 0.75, "test/macro_f1": 7 / 9})
