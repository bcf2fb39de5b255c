"""The media check before training: loader workers find what one process finds, processes share it out, and a
cached outcome is reused until a file changes."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from multimodal_kit.data import media_check
from multimodal_kit.data.checks import SplitCheck, media_problems
from multimodal_kit.data.image import ImageCodec
from multimodal_kit.data.image_caption import ImageCaptionDataModule
from multimodal_kit.data.media_check import Gather, cache_file, process_group
from tests.helpers import write_imagefolder

ROWS = 12


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An imagefolder of 12 training scenes; row 3's file is cut short (a bad row)."""
    root = write_imagefolder(tmp_path / "imgs", {"train": ROWS, "validation": 2})
    bad = sorted((root / "train").glob("*.png"))[3]
    bad.write_bytes(bad.read_bytes()[:60])
    return root


def row(ids: list[str], folder: Path, k: int) -> int:
    """The row of the ``k``-th training file (by name)."""
    return ids.index(sorted((folder / "train").glob("*.png"))[k].name)


def parts(folder: Path, **options: Any) -> tuple[Any, list[str], ImageCodec]:
    """The training split's media column (undecoded), its row ids and its codec, as ``check_split`` passes them."""
    dm = ImageCaptionDataModule(source=str(folder), batch_size=4, check_media=False, **options)
    return dm.splits["train"], dm.rows["train"].ids, dm.codec


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The row ids decoded in this process (checks with ``workers=0``), in order."""
    seen: list[str] = []
    original = ImageCodec.load

    def counted(self: ImageCodec, value: Any, row_id: str) -> torch.Tensor:
        seen.append(row_id)
        return original(self, value, row_id)

    monkeypatch.setattr(ImageCodec, "load", counted)
    return seen


def same_outcome(a: SplitCheck, b: SplitCheck) -> bool:
    return a.problems == b.problems and a.notes == b.notes


def test_loader_workers_find_what_one_process_finds_and_decode_the_same_items(folder: Path) -> None:
    split, ids, codec = parts(folder)
    serial = media_problems(split, "image", ids, codec, decode=True, keep=True, workers=0)
    parallel = media_problems(split, "image", ids, codec, decode=True, keep=True, workers=2)
    bad = row(ids, folder, 3)
    assert list(serial.problems) == [bad] and "truncated" in serial.problems[bad][0]
    assert same_outcome(serial, parallel)
    assert serial.media is not None and parallel.media is not None
    assert all(torch.equal(a, b) for a, b in zip(serial.media, parallel.media, strict=True))
    assert parallel.media[bad - 1].shape == (3, 64, 64) and parallel.media[bad].numel() == 0  # bad: a placeholder


def test_the_check_leaves_the_global_random_state_alone(folder: Path) -> None:
    """A loader draws a base seed for its workers; the check's must not come from the global RNG, or a check at
    ``test`` would change every later random draw (a synthesizer's prenet dropout, for one)."""
    split, ids, codec = parts(folder)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    media_problems(split, "image", ids, codec, decode=True, keep=True, workers=0)
    assert torch.equal(torch.rand(3), expected)


def test_a_cached_check_decodes_nothing_again_and_still_names_the_bad_row(folder: Path, tmp_path: Path,
                                                                         loads: list[str]) -> None:
    split, ids, codec = parts(folder)
    cache = tmp_path / "check.json"
    first = media_problems(split, "image", ids, codec, decode=True, keep=False, workers=0, cache=cache)
    assert len(loads) == ROWS and cache.is_file()
    again = media_problems(split, "image", ids, codec, decode=True, keep=False, workers=0, cache=cache)
    assert len(loads) == ROWS  # nothing decoded the second time
    bad = row(ids, folder, 3)
    assert same_outcome(first, again) and list(again.problems) == [bad] and "truncated" in again.problems[bad][0]


def test_a_file_changed_after_caching_is_decoded_again(folder: Path, tmp_path: Path, loads: list[str]) -> None:
    split, ids, codec = parts(folder)
    cache = tmp_path / "check.json"
    media_problems(split, "image", ids, codec, decode=True, keep=False, workers=0, cache=cache)
    files = sorted((folder / "train").glob("*.png"))
    files[5].write_bytes(b"not an image")  # a good file broken after the check
    files[3].write_bytes(files[0].read_bytes())  # the bad one repaired
    stat = files[0].stat()
    os.utime(files[3], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    loads.clear()
    again = media_problems(split, "image", ids, codec, decode=True, keep=False, workers=0, cache=cache)
    assert sorted(loads) == sorted([files[3].name, files[5].name])  # only the two changed files
    assert list(again.problems) == [row(ids, folder, 5)] and "not a readable" in again.problems[row(ids, folder, 5)][0]


def test_a_damaged_cache_file_is_checked_afresh(folder: Path, tmp_path: Path, loads: list[str]) -> None:
    split, ids, codec = parts(folder)
    cache = tmp_path / "check.json"
    cache.write_text("{ half a file")
    found = media_problems(split, "image", ids, codec, decode=True, keep=False, workers=0, cache=cache)
    assert len(loads) == ROWS and list(found.problems) == [row(ids, folder, 3)]


def as_two_processes(check: Callable[[int, Gather], Any]) -> list[Any]:
    """``check(rank, gather)`` in two threads standing for two processes; a gather waits for both. Each result,
    or the exception it raised, by rank."""
    board: list[Any] = [None, None]
    barrier = threading.Barrier(2, timeout=30)
    results: list[Any] = [None, None]

    def gather_for(rank: int) -> Gather:
        def gather(item: Any) -> list[Any]:
            barrier.wait()
            board[rank] = item
            barrier.wait()
            parts = list(board)
            barrier.wait()
            return parts
        return gather

    def run(rank: int) -> None:
        try:
            results[rank] = check(rank, gather_for(rank))
        except Exception as error:
            results[rank] = error

    threads = [threading.Thread(target=run, args=(rank,)) for rank in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_a_failure_on_one_process_is_raised_on_both(folder: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Rank 1's decoding breaks outside the per-row guard: both ranks raise, neither waits for the other."""
    split, ids, codec = parts(folder)
    original = media_check.run_checks

    def breaks_on_rank1(checks: Any, workers: int, description: str) -> list:
        if threading.current_thread().name == "rank1":
            raise MemoryError("out of memory")
        return original(checks, workers, description)

    monkeypatch.setattr(media_check, "run_checks", breaks_on_rank1)

    def check(rank: int, gather: Gather) -> SplitCheck:
        threading.current_thread().name = f"rank{rank}"
        return media_problems(split, "image", ids, codec, decode=True, keep=False, workers=0,
                              cache=tmp_path / f"rank{rank}.json", world=(2, rank), gather=gather)

    results = as_two_processes(check)
    assert isinstance(results[1], MemoryError)
    assert isinstance(results[0], RuntimeError) and "failed on another process: MemoryError" in str(results[0])


def test_processes_whose_caches_disagree_take_rank_zeros_answer(folder: Path, tmp_path: Path) -> None:
    split, ids, codec = parts(folder)
    for rank in (0, 1):  # each process's own cache, both complete and current
        media_problems(split, "image", ids, codec, decode=True, keep=False, workers=0, cache=tmp_path / f"{rank}.json")
    stale = json.loads((tmp_path / "1.json").read_text())
    stale["problems"] = {}  # rank 1's cache has forgotten the bad row
    (tmp_path / "1.json").write_text(json.dumps(stale))
    results = as_two_processes(lambda rank, gather: media_problems(
        split, "image", ids, codec, decode=True, keep=False, workers=0, cache=tmp_path / f"{rank}.json",
        world=(2, rank), gather=gather))
    assert list(results[0].problems) == list(results[1].problems) == [row(ids, folder, 3)]


def test_a_cache_that_cannot_be_written_warns_and_the_check_stands(folder: Path, tmp_path: Path) -> None:
    split, ids, codec = parts(folder)
    blocked = tmp_path / "a file, not a directory"
    blocked.write_text("")
    with pytest.warns(UserWarning, match="could not be cached"):
        found = media_problems(split, "image", ids, codec, decode=True, keep=False, workers=0,
                               cache=blocked / "check.json")
    assert list(found.problems) == [row(ids, folder, 3)]


def test_the_cache_key_follows_the_data_and_the_settings(folder: Path, tmp_path: Path) -> None:
    """Two fresh data modules of the same folder find the same cache file (the split's fingerprint is stable);
    a setting that changes what a check finds gives another."""
    first, again = parts(folder, cache_dir=str(tmp_path / "c")), parts(folder, cache_dir=str(tmp_path / "c"))
    settings = {"image_size": 64, "max_image_pixels": 40_000_000}
    assert cache_file(tmp_path, first[0], "image", settings) == cache_file(tmp_path, again[0], "image", settings)
    assert cache_file(tmp_path, first[0], "image", settings) != cache_file(
        tmp_path, first[0], "image", {**settings, "max_image_pixels": 100})


def test_a_second_setup_of_a_data_module_decodes_nothing(folder: Path, tmp_path: Path, loads: list[str]) -> None:
    options = {"source": str(folder), "batch_size": 4, "preload": False, "bad_rows": "skip",
               "cache_dir": str(tmp_path / "cache")}
    with pytest.warns(UserWarning, match="Skipped 1 of 12 rows"):
        ImageCaptionDataModule(**options).setup("fit")
    decoded = len(loads)
    assert decoded >= ROWS and list((tmp_path / "cache" / "multimodal_kit_media_checks").glob("*.json"))
    with pytest.warns(UserWarning, match="Skipped 1 of 12 rows"):
        ImageCaptionDataModule(**options).setup("fit")
    assert len(loads) == decoded


def _check_as_rank(rank: int, folder: str, out: str) -> None:
    """One process of a 2-process gloo group: the media check of the folder's training split, sharded."""
    import json

    import torch.distributed as dist

    dist.init_process_group("gloo", rank=rank, world_size=2)
    loads: list[str] = []
    original = ImageCodec.load
    ImageCodec.load = lambda self, value, row_id: (loads.append(row_id), original(self, value, row_id))[1]

    class Trainer:
        world_size, global_rank = 2, rank

    world, gather = process_group(Trainer())
    split, ids, codec = parts(Path(folder))
    found = media_problems(split, "image", ids, codec, decode=True, keep=False, workers=0,
                           cache=Path(out) / f"cache{rank}.json", world=world, gather=gather)
    (Path(out) / f"rank{rank}.json").write_text(json.dumps({"world": world, "loads": loads,
                                                            "problems": sorted(found.problems)}))
    dist.destroy_process_group()


def test_two_processes_of_a_gloo_group_share_the_check(folder: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        monkeypatch.setenv("MASTER_PORT", str(free.getsockname()[1]))
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    parts(folder)  # build datasets' cache of the folder once, before both processes read it
    mp.spawn(_check_as_rank, args=(str(folder), str(tmp_path)), nprocs=2)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    ids = parts(folder)[1]
    assert [r["world"] for r in ranks] == [[2, 0], [2, 1]]
    assert sorted(ranks[0]["loads"] + ranks[1]["loads"]) == sorted(ids) and len(ranks[0]["loads"]) == ROWS // 2
    assert ranks[0]["problems"] == ranks[1]["problems"] == [row(ids, folder, 3)]


def test_check_workers_take_this_process_share_of_the_node(monkeypatch: pytest.MonkeyPatch) -> None:
    from multimodal_kit.data import loaders

    monkeypatch.setattr(loaders, "usable_cpus", lambda: 8)
    monkeypatch.setattr(loaders.os, "cpu_count", lambda: 8)
    assert media_check.check_workers(999, None) == 0  # too few rows to pay for workers
    assert media_check.check_workers(50, 3) == 3  # set by --data.init_args.check_workers
    assert media_check.check_workers(5000, None, processes_per_node=4) == 2  # a node's 8 cores over 4 processes
    assert media_check.check_workers(5000, None, processes_per_node=8) == 0  # one core each: decode in-process
    monkeypatch.setattr(loaders.os, "cpu_count", lambda: 64)  # bound by the launcher to 8 of 64 (SLURM)
    assert media_check.check_workers(5000, None, processes_per_node=8) == 8


def test_without_a_process_group_the_check_runs_alone() -> None:
    class Trainer:
        world_size, global_rank = 2, 1

    world, gather = process_group(Trainer())
    assert world == (1, 0) and gather("x") == ["x"]
