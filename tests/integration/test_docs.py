"""Every code block of docs/adding_a_task.md runs: files named by ``title=`` are written as the page says, the
``mmkit`` commands run through the real CLI (on small embedded sets, one or two epochs), and what the page says
they give — the classes, the predictions, the refusal of a YAML without the label field — is what they give."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from multimodal_kit.cli import main

PAGE = Path(__file__).resolve().parents[2] / "docs" / "adding_a_task.md"
BLOCK = re.compile(r"^```(\w+)(?: title=(\S+))?\n(.*?)^```", re.MULTILINE | re.DOTALL)
#: what the test adds to each fit: small embedded sets, fewer epochs, no W&B (the page's files train for real)
SMALL = {"my_task_audio.yaml": ['{"single_word": true, "num_train": 96, "num_validation": 32, "num_test": 32}', "2"],
         "my_task_image.yaml": ['{"num_train": 64, "num_validation": 16, "num_test": 16}', "1"]}


def blocks() -> list[tuple[str, str | None, str]]:
    return [(language, title or None, body) for language, title, body in BLOCK.findall(PAGE.read_text())]


def test_the_page_has_the_blocks_this_test_runs() -> None:
    kinds = [(language, title) for language, title, _ in blocks()]
    assert kinds == [("python", "my_task.py"), ("yaml", "my_task_audio.yaml"), ("yaml", "my_task_image.yaml"),
                     ("bash", None)]
    assert len(blocks()[0][2].splitlines()) < 60  # "a classifier on any medium, under 60 lines"


def run(command: str) -> None:
    """One ``mmkit`` line of the page, with the small-data flags of a fit appended."""
    args = shlex.split(command)
    assert args[0] == "mmkit"
    extra = ["--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]
    if args[1] == "fit":
        options, epochs = SMALL[args[args.index("-c") + 1]]
        extra += ["--data.init_args.embedded_options", options, "--trainer.max_epochs", epochs]
    main(args[1:] + extra)


def test_every_code_block_of_adding_a_task_runs(tmp_path: Path) -> None:
    for language, title, body in blocks():
        if title:
            (tmp_path / title).write_text(body)
        if language == "yaml":
            assert yaml.safe_load(body)["model"]["class_path"] == "my_task.MediaClassifier"
    clips = tmp_path / "my_clips"
    clips.mkdir()
    for name, hz in (("a.wav", 300), ("b.wav", 600)):
        soundfile.write(clips / name, np.sin(np.arange(8000) * 2 * np.pi * hz / 16_000) * 0.3, 16_000)
    (bash,) = [body for language, _, body in blocks() if language == "bash"]
    for line in bash.splitlines():
        run(line)
    words = json.loads((tmp_path / "runs" / "words" / "labels.json").read_text())["label"]
    assert len(words) == 20 and "seven" in words  # the ten digits and ten commands
    records = [json.loads(line) for line in (tmp_path / "preds" / "predictions.jsonl").read_text().splitlines()]
    assert [(r["id"], r["input"]) for r in records] == [("a.wav", "my_clips/a.wav"), ("b.wav", "my_clips/b.wav")]
    assert all(r["label"] in words for r in records)
    objects = json.loads((tmp_path / "runs" / "objects" / "labels.json").read_text())["label"]
    assert objects == ["1", "2"]  # how many objects a shapes scene holds


def test_the_refusal_the_page_quotes_is_the_one_given(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "my_task.py").write_text(blocks()[0][2])
    (tmp_path / "my_task_audio.yaml").write_text(blocks()[1][2])
    with pytest.raises(SystemExit) as exit_info:
        run("mmkit fit -c my_task_audio.yaml --data.init_args.label_fields {}")
    assert exit_info.value.code == 2
    quoted = re.search(r"`(MediaClassifier needs .*?) \(…\)\. (Add under.*?)`", " ".join(PAGE.read_text().split()))
    message = " ".join(capsys.readouterr().err.split())
    assert quoted is not None and quoted.group(1) in message and quoted.group(2) in message
