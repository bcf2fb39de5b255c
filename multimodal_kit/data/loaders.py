"""DataLoaders of the data modules: training shuffled per (seed, epoch) and resumable mid-epoch, evaluation in
order and sharded without repeats under DDP, prediction in order (Lightning shards it)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import BatchSampler, DataLoader, Dataset

from multimodal_kit.data.resumable import EpochShuffle, ResumableLoader, global_seed
from multimodal_kit.utils import rank_zero_info


class FlatBatches:
    """A mixin for a ``LightningDataModule`` whose batches are flat dicts: move their tensors and pass their
    strings and lists as they are (Lightning's generic walk visits every reference string of every item, each
    step)."""

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        if isinstance(batch, dict):
            return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        return super().transfer_batch_to_device(batch, device, dataloader_idx)  # type: ignore[misc]


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
    return max(0, min(MAX_AUTO_WORKERS, cpu_share(processes_per_node, cpus, node_cpus) - 1))


def cpu_share(processes_per_node: int = 1, cpus: int | None = None, node_cpus: int | None = None) -> int:
    """This process's cores: its share of the node's when it may run on all of them (``cpus`` = ``node_cpus``), or
    all of its own when the launcher bound it to some (SLURM's per-task binding)."""
    cpus = cpus if cpus is not None else usable_cpus()
    node_cpus = node_cpus if node_cpus is not None else os.cpu_count() or cpus
    return cpus // max(processes_per_node, 1) if cpus >= node_cpus else cpus


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


def loader_for(datamodule: Any, dataset: Any, batch_size: int, stage: str, batch_sampler: BatchSampler | None = None,
               texts: bool = True) -> DataLoader:
    """A kit data module's loader of ``dataset`` for ``stage`` (``train``, ``evaluate``, ``predict``), sharded by
    its Trainer's processes, batched by its collator (``texts=False``: items without text), with its workers."""
    trainer = datamodule.trainer
    world = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
    on_gpu = trainer is not None and trainer.strategy.root_device.type == "cuda"
    return build_loader(dataset, batch_size, datamodule.collator(texts), workers_for(datamodule, on_gpu), stage,
                        world, batch_sampler, pin_memory=on_gpu)


def workers_for(datamodule: Any, on_gpu: bool) -> int:
    """The data module's ``num_workers``, or when unset the automatic choice (:func:`auto_workers`), said once on
    a GPU."""
    if datamodule.num_workers is not None:
        return datamodule.num_workers
    processes = datamodule.trainer.num_devices if datamodule.trainer is not None else 1
    workers = auto_workers(on_gpu, processes)
    if on_gpu and not datamodule.said_workers:
        datamodule.said_workers = True
        rank_zero_info(f"DataLoader workers: {workers} per process (automatic, from {usable_cpus()} CPU cores "
                       f"and {processes} process(es) on this node); --data.init_args.num_workers sets them.")
    return workers
