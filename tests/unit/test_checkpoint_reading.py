"""A checkpoint this user may not read is said to be that, not "damaged", and ``--ckpt_path last`` passes over it
for the next newest, saying why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from multimodal_kit.checkpoints import load_checkpoint
from multimodal_kit.errors import ConfigError
from multimodal_kit.interruption import resume_checkpoint


@pytest.fixture
def unreadable(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Paths whose reading fails as a file without read permission does (chmod cannot stop root, who runs CI)."""
    refused: set[str] = set()
    load = torch.load

    def guarded(path, *args, **kwargs):
        if str(path) in refused:
            raise PermissionError(13, "Permission denied", str(path))
        return load(path, *args, **kwargs)

    monkeypatch.setattr(torch, "load", guarded)
    return refused


def test_a_checkpoint_without_read_permission_is_named_as_such(tmp_path: Path, unreadable: set[str]) -> None:
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    unreadable.add(str(path))
    with pytest.raises(ConfigError, match="permission denied") as error:
        load_checkpoint(path)
    assert str(path) in str(error.value) and "damaged" not in str(error.value) and "chmod u+r" in str(error.value)


def test_resume_passes_over_an_unreadable_newest_checkpoint(tmp_path: Path, unreadable: set[str],
                                                            caplog: pytest.LogCaptureFixture) -> None:
    older, newest = tmp_path / "epoch000-step3.ckpt", tmp_path / "last.ckpt"
    for path in (older, newest):
        torch.save({"state_dict": {}}, path)
    os.utime(older, (1, 1))
    unreadable.add(str(newest))
    with caplog.at_level("INFO"):
        assert resume_checkpoint(tmp_path) == older
    assert f"skipping {newest}: permission denied for this user" in caplog.text


def test_ckpt_path_best_is_the_one_the_monitor_recorded_not_the_newest(tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    """With ``save_top_k`` above 1 the newest epoch checkpoint need not be the best: ``--ckpt_path best`` takes the
    file the monitoring ModelCheckpoint recorded (its state in the newest checkpoint), found by name."""
    from multimodal_kit.cli_checkpoints import checkpoint_in

    checkpoints = tmp_path / "run" / "checkpoints"
    checkpoints.mkdir(parents=True)
    for name in ("epoch000-step3.ckpt", "epoch001-step6.ckpt"):  # written in this order: epoch001 is the newest
        torch.save({"state_dict": {}}, checkpoints / name)
        os.utime(checkpoints / name, (1, 1) if name.startswith("epoch000") else (2, 2))
    states = {"CheckedCheckpoint{'monitor': 'val/bleu4'}": {"monitor": "val/bleu4", "best_model_path":
                                                             "/moved/elsewhere/checkpoints/epoch000-step3.ckpt"},
              "CheckedCheckpoint{'monitor': None}": {"monitor": None, "best_model_path": str(checkpoints / "last.ckpt")}}
    torch.save({"state_dict": {}, "callbacks": states}, checkpoints / "last.ckpt")
    assert checkpoint_in(checkpoints.parent, "best") == checkpoints / "epoch000-step3.ckpt"
    torch.save({"state_dict": {}}, checkpoints / "best-of-mine.ckpt")  # a filename of one's own, recorded
    states["CheckedCheckpoint{'monitor': 'val/bleu4'}"]["best_model_path"] = "/elsewhere/best-of-mine.ckpt"
    torch.save({"state_dict": {}, "callbacks": states}, checkpoints / "last.ckpt")
    assert checkpoint_in(checkpoints.parent, "best") == checkpoints / "best-of-mine.ckpt"
    torch.save({"state_dict": {}}, checkpoints / "last.ckpt")  # no record (e.g. a user's own callbacks): the newest
    assert checkpoint_in(checkpoints.parent, "best") == checkpoints / "epoch001-step6.ckpt"
    (checkpoints / "last.ckpt").write_bytes(b"")  # unreadable: passed over, in the words of the flag given
    with caplog.at_level("INFO"):
        assert checkpoint_in(checkpoints.parent, "best") == checkpoints / "epoch001-step6.ckpt"
    assert f"--ckpt_path best: skipping {checkpoints / 'last.ckpt'}" in caplog.text and "--ckpt_path last" not in \
        caplog.text
