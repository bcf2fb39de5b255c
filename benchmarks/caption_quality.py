"""Benchmark: captioning methods on the embedded shapes set, each exactly as a user runs its experiment.

For each variant: ``mmkit fit -c experiments/<file>`` (the budget of training samples the file sets) → ``mmkit
test`` on the best checkpoint → test BLEU-4 and exact match split by one-object and two-object (relation) scenes,
and the samples to each target. The shipped files run by default; the other variants are ablations (one choice of
a shipped file changed back), run with ``--variants``. Prints a table and writes ``benchmarks/RESULTS.md``.
``--quick`` runs a tiny version (the test suite checks the script works).
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
)

SECTION = "Captioning on embedded `shapes` — `make bench`"
SEQ2SEQ = ["-c", "experiments/seq2seq_image_caption.yaml"]
ATTENTION = ["-c", "experiments/attention_image_caption.yaml"]
LSTM_ATTENTION = [*ATTENTION, "--model.init_args.lr", "2e-3", "--model.init_args.warmup_steps", "0"]
VARIANTS: dict[str, list[str]] = {
    "seq2seq": SEQ2SEQ,
    "attention": ATTENTION,
    # ablations: Show-and-Tell's decoder (the summary only in the initial state), the summary flattened instead of
    # averaged, and Show-Attend-Tell's LSTM decoder with each attention kind in place of the transformer decoder
    "seq2seq-initial-state-only": [*SEQ2SEQ, "--model.init_args.context_every_step", "false"],
    "seq2seq-flatten": [*SEQ2SEQ, "--model.init_args.summary", "flatten"],
    **{f"attention-lstm-{kind}": [*LSTM_ATTENTION, "--model.init_args.attention", kind]
       for kind in ("additive", "general", "dot")},
}
DEFAULT = ["seq2seq", "attention"]
#: (metric, target, higher is better) per shipped file: the first is the headline, the others must hold too
TARGETS = {"seq2seq": [("bleu4", 0.85)], "attention": [("bleu4", 0.98), ("exact_match", 0.95)]}
QUICK = ["--data.init_args.embedded_options", '{"num_train": 64, "num_validation": 16, "num_test": 16}',
         "--trainer.max_epochs", "1", "--trainer.logger", "false"]


@torch.no_grad()
def scores_by_scene(ckpt: Path) -> dict[str, float]:
    """Test BLEU-4 and exact match on one-object and on two-object (relation) scenes, from the checkpoint."""
    from multimodal_kit.data.embedded import load_embedded
    from multimodal_kit.data.text import canonical_text, decode_tokens
    from multimodal_kit.metrics import caption_metrics

    model, dm = load_trained(ckpt, eval_batch_size=250)
    data = dm.hparams
    num_objects = list(load_embedded(data["source"], data.get("embedded_options"))["test"]["num_objects"])
    groups = {1: caption_metrics("one", full=True), 2: caption_metrics("two", full=True)}
    index = 0
    for batch in dm.test_dataloader():
        predictions = decode_tokens(dm.tokenizer, model.generate(batch).tokens)
        for pred, refs in zip(predictions, batch["references"], strict=True):
            groups[num_objects[index]].update([canonical_text(dm.tokenizer, pred)],
                                              [[canonical_text(dm.tokenizer, r) for r in refs]])
            index += 1
    out = {}
    for group in groups.values():
        out |= {k: float(v) for k, v in group.compute().items() if k.endswith(("bleu4", "exact_match"))}
    return out


def run_variant(name: str, out: Path, quick: bool, reuse: bool) -> dict:
    result = fit_and_test(VARIANTS[name], out, QUICK if quick else None, reuse)
    top = max(result["history"], key=lambda r: r["val/bleu4"])
    family = "attention" if name.startswith("attention") else "seq2seq"
    to_target = max((samples_to(result["history"], f"val/{metric}", target, True) or float("inf")
                     for metric, target in TARGETS[family]))
    return {"variant": name, **result, "scenes": scores_by_scene(Path(result["checkpoint"])),
            "best_val_bleu4": top["val/bleu4"], "samples_to_best": top["samples"],
            "samples_to_target": None if to_target == float("inf") else to_target}


def report(rows: list[dict]) -> str:
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPU cores ({platform.machine()}), torch "
        f"{torch.__version__}. Each variant is its experiment file run as is for its budget ({budget_text(rows)}; "
        "same CNN encoder), then `mmkit test` on its best checkpoint (by val BLEU-4) over 1,000 test scenes. Greedy "
        "decoding. Targets: seq2seq BLEU-4 ≥ 0.85; attention BLEU-4 ≥ 0.98 and exact match ≥ 0.95 (samples to "
        "target: the first validation where all of them held).",
        "",
        "| variant | test BLEU-4 | CIDEr-D | exact match | BLEU-4 one object | BLEU-4 two objects | exact match "
        "two objects | samples to target (val) | samples to best val | train min | samples/s | params |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t, s = r["test"], r["scenes"]
        lines.append(f"| {r['variant']} | {t['test/bleu4']:.3f} | {t['test/cider']:.2f} | {t['test/exact_match']:.3f} "
                     f"| {s['one/bleu4']:.3f} | {s['two/bleu4']:.3f} | {s['two/exact_match']:.3f} | "
                     f"{reached(r['samples_to_target'], r['history'])} | {r['samples_to_best']:,} | "
                     f"{r['train_minutes']:.1f} | "
                     f"{r['samples_per_s']:.0f} | {r['parameters'] / 1e6:.2f}M |")
    lines += ["", "val BLEU-4 after each epoch (training samples):", ""]
    lines += history_lines(rows, "val/bleu4", 2)
    return "\n".join(lines) + "\n"


def main() -> None:
    benchmark_main(__doc__, VARIANTS, "caption_quality", SECTION, run_variant, report, DEFAULT)


if __name__ == "__main__":
    main()
