"""``Seq2Seq``: the source squeezed into one vector, an LSTM decoder (Show-and-Tell, Vinyals et al. 2015)."""

from __future__ import annotations

from typing import Any

import torch

from multimodal_kit.methods.text_generation import TextGenerationMethod
from multimodal_kit.models.decoders import LSTMDecoder
from multimodal_kit.models.search import State
from multimodal_kit.models.summary import Summary, SummaryKind


class Seq2Seq(TextGenerationMethod):
    """Encoder → one summary vector → LSTM decoder whose initial state is that vector (and, with
    ``context_every_step``, that reads it again beside every word and at its output layer, as Cho et al. 2014).

    Args:
        embed_dim: word embedding size.
        hidden_dim: LSTM hidden size.
        num_layers: LSTM layers.
        dropout: dropout on embeddings and LSTM outputs.
        summary: how the encoder's regions or frames become one vector: ``mean`` (any source) or ``flatten``
            (images: every region in its place, projected; see :class:`~multimodal_kit.models.summary.Summary`).
        context_every_step: feed the summary at every decoder step and to the output layer, not only into the
            initial state (Show-and-Tell's way, the default).
        **kwargs: the options of :class:`~multimodal_kit.methods.text_generation.TextGenerationMethod`.
    """

    def __init__(self, embed_dim: int = 256, hidden_dim: int = 256, num_layers: int = 1, dropout: float = 0.1,
                 summary: SummaryKind = "mean", context_every_step: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def configure_models(self) -> None:
        hp = self.hparams
        self.encoder, dim = self.build_encoder()
        kind = hp.get("summary", "mean")
        fixed = kind == "flatten" and hp.media == "image"  # audio is variable-length: Summary names the fix
        self.summary = Summary(kind, dim, self.source_regions() if fixed else None)
        self.decoder = LSTMDecoder(hp.vocab_size, context_dim=dim, embed_dim=hp.embed_dim, hidden_dim=hp.hidden_dim,
                                   num_layers=hp.num_layers, dropout=hp.dropout, pad_id=hp.pad_id,
                                   context_every_step=hp.get("context_every_step", False))

    def encode(self, batch: dict[str, Any]) -> torch.Tensor:
        """source → one vector (B, D), the summary of the encoder's valid features (regions or frames)."""
        return self.summary(*self.encode_source(batch))

    def initial_state(self, memory: torch.Tensor) -> State:
        return self.decoder.initial_state(memory)

    def decode_step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State, None]:
        logits, state = self.decoder.step(tokens, state)
        return logits, state, None

    def teacher_forced_logits(self, memory: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        return self.decoder(inputs, self.decoder.initial_state(memory))


