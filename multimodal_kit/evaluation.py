"""Scoring generated media offline with networks the kit trains: a captioner or speech recognizer checkpoint
(:class:`~multimodal_kit.methods.TextGenerationMethod`) reads generated images or audio back into text (cycle
BLEU-4 / WER), and its encoder's pooled features feed torchmetrics' Fréchet distance (FID).

None of this needs downloaded weights; the price is that the scores are only as good as the evaluator, which is
why the real test media are scored by the same evaluator too (``test/real_cycle_*``): that is the ceiling.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from multimodal_kit.checkpoints import class_spec, load_checkpoint
from multimodal_kit.data.text import canonical_text, decode_tokens
from multimodal_kit.errors import ConfigError
from multimodal_kit.media import medium_spec
from multimodal_kit.models.encoders import output_dim
from multimodal_kit.models.masking import masked_mean
from multimodal_kit.utils import import_class


def load_judge(checkpoint: str | Path, methods: tuple[str, ...], role: str, fix: str, kind: str
               ) -> tuple[Any, Any, Path]:
    """A checkpoint of ``mmkit fit`` whose class has every callable in ``methods``, loaded frozen on the CPU, and
    its data module rebuilt without reading any data (splits and tokenizer load lazily): only to turn media values
    into its inputs the way it was trained. ``role``, ``fix`` and ``kind`` word the errors."""
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise ConfigError(f"checkpoint {str(path)!r} not found: {fix}.")
    state = load_checkpoint(path)
    model = class_spec(state.get("hyper_parameters", {}))
    data = class_spec(state.get("datamodule_hyper_parameters", {}))
    model_class = import_class(model["class_path"]) if model else None
    if not (isinstance(model_class, type) and all(callable(getattr(model_class, m, None)) for m in methods)) \
            or data is None:
        raise ConfigError(f"{path}: not a checkpoint of {kind} written by `mmkit fit`; {role}.")
    method = model_class.load_from_checkpoint(path, map_location="cpu", weights_only=True).eval()
    method.requires_grad_(False)
    return method, import_class(data["class_path"])(**data["init_args"]), path


class CycleEvaluator:
    """A trained text-generation checkpoint used as a judge of generated media.

    Its data module is rebuilt from the checkpoint without loading any data, only to turn media values (PIL
    images, waveforms) into its own input features the way it was trained.

    Args:
        checkpoint: a checkpoint written by ``mmkit fit`` of a captioner (image → text) or speech recognizer
            (audio → text).
    """

    def __init__(self, checkpoint: str | Path) -> None:
        self.method, self.datamodule, self.path = load_judge(
            checkpoint, ("encode_source", "generate"), "an evaluator must read media and write text",
            "train a captioner or speech recognizer first (`mmkit fit -c experiments/attention_<pair>.yaml`) and "
            "pass its best checkpoint as --model.evaluator", "a kit text generator (Seq2Seq, CrossModalAttention)")
        self.codec = self.datamodule.codec
        self.media: str = self.codec.media
        #: what the evaluator writes (``caption``/``transcript``), which picks the cycle metrics
        self.text_kind: str = getattr(self.method, "text_kind", None) or medium_spec(self.media).text

    def to(self, device: torch.device) -> CycleEvaluator:
        self.method.to(device)
        return self

    def batch(self, values: list[Any]) -> dict[str, Any]:
        """Media values (PIL images / ``{"array", "sampling_rate"}``) → the evaluator's input batch."""
        return media_batch(self.codec, values, self.method.device)

    @torch.no_grad()
    def read(self, batch: dict[str, Any]) -> list[str]:
        """The evaluator's text for each item (greedy/beam as configured), in canonical form."""
        tokenizer = self.method.require_tokenizer()
        texts = decode_tokens(tokenizer, self.method.generate(batch).tokens)
        return [canonical_text(tokenizer, t) for t in texts]

    def canonical(self, text: str) -> str:
        return canonical_text(self.method.require_tokenizer(), text)

    @torch.no_grad()
    def features(self, batch: dict[str, Any]) -> torch.Tensor:
        """The evaluator encoder's features, averaged over regions/frames → (B, D), float64 for FID."""
        features, mask = self.method.encode_source(batch)
        return masked_mean(features.float(), mask).double()

    def feature_dim(self) -> int:
        """D of :meth:`features` (the encoder's feature size)."""
        return output_dim(self.method.encoder, *(x.to(self.method.device) for x in self.method.example_source()))


def media_batch(codec: Any, values: list[Any], device: torch.device) -> dict[str, Any]:
    """Media values (PIL images / ``{"array", "sampling_rate"}``) → a judge's input batch through its codec."""
    batch = codec.collate([codec.load(value, f"generated {i}") for i, value in enumerate(values)])
    return {k: v.to(device) for k, v in batch.items()}


class RetrievalJudge:
    """A dual encoder checkpoint (a class with ``embed_media(batch)`` and ``embed_texts(texts)``, both giving
    L2-normalized embeddings, e.g. the contrastive task's) used to rank texts for generated media: AttnGAN's
    R-precision. Train it apart from the generator, or the generator is judged by what it learnt to please.

    Args:
        checkpoint: a checkpoint of such a dual encoder written by ``mmkit fit``.
    """

    def __init__(self, checkpoint: str | Path) -> None:
        self.method, datamodule, self.path = load_judge(
            checkpoint, ("embed_media", "embed_texts"), "an R-precision judge must embed media and texts",
            "train a dual encoder first (`mmkit fit -c experiments/contrastive_<pair>.yaml`) and pass its best "
            "checkpoint", "a dual encoder (embed_media, embed_texts)")
        self.codec = datamodule.codec
        self.media: str = self.codec.media

    def to(self, device: torch.device) -> RetrievalJudge:
        self.method.to(device)
        return self

    @torch.no_grad()
    def embed_media(self, values: list[Any]) -> torch.Tensor:
        """Media values → L2-normalized embeddings (B, P)."""
        return self.method.embed_media(media_batch(self.codec, values, self.method.device)).float()

    @torch.no_grad()
    def embed_texts(self, texts: list[str], chunk: int = 256) -> torch.Tensor:
        """Texts → L2-normalized embeddings (N, P), ``chunk`` at a time."""
        return torch.cat([self.method.embed_texts(texts[i: i + chunk]).float() for i in range(0, len(texts), chunk)])


def r_precision_hits(media: torch.Tensor, texts: torch.Tensor, true: list[int], candidates: list[list[int]]
                     ) -> torch.Tensor:
    """Per item, whether its true text outranks its mismatched candidates (R-precision at R = 1): media embeddings
    (B, P), the text pool's embeddings (N, P), each item's true text index and its candidates' indices → (B,)
    bool."""
    hits = []
    for k, (right, others) in enumerate(zip(true, candidates, strict=True)):
        scores = texts[[right, *others]] @ media[k]  # (1 + C,)
        hits.append(bool(scores[0] > scores[1:].max()) if others else True)
    return torch.tensor(hits)


class PrecomputedFeatures(nn.Module):
    """Hands features computed by :meth:`CycleEvaluator.features` to torchmetrics' FID unchanged (the metric's
    custom-extractor path); ``num_features`` tells it their size."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def frechet_distance(num_features: int) -> FrechetInceptionDistance:
    """torchmetrics' FID over evaluator features of ``num_features`` dimensions (real statistics reset each
    epoch, as the real set is fed alongside the generated one)."""
    return FrechetInceptionDistance(feature=PrecomputedFeatures(num_features), normalize=True)
