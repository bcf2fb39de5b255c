"""Benchmark: the default Seq2Seq experiment on the embedded shapes set, as a user runs it.

Runs ``mmkit fit -c experiments/seq2seq_image_caption.yaml`` (10-minute budget), then ``mmkit test`` on the best
checkpoint; prints and records the minutes to the best ``val/bleu4``, the test BLEU-1..4, CIDEr and exact match,
and the training rate. ``--quick`` runs a tiny version (the test suite uses it to check the script works).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"


def mmkit(*args: str) -> None:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    subprocess.run([sys.executable, "-m", "multimodal_kit", *args], check=True, env=env, cwd=ROOT)


def run(out: Path, quick: bool) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    clock = out / "validation_clock.jsonl"
    extra = out / "clock.yaml"
    extra.write_text(json.dumps({"trainer": {"callbacks": [
        {"class_path": "benchmarks.timing.ValidationClock", "init_args": {"path": str(clock)}}]}}))
    overrides = ["--trainer.enable_progress_bar", "false"]
    if quick:
        overrides += ["--data.init_args.embedded_options", '{"num_train": 64, "num_validation": 16, "num_test": 16}',
                      "--trainer.max_epochs", "1", "--trainer.logger", "false", "--model.init_args.hidden_dim", "32",
                      "--model.init_args.embed_dim", "32"]
    run_dir = out / "run"
    started = time.perf_counter()
    mmkit("fit", "-c", "experiments/seq2seq_image_caption.yaml", "-c", str(extra), "--run_dir", str(run_dir),
          *overrides)
    fit_minutes = (time.perf_counter() - started) / 60
    (best,) = (run_dir / "checkpoints").glob("epoch*.ckpt")
    results = out / "test_metrics.json"
    mmkit("test", "--ckpt_path", str(best), "--results_path", str(results), "--trainer.logger", "false",
          "--trainer.enable_progress_bar", "false")
    history = [json.loads(line) for line in clock.read_text().splitlines()]
    top = max(history, key=lambda r: r["val/bleu4"])
    last = history[-1]
    return {"test": json.loads(results.read_text()), "best_val_bleu4": top["val/bleu4"],
            "minutes_to_best": top["minutes"], "epochs": last["epoch"] + 1, "train_minutes": last["minutes"],
            "fit_minutes_total": fit_minutes, "samples_per_s": last["samples"] / (last["minutes"] * 60),
            "history": history}


def record(figures: dict) -> str:
    t = figures["test"]
    lines = [
        "## Seq2Seq (Show-and-Tell) on embedded `shapes` — `make bench`",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}),"
        f" torch {torch.__version__}, `mmkit fit -c experiments/seq2seq_image_caption.yaml` (10-minute budget).",
        "",
        "| figure | value |",
        "|---|---|",
        f"| best val BLEU-4 | {figures['best_val_bleu4']:.3f} |",
        f"| minutes to best val BLEU-4 | {figures['minutes_to_best']:.1f} |",
        f"| epochs / training minutes | {figures['epochs']} / {figures['train_minutes']:.1f} |",
        f"| training rate (samples/s, validation time included) | {figures['samples_per_s']:.0f} |",
        f"| test BLEU-1 / 2 / 3 / 4 | {t['test/bleu1']:.3f} / {t['test/bleu2']:.3f} / {t['test/bleu3']:.3f} / "
        f"{t['test/bleu4']:.3f} |",
        f"| test CIDEr-D | {t['test/cider']:.3f} |",
        f"| test exact match | {t['test/exact_match']:.3f} |",
        "",
        "val BLEU-4 by epoch (minutes): " + ", ".join(f"{r['val/bleu4']:.2f} ({r['minutes']:.1f})"
                                                     for r in figures["history"]),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tiny run that only checks the script works")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "seq2seq_shapes"))
    args = parser.parse_args()
    figures = run(Path(args.out), args.quick)
    text = record(figures)
    print(text)
    (Path(args.out) / "figures.json").write_text(json.dumps(figures, indent=2))
    if not args.quick:
        RESULTS.write_text("# Benchmark results\n\nWritten by `make bench`; each section by its script.\n\n" + text)


if __name__ == "__main__":
    main()
