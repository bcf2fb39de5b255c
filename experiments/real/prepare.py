"""Lay out data sets that have no ready hub copy as the ``imagefolder``/``audiofolder`` directories the kit reads.

Nothing is copied: each split folder gets a ``metadata`` file whose ``file_name`` is the absolute path of the
original media file.

    python experiments/real/prepare.py coco --karpathy dataset_coco.json --images COCO_ROOT --out data/coco
    python experiments/real/prepare.py fsdd --recordings free-spoken-digit-dataset/recordings --out data/fsdd
    python experiments/real/prepare.py clotho --root CLOTHO_ROOT --out data/clotho

- COCO: Karpathy's split file (``dataset_coco.json``) and the 2014 images (``COCO_ROOT/train2014``,
  ``COCO_ROOT/val2014``); ``restval`` joins train, as in the papers.
- Free Spoken Digit Dataset (github.com/Jakobovski/free-spoken-digit-dataset): ``{digit}_{speaker}_{index}.wav``;
  recordings 0–4 of each speaker and digit are the official test set, the rest train.
- Clotho v2.1 (zenodo.org/records/4783391): ``clotho_audio_{development,validation,evaluation}/`` and
  ``clotho_captions_{development,validation,evaluation}.csv`` (``file_name``, ``caption_1`` … ``caption_5``).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def write_jsonl(rows: list[dict], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def coco(karpathy: Path, images: Path, out: Path) -> dict[str, int]:
    """Karpathy's COCO splits → ``out/{train,validation,test}/metadata.jsonl`` (``text``: the first caption,
    ``captions``: all of them)."""
    splits: dict[str, list[dict]] = {"train": [], "validation": [], "test": []}
    name = {"train": "train", "restval": "train", "val": "validation", "test": "test"}
    for image in json.loads(karpathy.read_text(encoding="utf-8"))["images"]:
        captions = [s["raw"].strip() for s in image["sentences"]]
        path = (images / image["filepath"] / image["filename"]).absolute()
        splits[name[image["split"]]].append({"file_name": str(path), "text": captions[0], "captions": captions})
    for split, rows in splits.items():
        write_jsonl(rows, out / split)
    return {split: len(rows) for split, rows in splits.items()}


def fsdd(recordings: Path, out: Path) -> dict[str, int]:
    """FSDD recordings → ``out/{train,test}/metadata.jsonl`` (``text``: the digit as a word)."""
    splits: dict[str, list[dict]] = {"train": [], "test": []}
    for path in sorted(recordings.glob("*.wav")):
        digit, _, index = path.stem.split("_")
        split = "test" if int(index) < 5 else "train"
        splits[split].append({"file_name": str(path.absolute()), "text": DIGITS[int(digit)]})
    for split, rows in splits.items():
        write_jsonl(rows, out / split)
    return {split: len(rows) for split, rows in splits.items()}


def clotho(root: Path, out: Path) -> dict[str, int]:
    """Clotho → ``out/{train,validation,test}/metadata.jsonl`` with ``caption_1`` … ``caption_5``."""
    counts = {}
    for source, split in (("development", "train"), ("validation", "validation"), ("evaluation", "test")):
        with (root / f"clotho_captions_{source}.csv").open(encoding="utf-8", newline="") as file:
            rows = list(csv.DictReader(file))
        audio = root / f"clotho_audio_{source}"
        for row in rows:
            row["file_name"] = str((audio / row["file_name"]).absolute())
        write_jsonl(rows, out / split)
        counts[split] = len(rows)
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sets = parser.add_subparsers(dest="set", required=True)
    p = sets.add_parser("coco")
    p.add_argument("--karpathy", type=Path, required=True)
    p.add_argument("--images", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p = sets.add_parser("fsdd")
    p.add_argument("--recordings", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p = sets.add_parser("clotho")
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.set == "coco":
        counts = coco(args.karpathy, args.images, args.out)
    elif args.set == "fsdd":
        counts = fsdd(args.recordings, args.out)
    else:
        counts = clotho(args.root, args.out)
    print(f"{args.out}: " + ", ".join(f"{split} {n}" for split, n in counts.items()))


if __name__ == "__main__":
    main()
