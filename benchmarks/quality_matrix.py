"""The quality matrix: each of the six experiments, trained for its budget exactly as a user runs it, with its test
metric against its target — gathered from the figures the quality benchmarks wrote in this checkout
(``benchmarks/out/{caption,speech,gan}_quality/figures.json``), so ``make bench`` runs every experiment once.

Prints the matrix and writes its section of ``benchmarks/RESULTS.md``; an experiment whose benchmark has not run
yet is listed as such.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import ROOT, update_results  # noqa: E402

SECTION = "Quality matrix: the six experiments — `make bench`"


@dataclass(frozen=True)
class Cell:
    """Where one experiment's figures are and what it must reach."""

    benchmark: str  # the folder under benchmarks/out
    variant: str  # the row of that benchmark's figures.json
    metric: str  # the test metric
    target: float | None  # None: its issue set no target
    higher_is_better: bool
    budget_minutes: int


MATRIX: dict[str, Cell] = {
    "seq2seq_image_caption": Cell("caption_quality", "seq2seq", "test/bleu4", 0.5, True, 10),
    "attention_image_caption": Cell("caption_quality", "attention-additive", "test/bleu4", 0.7, True, 10),
    "gan_image_caption": Cell("gan_quality", "text-image", "test/cycle_bleu4", 0.5, True, 20),
    "seq2seq_text_audio": Cell("speech_quality", "seq2seq", "test/wer", None, False, 15),
    "attention_text_audio": Cell("speech_quality", "attention-additive", "test/wer", 0.10, False, 15),
    "gan_text_audio": Cell("gan_quality", "text-audio", "test/cycle_exact_match", 0.70, True, 20),
}


def rows(out: Path) -> list[dict]:
    """One row per experiment: its test metric, target, whether met, minutes trained and samples/s."""
    table = []
    for experiment, cell in MATRIX.items():
        figures = out / cell.benchmark / "figures.json"
        found = [r for r in json.loads(figures.read_text()) if r["variant"] == cell.variant] if figures.is_file() else []
        row = {"experiment": experiment, "metric": cell.metric, "target": cell.target,
               "higher_is_better": cell.higher_is_better, "budget_minutes": cell.budget_minutes,
               "benchmark": cell.benchmark}
        if found:
            r = found[0]
            value = r["test"][cell.metric]
            met = None if cell.target is None else (value >= cell.target if cell.higher_is_better
                                                     else value <= cell.target)
            row |= {"value": value, "met": met, "train_minutes": r["train_minutes"],
                    "samples_per_s": r["samples_per_s"], "epochs": r["epochs"]}
        table.append(row)
    return table


def report(table: list[dict]) -> str:
    lines = ["Each experiment file run as is for its budget on this machine, then `mmkit test` on its best "
             "checkpoint (figures from the section of each benchmark above). GAN scores are cycle scores read "
             "by an evaluator the kit trained (see the GAN section).", "",
             "| experiment | budget (min) | test metric | value | target | met | minutes trained | epochs | samples/s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        if "value" not in r:
            lines.append(f"| {r['experiment']} | {r['budget_minutes']} | {r['metric']} | not run "
                         f"(`benchmarks/{r['benchmark']}.py`) | | | | | |")
            continue
        target = "—" if r["target"] is None else f"{'≥' if r['higher_is_better'] else '≤'} {r['target']:g}"
        met = "—" if r["met"] is None else ("yes" if r["met"] else "**no**")
        lines.append(f"| {r['experiment']} | {r['budget_minutes']} | {r['metric']} | {r['value']:.3f} | {target} | "
                     f"{met} | {r['train_minutes']:.1f} | {r['epochs']} | {r['samples_per_s']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out"), help="where the benchmarks wrote")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    table = rows(Path(args.out))
    (Path(args.out) / "quality_matrix.json").write_text(json.dumps(table, indent=2))
    text = report(table)
    print(text)
    if not args.no_write:
        update_results(SECTION, text)


if __name__ == "__main__":
    main()
