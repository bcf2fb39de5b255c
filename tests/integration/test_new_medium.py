"""A new medium and a new task from this file alone, with no file of ``multimodal_kit/`` involved: a medium
``vector`` (8 numbers per item: a codec and a registered spec), its data module, and an audio-free, text-free task
``vector → digit`` (a label field) that builds the medium's default encoder through the kit's ``MediaSource``.
Driven through the real CLI by import path: fit, test, and the checkpoint alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets
import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from multimodal_kit.checkpoints import checkpoint_config
from multimodal_kit.cli import main
from multimodal_kit.data.base import PairDataModule
from multimodal_kit.data.codec import MediaCodec
from multimodal_kit.data.problems import DataError
from multimodal_kit.media import MediumSpec, medium_spec, register_medium
from multimodal_kit.methods.base import MultimodalMethod
from multimodal_kit.methods.media_source import MediaSource

WIDTH = 8


class VectorCodec(MediaCodec):
    """A medium of ``WIDTH`` floats per item, stored in the dataset itself."""

    media = "vector"
    extensions = (".json",)

    def feature(self) -> Any:
        return datasets.Sequence(datasets.Value("float32"))

    def load(self, value: Any, row_id: str) -> torch.Tensor:
        if isinstance(value, str):  # a predict file
            value = json.loads(Path(value).read_text())
        if value is None or len(value) != WIDTH:
            raise DataError(f"{row_id}: a vector needs {WIDTH} numbers")
        return torch.tensor(value, dtype=torch.float32)

    def nbytes(self) -> int:
        return 4 * WIDTH

    def collate(self, items: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"vector": torch.stack(items)}

    def uncollate(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        return list(batch["vector"])

    def to_values(self, items: list[torch.Tensor]) -> list[Any]:
        return [item.tolist() for item in items]

    def save(self, value: Any, stem: Path) -> Path:
        path = stem.with_suffix(".json")
        path.write_text(json.dumps(value))
        return path


register_medium(MediumSpec("vector", default_encoder=lambda **settings: nn.Sequential(nn.Linear(WIDTH, 32), nn.ReLU()),
                           example_input=lambda **settings: (torch.zeros(1, WIDTH),)))


class VectorDataModule(PairDataModule):
    """Vectors with a digit label, no text."""

    def __init__(self, source: str, **kwargs: Any) -> None:
        super().__init__(codec=VectorCodec(), source=source, **kwargs)


class DigitOfVector(MediaSource, MultimodalMethod):
    """The task: which digit a vector encodes (a classifier over the label field's classes)."""

    inputs = {"media": "media"}
    outputs = {"digit": "label"}
    checkpoint_monitor = ("val/accuracy", "max")

    def __init__(self, num_classes: int = 0, media: str = "vector", lr: float = 0.01) -> None:
        super().__init__()

    def configure_models(self) -> None:
        self.encoder, dim = self.build_encoder()  # the medium's registered default encoder
        self.head = nn.Linear(dim, self.hparams.num_classes)

    def configure_metrics(self) -> None:
        self.val_accuracy = MulticlassAccuracy(self.hparams.num_classes, average="micro")
        self.test_accuracy = MulticlassAccuracy(self.hparams.num_classes, average="micro")

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        features, mask = self.encode_source(batch)  # (B, 1, 32), (B, 1)
        return self.head(features[:, 0])  # (B, num_classes)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = nn.functional.cross_entropy(self(batch), batch["digit"])
        self.log("train/loss", loss, batch_size=len(batch["digit"]))
        return loss

    def evaluation_step(self, batch: dict[str, Any], stage: str) -> None:
        accuracy = getattr(self, f"{stage}_accuracy")
        accuracy.update(self(batch).argmax(-1), batch["digit"])
        self.log(f"{stage}/accuracy", accuracy, batch_size=len(batch["digit"]))


def vectors(root: Path, train_lacks: int | None = None) -> Path:
    """A ``save_to_disk`` dataset: the digit d's vector is a one-hot at d (5 units tall) plus unit noise, labels as
    text (``train_lacks``: a digit the training split never has)."""
    generator = torch.Generator().manual_seed(0)

    def split(n: int, lacks: int | None = None) -> datasets.Dataset:
        digits = torch.randint(0, 4, (n,), generator=generator)
        if lacks is not None:
            digits = torch.where(digits == lacks, (digits + 1) % 4, digits)
        values = torch.nn.functional.one_hot(digits, WIDTH).float() * 5 + torch.randn(n, WIDTH, generator=generator)
        return datasets.Dataset.from_dict({"vector": values.tolist(), "digit": [f"d{d}" for d in digits.tolist()],
                                           "id": [f"v{i}" for i in range(n)]})

    datasets.DatasetDict({"train": split(256, train_lacks), "validation": split(64), "test": split(64)}).save_to_disk(
        str(root))
    return root


def test_a_new_medium_and_task_from_one_file_fit_and_test(tmp_path: Path) -> None:
    run, results = tmp_path / "run", tmp_path / "test.json"
    data = ["--data", "tests.integration.test_new_medium.VectorDataModule", "--data.init_args.source",
            str(vectors(tmp_path / "vectors")), "--data.init_args.text_column", "null",
            "--data.init_args.captions_column", "null", "--data.init_args.label_fields", "{digit: digit}",
            "--data.init_args.batch_size", "32"]
    main(["fit", "--model", "tests.integration.test_new_medium.DigitOfVector", *data, "--trainer.max_epochs", "4",
          "--trainer.logger", "false", "--trainer.enable_progress_bar", "false", "--run_dir", str(run)])
    assert json.loads((run / "labels.json").read_text()) == {"digit": ["d0", "d1", "d2", "d3"]}
    ckpt = next((run / "checkpoints").glob("epoch*.ckpt"))
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert saved["hyper_parameters"]["num_classes"] == 4  # linked from the label field's classes
    assert saved["label_classes"] == {"digit": ["d0", "d1", "d2", "d3"]} and "tokenizer" not in saved
    main(["test", "--ckpt_path", str(ckpt), "--results_path", str(results), "--trainer.logger", "false",
          "--trainer.enable_progress_bar", "false"])  # the checkpoint alone: its config names the classes
    assert json.loads(results.read_text())["test/accuracy"] > 0.9  # chance: 0.25
    # the classes come from the checkpoint, whatever the data's training split holds now (here: no d0 at all)
    assert checkpoint_config(ckpt)["data"]["init_args"]["label_classes"] == {"digit": ["d0", "d1", "d2", "d3"]}
    other = vectors(tmp_path / "other", train_lacks=0)
    main(["test", "--ckpt_path", str(ckpt), "--data.init_args.source", str(other), "--results_path", str(results),
          "--trainer.logger", "false", "--trainer.enable_progress_bar", "false"])
    assert json.loads(results.read_text())["test/accuracy"] > 0.9


def test_the_registry_serves_the_new_medium_and_names_the_unknown() -> None:
    import pytest

    from multimodal_kit.errors import ConfigError
    from multimodal_kit.models.encoders import default_encoder

    assert isinstance(default_encoder("vector")[0], nn.Linear) and medium_spec("vector").text == "caption"
    with pytest.raises(ConfigError, match=r"no medium 'point_cloud' is registered \(known: .*audio.*image.*vector"):
        medium_spec("point_cloud")
