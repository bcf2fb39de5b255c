"""W&B sweeps: every config under experiments/sweeps/ is a valid sweep whose command line, built the way
``wandb agent`` builds it, parses; runs are grouped and tagged from the config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from multimodal_kit.cli import MultimodalCLI, main
from tests.conftest import TINY_SHAPES

REPO = Path(__file__).resolve().parents[2]
SWEEPS = sorted((REPO / "experiments" / "sweeps").glob("*.yaml"))
KIT_METRICS = {"val/loss", "val/bleu4", "val/wer"}  # what every fit logs at validation (docs/tracking.md: metric names)


def a_value(spec: dict):  # noqa: ANN201
    """One value the sweep could choose for a parameter."""
    if "value" in spec:
        return spec["value"]
    if "values" in spec:
        return spec["values"][-1]
    return spec["min"]


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_sweep_is_valid_and_its_command_parses(path: Path, capsys, monkeypatch) -> None:
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args, load_sweep_config

    sweep = load_sweep_config(str(path))
    assert sweep["method"] in {"grid", "random", "bayes"}
    assert sweep["metric"]["name"] in KIT_METRICS and sweep["metric"]["goal"] in {"minimize", "maximize"}
    for name, spec in sweep["parameters"].items():
        assert {"value", "values"} & set(spec) or {"min", "max"} <= set(spec), name
    command = sweep["command"]
    assert command[:4] == ["${env}", "python", "-m", "multimodal_kit"] and command[-1] == "${args}"
    chosen = {name: a_value(spec) for name, spec in sweep["parameters"].items()}
    flags = create_sweep_command_args({"args": {k: {"value": v} for k, v in chosen.items()}})["args"]
    monkeypatch.chdir(REPO)  # the agent runs from the repository root
    with pytest.raises(SystemExit) as exit_:
        main([*command[4:-1], *flags, "--print_config"])
    assert exit_.value.code in (0, None)
    config = yaml.safe_load(capsys.readouterr().out)
    for name, value in chosen.items():
        section, _, key = name.split(".")
        assert config[section]["init_args"][key] == value, name


def test_runs_are_grouped_and_tagged_by_experiment(tmp_path: Path) -> None:
    cli = MultimodalCLI(args=["-c", str(REPO / "experiments" / "seq2seq_image_caption.yaml"), "--run_dir",
                              str(tmp_path), "--data.init_args.embedded_options", json.dumps(TINY_SHAPES)], run=False)
    settings = cli.trainer.logger._wandb_init
    assert settings["group"] == "Seq2Seq-ImageCaption"
    assert settings["tags"] == ["Seq2Seq", "ImageCaptionDataModule", "shapes"]
    assert cli.trainer.logger._log_model is False  # offline: checkpoints stay in the run directory


def test_checkpoints_become_artifacts_only_when_logging_online(monkeypatch) -> None:
    from multimodal_kit.run_logging import wandb_online

    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert wandb_online()
    for mode in ("offline", "disabled"):
        monkeypatch.setenv("WANDB_MODE", mode)
        assert not wandb_online()
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.delenv("WANDB_API_KEY")
    monkeypatch.setenv("NETRC", "/nonexistent")
    assert not wandb_online()
