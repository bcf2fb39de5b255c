"""Text as the source: token ids → a sequence of encoder states, for methods that generate media from text
(the attention decoder reads every state, a Seq2Seq decoder their mean)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from multimodal_kit.models.rnn import run_fp32


class ConvLSTMTextEncoder(nn.Module):
    """Tacotron 2's text encoder: embeddings, ``conv_layers`` 1-D convolutions (batch norm, ReLU, dropout), then
    a bidirectional LSTM over the true lengths.

    Args:
        vocab_size: the text vocabulary (characters, for speech synthesis).
        pad_id: the padding id (its embedding stays zero).
        embed_dim: embedding size, also the convolutions' width.
        conv_layers: convolutions over the tokens.
        kernel_size: their width (odd).
        hidden_dim: the output size D (the BiLSTM has ``hidden_dim // 2`` units each way).
        dropout: dropout after each convolution.
    """

    media = "text"  # the input it reads

    def __init__(self, vocab_size: int, pad_id: int = 0, embed_dim: int = 256, conv_layers: int = 3,
                 kernel_size: int = 5, hidden_dim: int = 256, dropout: float = 0.5) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.convs = nn.ModuleList(
            nn.Sequential(nn.Conv1d(embed_dim, embed_dim, kernel_size, padding=kernel_size // 2, bias=False),
                          nn.BatchNorm1d(embed_dim), nn.ReLU(), nn.Dropout(dropout))
            for _ in range(conv_layers))
        self.lstm = nn.LSTM(embed_dim, hidden_dim // 2, batch_first=True, bidirectional=True)
        self.out_dim = 2 * (hidden_dim // 2)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (B, L), lengths (B,) → states (B, L, D) (zero past each length) and the lengths (B,)."""
        valid = (torch.arange(tokens.shape[1], device=tokens.device)[None, :] < lengths.to(tokens.device)[:, None])
        x = self.embed(tokens).transpose(1, 2)  # (B, E, L)
        for conv in self.convs:
            x = conv(x) * valid[:, None, :]  # padding stays zero, so it never leaks into valid positions
        packed = pack_padded_sequence(x.transpose(1, 2), lengths.cpu(), batch_first=True, enforce_sorted=False)
        states, _ = pad_packed_sequence(run_fp32(self.lstm, packed)[0], batch_first=True,
                                        total_length=tokens.shape[1])
        return states, lengths
