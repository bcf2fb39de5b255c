"""Benchmark: image question answering on the embedded ``shapes_qa`` set — stacked attention against the pooled
image and the question alone, at the same budget of training samples.

For each variant: ``mmkit fit -c experiments/<fusion>_image_qa.yaml --trainer.max_steps`` = the sample budget /
batch size → ``mmkit test`` on the best checkpoint (by validation accuracy): accuracy overall and per question
family on 1,000 test scenes. Prints a table and writes its section of ``benchmarks/RESULTS.md``.
``MMKIT_QA_SAMPLES`` sets the budget (default 300,000); ``--quick`` runs a tiny version (the test suite checks it).
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import benchmark_main, fit_and_test, history_lines  # noqa: E402

SECTION = "Image question answering on embedded `shapes_qa` — `make bench`"
SAMPLES = int(os.environ.get("MMKIT_QA_SAMPLES", 300_000))
BATCH = 64  # the experiment files' batch size
FAMILIES = ("color", "shape", "relation", "count", "exists", "size")
VARIANTS: dict[str, list[str]] = {fusion: ["-c", f"experiments/{fusion}_image_qa.yaml"]
                                  for fusion in ("attention", "pooled", "blind")}
QUICK = ["--data.init_args.embedded_options", '{"num_train": 96, "num_validation": 32, "num_test": 32}',
         "--trainer.max_epochs", "1", "--trainer.logger", "false", "--data.init_args.batch_size", "16"]
TARGETS = {"test/accuracy": 0.95, "test/accuracy_relation": 0.9}  # attention's


def run_variant(name: str, out: Path, quick: bool, reuse: bool) -> dict:
    budget = [] if quick else ["--trainer.max_steps", str(SAMPLES // BATCH), "--trainer.max_epochs", "-1",
                               "--trainer.max_time", "00:02:00:00"]
    result = fit_and_test([*VARIANTS[name], *budget], out, QUICK if quick else None, reuse)
    reached = next((h["samples"] for h in result["history"] if h["val/accuracy"] >= TARGETS["test/accuracy"]), None)
    return {"variant": name, **result, "samples_to_target": reached}


def report(rows: list[dict]) -> str:
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPU cores ({platform.machine()}), torch "
        f"{torch.__version__}. Each variant is its experiment file with a budget of {SAMPLES:,} training samples "
        f"(--trainer.max_steps {SAMPLES // BATCH} × batch {BATCH}; 10,000 training scenes, one question each), then "
        "`mmkit test` on its best checkpoint (by validation accuracy) over 1,000 test scenes. Targets (attention): "
        "test accuracy ≥ 0.95 overall and ≥ 0.9 on relation questions.",
        "",
        "| variant | test accuracy | " + " | ".join(FAMILIES) + " | samples to val acc. ≥ 0.95 | train min "
        "| samples/s | params |",
        "|---|---|" + "---|" * len(FAMILIES) + "---|---|---|---|",
    ]
    for r in rows:
        t = r["test"]
        reached = f"{r['samples_to_target']:,}" if r["samples_to_target"] is not None else "not reached"
        lines.append(f"| {r['variant']} | {t['test/accuracy']:.3f} | "
                     + " | ".join(f"{t[f'test/accuracy_{f}']:.3f}" for f in FAMILIES)
                     + f" | {reached} | {r['train_minutes']:.1f} | {r['samples_per_s']:.0f} | "
                       f"{r['parameters'] / 1e6:.2f}M |")
    lines += ["", "Validation accuracy after each epoch (training minutes):", ""]
    lines += history_lines(rows, "val/accuracy", 3)
    return "\n".join(lines) + "\n"


def main() -> None:
    benchmark_main(__doc__, VARIANTS, "image_qa", SECTION, run_variant, report)


if __name__ == "__main__":
    main()
