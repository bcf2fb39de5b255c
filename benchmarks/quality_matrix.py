"""The quality matrix: each of the six experiments, trained for its budget of training samples exactly as a user
runs it, with its test metrics against its targets — gathered from the figures the quality benchmarks wrote in this
checkout (``benchmarks/out/{caption,speech,gan}_quality/figures.json``, else the rows committed in
``benchmarks/figures/``), so ``make bench`` runs every experiment once.

Prints the matrix and writes its section of ``benchmarks/RESULTS.md``; an experiment whose figures are not in this
checkout keeps its row from RESULTS.md (its run recorded there, not lost), or is listed as not run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import RESULTS, ROOT, reached, saved_rows, update_results  # noqa: E402

SECTION = "Quality matrix: the six experiments — `make bench`"


@dataclass(frozen=True)
class Cell:
    """Where one experiment's figures are and what it must reach: ``targets`` = (test metric, target, higher is
    better), the first the headline; all must hold."""

    benchmark: str  # the folder under benchmarks/out
    variant: str  # the row of that benchmark's figures.json
    targets: tuple[tuple[str, float, bool], ...]


MATRIX: dict[str, Cell] = {
    "seq2seq_image_caption": Cell("caption_quality", "seq2seq", (("test/bleu4", 0.85, True),)),
    "attention_image_caption": Cell("caption_quality", "attention", (
        ("test/bleu4", 0.98, True), ("test/exact_match", 0.95, True), ("two/exact_match", 0.9, True))),
    "vision_aided_gan_image_caption": Cell("gan_quality", "text-image", (
        ("test/read_shape", 0.8, True), ("test/read_exact_match", 0.4, True))),
    "seq2seq_text_audio": Cell("speech_quality", "seq2seq", (("test/wer", 0.25, False),)),
    "attention_text_audio": Cell("speech_quality", "attention", (("test/wer", 0.05, False),)),
    "gan_text_audio": Cell("gan_quality", "text-audio", (("test/cycle_exact_match", 0.75, True),)),
}


def figure(row: dict, metric: str) -> float:
    """A test metric of a benchmark row (``two/…``: the caption benchmark's two-object scenes)."""
    return row["scenes"][metric] if metric.startswith(("one/", "two/")) else row["test"][metric]


def rows(out: Path, committed: Path) -> list[dict]:
    """One row per experiment: its test metrics against the targets, samples trained and to target, speed (from
    ``out/<benchmark>/figures.json``, else from the rows committed in ``committed/<benchmark>.json``)."""
    table = []
    for experiment, cell in MATRIX.items():
        found = [r for r in saved_rows(out / cell.benchmark / "figures.json", committed / f"{cell.benchmark}.json")
                 if r["variant"] == cell.variant]
        row: dict = {"experiment": experiment, "benchmark": cell.benchmark,
                     "targets": [list(t) for t in cell.targets]}
        if found:
            r = found[0]
            values = {metric: figure(r, metric) for metric, _, _ in cell.targets}
            row |= {"values": values, "value": values[cell.targets[0][0]],
                    "met": all(values[m] >= t if higher else values[m] <= t for m, t, higher in cell.targets),
                    "samples": r["history"][-1]["samples"] if r.get("history") else None,
                    "samples_to_target": r.get("samples_to_target"), "history": r.get("history", []),
                    "train_minutes": r["train_minutes"],
                    "samples_per_s": r["samples_per_s"], "epochs": r["epochs"]}
        table.append(row)
    return table


def previous_rows(text: str) -> dict[str, str]:
    """The matrix rows with figures in ``text`` (RESULTS.md as it stands), by experiment: kept for a benchmark whose
    figures are not in this checkout's ``out/`` (its run is recorded in RESULTS.md, not lost)."""
    body = text.split(f"## {SECTION}\n", 1)[-1].split("\n## ", 1)[0] if f"## {SECTION}\n" in text else ""
    return {line.split("|")[1].strip(): line for line in body.splitlines()
            if line.startswith("| ") and "not run" not in line and line.count("|") > 8}


def report(table: list[dict], previous: dict[str, str] | None = None) -> str:
    lines = [f"Compiled {time.strftime('%Y-%m-%d')} from the figures of the benchmark sections above (each with its "
             "own date, machine and budget). "
             "Each experiment file run as is for its budget of training samples on this machine, then `mmkit test` "
             "on its best checkpoint (figures from the section of each benchmark above; a benchmark run over several "
             "seeds gives the mean, its section the bands). The text → image GAN is judged by the geometric reader "
             "(no learned parameters), the text → audio GAN by the word accuracy of a recognizer the kit trained "
             "(see the GAN section). *samples to target*: the first "
             "validation that met the headline target (and, for captions, all of them).", "",
             "| experiment | test figures | targets | met | samples trained | samples to target (val) "
             "| train min | samples/s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in table:
        targets = ", ".join(f"{m} {'≥' if higher else '≤'} {t:g}" for m, t, higher in r["targets"])
        if "value" not in r:
            kept = (previous or {}).get(r["experiment"])
            lines.append(kept or f"| {r['experiment']} | not run (`benchmarks/{r['benchmark']}.py`) | {targets} "
                                 "| | | | | |")
            continue
        values = ", ".join(f"{m} {v:.3f}" for m, v in r["values"].items())
        samples = f"{r['samples']:,}" if r["samples"] is not None else "—"
        lines.append(f"| {r['experiment']} | {values} | {targets} | {'yes' if r['met'] else '**no**'} | {samples} | "
                     f"{reached(r['samples_to_target'], r['history'])} | {r['train_minutes']:.1f} | {r['samples_per_s']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out"), help="where the benchmarks wrote")
    parser.add_argument("--figures", default=str(ROOT / "benchmarks" / "figures"),
                        help="the rows committed beside RESULTS.md, for benchmarks that did not run in this checkout")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    table = rows(Path(args.out), Path(args.figures))
    (Path(args.out) / "quality_matrix.json").write_text(json.dumps(table, indent=2))
    text = report(table, previous_rows(RESULTS.read_text() if RESULTS.is_file() else ""))
    print(text)
    if not args.no_write:
        update_results(SECTION, text)


if __name__ == "__main__":
    main()
