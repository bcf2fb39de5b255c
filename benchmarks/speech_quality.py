"""Benchmark: speech recognition on the embedded ``spoken`` set, each method exactly as a user runs it.

For each variant: ``mmkit fit -c experiments/<file>`` (its 15-minute budget) → ``mmkit test`` on the best
checkpoint (by validation WER). The validation and test voices are never heard in training. Prints a table and
writes its section of ``benchmarks/RESULTS.md``. ``--quick`` runs a tiny version (the test suite checks it works).
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

SECTION = "Speech recognition on embedded `spoken` — `make bench`"
VARIANTS: dict[str, list[str]] = {
    "seq2seq": ["-c", "experiments/seq2seq_text_audio.yaml"],
    "attention-additive": ["-c", "experiments/attention_text_audio.yaml"],
}
QUICK = ["--data.init_args.embedded_options", '{"num_train": 64, "num_validation": 16, "num_test": 16}',
         "--trainer.max_epochs", "1", "--trainer.logger", "false"]
TARGET_WER = 0.10


def run_variant(name: str, out: Path, quick: bool, reuse: bool) -> dict:
    result = fit_and_test(VARIANTS[name], out, QUICK if quick else None, reuse)
    history = result["history"]
    best = min(history, key=lambda r: r["val/wer"])
    reached = next((r["minutes"] for r in history if r["val/wer"] <= TARGET_WER), None)
    return {"variant": name, **result, "best_val_wer": best["val/wer"], "minutes_to_best": best["minutes"],
            "minutes_to_target": reached}


def report(rows: list[dict]) -> str:
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPU cores ({platform.machine()}), torch "
        f"{torch.__version__}. Each variant is its experiment file run as is (15-minute training budget, same "
        "conv + pyramidal BiLSTM encoder, 6,000 training utterances from 32 voices), then `mmkit test` on its best "
        "checkpoint (by validation WER) over 1,000 utterances from 6 voices never heard in training. Greedy "
        "decoding.",
        "",
        f"| variant | test WER | test CER | exact match | best val WER | min to best val | min to val WER ≤ "
        f"{TARGET_WER:.0%} | epochs | samples/s | params |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t = r["test"]
        reached = f"{r['minutes_to_target']:.1f}" if r["minutes_to_target"] is not None else "not reached"
        lines.append(f"| {r['variant']} | {t['test/wer']:.3f} | {t['test/cer']:.3f} | {t['test/exact_match']:.3f} | "
                     f"{r['best_val_wer']:.3f} | {r['minutes_to_best']:.1f} | {reached} | {r['epochs']} | "
                     f"{r['samples_per_s']:.0f} | {r['parameters'] / 1e6:.2f}M |")
    lines += ["", "val WER after each epoch (minutes):", ""]
    lines += history_lines(rows, "val/wer", 3)
    return "\n".join(lines) + "\n"


def main() -> None:
    benchmark_main(__doc__, VARIANTS, "speech_quality", SECTION, run_variant, report)


if __name__ == "__main__":
    main()
