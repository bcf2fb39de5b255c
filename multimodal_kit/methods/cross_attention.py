"""``CrossModalAttention``: the decoder attends over the source's feature sequence at every output step
(Show-Attend-Tell for image regions, Listen-Attend-Spell for audio frames, or a transformer decoder)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import nn

from multimodal_kit.methods.text_generation import TextGenerationMethod
from multimodal_kit.models.attention import build_attention, doubly_stochastic_penalty
from multimodal_kit.models.attention_decoders import RecurrentAttentionDecoder, TransformerAttentionDecoder
from multimodal_kit.models.search import State

AttentionKind = Literal["additive", "location", "dot", "general", "multihead"]


class CrossModalAttention(TextGenerationMethod):
    """Encoder → feature sequence (B, N, D) → a decoder that attends over it for every token.

    Args:
        attention: ``additive`` (Bahdanau / Show-Attend-Tell), ``location`` (location-sensitive: also sees its
            previous and cumulative weights, Tacotron 2), ``dot`` or ``general`` (Luong) with an LSTM decoder;
            ``multihead`` for a transformer decoder with cross-attention; or a class path of your own attention
            module (``(query_dim, key_dim, ...)`` constructor, see :mod:`multimodal_kit.models.attention`).
        embed_dim: word embedding size (recurrent decoder).
        hidden_dim: LSTM hidden size (recurrent decoder).
        attention_dim: hidden size of additive attention's scoring MLP.
        gate: Show-Attend-Tell's sigmoid gate on the context (recurrent decoder).
        doubly_stochastic: weight λ of the penalty ``λ·Σ_i (1 − Σ_t α_ti)²`` (0, the default, turns it off:
            with few regions and short captions it pulls attention off the objects; see the README).
        d_model: transformer width (``multihead``).
        num_heads: attention heads (``multihead``).
        num_layers: transformer decoder layers (``multihead``).
        ff_dim: transformer MLP size (``multihead``).
        dropout: dropout in the decoder.
        **kwargs: the options of :class:`~multimodal_kit.methods.text_generation.TextGenerationMethod`.
    """

    def __init__(self, attention: AttentionKind | Callable[[int, int], nn.Module] = "additive",
                 embed_dim: int = 256, hidden_dim: int = 256, attention_dim: int = 256, gate: bool = True,
                 doubly_stochastic: float = 0.0, d_model: int = 256, num_heads: int = 4, num_layers: int = 2,
                 ff_dim: int = 512, dropout: float = 0.1, **kwargs: Any) -> None:
        self.give(attention=attention)
        super().__init__(**kwargs)

    def configure_models(self) -> None:
        hp = self.hparams
        self.encoder, dim = self.build_encoder()
        attention = self.given_objects["attention"]
        if attention == "multihead":
            self.decoder = TransformerAttentionDecoder(hp.vocab_size, dim, d_model=hp.d_model,
                                                       num_heads=hp.num_heads, num_layers=hp.num_layers,
                                                       ff_dim=hp.ff_dim, dropout=hp.dropout, pad_id=hp.pad_id)
            return
        module = build_attention(attention, hp.hidden_dim, dim, hp.attention_dim)
        self.decoder = RecurrentAttentionDecoder(hp.vocab_size, dim, module, embed_dim=hp.embed_dim,
                                                 hidden_dim=hp.hidden_dim, dropout=hp.dropout, gate=hp.gate,
                                                 pad_id=hp.pad_id)

    # ------------------------------------------------------------------ encoder and decoder steps
    def encode(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """source → memory (B, N, D) and its validity mask (B, N)."""
        memory, mask = self.encode_source(batch)
        return {"memory": memory, "mask": mask}

    def initial_state(self, memory: dict[str, torch.Tensor]) -> State:
        return self.decoder.initial_state(memory["memory"], memory["mask"])

    def decode_step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State, torch.Tensor]:
        return self.decoder.step(tokens, state)

    def teacher_forced(self, memory: dict[str, torch.Tensor], inputs: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs (B, T) → logits (B, T, V), attention (B, T, N)."""
        return self.decoder(inputs, self.initial_state(memory))

    def teacher_forced_logits(self, memory: dict[str, torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        return self.teacher_forced(memory, inputs)[0]

    def loss(self, batch: dict[str, Any], memory: State | None = None) -> torch.Tensor:
        """Cross-entropy plus, in training and for the recurrent decoder, the doubly stochastic attention penalty
        (validation and test report the per-token cross-entropy alone, as every method does)."""
        tokens = batch["text_tokens"]
        memory = self.encode(batch) if memory is None else memory
        logits, weights = self.teacher_forced(memory, tokens[:, :-1])
        loss = self.token_loss(logits, tokens)
        if self.training and self.hparams.doubly_stochastic > 0 and isinstance(self.decoder, RecurrentAttentionDecoder):
            steps = tokens[:, 1:] != self.hparams.pad_id  # (B, T): real output steps
            penalty = doubly_stochastic_penalty(weights, steps, memory["mask"])
            self.log("train/attention_penalty", penalty, batch_size=len(tokens))
            loss = loss + self.hparams.doubly_stochastic * penalty
        return loss
