"""Shared fixtures: everything offline, on CPU, in temporary directories, on tiny data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.pop("WANDB_API_KEY", None)

#: a tiny embedded shapes set: generated in about a second
TINY_SHAPES = {"num_train": 96, "num_validation": 32, "num_test": 32}
#: a tiny embedded spoken set: generated in under a second
TINY_SPOKEN = {"num_train": 64, "num_validation": 16, "num_test": 16}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def kit_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The kit's cache (embedded datasets, extracted tokenizers) in one temporary directory per session."""
    path = tmp_path_factory.mktemp("mmkit_cache")
    os.environ["MMKIT_CACHE"] = str(path)
    return path


@pytest.fixture(autouse=True)
def _in_tmp_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test runs in its own directory, so default run directories never land in the repository."""
    monkeypatch.chdir(tmp_path)
