"""Processes that start together (DDP ranks launched by torchrun or SLURM, parallel jobs on one cache) generate an
embedded set once: the first takes the cache's file lock and generates, the others wait and read its result."""

from __future__ import annotations

import dataclasses
import multiprocessing
import time
from pathlib import Path

from multimodal_kit.data import embedded

OPTIONS = {"num_train": 8, "num_validation": 4, "num_test": 4}


def load_counting(cache: str, log: str) -> tuple[int, str]:
    """Load the shapes set (in a fresh process), appending a line to ``log`` each time a split is generated."""
    spec = embedded.EMBEDDED["shapes"]

    def generate_split(*args, **kwargs):
        with open(log, "a") as f:
            f.write("generated\n")
        time.sleep(0.5)  # widen the window in which an unlocked second process would generate too
        return spec.generate_split(*args, **kwargs)

    embedded.EMBEDDED["shapes"] = dataclasses.replace(spec, generate_split=generate_split)
    splits = embedded.load_embedded("shapes", OPTIONS, cache_dir=cache, progress=False)
    return splits["train"].num_rows, splits["test"][0]["text"]


def test_two_processes_starting_together_generate_the_embedded_set_once(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        results = pool.starmap(load_counting, [(str(tmp_path / "cache"), str(log))] * 2)
    assert log.read_text().count("generated") == 3  # train, validation, test: once, by one of the two
    assert results[0] == results[1] and results[0][0] == 8
    assert not list((tmp_path / "cache" / "shapes").glob("*.tmp"))
