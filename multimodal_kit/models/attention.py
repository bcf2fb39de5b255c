"""Attention over a source sequence (image regions, audio frames), for the recurrent attention decoder.

Every module here maps a query (B, Q) and a memory of keys (B, N, K) with a validity mask (B, N) to a context
vector (B, K) and weights (B, N) that are non-negative and sum to 1 over the valid positions. Keys can be
projected once per sequence (:meth:`prepare`) and reused at every decoding step. The decoder also hands each
module its ``history`` (B, 2, N): the previous step's weights and their running sum, which location-sensitive
attention reads (the others ignore it). A user's own attention module fits the recurrent decoder when it has the
same ``prepare``/``forward(query, keys, prepared, mask, history=None)`` signature and ``(query_dim, key_dim)`` as
its first constructor arguments.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import nn

from multimodal_kit.errors import ConfigError


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim of scores (B, N), with positions where ``mask`` is False given weight 0."""
    return scores.masked_fill(~mask, float("-inf")).softmax(-1)


class AdditiveAttention(nn.Module):
    """Bahdanau attention: ``score_i = v · tanh(W_q q + W_k k_i)`` (Show-Attend-Tell's soft attention).

    Args:
        query_dim: decoder state size Q.
        key_dim: memory feature size K.
        attention_dim: size of the hidden layer of the scoring MLP.
    """

    def __init__(self, query_dim: int, key_dim: int, attention_dim: int = 256) -> None:
        super().__init__()
        self.query = nn.Linear(query_dim, attention_dim)
        self.key = nn.Linear(key_dim, attention_dim, bias=False)
        self.score = nn.Linear(attention_dim, 1, bias=False)

    def prepare(self, keys: torch.Tensor) -> torch.Tensor:
        """keys (B, N, K) → projected keys (B, N, A), computed once per sequence."""
        return self.key(keys)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, prepared: torch.Tensor, mask: torch.Tensor,
                history: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, Q), keys (B, N, K), prepared (B, N, A), mask (B, N) → context (B, K), weights (B, N)."""
        scores = self.score(torch.tanh(prepared + self.query(query).unsqueeze(1) + self.location_term(history))
                            ).squeeze(-1)  # (B, N)
        weights = masked_softmax(scores, mask)
        return torch.bmm(weights.unsqueeze(1), keys).squeeze(1), weights

    def location_term(self, history: torch.Tensor | None) -> torch.Tensor | float:
        """What the attention history adds to the scores' hidden layer: nothing here."""
        return 0.0


class LocationSensitiveAttention(AdditiveAttention):
    """Additive attention that also sees where it looked (Chorowski et al. 2015; Tacotron 2): the previous
    weights and their running sum, convolved over the positions, join the score's hidden layer — so attention
    can move forward monotonically (speech synthesis, long inputs).

    Args:
        query_dim: decoder state size Q.
        key_dim: memory feature size K.
        attention_dim: size of the hidden layer of the scoring MLP.
        filters: location features per position.
        kernel_size: the convolution's width over the positions (odd).
    """

    def __init__(self, query_dim: int, key_dim: int, attention_dim: int = 128, filters: int = 32,
                 kernel_size: int = 31) -> None:
        super().__init__(query_dim, key_dim, attention_dim)
        self.location_conv = nn.Conv1d(2, filters, kernel_size, padding=kernel_size // 2, bias=False)
        self.location = nn.Linear(filters, attention_dim, bias=False)

    def location_term(self, history: torch.Tensor | None) -> torch.Tensor | float:
        """history (B, 2, N) → (B, N, A); nothing before the first step."""
        if history is None:
            return 0.0
        return self.location(self.location_conv(history).transpose(1, 2))


class DotAttention(nn.Module):
    """Luong ``dot`` attention: ``score_i = q · k_i / sqrt(K)`` (what Keras' ``Attention`` layer computes, scaled).

    Needs ``query_dim == key_dim``; use :class:`GeneralAttention` otherwise.
    """

    def __init__(self, query_dim: int, key_dim: int) -> None:
        super().__init__()
        if query_dim != key_dim:
            raise ConfigError(f"dot attention needs query_dim == key_dim, got {query_dim} and {key_dim}; use "
                             "'general' attention (a learned projection) or set the decoder's hidden_dim to "
                             f"{key_dim}.")
        self.scale = key_dim**-0.5

    def prepare(self, keys: torch.Tensor) -> torch.Tensor:
        return keys

    def forward(self, query: torch.Tensor, keys: torch.Tensor, prepared: torch.Tensor, mask: torch.Tensor,
                history: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        scores = torch.bmm(prepared, query.unsqueeze(-1)).squeeze(-1) * self.scale  # (B, N)
        weights = masked_softmax(scores, mask)
        return torch.bmm(weights.unsqueeze(1), keys).squeeze(1), weights


class GeneralAttention(DotAttention):
    """Luong ``general`` attention: ``score_i = q · W k_i / sqrt(Q)``; keys are projected once per sequence."""

    def __init__(self, query_dim: int, key_dim: int) -> None:
        nn.Module.__init__(self)
        self.project = nn.Linear(key_dim, query_dim, bias=False)
        self.scale = query_dim**-0.5

    def prepare(self, keys: torch.Tensor) -> torch.Tensor:
        return self.project(keys)  # (B, N, Q)


def takes_history(attention: nn.Module) -> bool:
    """Whether ``attention.forward`` takes the ``history`` of where it looked (older user modules need not)."""
    return "history" in inspect.signature(attention.forward).parameters


def attention_state(attention: nn.Module, memory: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """The attention part of a decoder's state before the first step: memory (B, N, K), mask (B, N), the
    prepared keys, and the previous and cumulative weights (B, N), zero."""
    none = mask.new_zeros(mask.shape, dtype=memory.dtype)  # (B, N): no attention yet
    return {"memory": memory, "mask": mask, "prepared": attention.prepare(memory), "weights": none,
            "cumulative": none}


def attend(attention: nn.Module, query: torch.Tensor, state: dict[str, torch.Tensor], with_history: bool
           ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One attention step of a decoder: query (B, Q) over the state's memory → context (B, K) and the state's
    attention entries updated (``weights`` (B, N) and their running sum ``cumulative``)."""
    extra = {"history": torch.stack([state["weights"], state["cumulative"]], 1)} if with_history else {}
    context, weights = attention(query, state["memory"], state["prepared"], state["mask"], **extra)
    return context, {"weights": weights, "cumulative": state["cumulative"] + weights}


ATTENTION_KINDS: dict[str, type[nn.Module]] = {
    "additive": AdditiveAttention,
    "location": LocationSensitiveAttention,
    "dot": DotAttention,
    "general": GeneralAttention,
}


def build_attention(kind: str | Callable[[int, int], nn.Module], query_dim: int, key_dim: int,
                    attention_dim: int = 256) -> nn.Module:
    """An attention module by name (:data:`ATTENTION_KINDS`; ``additive`` and ``location`` get ``attention_dim``)
    or from a user's class or factory called with ``(query_dim, key_dim)``."""
    if not isinstance(kind, str):
        return kind(query_dim, key_dim)
    if kind not in ATTENTION_KINDS:
        raise ConfigError(f"unknown attention {kind!r}: use one of {sorted(ATTENTION_KINDS)} or a class path")
    if kind in ("additive", "location"):
        return ATTENTION_KINDS[kind](query_dim, key_dim, attention_dim)
    return ATTENTION_KINDS[kind](query_dim, key_dim)


def alignment_ok(weights: torch.Tensor, steps: torch.Tensor, source_lengths: torch.Tensor,
                 stopped: torch.Tensor, slack: int = 1) -> torch.Tensor:
    """Whether each free-running alignment is healthy: the most attended source position never moves back by
    more than ``slack`` over the decoder's steps, it reaches the source's last two positions (the last token
    and EOS), and the decoder stopped by itself.

    Args:
        weights: attention (B, S, N) over S decoder steps.
        steps: (B,) the steps each item ran.
        source_lengths: (B,) valid source positions.
        stopped: (B,) whether the stop token fired.

    Returns:
        bool (B,).
    """
    position = weights.float().argmax(-1)  # (B, S)
    running = torch.arange(weights.shape[1], device=weights.device)[None, :] < steps[:, None]  # (B, S)
    furthest = torch.where(running, position, -1).cummax(1).values  # (B, S)
    monotonic = ((position >= furthest - slack) | ~running).all(1)
    complete = furthest[:, -1] >= source_lengths.to(weights.device) - 2
    return monotonic & complete & stopped


def guided_attention_penalty(weights: torch.Tensor, step_lengths: torch.Tensor, source_lengths: torch.Tensor,
                             sigma: float = 0.4) -> torch.Tensor:
    """Guided attention (Tachibana et al. 2017, as ESPnet's Tacotron 2 recipes use it): attention far from the
    diagonal costs ``1 - exp(-(n/N - t/T)^2 / (2 sigma^2))``, which speeds up learning a monotonic alignment.

    Args:
        weights: attention (B, T, N) over T decoder steps and N source positions.
        step_lengths: (B,) valid decoder steps.
        source_lengths: (B,) valid source positions.
        sigma: the width of the band around the diagonal that costs little.

    Returns:
        the mean cost per valid (step, position) pair.
    """
    t = torch.arange(weights.shape[1], device=weights.device)[None, :, None] / step_lengths[:, None, None]
    n = torch.arange(weights.shape[2], device=weights.device)[None, None, :] / source_lengths[:, None, None]
    cost = 1.0 - torch.exp(-((n - t) ** 2) / (2 * sigma**2))  # (B, T, N)
    valid = (t < 1) & (n < 1)
    return (weights.float() * cost * valid).sum() / valid.sum()


def doubly_stochastic_penalty(weights: torch.Tensor, step_mask: torch.Tensor,
                              source_mask: torch.Tensor) -> torch.Tensor:
    """Show-Attend-Tell's regularizer: every source position should receive, summed over the output steps,
    a total attention of about 1: ``mean_b sum_i (1 - sum_t alpha_bti)^2`` over valid steps t and positions i.

    Args:
        weights: attention (B, T, N).
        step_mask: (B, T), True for real output steps (not padding).
        source_mask: (B, N), True for valid source positions.
    """
    coverage = (weights * step_mask.unsqueeze(-1)).sum(1)  # (B, N)
    return (((1.0 - coverage) ** 2) * source_mask).sum(1).mean()
