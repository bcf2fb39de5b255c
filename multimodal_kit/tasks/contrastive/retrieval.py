"""Scoring a dual encoder over a whole split: Recall@K both ways and zero-shot classification from prompts.

Text → media: each text queries every item's media; a hit at K when its own item's media ranks within the top K.
Media → text: each item's media queries the split's *distinct* texts (a caption that fits several scenes is one
entry); a hit when its own text ranks within the top K. Ties count against the hit (a collapsed model, every score
equal, ranks nothing), and ``t2m_r1_same_text`` says how often the top medium's own text is the query's (a
caption often fits several scenes: these are right answers that Recall@1 counts as misses).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def ranks(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """scores (Q, G), target (Q,) gallery index → each query's rank of its target (0 = top), ties against it."""
    own = scores.gather(1, target[:, None])  # (Q, 1)
    return (scores >= own).sum(1) - 1


def recall_scores(media: torch.Tensor, text: torch.Tensor, keys: torch.Tensor, ks: Sequence[int] = (1, 5, 10)
                  ) -> dict[str, float]:
    """Recall@K of ``t2m`` and ``m2t`` over N pairs, and ``t2m_r1_same_text``.

    Args:
        media: media embeddings (N, P), L2-normalized.
        text: text embeddings (N, P), row i paired with media row i.
        keys: each text's key (N,), equal for equal texts (:func:`~.loss.text_keys`).
        ks: the K of each score.
    """
    n = len(media)
    rows = torch.arange(n, device=media.device)
    t2m = text.float() @ media.float().T  # (N, N)
    t2m_ranks = ranks(t2m, rows)
    distinct, inverse = torch.unique(keys, return_inverse=True)
    first = torch.full((len(distinct),), n, device=keys.device).scatter_reduce(0, inverse, rows, "amin")
    m2t_ranks = ranks(media.float() @ text[first].float().T, inverse)  # (N, U) over the distinct texts
    scores = {f"t2m_r{k}": float((t2m_ranks < k).float().mean()) for k in ks}
    scores |= {f"m2t_r{k}": float((m2t_ranks < k).float().mean()) for k in ks}
    scores["t2m_r1_same_text"] = float((keys[t2m.argmax(1)] == keys).float().mean())
    return scores


def zero_shot_truth(texts: Sequence[str], classes: Sequence[str]) -> list[int]:
    """Each item's class for zero-shot scoring, read from its text: the one class whose words all occur in it
    (``red circle`` in "a large red circle"); -1 when none or several do (a scene of two objects, a command
    among digits), and such items are not scored."""
    words = [set(c.lower().split()) for c in classes]
    truth = []
    for text in texts:
        have = set(text.lower().split())
        found = [i for i, w in enumerate(words) if w <= have]
        truth.append(found[0] if len(found) == 1 else -1)
    return truth


def zero_shot_accuracy(media: torch.Tensor, prompts: torch.Tensor, truth: torch.Tensor) -> tuple[float, int]:
    """The share of scored items whose nearest prompt is their class's, and how many were scored.

    Args:
        media: media embeddings (N, P).
        prompts: one embedding per class's prompt (C, P).
        truth: each item's class (N,), -1 for items not scored.
    """
    scored = truth >= 0
    if not scored.any():
        return float("nan"), 0
    predicted = (media[scored].float() @ prompts.float().T).argmax(1)
    return float((predicted == truth[scored]).float().mean()), int(scored.sum())
