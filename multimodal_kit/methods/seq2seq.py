"""``Seq2Seq``: the source squeezed into one vector, an LSTM decoder (Show-and-Tell, Vinyals et al. 2015)."""

from __future__ import annotations

from typing import Any

import torch

from multimodal_kit.methods.text_generation import TextGenerationMethod
from multimodal_kit.models.decoders import LSTMDecoder
from multimodal_kit.models.masking import masked_mean
from multimodal_kit.models.search import State


class Seq2Seq(TextGenerationMethod):
    """Encoder → mean-pooled vector → LSTM decoder whose initial state is that vector.

    Args:
        embed_dim: word embedding size.
        hidden_dim: LSTM hidden size.
        num_layers: LSTM layers.
        dropout: dropout on embeddings and LSTM outputs.
        **kwargs: the options of :class:`~multimodal_kit.methods.text_generation.TextGenerationMethod`.
    """

    def __init__(self, embed_dim: int = 256, hidden_dim: int = 256, num_layers: int = 1, dropout: float = 0.1,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def configure_models(self) -> None:
        hp = self.hparams
        self.encoder, dim = self.build_encoder()
        self.decoder = LSTMDecoder(hp.vocab_size, context_dim=dim, embed_dim=hp.embed_dim, hidden_dim=hp.hidden_dim,
                                   num_layers=hp.num_layers, dropout=hp.dropout, pad_id=hp.pad_id)

    def encode(self, batch: dict[str, Any]) -> torch.Tensor:
        """source → one vector (B, D), the mean of the encoder's valid features (regions or frames)."""
        return masked_mean(*self.encode_source(batch))

    def initial_state(self, memory: torch.Tensor) -> State:
        return self.decoder.initial_state(memory)

    def decode_step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State, None]:
        logits, state = self.decoder.step(tokens, state)
        return logits, state, None

    def teacher_forced_logits(self, memory: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        return self.decoder(inputs, self.decoder.initial_state(memory))


