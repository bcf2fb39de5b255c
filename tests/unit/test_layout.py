"""The kit's layout rules, checked on every run: no file of the package over 300 lines, private attributes of
other packages reached only in ``compat.py``, the public evaluation hook (no private ``_evaluate``), and networks
that do not import Lightning."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "multimodal_kit"
FILES = sorted(PACKAGE.rglob("*.py"))
#: other packages' private attributes the kit has reached (Lightning, jsonargparse, transformers, datasets, torch)
PRIVATE = re.compile(r"\._trainer\b|\._get\(|_update_metrics|_check_log_dir_exists|\._fs\b|\._experiment\b|"
                     r"_name_or_path|_commit_hash|\._fingerprint|[\"']_fingerprint[\"']|_index_sampler|"
                     r"jsonargparse\._|_signal_connector|_logger_connector|_ddp_kwargs|"
                     r"_get_feat_extract_output_lengths|_parse_ckpt_path")


def relative(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


def test_the_package_has_files() -> None:
    assert len(FILES) > 50 and PACKAGE / "compat.py" in FILES


@pytest.mark.parametrize("path", FILES, ids=relative)
def test_no_file_is_over_300_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 300, f"{relative(path)}: split it (one job per file)"


def test_private_attributes_of_other_packages_are_reached_only_in_compat() -> None:
    found = [f"{relative(path)}:{i}: {line.strip()}" for path in FILES if path.name != "compat.py"
             for i, line in enumerate(path.read_text().splitlines(), 1) if PRIVATE.search(line)]
    assert not found, "move these into multimodal_kit/compat.py, with a test in tests/unit/test_compat.py:\n" + \
        "\n".join(found)


def test_methods_evaluate_through_the_public_hook() -> None:
    found = [relative(path) for path in FILES if re.search(r"\b_evaluate\(", path.read_text())]
    assert not found, f"{found}: implement evaluation_step(batch, stage)"


def test_networks_do_not_import_lightning_at_module_level() -> None:
    found = [relative(path) for path in sorted((PACKAGE / "models").glob("*.py"))
             if re.search(r"^(from|import) (lightning|multimodal_kit\.compat)", path.read_text(), re.MULTILINE)]
    assert not found, f"{found}: a plain nn.Module never imports Lightning (import it where it is called)"


def test_a_checkpoint_naming_a_moved_task_class_reads_back_under_its_new_path(tmp_path: Path) -> None:
    """Image QA and the synthesizers moved from methods/ to tasks/: a checkpoint written before names the old
    path, and the config it implies names the new one (the class imports)."""
    import torch

    from multimodal_kit.checkpoints import MOVED_CLASSES, checkpoint_config
    from multimodal_kit.utils import import_class

    for old, new in MOVED_CLASSES.items():
        path = tmp_path / "old.ckpt"
        torch.save({"hyper_parameters": {"_class_path": old, "lr": 0.1}, "state_dict": {}}, path)
        model = checkpoint_config(path)["model"]
        assert model == {"class_path": new, "init_args": {"lr": 0.1}}
        assert import_class(new).__name__ == old.rsplit(".", 1)[1]
