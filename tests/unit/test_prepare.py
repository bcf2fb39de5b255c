"""experiments/real/prepare.py lays out COCO (Karpathy splits), the Free Spoken Digit Dataset and Clotho as folders
the data modules read, with the right splits and references."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image

from multimodal_kit.data.image_caption import ImageCaptionDataModule
from multimodal_kit.data.text_audio import TextAudioDataModule

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("prepare", REPO / "experiments" / "real" / "prepare.py")
prepare = importlib.util.module_from_spec(spec)
spec.loader.exec_module(prepare)


def tone(path: Path, rate: int = 8_000, seconds: float = 0.3) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(rate * seconds)) / rate
    soundfile.write(path, (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), rate)


def test_coco_karpathy_splits(tmp_path: Path) -> None:
    images = tmp_path / "coco"
    (images / "val2014").mkdir(parents=True)
    entries = []
    for i, split in enumerate(["train", "restval", "val", "test", "train"]):
        Image.new("RGB", (8, 8), (50 * i, 0, 0)).save(images / "val2014" / f"img{i}.jpg")
        entries.append({"filepath": "val2014", "filename": f"img{i}.jpg", "split": split,
                        "sentences": [{"raw": f"caption {i} number {k} "} for k in range(5)]})
    (tmp_path / "dataset_coco.json").write_text(json.dumps({"images": entries}))
    prepare.main(["coco", "--karpathy", str(tmp_path / "dataset_coco.json"), "--images", str(images),
                  "--out", str(tmp_path / "out")])
    dm = ImageCaptionDataModule(str(tmp_path / "out"))
    assert {name: len(split) for name, split in dm.splits.items()} == {"train": 3, "validation": 1, "test": 1}
    dm.setup("test")
    assert dm.dataset("test").references == [[f"caption 3 number {k}" for k in range(5)]]


def test_fsdd_official_test_split_and_digit_words(tmp_path: Path) -> None:
    names = ["0_jackson_0", "0_jackson_7", "3_theo_2", "5_theo_30", "9_nicolas_12", "7_yweweler_49"]
    for name in names:
        tone(tmp_path / "recordings" / f"{name}.wav")
    prepare.main(["fsdd", "--recordings", str(tmp_path / "recordings"), "--out", str(tmp_path / "out")])
    dm = TextAudioDataModule(str(tmp_path / "out"), sample_rate=8_000, val_fraction=0.25)
    dm.setup("test")
    assert sorted(dm.dataset("test").texts) == ["three", "zero"]
    assert len(dm.splits["train"]) + len(dm.splits["validation"]) == 4


def test_clotho_five_captions_per_clip(tmp_path: Path) -> None:
    root = tmp_path / "clotho"
    for source in ("development", "validation", "evaluation"):
        tone(root / f"clotho_audio_{source}" / f"{source} clip.wav", rate=44_100)
        header = "file_name," + ",".join(f"caption_{k}" for k in range(1, 6))
        row = f"{source} clip.wav," + ",".join(f"a {source} sound {k}" for k in range(1, 6))
        (root / f"clotho_captions_{source}.csv").write_text(f"{header}\n{row}\n")
    prepare.main(["clotho", "--root", str(root), "--out", str(tmp_path / "out")])
    dm = TextAudioDataModule(str(tmp_path / "out"), text_column="caption_1",
                             captions_column=[f"caption_{k}" for k in range(1, 6)])
    dm.setup("test")
    assert dm.dataset("test").references == [[f"a evaluation sound {k}" for k in range(1, 6)]]
