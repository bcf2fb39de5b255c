"""Benchmark: a pretrained causal LM as the decoder — plumbing and speed, not quality.

A random GPT-2 (4 layers, width 256, 4 heads; its byte-level BPE tokenizer trained on shapes captions) saved
locally stands in for a hub LM. On the embedded ``shapes`` set, with the same small CNN encoder trained from
scratch, each variant trains for the same number of samples from the same seed: the kit's LSTM attention decoder
(``CrossModalAttention``, additive) and ``PretrainedLM`` with a prefix (frozen LM, or LoRA) or cross-attention
(LoRA). Reports training samples/s (median over steps after warm-up), trainable and total parameters, and the
validation BLEU-4 after the budget (a random LM knows no English: the figure shows the pipeline runs end to end).
Prints a table and writes its section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
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

SECTION = "Pretrained LM decoder, plumbing and speed — `make bench-lm`"
VARIANTS: dict[str, dict[str, Any]] = {
    "lstm-attention (from scratch)": {},
    "prefix, frozen LM": {"connector": "prefix", "lm_training": "frozen"},
    "prefix, LoRA": {"connector": "prefix", "lm_training": "lora"},
    "cross-attention, LoRA": {"connector": "cross_attention", "lm_training": "lora"},
}


class StepClock(Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_batch_start(self, trainer: Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer: Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.times.append(time.perf_counter() - self.start)


def run(name: str, options: dict[str, Any], lm: Path, epochs: int, num_train: int) -> dict[str, Any]:
    from multimodal_kit.data.image_caption import ImageCaptionDataModule
    from multimodal_kit.methods import CrossModalAttention, PretrainedLM

    seed_everything(0)
    data = ImageCaptionDataModule(embedded_options={"num_train": num_train, "num_validation": 200, "num_test": 8},
                                  batch_size=32, tokenizer=str(lm))
    data.setup("fit")
    ids = {"vocab_size": data.vocab_size, "pad_id": data.pad_id, "bos_id": data.bos_id, "eos_id": data.eos_id}
    model = (PretrainedLM(language_model=str(lm), lr=1e-3, **options, **ids) if options
             else CrossModalAttention(lr=1e-3, **ids))
    clock = StepClock()
    trainer = Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, num_sanity_val_steps=0, callbacks=[clock])
    trainer.fit(model, data)
    step = statistics.median(clock.times[5:])
    return {"samples": len(clock.times) * 32, "samples_per_s": 32 / step,
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "total": sum(p.numel() for p in model.parameters()),
            "val_bleu4": float(trainer.callback_metrics["val/bleu4"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--num_train", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="a plumbing check: 1 epoch of 320 scenes")
    args = parser.parse_args()
    epochs, num_train = (1, 320) if args.quick else (args.epochs, args.num_train)
    from tests.helpers import save_gpt2

    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        lm = save_gpt2(Path(tmp) / "gpt2", width=256, layers=4)
        rows = {name: run(name, options, lm, epochs, num_train) for name, options in VARIANTS.items()}
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {torch.get_num_threads()} CPU threads ({platform.machine()}), "
             f"torch {torch.__version__}: {epochs} epochs of {num_train:,} `shapes` scenes (batch 32) per variant, "
             "the same small CNN encoder trained from scratch, a random GPT-2 of 4 layers and width 256 as the "
             "pretrained LM. Quality is not the point (a random LM knows no English); BLEU-4 shows the pipeline "
             "trains and decodes end to end. samples/s: median training step after 5 warm-up steps.", "",
             "| variant | samples | samples/s | trainable params | total params | val BLEU-4 |", "|---|---|---|---|---|---|"]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['samples']:,} | {row['samples_per_s']:.0f} | {row['trainable'] / 1e6:.2f}M | "
                     f"{row['total'] / 1e6:.2f}M | {row['val_bleu4']:.3f} |")
    lines += ["", f"Command: `make bench-lm` (`python benchmarks/pretrained_lm.py --epochs {epochs} --num_train "
              f"{num_train}`). No GPU here: bf16 and gradient checkpointing throughput were not measured."]
    record_results(SECTION, lines, "pretrained_lm", rows, print_only=args.quick)


if __name__ == "__main__":
    main()
