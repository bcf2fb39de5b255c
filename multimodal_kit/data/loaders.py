"""DataLoaders of the data modules: training shuffled per (seed, epoch) and resumable mid-epoch, evaluation in
order and sharded without repeats under DDP, prediction in order (Lightning shards it)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import BatchSampler, DataLoader, Dataset

from multimodal_kit.data.resumable import EpochShuffle, ResumableLoader, global_seed


def train_order(dataset: Dataset) -> EpochShuffle:
    """The training order: a random permutation per epoch, drawn from the run's seed and the epoch alone."""
    return EpochShuffle(dataset, seed=global_seed() or 0)


MAX_AUTO_WORKERS = 8


def usable_cpus() -> int:
    """The CPU cores this process may run on (its affinity mask: a cluster job's share, not the whole node)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def auto_workers(on_gpu: bool, processes_per_node: int = 1, cpus: int | None = None,
                 node_cpus: int | None = None) -> int:
    """DataLoader workers when the config leaves ``num_workers`` unset. On GPUs: this process's cores less one
    for itself, at most 8 — its share of the node's cores when it may run on all of them (``cpus`` =
    ``node_cpus``), or all of its own when the launcher bound it to some (SLURM's per-task binding). On CPU: none,
    since the training step already uses every core and a worker would take them from it."""
    if not on_gpu:
        return 0
    cpus = cpus if cpus is not None else usable_cpus()
    node_cpus = node_cpus if node_cpus is not None else os.cpu_count() or cpus
    share = cpus // max(processes_per_node, 1) if cpus >= node_cpus else cpus
    return max(0, min(MAX_AUTO_WORKERS, share - 1))


def build_loader(dataset: Dataset, batch_size: int, collate_fn: Callable[[list[Any]], Any], num_workers: int,
                 stage: str, world: tuple[int, int] = (1, 0), batch_sampler: BatchSampler | None = None,
                 pin_memory: bool = False) -> DataLoader:
    """The loader of ``dataset`` for ``stage`` (``train``, ``evaluate`` or ``predict``).

    Args:
        world: (processes, this process's rank); evaluation splits are sharded over them so every item is seen
            exactly once (Lightning's default ``DistributedSampler`` repeats items to even out the shards, which
            would count them twice in the test metrics); ranks may get one batch more or less.
        batch_sampler: training batches of its own (e.g. length-grouped), instead of shuffled ones.
        pin_memory: page-locked batches, for faster copies to a GPU.
    """
    if batch_sampler is not None:
        batching: dict[str, Any] = {"batch_sampler": batch_sampler}
    elif stage == "train":
        batching = {"batch_size": batch_size, "sampler": train_order(dataset)}
    elif stage == "evaluate" and world[0] > 1:
        batching = {"batch_size": batch_size, "sampler": UnrepeatedDistributedSampler(
            dataset, num_replicas=world[0], rank=world[1], shuffle=False)}
    else:
        batching = {"batch_size": batch_size, "shuffle": False}
    return (ResumableLoader if stage == "train" else DataLoader)(
        dataset, **batching, num_workers=num_workers, collate_fn=collate_fn, persistent_workers=num_workers > 0,
        pin_memory=pin_memory)
