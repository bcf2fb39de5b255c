"""CLIP's symmetric InfoNCE over in-batch negatives gathered from every process, with repeated texts kept out of
each other's negatives; and the padded gather it needs (processes may hold batches of different sizes)."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

#: ``LightningModule.all_gather``: (tensor, sync_grads=…) → (W, …) under several processes, the tensor alone else
AllGather = Callable[..., torch.Tensor]


def text_keys(texts: Sequence[str]) -> torch.Tensor:
    """One key per text, equal for equal texts (whitespace and case aside): long (B,), CRC-32 of the text."""
    return torch.tensor([zlib.crc32(" ".join(t.lower().split()).encode()) for t in texts], dtype=torch.long)


def gather_rows(x: torch.Tensor, all_gather: AllGather, world: tuple[int, int], sync_grads: bool = False
                ) -> tuple[torch.Tensor, int]:
    """Every process's rows of ``x`` (B_r, …), stacked in rank order → (ΣB_r, …), and where this process's rows
    start; ``world`` = (processes, this one's rank). Rows are padded to the largest B_r for the collective and
    cut again; with ``sync_grads`` gradients flow back to each process's own rows (in-batch negatives across
    GPUs, as open_clip's ``gather_with_grad``)."""
    world_size, rank = world
    if world_size == 1:
        return x, 0
    sizes = all_gather(torch.tensor([len(x)], device=x.device)).flatten().tolist()  # (W,)
    top = max(sizes)
    padded = F.pad(x, (0, 0) * (x.dim() - 1) + (0, top - len(x)))
    gathered = all_gather(padded, sync_grads=sync_grads)  # (W, top, …)
    return torch.cat([g[:n] for g, n in zip(gathered, sizes, strict=True)]), sum(sizes[:rank])


def clip_loss(media: torch.Tensor, text: torch.Tensor, keys: torch.Tensor, logit_scale: torch.Tensor,
              all_gather: AllGather, world: tuple[int, int] = (1, 0)) -> torch.Tensor:
    """Symmetric InfoNCE (Radford et al. 2021) of this process's pairs against every process's.

    Args:
        media: L2-normalized media embeddings (B, P).
        text: L2-normalized text embeddings (B, P), row i paired with media row i.
        keys: each text's key (B,) (:func:`text_keys`): a pair whose text equals another's is no negative of it
            (a caption that fits several scenes is right for each).
        logit_scale: log of the inverse temperature (a scalar).
        all_gather: the module's ``all_gather``.
        world: (processes, this one's rank).

    Returns:
        The mean of the media → text and text → media cross-entropies over this process's B pairs.
    """
    all_media, start = gather_rows(media, all_gather, world, sync_grads=True)  # (N, P)
    all_text, _ = gather_rows(text, all_gather, world, sync_grads=True)
    all_keys, _ = gather_rows(keys, all_gather, world)
    labels = torch.arange(start, start + len(media), device=media.device)  # (B,)
    same = keys[:, None].to(all_keys.device) == all_keys[None, :]  # (B, N): the other pairs with the same text
    same[torch.arange(len(media)), labels] = False
    scale = logit_scale.exp()
    media_to_text = (scale * media @ all_text.T).float().masked_fill(same, float("-inf"))  # (B, N)
    text_to_media = (scale * text @ all_media.T).float().masked_fill(same, float("-inf"))
    return (F.cross_entropy(media_to_text, labels) + F.cross_entropy(text_to_media, labels)) / 2
