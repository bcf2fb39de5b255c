"""Decoders that attend over the source at every step: a recurrent one (Show-Attend-Tell / LAS style) and a
transformer decoder with cross-attention. Both return attention weights per output token."""

from __future__ import annotations

import math

import torch
from torch import nn

from multimodal_kit.models.attention import attend, attention_state, takes_history
from multimodal_kit.models.masking import masked_mean
from multimodal_kit.models.search import State


class RecurrentAttentionDecoder(nn.Module):
    """LSTM decoder that attends over the memory before each step (Show-Attend-Tell).

    At step t: ``context, alpha = attend(h_{t-1}, memory)``; optionally gate the context with
    ``sigmoid(f_beta(h_{t-1}))``; ``h_t = LSTM([embed(y_{t-1}); context], h_{t-1})``; logits from
    ``[h_t; context]``.

    Args:
        vocab_size: output vocabulary.
        memory_dim: feature size K of the memory.
        attention: the attention module (see :mod:`multimodal_kit.models.attention`).
        embed_dim: word embedding size.
        hidden_dim: LSTM hidden size.
        dropout: dropout before the output layer and on embeddings.
        gate: Show-Attend-Tell's sigmoid gate on the context.
        pad_id: padding id.
    """

    def __init__(self, vocab_size: int, memory_dim: int, attention: nn.Module, embed_dim: int = 256,
                 hidden_dim: int = 256, dropout: float = 0.1, gate: bool = True, pad_id: int = 0) -> None:
        super().__init__()
        self.attention = attention
        # where it looked so far is handed to attention modules that take it (older user modules need not)
        self.gives_history = takes_history(attention)
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.init_h = nn.Linear(memory_dim, hidden_dim)
        self.init_c = nn.Linear(memory_dim, hidden_dim)
        self.gate = nn.Linear(hidden_dim, memory_dim) if gate else None
        self.cell = nn.LSTMCell(embed_dim + memory_dim, hidden_dim)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_dim + memory_dim, vocab_size)

    def initial_state(self, memory: torch.Tensor, mask: torch.Tensor) -> State:
        """memory (B, N, K), mask (B, N) → state with h, c (B, H) from the mean of the valid memory."""
        mean = masked_mean(memory, mask)  # (B, K)
        return {"h": torch.tanh(self.init_h(mean)), "c": torch.tanh(self.init_c(mean)),
                **attention_state(self.attention, memory, mask)}

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State, torch.Tensor]:
        """tokens (B,) → logits (B, V), next state, attention weights (B, N)."""
        context, looked = attend(self.attention, state["h"], state, self.gives_history)
        if self.gate is not None:
            context = torch.sigmoid(self.gate(state["h"])) * context  # (B, K)
        x = torch.cat([self.dropout(self.embed(tokens)), context], -1)  # (B, E + K)
        h, c = self.cell(x, (state["h"], state["c"]))  # (B, H) each
        logits = self.out(self.dropout(torch.cat([h, context], -1)))  # (B, V)
        return logits, {**state, "h": h, "c": c, **looked}, looked["weights"]

    def forward(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing: tokens (B, T) → logits (B, T, V), attention (B, T, N)."""
        logits, weights = [], []
        for t in range(tokens.shape[1]):
            step_logits, state, step_weights = self.step(tokens[:, t], state)
            logits.append(step_logits)
            weights.append(step_weights)
        return torch.stack(logits, 1), torch.stack(weights, 1)


def sinusoidal_positions(length: int, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """The transformer's fixed position code, (length, dim)."""
    position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq[: dim // 2])
    return table


class CrossAttentionLayer(nn.Module):
    """Pre-norm transformer decoder layer: causal self-attention, cross-attention (weights returned), MLP."""

    def __init__(self, d_model: int, num_heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d_model), nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.self_attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d_model, ff_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff_dim, d_model))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, causal: torch.Tensor,
                memory_padding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, D), memory (B, N, D) → x (B, T, D), cross-attention weights (B, T, N), heads averaged."""
        h = self.norm1(x)
        x = x + self.dropout(self.self_attn(h, h, h, attn_mask=causal, need_weights=False)[0])
        h = self.norm2(x)
        attended, weights = self.cross_attn(h, memory, memory, key_padding_mask=memory_padding, need_weights=True,
                                            average_attn_weights=True)
        x = x + self.dropout(attended)
        return x + self.dropout(self.mlp(self.norm3(x))), weights


class TransformerAttentionDecoder(nn.Module):
    """A transformer decoder whose every layer cross-attends to the memory (the modern multi-head form).

    Args:
        vocab_size: output vocabulary.
        memory_dim: feature size K of the memory (projected to ``d_model``).
        d_model: model width.
        num_heads: attention heads.
        num_layers: decoder layers.
        ff_dim: MLP hidden size.
        dropout: dropout.
        pad_id: padding id.
    """

    def __init__(self, vocab_size: int, memory_dim: int, d_model: int = 256, num_heads: int = 4,
                 num_layers: int = 2, ff_dim: int = 512, dropout: float = 0.1, pad_id: int = 0) -> None:
        super().__init__()
        self.d_model = d_model
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        self.memory_proj = nn.Linear(memory_dim, d_model)
        self.layers = nn.ModuleList(CrossAttentionLayer(d_model, num_heads, ff_dim, dropout)
                                    for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)
        self.out = nn.Linear(d_model, vocab_size)
        self.dropout = nn.Dropout(dropout)

    def initial_state(self, memory: torch.Tensor, mask: torch.Tensor) -> State:
        """memory (B, N, K) → projected memory with positions (B, N, D); the prefix starts empty."""
        projected = self.memory_proj(memory) + sinusoidal_positions(memory.shape[1], self.d_model, memory.device)
        return {"memory": projected, "mask": mask, "prefix": memory.new_zeros(memory.shape[0], 0, dtype=torch.long)}

    def run(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (B, T) → logits (B, T, V) and last-layer cross-attention (B, T, N)."""
        t = tokens.shape[1]
        # no sqrt(d_model) scaling: with N(0, 1) embeddings it would dwarf what cross-attention adds to the
        # pre-norm residual stream, and the decoder would learn to ignore the source
        x = self.dropout(self.embed(tokens) + sinusoidal_positions(t, self.d_model, tokens.device))
        causal = torch.ones(t, t, dtype=torch.bool, device=tokens.device).triu(1)  # True: may not attend
        weights = None
        for layer in self.layers:
            x, weights = layer(x, state["memory"], causal, ~state["mask"])
        return self.out(self.norm(x)), weights

    def forward(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing: tokens (B, T) → logits (B, T, V), attention (B, T, N)."""
        return self.run(tokens, state)

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State, torch.Tensor]:
        """Appends tokens (B,) to the prefix and re-runs it (no key/value cache: captions are short)."""
        prefix = torch.cat([state["prefix"], tokens.unsqueeze(1)], 1)
        logits, weights = self.run(prefix, state)
        return logits[:, -1], {**state, "prefix": prefix}, weights[:, -1]
