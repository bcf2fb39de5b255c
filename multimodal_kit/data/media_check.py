"""A split's media checked before training: in loader workers, sharded across DDP processes, and cached.

Checking a medium means its file exists and, with ``decode``, that it decodes as training will decode it
(:meth:`~multimodal_kit.data.codec.MediaCodec.load`). Decoding every file of a large split one by one takes minutes
(COCO's 118k JPEGs at ~5 ms each: ~10 minutes), on every run and every process, so:

- rows are decoded in ``torch.utils.data.DataLoader`` workers: every core this process may use (no training step
  runs yet), or ``--data.check_workers``;
- under DDP each process decodes a contiguous shard of the rows and the outcomes are gathered, so every process
  knows every bad row;
- the outcome (each bad row and why, each conversion note) is cached in a JSON file keyed by the split's
  fingerprint, the media column and the data module's preprocessing settings, beside each file's size and
  modification time: the next run decodes only the files that changed since (none: nothing is decoded).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from multimodal_kit.compat import dataset_fingerprint
from multimodal_kit.data.codec import MediaCodec
from multimodal_kit.data.problems import DataError

CHECK_VERSION = 1  # bump when what a check finds changes: older cached outcomes are then ignored
PARALLEL_FROM = 1000  # rows to decode from which workers pay for their start
MAX_CHECK_WORKERS = 16

#: one row's outcome: (row index, what is wrong or None, conversion note or None, decoded item or None)
Outcome = tuple[int, "list[str] | None", "str | None", "np.ndarray | None"]
#: gathers one object from every process, in rank order (identity on one process)
Gather = Callable[[Any], list[Any]]


class RowChecks(Dataset):
    """The check of rows ``rows`` of a split, one row per item (see :data:`Outcome`), so that loader workers run
    them. ``split`` holds the media column undecoded; ``paths`` and ``present`` cover every row of it."""

    def __init__(self, split: datasets.Dataset, column: str, ids: Sequence[str], codec: MediaCodec,
                 rows: Sequence[int], paths: Sequence[str | None], present: Sequence[bool], decode: bool,
                 keep: bool) -> None:
        self.split, self.column, self.ids, self.codec, self.rows = split, column, ids, codec, rows
        self.media = split.select_columns([column])  # reading a row formats only this column
        self.paths, self.present, self.decode, self.keep = paths, present, decode, keep

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, j: int) -> Outcome:
        i, codec = self.rows[j], self.codec
        if not self.present[i]:
            return i, [f"no {codec.media} in column {self.column!r} ({codec.column_flag})"], None, None
        try:
            if self.paths[i] is not None and not Path(self.paths[i]).is_file():
                return i, [f"media file not found: {self.paths[i]}"], None, None
            if not self.decode:
                return i, None, None, None
            value = self.media[i][self.column]
            tensor = codec.load(value, self.ids[i])
            # numpy, not a tensor: a worker's tensors travel in shared memory, one file descriptor each
            return i, None, codec.conversion_note(value), tensor.numpy() if self.keep else None
        except DataError as error:
            return i, [str(error).removeprefix(f"{self.ids[i]}: ")], None, None
        except Exception as error:  # a decoder may raise anything on a bad file: name it, do not crash
            return i, [f"cannot be loaded ({type(error).__name__}: {error})"], None, None


def process_group(trainer: Any) -> tuple[tuple[int, int], Gather]:
    """(processes, rank) of ``trainer``'s job and a gather of Python objects across it (``torch.distributed``'s
    ``all_gather_object``); one process and the identity without a trainer or a process group."""
    import torch.distributed as dist

    if trainer is None or trainer.world_size < 2 or not (dist.is_available() and dist.is_initialized()):
        return (1, 0), lambda x: [x]

    def gather(item: Any) -> list[Any]:
        parts: list[Any] = [None] * trainer.world_size
        dist.all_gather_object(parts, item)
        return parts

    return (trainer.world_size, trainer.global_rank), gather


def _as_list(items: list[Outcome]) -> list[Outcome]:
    return items


def check_workers(rows: int, configured: int | None, processes_per_node: int = 1) -> int:
    """Loader workers for decoding ``rows`` rows: ``configured`` if set; else none for fewer than
    :data:`PARALLEL_FROM` rows (starting workers costs more), and otherwise this process's cores
    (:func:`~.loaders.cpu_share`; at most :data:`MAX_CHECK_WORKERS`; none with a single core)."""
    if configured is not None:
        return configured
    if rows < PARALLEL_FROM:
        return 0
    from multimodal_kit.data.loaders import cpu_share

    share = cpu_share(processes_per_node)
    return 0 if share < 2 else min(share, MAX_CHECK_WORKERS)


def run_checks(checks: RowChecks, workers: int, description: str) -> list[Outcome]:
    """Every outcome of ``checks``, in row order, with a progress bar for long checks."""
    from tqdm.auto import tqdm

    # a generator of its own: a loader draws its workers' base seed from it, which must not move the global RNG
    # (a check at `test` would change what every later random draw gives, e.g. a synthesizer's prenet dropout)
    loader = DataLoader(checks, batch_size=32, num_workers=workers, collate_fn=_as_list,
                        generator=torch.Generator())
    outcomes: list[Outcome] = []
    with tqdm(total=len(checks), desc=description, leave=False, unit="item", disable=len(checks) < 2000) as bar:
        for batch in loader:
            outcomes += batch
            bar.update(len(batch))
    return outcomes


# ---------------------------------------------------------------------------------------------------- the cache
def cache_file(root: Path, split: datasets.Dataset, column: str, settings: dict[str, Any]) -> Path:
    """Where the outcome of checking ``column`` of ``split`` under ``settings`` (the data module's preprocessing)
    is kept: ``<root>/<key>.json``, the key over the split's fingerprint, the column and the settings."""
    digest = hashlib.sha256()
    for part in (CHECK_VERSION, dataset_fingerprint(split), len(split), column,
                 json.dumps(settings, sort_keys=True, default=str)):
        digest.update(f"{part}\n".encode())
    return root / f"{digest.hexdigest()[:24]}.json"


def file_stamps(paths: Sequence[str | None]) -> list[list[int] | None]:
    """Per row, its file's [size, modification time in ns] (``None``: the medium is in the dataset's own bytes,
    which its fingerprint covers, or the file is missing)."""
    stamps: list[list[int] | None] = []
    for path in paths:
        try:
            stat = os.stat(path) if path is not None else None
        except OSError:
            stat = None
        stamps.append(None if stat is None else [stat.st_size, stat.st_mtime_ns])
    return stamps


def read_cache(path: Path, rows: int) -> dict[str, Any] | None:
    """A cached outcome for ``rows`` rows, or ``None`` (none kept, or unreadable: checked afresh)."""
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return cached if isinstance(cached, dict) and len(cached.get("stamps", ())) == rows else None


def write_cache(path: Path, stamps: list[list[int] | None], outcomes: dict[int, Outcome]) -> None:
    """Keep every row's outcome with its file's stamp (written whole, then renamed: a reader never sees half)."""
    record = {"stamps": stamps,
              "problems": {str(i): o[1] for i, o in outcomes.items() if o[1]},
              "notes": {str(i): o[2] for i, o in outcomes.items() if o[2]}}
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(json.dumps(record))
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def cached_outcomes(cached: dict[str, Any], rows: Sequence[int]) -> dict[int, Outcome]:
    """The outcomes of ``rows`` as a cache file holds them."""
    problems, notes = cached.get("problems", {}), cached.get("notes", {})
    return {i: (i, problems.get(str(i)), notes.get(str(i)), None) for i in rows}


def outcomes(checks: RowChecks, workers: int | None, description: str, cache: Path | None = None,
             world: tuple[int, int] = (1, 0), gather: Gather = lambda x: [x],
             processes_per_node: int = 1) -> dict[int, Outcome]:
    """Every row's outcome, by row index; the decoding runs in ``workers`` loader workers (``None``:
    :func:`check_workers` decides for the rows this process decodes, its node shared by ``processes_per_node``).

    With ``cache`` (decoding, not keeping the items): rows whose file is unchanged since the cached outcome are not
    decoded again; the others are split into contiguous shards over ``world`` = (processes, rank), each process
    checks its own, ``gather`` collects them (a failure on one process is raised on every one), every process
    takes rank 0's answer, and the cache is rewritten. Without it every row is checked here.
    """
    def run(rows: RowChecks) -> list[Outcome]:
        count = check_workers(len(rows), workers, processes_per_node) if rows.decode else 0
        return run_checks(rows, count, description)

    if cache is None:
        return {o[0]: o for o in run(checks)}
    stamps = file_stamps(checks.paths)
    cached = read_cache(cache, len(stamps))
    kept = [] if cached is None else [i for i, (old, new) in enumerate(zip(cached["stamps"], stamps, strict=True))
                                       if old == new]
    known = cached_outcomes(cached, kept) if cached is not None else {}
    todo = [i for i in range(len(stamps)) if i not in known]
    if world[0] > 1:  # processes may hold different caches (one per node): every process checks the union's shard
        todo = sorted(set().union(*gather(todo)))
    from multimodal_kit.data.feature_cache import shard_bounds

    start, stop = shard_bounds(len(todo), *world)
    mine = RowChecks(checks.split, checks.column, checks.ids, checks.codec, todo[start:stop], checks.paths,
                     checks.present, checks.decode, keep=False)
    try:
        part: list[Outcome] | BaseException = run(mine) if len(mine) else []
    except Exception as error:  # every process must reach the gather, or the others wait for it forever
        part = error
    parts = gather(part)
    failed = [p for p in parts if isinstance(p, BaseException)]
    if failed:
        raise part if isinstance(part, BaseException) else RuntimeError(
            f"The media check failed on another process: {type(failed[0]).__name__}: {failed[0]}")
    known.update((o[0], o) for p in parts for o in p)
    if world[0] > 1:  # one answer everywhere, rank 0's (caches of different nodes may disagree on unchanged rows)
        known = gather(known)[0]
    if todo:
        try:
            write_cache(cache, stamps, known)
        except OSError as error:  # a read-only or full cache: this run's check stands, the next one repeats it
            from lightning.pytorch.utilities import rank_zero_warn

            rank_zero_warn(f"The media check's outcome could not be cached in {cache.parent} ({error}); the next "
                           "run checks every file again. Set $MMKIT_CACHE (or --data.init_args.cache_dir) to a "
                           "writable directory.")
    return known
