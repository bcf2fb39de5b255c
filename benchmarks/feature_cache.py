"""Benchmark: epoch time with and without the feature cache for frozen pretrained encoders of real size.

Randomly initialised encoders with the configs of the hub models users cache (their speed, not their weights, is
what is measured; no network needed), saved locally and frozen as the kit's pretrained encoders are by default:

- ``clip-vit-b32``: CLIP ViT-B/32's vision tower (``CLIPVisionModel``, 224×224 px in 32×32 patches: 49 regions and
  CLS) under the attention captioner of ``experiments/attention_image_caption.yaml``, on the embedded ``shapes``
  set (64 px images, resized to 224 inside the encoder);
- ``wav2vec2-base``: ``Wav2Vec2Model`` with the base config under the attention recognizer, on embedded ``spoken``
  utterances of 6–12 words (16 kHz waveforms of a few seconds);
- ``vit-tiny``: a ViT of ViT-Tiny's width at 64 px (the benchmark's earlier, too-small stand-in; on request).

Each variant fits the same epochs from the same seed: *uncached* encodes every item every step; *cached* computes
the features once (timed apart: from the fit's start to its first step) and reads them afterwards; *cached again*
is a second fit that finds the files already written. Prints a table and writes its section of
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, Trainer, seed_everything

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import record_results  # noqa: E402

SECTION = "Feature cache for frozen encoders — `make bench-cache`"


@dataclass
class Encoder:
    """One benchmarked encoder: its medium, what it is, and the default budget."""

    media: str
    describe: str
    num_train: int
    epochs: int
    batch_size: int


ENCODERS = {
    "clip-vit-b32": Encoder("image", "CLIP ViT-B/32 vision tower, 224 px, 50 tokens per image", 1024, 2, 64),
    "wav2vec2-base": Encoder("audio", "wav2vec 2.0 base, 16 kHz", 256, 2, 16),
    "vit-tiny": Encoder("image", "ViT of ViT-Tiny's width (192, 6 layers), 64 px, 65 tokens per image", 2000, 3,
                        64),
}


def save_encoder(name: str, path: Path) -> Path:
    """A randomly initialised ``name`` and its preprocessor, written by ``save_pretrained`` to ``path``."""
    import transformers as tf

    torch.manual_seed(0)
    if name == "clip-vit-b32":  # CLIPVisionConfig's defaults are ViT-B/32's: width 768, 12 layers, 224 px, patch 32
        tf.CLIPVisionModel(tf.CLIPVisionConfig()).save_pretrained(path)
        tf.CLIPImageProcessor().save_pretrained(path)
    elif name == "wav2vec2-base":  # Wav2Vec2Config's defaults are facebook/wav2vec2-base's
        tf.Wav2Vec2Model(tf.Wav2Vec2Config()).save_pretrained(path)
        tf.Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=False).save_pretrained(path)
    else:
        tf.ViTModel(tf.ViTConfig(hidden_size=192, num_hidden_layers=6, num_attention_heads=3, intermediate_size=768,
                                 image_size=64, patch_size=8)).save_pretrained(path)
        tf.ViTImageProcessor(size={"height": 64, "width": 64}).save_pretrained(path)
    return path


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


def fit(name: str, encoder_path: Path, cache: bool, cache_dir: Path, epochs: int,
        num_train: int) -> tuple[EpochClock, float, int]:
    """One fit; returns its clock, its last training loss and the encoder's parameter count."""
    from multimodal_kit.data.image_caption import ImageCaptionDataModule
    from multimodal_kit.data.text_audio import TextAudioDataModule
    from multimodal_kit.methods import CrossModalAttention
    from multimodal_kit.models.pretrained import PretrainedAudioEncoder, PretrainedImageEncoder

    seed_everything(0)
    spec = ENCODERS[name]
    options = {"batch_size": spec.batch_size, "cache_features": cache, "cache_dir": str(cache_dir)}
    sizes = {"num_train": num_train, "num_validation": 8, "num_test": 8}
    if spec.media == "audio":
        data: Any = TextAudioDataModule(embedded_options={**sizes, "min_words": 6, "max_words": 12},
                                        inputs="waveform", **options)
        encoder: Any = PretrainedAudioEncoder(str(encoder_path))
    else:
        data = ImageCaptionDataModule(embedded_options=sizes, **options)
        encoder = PretrainedImageEncoder(str(encoder_path))
    data.setup("fit")
    model = CrossModalAttention(vocab_size=data.vocab_size, pad_id=data.pad_id, bos_id=data.bos_id,
                                eos_id=data.eos_id, media=spec.media, encoder=encoder)
    clock = EpochClock()
    losses: list[float] = []

    class LastLoss(Callback):
        def on_train_batch_end(self, trainer: Trainer, pl_module: Any, outputs: Any, batch: Any, i: int) -> None:
            losses.append(float(outputs["loss"]))

    Trainer(max_epochs=epochs, limit_val_batches=0, logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False, callbacks=[clock, LastLoss()]).fit(model, data)
    return clock, losses[-1], sum(p.numel() for p in encoder.parameters())


def mean_seconds(num_train: int) -> float:
    """The mean length of the benchmark's training utterances, in seconds."""
    from multimodal_kit.data.embedded.spoken import SpokenConfig, generate_split

    rows = generate_split(SpokenConfig(num_train=num_train, num_validation=8, num_test=8, min_words=6, max_words=12),
                          "train")
    return statistics.mean(rows["seconds"])


def measure(name: str, epochs: int, num_train: int, tmp: Path) -> dict[str, Any]:
    """The three fits of one encoder, with its figures."""
    encoder_path = save_encoder(name, tmp / name)
    rows: dict[str, Any] = {}
    for variant, cache in (("uncached", False), ("cached", True), ("cached again", True)):
        clock, loss, parameters = fit(name, encoder_path, cache, tmp / "cache", epochs, num_train)
        rows[variant] = {"setup_s": clock.setup_s, "epoch_s": statistics.median(clock.epochs), "last_loss": loss,
                         "epochs_s": clock.epochs}
        print(name, variant, json.dumps(rows[variant]), flush=True)
    build = rows["cached"]["setup_s"] - rows["uncached"]["setup_s"]  # the cache's build, apart from the loading
    return {"rows": rows, "parameters": parameters, "epochs": epochs, "num_train": num_train, "build_s": build,
            "ratio": rows["uncached"]["epoch_s"] / rows["cached"]["epoch_s"],
            "first_cached_epoch_s": build + rows["cached"]["epochs_s"][0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoders", nargs="+", choices=sorted(ENCODERS), default=["clip-vit-b32", "wav2vec2-base"])
    parser.add_argument("--epochs", type=int, help="epochs per fit (default: the encoder's own)")
    parser.add_argument("--num_train", type=int, help="training items (default: the encoder's own)")
    parser.add_argument("--quick", action="store_true", help="a plumbing check: 2 epochs of 32 items")
    parser.add_argument("--no_results", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    found: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.encoders:
            spec = ENCODERS[name]
            epochs, num_train = (2, 32) if args.quick else (args.epochs or spec.epochs,
                                                            args.num_train or spec.num_train)
            found[name] = measure(name, epochs, num_train, Path(tmp))
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {torch.get_num_threads()} CPU threads ({platform.machine()}), "
             f"torch {torch.__version__}. Randomly initialised encoders with the hub models' configs, frozen, under "
             "the kit's attention decoder (`CrossModalAttention`), no validation. *before the first step*: from "
             "`fit` to the first training step (loading, and for *cached* computing every training item's "
             "features once). Same seed and batches in every variant: *last loss* shows they train alike.", "",
             "| encoder | params | variant | items × epochs | before the first step (s) | epoch (s, median) | "
             "training samples/s | last loss |", "|---|---|---|---|---|---|---|---|"]
    for name, figures in found.items():
        spec = ENCODERS[name]
        for variant, row in figures["rows"].items():
            lines.append(f"| {name} ({spec.describe}) | {figures['parameters'] / 1e6:.1f}M | {variant} | "
                         f"{figures['num_train']:,} × {figures['epochs']} | {row['setup_s']:.1f} | "
                         f"{row['epoch_s']:.1f} | {figures['num_train'] / row['epoch_s']:.0f} | "
                         f"{row['last_loss']:.4f} |")
    lines.append("")
    for name, figures in found.items():
        extra = (f"; utterances of {mean_seconds(figures['num_train']):.1f} s on average"
                 if ENCODERS[name].media == "audio" else "")
        uncached = figures["rows"]["uncached"]["epoch_s"]
        losses = figures["rows"]["uncached"]["last_loss"], figures["rows"]["cached"]["last_loss"]
        if abs(losses[0] - losses[1]) > 1e-4:
            extra += (f"; the last loss moves from {losses[0]:.4f} to {losses[1]:.4f}: the features are computed in "
                      "the cache's own batches, and an encoder without an attention mask (wav2vec 2.0 base) "
                      "normalizes over each batch's padding")
        lines.append(f"- {name}: epoch time uncached / cached **{figures['ratio']:.1f}×**; the first cached epoch "
                     f"including the cache's build: {figures['first_cached_epoch_s']:.1f} s (build "
                     f"{figures['build_s']:.1f} s) against {uncached:.1f} s uncached{extra}.")
    lines += ["", "Command: `make bench-cache` (`python benchmarks/feature_cache.py --encoders "
              f"{' '.join(args.encoders)}`). Target: ≥ 10× for the image encoder."]
    record_results(SECTION, lines, "feature_cache", found, print_only=args.quick or args.no_results)

if __name__ == "__main__":
    main()
