"""Text decoders. They run teacher-forced over a whole sequence, or one step at a time for search."""

from __future__ import annotations

import torch
from torch import nn

from multimodal_kit.models.rnn import run_fp32

LSTMState = tuple[torch.Tensor, ...]  # h, c: each (B, layers, H) — batch first, so search can reorder it — and,
# when the context is read at every step, the context (B, C)


class LSTMDecoder(nn.Module):
    """An LSTM language model whose initial state comes from a context vector (Show-and-Tell), and that can read the
    context again at every step (Cho et al. 2014: beside each input word and at the output layer).

    Args:
        vocab_size: output vocabulary.
        context_dim: size of the context vector that initializes the state.
        embed_dim: word embedding size.
        hidden_dim: LSTM hidden size.
        num_layers: stacked LSTM layers.
        dropout: dropout on embeddings and LSTM outputs.
        pad_id: the padding id (its embedding stays zero).
        context_every_step: also feed the context beside every input word and to the output layer (Cho et al.
            2014), not only into the initial state (Show-and-Tell): the summary stays in view for long outputs.
    """

    def __init__(self, vocab_size: int, context_dim: int, embed_dim: int = 256, hidden_dim: int = 256,
                 num_layers: int = 1, dropout: float = 0.1, pad_id: int = 0, context_every_step: bool = False) -> None:
        super().__init__()
        self.num_layers = num_layers
        self.hidden_dim = hidden_dim
        self.context_every_step = context_every_step
        extra = context_dim if context_every_step else 0
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.init_state = nn.Linear(context_dim, 2 * num_layers * hidden_dim)
        self.lstm = nn.LSTM(embed_dim + extra, hidden_dim, num_layers=num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_dim + extra, vocab_size)

    def initial_state(self, context: torch.Tensor) -> LSTMState:
        """context (B, C) → (h, c), each (B, layers, H), and the context itself when it is read at every step."""
        h, c = torch.tanh(self.init_state(context)).view(-1, 2, self.num_layers, self.hidden_dim).unbind(1)
        return (h.contiguous(), c.contiguous()) + ((context,) if self.context_every_step else ())

    def _run(self, tokens: torch.Tensor, state: LSTMState) -> tuple[torch.Tensor, LSTMState]:
        h, c, *context = state
        x = self.dropout(self.embed(tokens))  # (B, T, E)
        if context:  # the context (B, C) beside each input word
            x = torch.cat([x, context[0].unsqueeze(1).expand(-1, x.shape[1], -1).to(x.dtype)], -1)
        y, (h, c) = run_fp32(self.lstm, x, (h.transpose(0, 1).contiguous(), c.transpose(0, 1).contiguous()))
        y = self.dropout(y)  # (B, T, H)
        if context:  # and at the output layer
            y = torch.cat([y, context[0].unsqueeze(1).expand(-1, y.shape[1], -1).to(y.dtype)], -1)
        return self.out(y), (h.transpose(0, 1), c.transpose(0, 1), *context)  # (B, T, V)

    def forward(self, tokens: torch.Tensor, state: LSTMState) -> torch.Tensor:
        """Teacher forcing: tokens (B, T) (BOS … last input) → logits (B, T, V)."""
        return self._run(tokens, state)[0]

    def step(self, tokens: torch.Tensor, state: LSTMState) -> tuple[torch.Tensor, LSTMState]:
        """One step: tokens (B,) → logits (B, V) and the next state."""
        logits, state = self._run(tokens.unsqueeze(1), state)
        return logits.squeeze(1), state
