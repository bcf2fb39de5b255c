"""Greedy and beam search over any step function, shared by every text-generating method.

A step function maps the last tokens ``(N,)`` and a decoder state to log-probabilities ``(N, V)``, the next state
and optionally attention weights ``(N, S)``. A state is a tensor or a tuple/list/dict of tensors whose first
dimension is the batch (``N``), so search can repeat it for beams and reorder it; an object with
``reorder_cache(index)`` (a ``transformers`` key–value cache) in it is reordered through that method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

#: a decoder state: a tensor or a tuple/list/dict of tensors, batch first (the one definition the kit uses)
State = Any
StepFn = Callable[[torch.Tensor, State], tuple[torch.Tensor, State, "torch.Tensor | None"]]


@dataclass
class SearchResult:
    """Generated sequences, BOS excluded.

    Attributes:
        tokens: long (B, L); each row ends at its first EOS, padded after it with EOS.
        lengths: long (B,), tokens up to and including the first EOS (L if none).
        scores: float (B,), the sum of log-probabilities (length-normalized for beam search if asked).
        attention: float (B, L, S) attention weights per output token, if the step function gives them.
    """

    tokens: torch.Tensor
    lengths: torch.Tensor
    scores: torch.Tensor
    attention: torch.Tensor | None = None


def select_state(state: State, index: torch.Tensor) -> State:
    """The state's rows ``index`` (N',): tensors by ``index_select`` on their first dimension, a key–value cache
    (an object with ``reorder_cache``, e.g. ``transformers``' ``DynamicCache``) reordered in place."""
    if isinstance(state, torch.Tensor):
        return state.index_select(0, index.to(state.device))
    if isinstance(state, tuple | list):
        return type(state)(select_state(s, index) for s in state)
    if isinstance(state, dict):
        return {k: select_state(v, index) for k, v in state.items()}
    if callable(getattr(state, "reorder_cache", None)):
        state.reorder_cache(index)
    return state


def _lengths(tokens: torch.Tensor, eos: int) -> torch.Tensor:
    is_eos = tokens == eos
    first = torch.where(is_eos.any(1), is_eos.int().argmax(1) + 1, torch.full_like(tokens[:, 0], tokens.shape[1]))
    return first


@torch.no_grad()
def greedy_search(step: StepFn, state: State, batch_size: int, bos: int, eos: int, max_length: int,
                  device: torch.device | None = None) -> SearchResult:
    """Pick the most likely token at every step until every sequence has emitted EOS or ``max_length``."""
    last = torch.full((batch_size,), bos, dtype=torch.long, device=device)
    finished = torch.zeros(batch_size, dtype=torch.bool, device=device)
    scores = torch.zeros(batch_size, device=device)
    tokens, attention = [], []
    for _ in range(max_length):
        log_probs, state, attn = step(last, state)
        best, last = log_probs.float().max(-1)
        last = last.masked_fill(finished, eos)
        scores = scores + best.masked_fill(finished, 0.0)
        tokens.append(last)
        if attn is not None:
            attention.append(attn)
        finished = finished | (last == eos)
        if finished.all():
            break
    out = torch.stack(tokens, 1)
    return SearchResult(out, _lengths(out, eos), scores, torch.stack(attention, 1) if attention else None)


@torch.no_grad()
def beam_search(step: StepFn, state: State, batch_size: int, bos: int, eos: int, max_length: int,
                beam_size: int = 3, length_penalty: float = 0.0, device: torch.device | None = None) -> SearchResult:
    """Keep the ``beam_size`` best partial sequences per input; return the best finished one.

    Args:
        length_penalty: final scores are divided by ``length ** length_penalty`` (0: plain sum of log-probs).
    """
    b, k = batch_size, beam_size
    state = select_state(state, torch.arange(b, device=device).repeat_interleave(k))  # (B·K, …)
    last = torch.full((b * k,), bos, dtype=torch.long, device=device)
    scores = torch.full((b, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: only one may expand at the first step
    finished = torch.zeros(b * k, dtype=torch.bool, device=device)
    history = torch.empty(b * k, 0, dtype=torch.long, device=device)
    attention: torch.Tensor | None = None
    offsets = (torch.arange(b, device=device) * k).unsqueeze(1)  # (B, 1)
    for _ in range(max_length):
        log_probs, state, attn = step(last, state)
        log_probs = log_probs.float()
        vocab = log_probs.shape[-1]
        # a finished beam continues only with EOS, at no cost, so its score stays fixed
        done_row = torch.full_like(log_probs[0], float("-inf"))
        done_row[eos] = 0.0
        log_probs = torch.where(finished.unsqueeze(1), done_row, log_probs)
        candidates = (scores.view(-1, 1) + log_probs).view(b, k * vocab)
        scores, flat = candidates.topk(k, dim=1)  # (B, K)
        origin = (offsets + flat // vocab).view(-1)  # (B·K,) the beam each survivor extends
        last = (flat % vocab).view(-1)
        history = torch.cat([history[origin], last.unsqueeze(1)], 1)
        state = select_state(state, origin)
        if attn is not None:
            step_attn = attn.index_select(0, origin).unsqueeze(1)
            attention = step_attn if attention is None else torch.cat([attention[origin], step_attn], 1)
        finished = finished[origin] | (last == eos)
        if finished.all():
            break
    lengths = _lengths(history, eos).view(b, k)
    final = scores / lengths.float().pow(length_penalty) if length_penalty else scores
    best = final.argmax(1)  # (B,)
    pick = (torch.arange(b, device=device) * k + best)
    return SearchResult(history[pick], lengths.view(-1)[pick], final.gather(1, best.unsqueeze(1)).squeeze(1),
                        attention[pick] if attention is not None else None)
