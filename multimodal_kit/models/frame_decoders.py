"""Media as the target: an autoregressive decoder over spectrogram frames (Tacotron 2), with attention over the
source's states or, without attention, fed one summary of them at every step (Seq2Seq, Cho et al. 2014).

Frames are emitted ``reduction`` (r) at a time. Each step reads the last frame of the previous group through a
*prenet* (two ReLU layers whose dropout stays on at inference, as Tacotron's does: it keeps the free-running
decoder from copying its input), and predicts the next r frames and a *stop* logit (the utterance ends in this
group). A convolutional *postnet* refines the whole spectrogram afterwards (a residual).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from multimodal_kit.models.attention import attend, attention_state, takes_history
from multimodal_kit.models.masking import masked_mean
from multimodal_kit.models.search import State


class Prenet(nn.Module):
    """ReLU layers with dropout that is on in training and at inference alike.

    Args:
        in_dim: frame size (mel bands).
        dims: the layers' sizes.
        dropout: the dropout probability.
    """

    def __init__(self, in_dim: int, dims: tuple[int, ...] = (256, 128), dropout: float = 0.5) -> None:
        super().__init__()
        sizes = (in_dim, *dims)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.dropout = dropout
        self.out_dim = sizes[-1]

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (..., in_dim) → (..., dims[-1])."""
        for layer in self.layers:
            frames = nn.functional.dropout(torch.relu(layer(frames)), self.dropout, training=True)
        return frames


class Postnet(nn.Module):
    """Tacotron 2's postnet: 1-D convolutions over time (batch norm, tanh but the last) predicting a residual.

    Args:
        n_mels: frame size.
        channels: the hidden convolutions' width.
        layers: convolutions (at least 2).
        kernel_size: their width over frames (odd).
        dropout: dropout after each convolution.
    """

    def __init__(self, n_mels: int, channels: int = 256, layers: int = 5, kernel_size: int = 5,
                 dropout: float = 0.5) -> None:
        super().__init__()
        sizes = [n_mels] + [channels] * (layers - 1) + [n_mels]
        self.convs = nn.ModuleList(
            nn.Sequential(nn.Conv1d(a, b, kernel_size, padding=kernel_size // 2, bias=False), nn.BatchNorm1d(b),
                          nn.Tanh() if i < layers - 1 else nn.Identity(), nn.Dropout(dropout))
            for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (B, T, n_mels) → the residual to add, (B, T, n_mels)."""
        x = frames.transpose(1, 2)
        for conv in self.convs:
            x = conv(x)
        return x.transpose(1, 2)


class FrameDecoder(nn.Module):
    """The decoder: prenet → attention LSTM → attention (or the summary) → decoder LSTM → r frames + stop.

    At step k: ``h1 = LSTM1([prenet(y_{k-1}); context_{k-1}])``; with attention,
    ``context_k = attend(h1, memory, history)`` (location-sensitive attention sees its previous and cumulative
    weights), else ``context_k`` is the mean of the valid memory, the same at every step;
    ``h2 = LSTM2([h1; context_k])``; frames and stop logit from ``[h2; context_k]``. Both LSTMs start from the
    summary (Seq2Seq's whole hand-over of the source).

    Args:
        n_mels: frame size M.
        memory_dim: the source states' size K.
        attention: an attention module (:mod:`multimodal_kit.models.attention`), or ``None`` for Seq2Seq.
        reduction: r, frames per decoder step.
        prenet_dims: the prenet's layer sizes.
        hidden_dim: both LSTMs' size H.
        postnet_channels: the postnet's width.
        postnet_layers: its convolutions; 0: no postnet.
        dropout: dropout on the LSTMs' outputs (the prenet's and postnet's are Tacotron's 0.5).
    """

    def __init__(self, n_mels: int, memory_dim: int, attention: nn.Module | None, reduction: int = 2,
                 prenet_dims: tuple[int, ...] = (256, 128), hidden_dim: int = 512, postnet_channels: int = 256,
                 postnet_layers: int = 5, dropout: float = 0.1) -> None:
        super().__init__()
        self.n_mels, self.reduction = n_mels, reduction
        self.attention = attention
        self.gives_history = attention is not None and takes_history(attention)
        self.prenet = Prenet(n_mels, tuple(prenet_dims))
        self.init_state = nn.Linear(memory_dim, 4 * hidden_dim)
        self.attention_rnn = nn.LSTMCell(self.prenet.out_dim + memory_dim, hidden_dim)
        self.decoder_rnn = nn.LSTMCell(hidden_dim + memory_dim, hidden_dim)
        self.dropout = nn.Dropout(dropout)
        self.frames = nn.Linear(hidden_dim + memory_dim, n_mels * reduction)
        self.stop = nn.Linear(hidden_dim + memory_dim, 1)
        self.postnet = Postnet(n_mels, postnet_channels, postnet_layers) if postnet_layers else None

    def initial_state(self, memory: torch.Tensor, mask: torch.Tensor) -> State:
        """memory (B, N, K), mask (B, N) → the state before the first step."""
        summary = masked_mean(memory, mask)  # (B, K)
        h1, c1, h2, c2 = torch.tanh(self.init_state(summary)).chunk(4, -1)
        state = {"h1": h1, "c1": c1, "h2": h2, "c2": c2, "summary": summary,
                 "context": summary if self.attention is None else torch.zeros_like(summary)}
        return state | (attention_state(self.attention, memory, mask) if self.attention is not None else {})

    def step(self, frame: torch.Tensor, state: State) -> tuple[torch.Tensor, torch.Tensor, State, torch.Tensor | None]:
        """The previous frame (B, M) → the next r frames (B, r, M), stop logit (B,), next state, attention
        weights (B, N) (``None`` without attention)."""
        h1, c1 = self.attention_rnn(torch.cat([self.prenet(frame), state["context"]], -1), (state["h1"], state["c1"]))
        state = {**state, "h1": h1, "c1": c1}
        weights = None
        if self.attention is not None:
            context, looked = attend(self.attention, self.dropout(h1), state, self.gives_history)
            state, weights = {**state, **looked, "context": context}, looked["weights"]
        context = state["context"]
        h2, c2 = self.decoder_rnn(torch.cat([self.dropout(h1), context], -1), (state["h2"], state["c2"]))
        out = torch.cat([self.dropout(h2), context], -1)  # (B, H + K)
        frames = self.frames(out).view(-1, self.reduction, self.n_mels)
        return frames, self.stop(out).squeeze(-1), {**state, "h2": h2, "c2": c2}, weights

    def refine(self, frames: torch.Tensor) -> torch.Tensor:
        """The postnet's residual added: frames (B, T, M) → (B, T, M)."""
        return frames if self.postnet is None else frames + self.postnet(frames)

    def forward(self, targets: torch.Tensor, state: State) -> dict[str, torch.Tensor]:
        """Teacher forcing on target frames (B, T, M): each step reads the last target frame of the group before.

        Returns ``frames`` and ``refined`` (B, S·r, M) (before and after the postnet, S = ⌈T / r⌉ steps),
        ``stop`` logits (B, S), and ``attention`` (B, S, N) (absent without attention).
        """
        r, steps = self.reduction, math.ceil(targets.shape[1] / self.reduction)
        padded = nn.functional.pad(targets, (0, 0, 0, steps * r - targets.shape[1]))
        inputs = torch.cat([padded.new_zeros(len(padded), 1, self.n_mels), padded[:, r - 1::r][:, :-1]], 1)
        frames, stops, weights = [], [], []
        for k in range(steps):
            step_frames, stop, state, step_weights = self.step(inputs[:, k], state)
            frames.append(step_frames)
            stops.append(stop)
            weights.append(step_weights)
        out = torch.cat(frames, 1)
        result = {"frames": out, "refined": self.refine(out), "stop": torch.stack(stops, 1)}
        return result | ({"attention": torch.stack(weights, 1)} if self.attention is not None else {})

    @torch.no_grad()
    def generate(self, state: State, max_steps: int, threshold: float = 0.5) -> dict[str, torch.Tensor]:
        """Free running from the state until every item's stop probability passes ``threshold`` or ``max_steps``.

        Returns ``refined`` (B, S·r, M), ``lengths`` (B,) frames up to each item's stop, ``steps`` (B,) decoder
        steps, ``stopped`` (B,) whether the stop token fired, and ``attention`` (B, S, N) (with attention).
        """
        n = state["summary"].shape[0]
        frame = state["summary"].new_zeros(n, self.n_mels)
        steps = torch.full((n,), max_steps, dtype=torch.long, device=frame.device)
        stopped = torch.zeros(n, dtype=torch.bool, device=frame.device)
        frames, weights = [], []
        for k in range(max_steps):
            step_frames, stop, state, step_weights = self.step(frame, state)
            frames.append(step_frames)
            weights.append(step_weights)
            ends = (torch.sigmoid(stop.float()) > threshold) & ~stopped
            steps = torch.where(ends, k + 1, steps)
            stopped = stopped | ends
            frame = step_frames[:, -1]
            if bool(stopped.all()):
                break
        out = self.refine(torch.cat(frames, 1))
        result = {"refined": out, "lengths": steps * self.reduction, "steps": steps, "stopped": stopped}
        return result | ({"attention": torch.stack(weights, 1)} if self.attention is not None else {})
