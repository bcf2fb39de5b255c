"""Training batches that a checkpoint resumes exactly, even mid-epoch.

Three pieces make a resumed run draw what the uninterrupted run would have drawn:

- :class:`EpochShuffle`: the order of an epoch is a function of (seed, epoch) only, not of how many random numbers
  were drawn before it (``RandomSampler`` draws its seed from the global generator). Under DDP Lightning replaces it
  by its ``DistributedSampler``, which is seeded the same way.
- :class:`ResumableLoader`: a ``DataLoader`` with Lightning's ``state_dict``/``load_state_dict`` protocol
  (Lightning stores it in the checkpoint's loop state): it records how many batches of which epoch were handed
  out, and on resume skips those batches' indices without loading them.
- :func:`seed_batch`: before each training batch is fetched, the global generators are seeded from (seed, rank,
  epoch, batch), so what the batch draws (a random reference caption, SpecAugment masks, dropout, GAN noise)
  does not depend on the history of the process. A run without a seed (``seed_everything: null``) keeps drawing
  from the unseeded generators.
"""

from __future__ import annotations

import os
import random
import zlib
from collections.abc import Iterator, Sized
from typing import Any

import numpy as np
import torch
from torch.utils.data import RandomSampler, Sampler

from multimodal_kit.compat import IndexHookLoader


def seed_of(*parts: int) -> int:
    """A 32-bit seed mixed from integers (the same in every process and Python run)."""
    return zlib.crc32(",".join(str(p) for p in parts).encode())


def global_seed() -> int | None:
    """The run's seed: what ``seed_everything`` set (``PL_GLOBAL_SEED``, also in DDP workers), or ``None``."""
    value = os.environ.get("PL_GLOBAL_SEED")
    return int(value) if value is not None else None


def seed_batch(seed: int, epoch: int, batch: int) -> None:
    """Seed torch (CPU and CUDA), NumPy and Python's generators for batch ``batch`` of epoch ``epoch``."""
    rank = torch.distributed.get_rank() if torch.distributed.is_available() and torch.distributed.is_initialized() \
        else 0
    value = seed_of(seed, rank, epoch, batch)
    # torch.manual_seed(value) says the same but probes every backend each time (~0.2 ms a call)
    torch.default_generator.manual_seed(value)
    if torch.cuda.is_initialized():
        torch.cuda.manual_seed_all(value)
    elif torch.backends.mps.is_available():
        torch.mps.manual_seed(value)
    np.random.seed(value)
    random.seed(value)


class EpochShuffle(RandomSampler):
    """A uniformly random order of ``data_source`` per epoch, drawn from (``seed``, epoch) alone; Lightning calls
    :meth:`set_epoch` at the start of each epoch (as for its ``DistributedSampler``)."""

    def __init__(self, data_source: Sized, seed: int = 0) -> None:
        super().__init__(data_source)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(seed_of(self.seed, self.epoch))
        yield from torch.randperm(len(self.data_source), generator=generator).tolist()


def epoch_generator(sampler: Any) -> torch.Generator | None:
    """A generator seeded from a sampler's (seed, epoch) (:class:`EpochShuffle`, ``DistributedSampler``), for
    randomness that must follow its epoch; ``None`` if the sampler has neither."""
    if not (hasattr(sampler, "seed") and hasattr(sampler, "epoch")):
        return None
    return torch.Generator().manual_seed(seed_of(sampler.seed, sampler.epoch, 1))


class _SkipBatches(Sampler):
    """The first ``skip`` batches of ``batches`` left out, once (a persistent worker iterator keeps this object
    for later epochs, which start from the beginning)."""

    def __init__(self, batches: Any, skip: int) -> None:
        self.batches = batches
        self.skip = skip

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[Any]:
        iterator = iter(self.batches)
        skip, self.skip = self.skip, 0
        for _ in range(skip):
            next(iterator, None)
        yield from iterator


class ResumableLoader(IndexHookLoader):
    """The training ``DataLoader``: resumable mid-epoch (Lightning's ``_Stateful`` protocol) and seeding each
    batch (:func:`seed_batch`). The epoch is read from the sampler (``sampler.epoch``), which Lightning sets."""

    def state_dict(self) -> dict[str, int]:
        """Where the loader stands: ``epoch`` and the ``batches`` of it handed out so far."""
        return {"epoch": getattr(self, "_epoch", 0), "batches": getattr(self, "_handed_out", 0)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Resume there: the next iteration over that epoch skips the batches already handed out."""
        self._pending = (int(state["epoch"]), int(state["batches"]))

    def index_batches(self, batches: Any) -> Any:
        skip = getattr(self, "_skip", 0)
        return _SkipBatches(batches, skip) if skip else batches

    def current_epoch(self) -> int:
        """The epoch the sampler was set to (``sampler.epoch`` or ``batch_sampler.sampler.epoch``; else 0)."""
        for sampler in (self.sampler, getattr(self.batch_sampler, "sampler", None)):
            if hasattr(sampler, "epoch"):
                return int(sampler.epoch)
        return 0

    def __iter__(self) -> Iterator[Any]:
        epoch = self.current_epoch()
        pending, self._pending = getattr(self, "_pending", None), None
        self._skip = pending[1] if pending is not None and pending[0] == epoch else 0
        self._epoch, self._handed_out = epoch, self._skip
        iterator = super().__iter__()
        self._skip = 0
        seed = global_seed()
        while True:
            if seed is not None:
                seed_batch(seed, epoch, self._handed_out)
            try:
                batch = next(iterator)
            except StopIteration:
                return
            self._handed_out += 1
            yield batch
