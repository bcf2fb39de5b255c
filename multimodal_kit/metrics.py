"""Text metrics on free-running outputs: BLEU (torchmetrics), CIDEr-D (pycocoevalcap), exact match for captions;
word and character error rates (torchmetrics) for speech.

Every metric here takes ``update(preds: list[str], target: list[list[str]])`` with texts already in canonical form
(:func:`multimodal_kit.data.text.canonical_text`: normalized, words separated by single spaces).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score
from torchmetrics.text import BLEUScore, CharErrorRate, WordErrorRate


class CIDEr(Metric):
    """CIDEr-D (Vedantam et al., 2015) of the whole corpus seen, via ``pycocoevalcap`` (scaled ×10 as there).

    The document frequencies come from the references of the evaluated corpus, so this is a corpus metric: the
    texts are kept until :meth:`compute` and gathered across processes there. They are plain Python lists, not
    torchmetrics states (those must be tensors).
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._preds: list[str] = []
        self._target: list[list[str]] = []

    def update(self, preds: list[str], target: list[list[str]]) -> None:
        self._preds.extend(preds)
        self._target.extend(list(t) for t in target)

    def reset(self) -> None:
        super().reset()
        self._preds, self._target = [], []

    def compute(self) -> torch.Tensor:
        from pycocoevalcap.cider.cider import Cider

        preds, target = self._preds, self._target
        if dist.is_available() and dist.is_initialized():
            parts: list[tuple[list, list]] = [([], []) for _ in range(dist.get_world_size())]
            dist.all_gather_object(parts, (preds, target))
            preds = [p for part in parts for p in part[0]]
            target = [t for part in parts for t in part[1]]
        if not preds:
            return torch.tensor(0.0)
        score, _ = Cider().compute_score({i: refs for i, refs in enumerate(target)},
                                         {i: [pred] for i, pred in enumerate(preds)})
        return torch.tensor(float(score))


class ExactMatch(Metric):
    """Share of predictions equal to at least one of their references."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("correct", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, preds: list[str], target: list[list[str]]) -> None:
        self.correct += sum(p in refs for p, refs in zip(preds, target, strict=True))
        self.total += len(preds)

    def compute(self) -> torch.Tensor:
        return self.correct / self.total.clamp(min=1)


def caption_metrics(stage: str, full: bool, name: str = "") -> MetricCollection:
    """Metrics of one stage, named ``<stage>/<name><metric>``: BLEU-4 and exact match (``full=False``, for
    validation), or BLEU-1…4, CIDEr and exact match."""
    metrics: dict[str, Metric] = {"bleu4": BLEUScore(n_gram=4), "exact_match": ExactMatch()}
    if full:
        metrics = {f"bleu{n}": BLEUScore(n_gram=n) for n in range(1, 5)}
        metrics |= {"cider": CIDEr(), "exact_match": ExactMatch()}
    return MetricCollection(metrics, prefix=f"{stage}/{name}", compute_groups=False)


class FirstReferenceWER(WordErrorRate):
    """torchmetrics' word error rate against each item's first reference (a speech item has one transcript)."""

    def update(self, preds: list[str], target: list[list[str]]) -> None:
        super().update(preds, [refs[0] for refs in target])


class FirstReferenceCER(CharErrorRate):
    """torchmetrics' character error rate against each item's first reference."""

    def update(self, preds: list[str], target: list[list[str]]) -> None:
        super().update(preds, [refs[0] for refs in target])


def speech_metrics(stage: str, full: bool, name: str = "") -> MetricCollection:
    """Metrics of one stage, named ``<stage>/<name><metric>``: WER and exact match (``full=False``), or WER, CER
    and exact match."""
    metrics: dict[str, Metric] = {"wer": FirstReferenceWER(), "exact_match": ExactMatch()}
    if full:
        metrics |= {"cer": FirstReferenceCER()}
    return MetricCollection(metrics, prefix=f"{stage}/{name}", compute_groups=False)


def label_metrics(num_classes: int, stage: str) -> MetricCollection:
    """The default metrics of a label output: ``<stage>/accuracy`` (micro) and ``<stage>/macro_f1`` over
    ``num_classes`` classes; update with predicted and true class indices (B,)."""
    return MetricCollection({"accuracy": MulticlassAccuracy(num_classes, average="micro"),
                             "macro_f1": MulticlassF1Score(num_classes, average="macro")}, prefix=f"{stage}/")


#: per kind of text (:data:`~multimodal_kit.media.TextKind`: captions, transcripts): its metrics and the validation
#: metric that picks the best checkpoint (name, mode)
TEXT_METRICS = {"caption": (caption_metrics, ("bleu4", "max")), "transcript": (speech_metrics, ("wer", "min"))}


def text_metrics(kind: str, stage: str, full: bool, name: str = "") -> MetricCollection:
    """The metrics of generated text of ``kind`` (``caption`` or ``transcript``, see :data:`TEXT_METRICS`).
    ``name`` prefixes each metric's name (``cycle_``: text an evaluator read from generated media)."""
    return TEXT_METRICS[kind][0](stage, full, name)


def monitor_of(kind: str, name: str = "") -> tuple[str, str]:
    """The validation metric and mode that pick the best checkpoint of generated text of ``kind``."""
    metric, mode = TEXT_METRICS[kind][1]
    return f"val/{name}{metric}", mode
