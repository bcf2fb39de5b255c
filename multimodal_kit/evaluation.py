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


class CycleEvaluator:
    """A trained text-generation checkpoint used as a judge of generated media.

    Its data module is rebuilt from the checkpoint without loading any data, only to turn media values (PIL
    images, waveforms) into its own input features the way it was trained.

    Args:
        checkpoint: a checkpoint written by ``mmkit fit`` of a captioner (image → text) or speech recognizer
            (audio → text).
    """

    def __init__(self, checkpoint: str | Path) -> None:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise ConfigError(f"evaluator checkpoint {str(path)!r} not found: train a captioner or speech "
                                    "recognizer first (`mmkit fit -c experiments/attention_<pair>.yaml`) and pass its "
                                    "best checkpoint as --model.evaluator.")
        state = load_checkpoint(path)
        model = class_spec(state.get("hyper_parameters", {}))
        data = class_spec(state.get("datamodule_hyper_parameters", {}))
        model_class = import_class(model["class_path"]) if model else None
        # a text generator of the kit: reads media (encode_source) and writes text (generate → tokens)
        reads_media = all(callable(getattr(model_class, name, None)) for name in ("encode_source", "generate"))
        if not (isinstance(model_class, type) and reads_media) or data is None:
            raise ConfigError(f"{path}: not a checkpoint of a kit text generator (Seq2Seq, CrossModalAttention) "
                             "written by `mmkit fit`; an evaluator must read media and write text.")
        self.method = model_class.load_from_checkpoint(path, map_location="cpu", weights_only=True).eval()
        self.method.requires_grad_(False)
        # no data is read: splits and tokenizer load lazily; it only turns media into the evaluator's features
        self.datamodule = import_class(data["class_path"])(**data["init_args"])
        self.codec = self.datamodule.codec
        self.media: str = self.codec.media
        #: what the evaluator writes (``caption``/``transcript``), which picks the cycle metrics
        self.text_kind: str = getattr(self.method, "text_kind", None) or medium_spec(self.media).text
        self.path = path

    def to(self, device: torch.device) -> CycleEvaluator:
        self.method.to(device)
        return self

    def batch(self, values: list[Any]) -> dict[str, Any]:
        """Media values (PIL images / ``{"array", "sampling_rate"}``) → the evaluator's input batch."""
        media = [self.codec.load(value, f"generated {i}") for i, value in enumerate(values)]
        batch = self.codec.collate(media)
        return {k: v.to(self.method.device) for k, v in batch.items()}

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
