"""Benchmark: epoch time with and without the feature cache for a frozen pretrained image encoder.

A random ViT of ViT-Tiny's width (192, 6 layers, 3 heads; 64×64 images in 8×8 patches: 64 regions and CLS) saved
locally stands in for a hub model (no network needed; its speed, not its weights, is what is measured), frozen as
``PretrainedImageEncoder``'s default, under the attention captioner of ``experiments/attention_image_caption.yaml``
on the embedded ``shapes`` set. Each variant fits the same epochs from the same seed: *uncached* encodes every image
every step; *cached* computes the features once (timed apart: from the fit's start to its first step) and reads them
afterwards; *cached again* is a second fit that finds the files already written. Prints a table and writes its
section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, Trainer, seed_everything

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import record_results  # noqa: E402

SECTION = "Feature cache for frozen encoders — `make bench-cache`"
VIT = {"hidden_size": 192, "num_hidden_layers": 6, "num_attention_heads": 3, "intermediate_size": 768,
       "image_size": 64, "patch_size": 8}


class EpochClock(Callback):
    """Seconds from ``fit`` to the first training step (the cache is built there), and per training epoch."""

    def __init__(self) -> None:
        self.fit_start = 0.0
        self.setup_s = 0.0
        self.epochs: list[float] = []

    def setup(self, trainer: Trainer, pl_module: Any, stage: str) -> None:
        self.fit_start = time.perf_counter()

    def on_train_start(self, trainer: Trainer, pl_module: Any) -> None:
        self.setup_s = time.perf_counter() - self.fit_start

    def on_train_epoch_start(self, trainer: Trainer, pl_module: Any) -> None:
        self.epoch_start = time.perf_counter()

    def on_train_epoch_end(self, trainer: Trainer, pl_module: Any) -> None:
        self.epochs.append(time.perf_counter() - self.epoch_start)


def fit(vit: Path, cache: bool, cache_dir: Path, epochs: int, num_train: int) -> tuple[EpochClock, float]:
    from multimodal_kit.data.image_caption import ImageCaptionDataModule
    from multimodal_kit.methods import CrossModalAttention
    from multimodal_kit.models.pretrained import PretrainedImageEncoder

    seed_everything(0)
    data = ImageCaptionDataModule(embedded_options={"num_train": num_train, "num_validation": 64, "num_test": 64},
                                  batch_size=64, cache_features=cache, cache_dir=str(cache_dir))
    data.setup("fit")
    model = CrossModalAttention(vocab_size=data.vocab_size, pad_id=data.pad_id, bos_id=data.bos_id,
                                eos_id=data.eos_id, encoder=PretrainedImageEncoder(str(vit)))
    clock = EpochClock()
    losses: list[float] = []

    class LastLoss(Callback):
        def on_train_batch_end(self, trainer: Trainer, pl_module: Any, outputs: Any, batch: Any, i: int) -> None:
            losses.append(float(outputs["loss"]))

    Trainer(max_epochs=epochs, limit_val_batches=0, logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False, callbacks=[clock, LastLoss()]).fit(model, data)
    return clock, losses[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--num_train", type=int, default=2000, help="training images")
    parser.add_argument("--quick", action="store_true", help="a plumbing check: 2 epochs of 128 images")
    parser.add_argument("--no_results", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    epochs, num_train = (2, 128) if args.quick else (args.epochs, args.num_train)
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    with tempfile.TemporaryDirectory() as tmp:
        vit = Path(tmp) / "vit"
        torch.manual_seed(0)
        ViTModel(ViTConfig(**VIT)).save_pretrained(vit)
        ViTImageProcessor(size={"height": 64, "width": 64}).save_pretrained(vit)
        rows = {}
        for name, cache in (("uncached", False), ("cached", True), ("cached again", True)):
            clock, loss = fit(vit, cache, Path(tmp) / "cache", epochs, num_train)
            rows[name] = {"setup_s": clock.setup_s, "epoch_s": statistics.median(clock.epochs), "last_loss": loss,
                          "epochs_s": clock.epochs}
            print(name, json.dumps(rows[name]), flush=True)
    ratio = rows["uncached"]["epoch_s"] / rows["cached"]["epoch_s"]
    samples = num_train
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {torch.get_num_threads()} CPU threads ({platform.machine()}), "
             f"torch {torch.__version__}: {epochs} epochs of {samples:,} training images, batch 64, the attention "
             "captioner over a frozen random ViT of ViT-Tiny's width (5.5M parameters, 65 tokens per 64×64 image), "
             "no validation. *before the first step*: from `fit` to the first training step (loading, and for "
             "*cached* computing every training image's features once). Same seed and batches in every variant: "
             "*last loss* shows they train alike.", "",
             "| variant | before the first step (s) | epoch (s, median) | training samples/s | last loss |",
             "|---|---|---|---|---|"]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['setup_s']:.1f} | {row['epoch_s']:.1f} | {samples / row['epoch_s']:.0f} | "
                     f"{row['last_loss']:.4f} |")
    lines += ["", f"Epoch time uncached / cached: **{ratio:.1f}×**. Command: `make bench-cache` "
              f"(`python benchmarks/feature_cache.py --epochs {epochs} --num_train {num_train}`)."]
    if not args.quick and not args.no_results:
        record_results(SECTION, lines, "feature_cache", rows)
    else:
        print("\n".join(lines))


if __name__ == "__main__":
    main()
