"""The task contract through the real CLI: a method's fields are checked against the data's before any split is
checked or a step taken, and a method's hyperparameters are exactly the arguments it declares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from multimodal_kit.cli import main
from multimodal_kit.errors import ConfigError
from multimodal_kit.methods.base import MultimodalMethod
from multimodal_kit.methods.contract import check_fields, declared_arguments
from tests.integration.test_image_qa_cli import REPO, TINY


class FirstWord(MultimodalMethod):
    """Image → its caption's first word, a classifier over the vocabulary: declares only ``vocab_size`` and ``lr``
    of the seven values the CLI can link (no ``media``, ``image_size``, token ids)."""

    inputs = {"image": "image"}
    outputs = {"text": "text"}

    def __init__(self, vocab_size: int = 0, lr: float = 1e-2) -> None:
        super().__init__()

    def configure_models(self) -> None:
        self.net = nn.Sequential(nn.Flatten(), nn.LazyLinear(self.hparams.vocab_size))

    def step(self, batch: dict[str, Any], stage: str) -> torch.Tensor:
        loss = nn.functional.cross_entropy(self.net(batch["image"]), batch["text_tokens"][:, 1])
        self.log(f"{stage}/loss", loss, batch_size=len(batch["image"]))
        return loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self.step(batch, "train")

    def evaluation_step(self, batch: dict[str, Any], stage: str) -> None:
        self.step(batch, stage)


def test_a_method_keeps_only_the_arguments_it_declares(tmp_path: Path) -> None:
    run = tmp_path / "run"
    main(["fit", "--model", "tests.integration.test_contract.FirstWord", "--data", "ImageCaptionDataModule",
          "--data.init_args.embedded_options", '{"num_train": 32, "num_validation": 16, "num_test": 16}',
          "--data.init_args.image_size", "16", "--data.init_args.batch_size", "16", "--trainer.max_epochs", "1",
          "--trainer.logger", "false", "--trainer.enable_progress_bar", "false", "--run_dir", str(run)])
    ckpt = run / "checkpoints" / "last.ckpt"
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)["hyper_parameters"]
    assert {k for k in saved if not k.startswith("_")} == {"vocab_size", "lr"}
    assert saved["vocab_size"] > 3  # linked from the data's tokenizer
    model = FirstWord.load_from_checkpoint(ckpt, weights_only=True)  # in Python too, no AttributeError
    assert model.hparams.vocab_size == saved["vocab_size"]


def test_declared_arguments_follow_kwargs_down_to_the_base() -> None:
    from multimodal_kit.methods import Seq2Seq

    names = declared_arguments(Seq2Seq, MultimodalMethod)
    assert {"embed_dim", "vocab_size", "image_size", "lr"} <= names and "kwargs" not in names
    assert declared_arguments(FirstWord, MultimodalMethod) == {"vocab_size", "lr"}


def test_a_missing_field_is_refused_before_the_data_is_checked(tmp_path: Path, capsys: pytest.CaptureFixture
                                                               ) -> None:
    """Image QA on data that declares no question: exit 2 naming the field, the method and the line to add,
    before the data checks (no data_report.json) and before any step (no checkpoint)."""
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "-c", str(REPO / "experiments" / "attention_image_qa.yaml"), *TINY, "--run_dir", str(run),
              "--data.init_args.text_fields", "{}"])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert "ImageQuestionAnswering needs the text field 'question'" in message
    assert "text_fields: {question: <column>}" in message
    assert not (run / "data_report.json").exists() and not (run / "checkpoints").exists()


@pytest.mark.parametrize(("declared", "line"), [({"image": "image", "text": "text"}, "label_fields: {digit: <column>}"),
                                                ({"image": "image"}, "text_column: <column>")])
def test_check_fields_names_the_yaml_line(declared: dict[str, str], line: str) -> None:
    wanted = {"image": "image", "text": "text", "digit": "label"}
    with pytest.raises(ConfigError, match=line.replace("{", r"\{").replace("}", r"\}")):
        check_fields("Probe", wanted, declared, "SomeData")
    with pytest.raises(ConfigError, match="declares it as text"):
        check_fields("Probe", {"text": "label"}, declared | {"text": "text"}, "SomeData")


def test_a_method_that_reads_the_medium_needs_a_media_argument() -> None:
    class NoMedium(MultimodalMethod):  # inputs default to the pair's medium, which it cannot name
        def configure_models(self) -> None:
            self.net = nn.Linear(2, 2)

    class Data:
        field_kinds = {"image": "image", "text": "text"}

    with pytest.raises(ConfigError, match="NoMedium declares the pair's medium .* has no `media` argument"):
        NoMedium().check_data(Data(), "fit")
