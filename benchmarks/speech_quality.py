"""Benchmark: speech recognition on the embedded ``spoken`` set, each method exactly as a user runs it.

For each variant: ``mmkit fit -c experiments/<file>`` (the budget of training samples the file sets) → ``mmkit
test`` on the best checkpoint (by validation WER), WER by utterance length, and the samples to each target. The
validation and test voices are never heard in training. The shipped files run by default; the other variants are
ablations (one choice of a shipped file changed back), run with ``--variants``. Prints a table and writes its
section of ``benchmarks/RESULTS.md``. ``--quick`` runs a tiny version (the test suite checks it works).
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
    load_trained,
    reached,
    samples_to,
    wer_by_words_table,
)

SECTION = "Speech recognition on embedded `spoken` — `make bench`"
SEQ2SEQ = ["-c", "experiments/seq2seq_text_audio.yaml"]
ATTENTION = ["-c", "experiments/attention_text_audio.yaml"]
VARIANTS: dict[str, list[str]] = {
    "seq2seq": SEQ2SEQ,
    "attention": ATTENTION,
    # ablations: Show-and-Tell's decoder (the summary only in the initial state); the speaker set of spoken v2
    # (each training variant with one accent: 32 speakers, not 224)
    "seq2seq-initial-state-only": [*SEQ2SEQ, "--model.init_args.context_every_step", "false"],
    "attention-32-speakers": [*ATTENTION, "--data.init_args.embedded_options", '{"accent_per_utterance": false}'],
}
DEFAULT = ["seq2seq", "attention"]
TARGETS = {"seq2seq": 0.25, "attention": 0.05}  # test WER on voices never heard in training
QUICK = ["--data.init_args.embedded_options", '{"num_train": 64, "num_validation": 16, "num_test": 16}',
         "--trainer.max_epochs", "1", "--trainer.logger", "false"]


@torch.no_grad()
def wer_by_words(ckpt: Path) -> dict[int, float]:
    """Test WER by the utterance's word count (the Seq2Seq–attention gap grows with it), from the checkpoint."""
    from multimodal_kit.data.text import canonical_text, decode_tokens
    from multimodal_kit.metrics import FirstReferenceWER

    model, dm = load_trained(ckpt)
    groups: dict[int, FirstReferenceWER] = {}
    for batch in dm.test_dataloader():
        for pred, refs in zip(decode_tokens(dm.tokenizer, model.generate(batch).tokens), batch["references"],
                              strict=True):
            words = len(refs[0].split())
            groups.setdefault(words, FirstReferenceWER()).update([canonical_text(dm.tokenizer, pred)],
                                                                  [[canonical_text(dm.tokenizer, refs[0])]])
    return {n: float(metric.compute()) for n, metric in sorted(groups.items())}


def run_variant(name: str, out: Path, quick: bool, reuse: bool) -> dict:
    result = fit_and_test(VARIANTS[name], out, QUICK if quick else None, reuse)
    history = result["history"]
    best = min(history, key=lambda r: r["val/wer"])
    target = TARGETS["attention" if name.startswith("attention") else "seq2seq"]
    return {"variant": name, **result, "best_val_wer": best["val/wer"], "samples_to_best": best["samples"],
            "target": target, "samples_to_target": samples_to(history, "val/wer", target, False),
            "wer_by_words": wer_by_words(Path(result["checkpoint"]))}


def report(rows: list[dict]) -> str:
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPU cores ({platform.machine()}), torch "
        f"{torch.__version__}. Each variant is its experiment file run as is for its budget ({budget_text(rows)}; "
        "same conv + pyramidal BiLSTM encoder; 6,000 training utterances from 224 speakers = 32 eSpeak NG voice "
        "variants × 7 accents), then `mmkit test` on its best checkpoint (by validation WER) over 1,000 utterances "
        "from 6 variants never heard in training (in any accent). Greedy decoding. Targets (test WER): seq2seq ≤ "
        "0.25, attention ≤ 0.05; samples to target: the first validation at or under it.",
        "",
        "| variant | test WER | test CER | exact match | best val WER | target | samples to target (val) "
        "| samples to best val | train min | samples/s | params |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t = r["test"]
        lines.append(f"| {r['variant']} | {t['test/wer']:.3f} | {t['test/cer']:.3f} | {t['test/exact_match']:.3f} | "
                     f"{r['best_val_wer']:.3f} | ≤ {r['target']} | {reached(r['samples_to_target'], r['history'])} | "
                     f"{r['samples_to_best']:,} | {r['train_minutes']:.1f} | {r['samples_per_s']:.0f} | "
                     f"{r['parameters'] / 1e6:.2f}M |")
    lines += wer_by_words_table(rows, "Test WER by utterance length (words):")
    lines += ["", "val WER after each epoch (training samples):", ""]
    lines += history_lines(rows, "val/wer", 3)
    return "\n".join(lines) + "\n"


def main() -> None:
    benchmark_main(__doc__, VARIANTS, "speech_quality", SECTION, run_variant, report, DEFAULT)


if __name__ == "__main__":
    main()
