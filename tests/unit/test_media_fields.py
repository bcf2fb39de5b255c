"""More than one media field per data module: a second image (an edit's target) and an audio field beside the
images, each read from a local folder, checked, decoded and batched under its own name; bad ones named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from PIL import Image

from multimodal_kit.data.image_caption import ImageCaptionDataModule
from multimodal_kit.data.problems import DataError
from multimodal_kit.errors import ConfigError
from multimodal_kit.methods.contract import check_fields

COLOURS = {"red": (255, 0, 0), "blue": (0, 0, 255), "green": (0, 255, 0)}


def write_pairs(root: Path, rows: int = 4, sound: bool = False, empty_target: int | None = None,
                missing_target: int | None = None) -> Path:
    """``root/<split>/`` of plain-colour images: each ``input`` red, each ``target`` blue; with ``sound``, a tone
    per row of (i + 1) tenths of a second."""
    names = list(COLOURS)
    for split in ("train", "validation", "test"):
        folder = root / split
        folder.mkdir(parents=True)
        lines = []
        for i in range(rows):
            Image.new("RGB", (8, 8), COLOURS[names[0]]).save(folder / f"in{i}.png")
            Image.new("RGB", (8, 8), COLOURS[names[1]]).save(folder / f"out{i}.png")
            row = {"file_name": f"in{i}.png", "target": f"out{i}.png", "text": "make it blue"}
            if i == empty_target and split == "train":
                row["target"] = ""
            if i == missing_target and split == "train":
                row["target"] = "nowhere.png"
            if sound:
                tone = np.sin(np.arange(1600 * (i + 1)) / 5).astype(np.float32) * 0.3
                soundfile.write(folder / f"tone{i}.wav", tone, 16_000)
                row["sound"] = f"tone{i}.wav"
            lines.append(json.dumps(row))
        (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return root


def batch_of(dm: ImageCaptionDataModule) -> dict:
    dm.setup("fit")
    return next(iter(dm.val_dataloader()))


def test_a_second_image_field_is_batched_under_its_name(tmp_path: Path) -> None:
    dm = ImageCaptionDataModule(str(write_pairs(tmp_path)), image_size=8, batch_size=4, captions_column=None,
                                media_fields={"target": "target"})
    assert dm.field_kinds["target"] == "image" and dm.field_kinds["image"] == "image"
    batch = batch_of(dm)
    assert batch["image"].shape == batch["target"].shape == (4, 3, 8, 8)
    red = dm.codec.uncollate(batch)[0]
    blue = dm.codecs[1].uncollate(batch)[0]
    assert red[:, 0, 0].tolist() == [255, 0, 0] and blue[:, 0, 0].tolist() == [0, 0, 255]


def test_a_field_of_another_medium_is_decoded_by_its_own_codec(tmp_path: Path) -> None:
    dm = ImageCaptionDataModule(str(write_pairs(tmp_path, sound=True)), image_size=8, batch_size=4,
                                captions_column=None,
                                media_fields={"sound": {"column": "sound", "medium": "audio", "n_mels": 20}})
    assert dm.field_kinds["sound"] == "audio"
    batch = batch_of(dm)
    assert batch["image"].shape == (4, 3, 8, 8)
    assert batch["sound"].shape == (4, 41, 20)  # the longest tone: 0.4 s at 10 ms hops, centred → 41 frames
    assert batch["sound_lengths"].tolist() == [11, 21, 31, 41]


def test_the_contract_sees_further_media_fields() -> None:
    dm = ImageCaptionDataModule("shapes", media_fields={"target": "image"})
    check_fields("Editor", {"image": "image", "target": "image"}, dm.field_kinds, "the data")
    with pytest.raises(ConfigError, match=r"media_fields: \{target: <column>\}"):
        check_fields("Editor", {"target": "image"}, ImageCaptionDataModule("shapes").field_kinds, "the data")


def test_a_missing_or_empty_further_media_file_is_a_bad_row_named(tmp_path: Path) -> None:
    dm = ImageCaptionDataModule(str(write_pairs(tmp_path, empty_target=1, missing_target=2)), image_size=8,
                                captions_column=None, media_fields={"target": "target"})
    with pytest.raises(DataError) as error:
        dm.setup("fit")
    message = str(error.value)
    assert "row 1" in message and "no image in column 'target' (--data.media_fields.target)" in message
    assert "row 2" in message and "nowhere.png" in message
    skipping = ImageCaptionDataModule(str(tmp_path), image_size=8, batch_size=8, captions_column=None,
                                      media_fields={"target": "target"}, bad_rows="skip")
    skipping.setup("fit")
    assert skipping.rows["train"].ids == ["in0.png", "in3.png"]


def test_names_that_clash_with_batch_keys_are_refused() -> None:
    with pytest.raises(DataError, match="batch's own keys"):
        ImageCaptionDataModule("shapes", media_fields={"text": "image"})
    with pytest.raises(DataError, match="batch's own keys"):
        ImageCaptionDataModule("shapes", media_fields={"target": "image"}, label_fields={"target": "relation"})
    with pytest.raises(ConfigError, match="media_fields.sound"):
        ImageCaptionDataModule("shapes", media_fields={"sound": {"medium": "audio", "n_mel": 3}})


def test_augmentation_shifts_every_image_field_alike(tmp_path: Path) -> None:
    dm = ImageCaptionDataModule("shapes", media_fields={"target": "image"}, random_shift=4)
    images = torch.randn(6, 3, 16, 16)
    shifted = dm.augment({"image": images, "target": images.clone()})
    assert not torch.equal(shifted["image"], images) and torch.equal(shifted["image"], shifted["target"])


def test_predict_records_carry_further_media_files(tmp_path: Path) -> None:
    write_pairs(tmp_path / "data")
    Image.new("RGB", (8, 8), COLOURS["green"]).save(tmp_path / "a.png")
    Image.new("RGB", (8, 8), COLOURS["blue"]).save(tmp_path / "b.png")
    records = tmp_path / "records.jsonl"
    records.write_text(json.dumps({"file_name": "a.png", "target": "b.png"}) + "\n")
    dm = ImageCaptionDataModule(str(tmp_path / "data"), image_size=8, captions_column=None,
                                media_fields={"target": "target"}, predict_path=str(records))
    batch = next(iter(dm.predict_dataloader()))
    assert batch["image"].shape == batch["target"].shape == (1, 3, 8, 8)
    assert dm.codecs[1].uncollate(batch)[0][:, 0, 0].tolist() == [0, 0, 255]
    records.write_text(json.dumps({"file_name": "a.png", "target": "gone.png"}) + "\n")
    with pytest.raises(DataError, match="gone.png"):
        ImageCaptionDataModule(str(tmp_path / "data"), image_size=8, captions_column=None,
                               media_fields={"target": "target"}, predict_path=str(records)).predict_dataloader()


def test_a_task_registers_its_own_embedded_set(kit_cache: Path) -> None:
    """A set a task generates (here two tiny rows with an input and a target image) is a --data.source by name,
    generated once into the kit's cache; a name taken already is refused."""
    import datasets

    from multimodal_kit.data.embedded import EMBEDDED, EmbeddedSet, register_embedded
    from multimodal_kit.data.embedded.shapes import ShapesConfig

    def generate(config: ShapesConfig, split: str, progress: bool = True) -> dict[str, list]:
        import io

        def png(colour: tuple[int, int, int]) -> dict:
            buffer = io.BytesIO()
            Image.new("RGB", (8, 8), colour).save(buffer, format="PNG")
            return {"bytes": buffer.getvalue(), "path": None}

        return {"image": [png(COLOURS["red"])] * 2, "target": [png(COLOURS["blue"])] * 2,
                "text": ["make it blue"] * 2, "id": [f"{split}{i}" for i in range(2)]}

    features = datasets.Features({"image": datasets.Image(), "target": datasets.Image(),
                                  "text": datasets.Value("string"), "id": datasets.Value("string")})
    spec = register_embedded("test_recolour", EmbeddedSet(ShapesConfig, generate, features))
    try:
        dm = ImageCaptionDataModule("test_recolour", image_size=8, batch_size=2, captions_column=None,
                                    media_fields={"target": "target"})
        batch = batch_of(dm)
        assert dm.codecs[1].uncollate(batch)[0][:, 0, 0].tolist() == [0, 0, 255]
        with pytest.raises(ConfigError, match="exists already"):
            register_embedded("shapes", spec)
    finally:
        EMBEDDED.pop("test_recolour")


def test_predict_records_give_a_further_field_in_all_or_none_and_one_bad_file_drops_one_record(tmp_path: Path
                                                                                              ) -> None:
    write_pairs(tmp_path / "data")
    Image.new("RGB", (8, 8), COLOURS["green"]).save(tmp_path / "a.png")
    records = tmp_path / "records.jsonl"
    records.write_text(json.dumps({"file_name": "a.png", "target": "a.png"}) + "\n"
                       + json.dumps({"file_name": "a.png"}) + "\n")
    options = dict(image_size=8, captions_column=None, media_fields={"target": "target"}, predict_path=str(records))
    with pytest.raises(DataError, match=r"lines \[2\] name no 'target' file"):
        ImageCaptionDataModule(str(tmp_path / "data"), **options).predict_dataloader()
    records.write_text(json.dumps({"file_name": "a.png", "target": "gone.png"}) + "\n"
                       + json.dumps({"file_name": "a.png", "target": "a.png"}) + "\n")
    skipping = ImageCaptionDataModule(str(tmp_path / "data"), bad_rows="skip", **options)
    assert len(skipping.predict_dataloader().dataset) == 1  # the other record of a.png stays
