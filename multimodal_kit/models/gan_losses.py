"""Losses of the matching-aware conditional GAN.

The discriminator sees three kinds of pairs (GAN-CLS, Reed et al. 2016): a real sample with its own text (real),
a real sample with another item's text (*wrong*, counted as fake) and a generated sample with its text (fake).
``bce`` is GAN-CLS's binary cross-entropy; ``hinge`` is the hinge loss of DF-GAN (Tao et al. 2022), whose
matching-aware gradient penalty (:func:`matching_aware_penalty`) smooths D around real, matching pairs.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from multimodal_kit.models.masking import masked_mean

LossKind = Literal["bce", "hinge"]


def discriminator_loss(real: torch.Tensor, wrong: torch.Tensor, fake: torch.Tensor, kind: LossKind,
                       wrong_mask: torch.Tensor | None = None) -> torch.Tensor:
    """D's loss from its scores (logits) of real (B,), wrong-text (B,) and fake (B,) pairs.

    ``real`` is pushed up; ``wrong`` and ``fake`` are pushed down, each with half the weight. ``wrong_mask`` (B,)
    keeps only the wrong pairs whose text really differs (a batch can hold the same text twice).
    """
    if kind == "bce":
        real_term = F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
        wrong_terms = F.binary_cross_entropy_with_logits(wrong, torch.zeros_like(wrong), reduction="none")
        fake_term = F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    elif kind == "hinge":
        real_term = F.relu(1 - real).mean()
        wrong_terms = F.relu(1 + wrong)
        fake_term = F.relu(1 + fake).mean()
    else:
        raise ValueError(f"unknown GAN loss {kind!r}; use 'bce' or 'hinge'")
    return real_term + 0.5 * (masked_mean(wrong_terms[None], None if wrong_mask is None else wrong_mask[None])[0] + fake_term)


def generator_loss(fake: torch.Tensor, kind: LossKind) -> torch.Tensor:
    """G's loss from D's scores (B,) of its samples with their text (non-saturating for ``bce``)."""
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    if kind == "hinge":
        return -fake.mean()
    raise ValueError(f"unknown GAN loss {kind!r}; use 'bce' or 'hinge'")


def matching_aware_penalty(scores: torch.Tensor, inputs: tuple[torch.Tensor, torch.Tensor],
                           power: float = 6.0) -> torch.Tensor:
    """DF-GAN's matching-aware gradient penalty: ``mean(‖∇_(x, c) D(x, c)‖₂ ** power)`` over real, matching pairs.

    Args:
        scores: D's scores (B,) of the pairs ``inputs``.
        inputs: the real samples (B, …) and their conditions (B, D), both with ``requires_grad``.
        power: the exponent (DF-GAN: 6).
    """
    grads = torch.autograd.grad(scores.sum(), inputs, create_graph=True)
    norm = torch.cat([g.flatten(1) for g in grads], dim=1).pow(2).sum(1).add(1e-12).sqrt()  # (B,)
    return norm.pow(power).mean()


def mismatched_texts(texts: list[str], generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """For the wrong pairs: a permutation (B,) pairing each item with another item's text, and a mask (B,) of the
    pairs whose texts really differ."""
    n = len(texts)
    order = torch.randperm(n, generator=generator)
    # a random derangement-like pairing: shift a random permutation by one
    permutation = torch.empty(n, dtype=torch.long)
    permutation[order] = order.roll(1)
    mask = torch.tensor([texts[i] != texts[int(j)] for i, j in enumerate(permutation)], dtype=torch.bool)
    return permutation, mask


def nearest_texts(texts: list[str], generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard wrong pairs: each item paired with the batch's text nearest its own that still differs — fewest words
    differing position by position, each word of a longer text counting as one (so "a red circle" pairs with "a red
    square" before "a blue square"); ties broken at random. Returns the pairing (B,), not a permutation, and a
    mask (B,) of the pairs whose texts differ (none when the whole batch says one text)."""
    words = [t.split() for t in texts]
    ties = torch.rand(len(texts), len(texts), generator=generator).tolist()
    pairing, mask = [], []
    for i, own in enumerate(words):
        distances = [(sum(a != b for a, b in zip(own, other, strict=False)) + abs(len(own) - len(other)), ties[i][j], j)
                     for j, other in enumerate(words) if texts[j] != texts[i]]
        pairing.append(min(distances)[2] if distances else (i + 1) % len(texts))
        mask.append(bool(distances))
    return torch.tensor(pairing, dtype=torch.long), torch.tensor(mask, dtype=torch.bool)


def same_texts(texts: list[str]) -> torch.Tensor:
    """(B, B): whether items i and j (i ≠ j) say the same text — pairs a matching loss must not count as wrong."""
    same = torch.tensor([[a == b for b in texts] for a in texts], dtype=torch.bool)
    return same.fill_diagonal_(False)


def contrastive_matching_loss(features: torch.Tensor, text_embeddings: torch.Tensor, same: torch.Tensor,
                              temperature: float = 0.1) -> torch.Tensor:
    """Each sample should match its own text better than every other text of the batch (InfoNCE over the batch,
    as XMC-GAN, Zhang et al. 2021): the matching-aware loss with all B − 1 wrong texts instead of one.

    Args:
        features: D's sample features φ(x) (B, F).
        text_embeddings: D's projections of the texts embed(c) (B, F), row i the text of sample i.
        same: :func:`same_texts` of the batch (B, B): other items with the same text are not counted as wrong
            (single words repeat).
        temperature: the softmax temperature of the cosine similarities.
    """
    logits = F.normalize(features, dim=1) @ F.normalize(text_embeddings, dim=1).T / temperature  # (B, B)
    return F.cross_entropy(logits.float().masked_fill(same.to(logits.device), float("-inf")),
                           torch.arange(len(same), device=logits.device))
