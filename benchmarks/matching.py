"""Benchmark: image–text matching on the embedded ``shapes`` set — cross-attention against the dual encoder's
cosine and the caption alone, each ``experiments/matching_image_caption.yaml`` with its fusion, run for the file's
budget, then ``mmkit test`` on the best checkpoint (by validation accuracy): accuracy overall, on the true pairs
and per swapped attribute, over the 1,000 test scenes (half of them with a swapped caption, fixed per scene).
``--quick`` runs a tiny version (the test suite checks it)."""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import (  # noqa: E402
    benchmark_main,
    budget_text,
    fit_and_test,
    history_lines,
    reached,
    samples_to_all,
)

SECTION = "Image–text matching on embedded `shapes` — `make bench-matching`"
FUSIONS = ("cross_attention", "dual", "blind")
VARIANTS = {f: ["-c", "experiments/matching_image_caption.yaml", "--model.init_args.fusion", f] for f in FUSIONS}
for _fusion in ("dual", "blind"):  # the shipped file's parts of cross-attention, off
    VARIANTS[_fusion] += ["--model.init_args.region_colours", "false", "--model.init_args.caption_weight", "0"]
# ablation: every attribute that must be bound to its object (colour, shape, relation) swapped twice as often as size
VARIANTS["cross_attention_binding"] = [*VARIANTS["cross_attention"], "--model.init_args.swap_weights",
                                       "{relation: 2, color: 2, shape: 2}"]
# ablation: matching alone (no captioning loss, no region colours): the shipped file before 2026-12-04
VARIANTS["cross_attention_match_only"] = [*VARIANTS["cross_attention"], "--model.init_args.region_colours", "false",
                                          "--model.init_args.caption_weight", "0"]
QUICK = ["--data.init_args.embedded_options", '{"num_train": 96, "num_validation": 32, "num_test": 32}',
         "--trainer.max_epochs", "1", "--trainer.logger", "false", "--data.init_args.batch_size", "16"]
COLUMNS = ("accuracy", "accuracy_match", "accuracy_color", "accuracy_shape", "accuracy_size", "accuracy_relation")
TARGETS = {"accuracy": 0.95, "accuracy_relation": 0.9}  # cross-attention's; the blind fusion: 0.5 ± 0.02


def run_variant(name: str, out: Path, quick: bool, reuse: bool) -> dict:
    result = fit_and_test(VARIANTS[name], out, QUICK if quick else None, reuse)
    to_target = samples_to_all(result["history"], [(f"val/{metric}", target) for metric, target in TARGETS.items()])
    return {"variant": name, **result, "samples_to_target": to_target}


def report(rows: list[dict]) -> str:
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPU cores ({platform.machine()}), torch "
        f"{torch.__version__}. Each fusion is experiments/matching_image_caption.yaml run as is (dual and blind with "
        "cross-attention's region colours and captioning loss off) for its budget "
        f"({budget_text(rows)}: scenes, each trained on with its caption and with a swapped one, so twice as many "
        "pairs), then `mmkit test` on its best checkpoint (by validation accuracy) over 1,000 test "
        "scenes, each paired with its caption or (half, fixed per scene) the caption with one attribute swapped: an "
        "object's colour, shape or size, or the relation's two objects trading places. Targets: cross-attention "
        "accuracy ≥ 0.95 overall and ≥ 0.9 on relation swaps; blind within 0.02 of 0.5.",
        "",
        "| fusion | " + " | ".join(c.replace("accuracy_", "") for c in COLUMNS) + " | scenes to target (val) | "
        "train min | scenes/s | params |",
        "|---|" + "---|" * len(COLUMNS) + "---|---|---|---|",
    ]
    for r in rows:
        t = r["test"]
        lines.append(f"| {r['variant']} | " + " | ".join(f"{t.get(f'test/{c}', float('nan')):.3f}" for c in COLUMNS)
                     + f" | {reached(r['samples_to_target'], r['history'])} | {r['train_minutes']:.1f} | "
                     f"{r['samples_per_s']:.0f} | {r['parameters'] / 1e6:.2f}M |")
    lines += ["", "Validation accuracy after each epoch (training scenes):", ""]
    lines += history_lines(rows, "val/accuracy", 3)
    lines += ["", "Validation accuracy on relation swaps:", ""]
    lines += history_lines(rows, "val/accuracy_relation", 3)
    return "\n".join(lines) + "\n"


def main() -> None:
    benchmark_main(__doc__, VARIANTS, "matching", SECTION, run_variant, report, default=list(FUSIONS))


if __name__ == "__main__":
    main()
