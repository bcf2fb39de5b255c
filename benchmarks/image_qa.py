"""Benchmark: image question answering on the embedded ``shapes_qa`` set — cross-modal attention against the
pooled image and the question alone, each experiment file run as is for its budget of training samples.

For each variant: ``mmkit fit -c experiments/<fusion>_image_qa.yaml`` → ``mmkit test`` on the best checkpoint (by
validation accuracy): accuracy overall and per question family on 1,000 test scenes. Prints a table and writes its
section of ``benchmarks/RESULTS.md``. Ablation (``--variants san``): stacked attention (SAN) instead of the
transformer. ``--quick`` runs a tiny version (the test suite checks it).
"""

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

SECTION = "Image question answering on embedded `shapes_qa` — `make bench`"
FAMILIES = ("color", "shape", "relation", "count", "exists", "size")
VARIANTS: dict[str, list[str]] = {fusion: ["-c", f"experiments/{fusion}_image_qa.yaml"]
                                  for fusion in ("attention", "pooled", "blind")}
VARIANTS["san"] = ["-c", "experiments/attention_image_qa.yaml", "--model.init_args.fusion", "attention",
                   "--model.init_args.lr", "0.002", "--model.init_args.warmup_steps", "0",
                   "--model.init_args.lr_decay", "constant"]
DEFAULT = ["attention", "pooled", "blind"]
QUICK = ["--data.init_args.embedded_options", '{"num_train": 96, "num_validation": 32, "num_test": 32}',
         "--trainer.max_epochs", "1", "--trainer.logger", "false", "--data.init_args.batch_size", "16"]
TARGETS = {"accuracy": 0.95, "accuracy_relation": 0.9}  # attention's, on test (and val for samples to target)


def run_variant(name: str, out: Path, quick: bool, reuse: bool) -> dict:
    result = fit_and_test(VARIANTS[name], out, QUICK if quick else None, reuse)
    to_target = samples_to_all(result["history"], [(f"val/{metric}", target) for metric, target in TARGETS.items()])
    return {"variant": name, **result, "samples_to_target": to_target}


def answer_prior() -> dict[str, float]:
    """Test accuracy of answering each question with its family's most common training answer (no image, no
    question words): what the blind baseline should come near. Keys: ``accuracy`` and ``accuracy_<family>``."""
    from collections import Counter

    from multimodal_kit.data.embedded.shapes_questions import ShapesQuestionsConfig, scene_questions

    config = ShapesQuestionsConfig()
    sizes = config.split_sizes()

    def items(split: str) -> list[tuple[str, str]]:  # (family, answer)
        return [(family, answer) for i in range(sizes[split])
                for _, answer, family in scene_questions(config, split, i)[1]]

    counts: dict[str, Counter] = {}
    for family, answer in items("train"):
        counts.setdefault(family, Counter())[answer] += 1
    hits = [(family, counts[family].most_common(1)[0][0] == answer) for family, answer in items("test")]
    prior = {f"accuracy_{f}": sum(h for g, h in hits if g == f) / max(1, sum(g == f for g, _ in hits))
             for f in FAMILIES}
    return {"accuracy": sum(h for _, h in hits) / len(hits), **prior}


def report(rows: list[dict]) -> str:
    prior = answer_prior()
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPU cores ({platform.machine()}), torch "
        f"{torch.__version__}. Each variant is its experiment file run as is for its budget ({budget_text(rows)}; "
        "10,000 training scenes, five different questions each), then `mmkit test` on its best checkpoint (by "
        "validation accuracy) over the 5,000 questions about 1,000 test scenes. attention = the transformer "
        "decoder over the question, cross-attending to the image regions; san = stacked attention (ablation). Targets (attention): test accuracy ≥ 0.95 "
        "overall and ≥ 0.9 on relation questions; *samples to target*: the first validation that met both.",
        "",
        "| variant | test accuracy | " + " | ".join(FAMILIES) + " | samples to target (val) | train min "
        "| samples/s | params |",
        "|---|---|" + "---|" * len(FAMILIES) + "---|---|---|---|",
    ]
    for r in rows:
        t = r["test"]
        lines.append(f"| {r['variant']} | {t['test/accuracy']:.3f} | "
                     + " | ".join(f"{t[f'test/accuracy_{f}']:.3f}" for f in FAMILIES)
                     + f" | {reached(r['samples_to_target'], r['history'])} | {r['train_minutes']:.1f} | {r['samples_per_s']:.0f} | "
                       f"{r['parameters'] / 1e6:.2f}M |")
    lines.append("| *answer prior* (each family's most common training answer) | "
                 f"{prior['accuracy']:.3f} | " + " | ".join(f"{prior[f'accuracy_{f}']:.3f}" for f in FAMILIES)
                 + " | | | | |")
    lines += ["", "Validation accuracy after each epoch (training samples):", ""]
    lines += history_lines(rows, "val/accuracy", 3)
    lines += ["", "Validation accuracy on relation questions (what attention should buy over the pooled image):", ""]
    lines += history_lines(rows, "val/accuracy_relation", 3)
    return "\n".join(lines) + "\n"


def main() -> None:
    benchmark_main(__doc__, VARIANTS, "image_qa", SECTION, run_variant, report, default=DEFAULT)


if __name__ == "__main__":
    main()
