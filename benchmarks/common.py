"""What the quality benchmarks share: run ``mmkit`` as a user does, time training, keep RESULTS.md sections."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
#: ``--max-epochs N`` of a benchmark's command line: a shorter budget than the experiment files' own (for trying a
#: change out; RESULTS.md then says so). Empty: each experiment file trains for its own budget.
BUDGET_OVERRIDE: list[str] = []
SEED_OVERRIDE: list[str] = []  # ``--seed_everything S`` of the seed being run (``--seeds``), for measured runs


def mmkit(*args: str) -> None:
    """``mmkit ARGS`` from the repository root, in this process (the CLI's own ``main``: one interpreter start,
    not one per command), failing loudly."""
    from multimodal_kit.cli import main

    here, argv = Path.cwd(), sys.argv
    os.chdir(ROOT)
    sys.argv = [argv[0]]  # the script's own flags are not the CLI's (LightningCLI would warn about both)
    try:
        main(list(args))
    finally:
        os.chdir(here)
        sys.argv = argv


def fit_and_test(args: list[str], out: Path, quick_args: list[str] | None, reuse: bool,
                 budgeted: bool = True, test_args: tuple[str, ...] = ()) -> dict:
    """``mmkit fit ARGS`` (with a :class:`~benchmarks.timing.ValidationClock`) into ``out/run``, then ``mmkit test``
    on the best checkpoint (``reuse``: skip the fit where a finished one is in ``out``). Returns the test metrics,
    the validation history, the checkpoint and its size.
    ``budgeted``: the run is one the benchmark measures, so ``--max-epochs`` (:data:`BUDGET_OVERRIDE`) applies.
    ``test_args``: flags of the test alone (a judge that only scores, so a reused fit can be scored anew)."""
    out.mkdir(parents=True, exist_ok=True)
    clock, run_dir, results = out / "validation_clock.jsonl", out / "run", out / "test_metrics.json"
    done = out / "fit_done"  # written when the fit ends; a run cut short (its results gone) is never reused
    existing = list((run_dir / "checkpoints").glob("epoch*.ckpt"))
    if not (reuse and existing and clock.is_file() and (done.is_file() or results.is_file())):
        for stale in (done, results, clock):  # a fit starts from nothing: no file of an earlier one is read as its
            stale.unlink(missing_ok=True)
        shutil.rmtree(run_dir, ignore_errors=True)
        extra = out / "clock.yaml"
        extra.write_text(json.dumps({"trainer": {"callbacks": [
            {"class_path": "benchmarks.timing.ValidationClock", "init_args": {"path": str(clock)}}]}}))
        mmkit("fit", *args, "-c", str(extra), "--run_dir", str(run_dir), "--trainer.enable_progress_bar", "false",
              *(BUDGET_OVERRIDE + SEED_OVERRIDE if budgeted else []), *(quick_args or []))
        done.write_text("")
    (best,) = (run_dir / "checkpoints").glob("epoch*.ckpt")
    mmkit("test", "--ckpt_path", str(best), "--results_path", str(results), "--trainer.logger", "false",
          "--trainer.enable_progress_bar", "false", *test_args)
    history = [json.loads(line) for line in clock.read_text().splitlines()]
    last = history[-1]
    params = sum(v.numel() for v in torch.load(best, map_location="cpu", weights_only=True)["state_dict"].values())
    return {"test": json.loads(results.read_text()), "history": history, "checkpoint": str(best),
            "epochs": last["epoch"] + 1, "train_minutes": last["minutes"],
            "samples_per_s": last["samples"] / max(last["minutes"] * 60, 1e-9), "parameters": params}


def load_trained(ckpt: str | Path, **data_options: object) -> tuple[torch.nn.Module, object]:
    """A checkpoint the CLI wrote → its method (eval mode, CPU) and its data module set up for test (with
    ``data_options`` changed), as ``mmkit test`` rebuilds them."""
    from multimodal_kit.checkpoints import checkpoint_config
    from multimodal_kit.utils import import_class

    config = checkpoint_config(ckpt)  # the data section names the run's own tokenizer
    named = torch.load(ckpt, map_location="cpu", weights_only=True)["hyper_parameters"].get("_class_path")
    if named:  # Lightning loads only a class whose checkpoint name is imported (a moved class: its old module)
        import_class(named)
    method = import_class(config["model"]["class_path"]).load_from_checkpoint(ckpt, map_location="cpu",
                                                                               weights_only=True).eval()
    datamodule = import_class(config["data"]["class_path"])(**{**config["data"]["init_args"], **data_options})
    datamodule.setup("test")
    return method, datamodule


def _section_pattern(section: str) -> re.Pattern:
    return re.compile(rf"^## {re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)


def recorded_rows(section: str, names: list[str]) -> list[str]:
    """The ``names`` that have a table row (``| name |``) in the section headed ``## <section>`` of
    ``benchmarks/RESULTS.md``."""
    found = _section_pattern(section).search(RESULTS.read_text()) if RESULTS.is_file() else None
    block = found.group(0) if found else ""
    return [n for n in names if re.search(rf"^\| {re.escape(n)} \|", block, re.M)]


def update_results(section: str, text: str) -> None:
    """Replace (or append) the section headed ``## <section>`` of ``benchmarks/RESULTS.md`` with ``text``."""
    header = "# Benchmark results\n\nWritten by `make bench`; each script rewrites its own section.\n\n"
    current = RESULTS.read_text() if RESULTS.is_file() else header
    pattern = _section_pattern(section)
    block = f"## {section}\n\n{text.strip()}\n\n"
    current = pattern.sub(lambda _: block, current) if pattern.search(current) else current.rstrip() + "\n\n" + block
    RESULTS.write_text(current.rstrip() + "\n")


def record_results(section: str, lines: list[str], name: str, rows: dict, print_only: bool = False) -> None:
    """Print a benchmark's figures, write them as its section of RESULTS.md and its rows to ``out/<name>.json``
    (``print_only``: a quick or trial run, which leaves both alone)."""
    print("\n".join(lines))
    if print_only:
        return
    update_results(section, "\n".join(lines))
    out = ROOT / "benchmarks" / "out" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")


def history_lines(rows: list[dict], metric: str, digits: int) -> list[str]:
    """One line per variant: ``metric`` after each validation, with the training samples (thousands) at that
    point."""
    return [f"- {r['variant']}: " + ", ".join(f"{h[metric]:.{digits}f} ({h['samples'] / 1000:.0f}k)"
                                              for h in r["history"]) for r in rows]


def samples_to(history: list[dict], metric: str, target: float, higher_is_better: bool) -> int | None:
    """The training samples at the first validation where ``metric`` met ``target``; ``None``: never."""
    met = (lambda v: v >= target) if higher_is_better else (lambda v: v <= target)
    return next((h["samples"] for h in history if met(h[metric])), None)


def samples_to_all(history: list[dict], targets: list[tuple[str, float]]) -> int | None:
    """The training samples at the first validation where every ``(metric, target)`` (higher is better) was met
    at once; ``None``: never."""
    return next((h["samples"] for h in history if all(h[metric] >= target for metric, target in targets)), None)


def budget_text(rows: list[dict]) -> str:
    """How long the variants trained, in samples (and epochs), for a report's opening sentence."""
    trained = sorted({(r["history"][-1]["samples"], r["epochs"]) for r in rows})
    override = f" (shortened with --max-epochs {BUDGET_OVERRIDE[1]})" if BUDGET_OVERRIDE else ""
    return "; ".join(f"{samples:,} training samples ({epochs} epochs)" for samples, epochs in trained) + override


def wer_by_words_table(rows: list[dict], title: str) -> list[str]:
    """A markdown table of each variant's ``wer_by_words`` (WER by the text's word count), headed by ``title``."""
    words = sorted({int(n) for r in rows for n in r["wer_by_words"]})
    lines = ["", title, "", "| variant | " + " | ".join(str(n) for n in words) + " |", "|---|" + "---|" * len(words)]
    for r in rows:
        by = {int(n): v for n, v in r["wer_by_words"].items()}
        lines.append(f"| {r['variant']} | " + " | ".join(f"{by[n]:.3f}" if n in by else "—" for n in words) + " |")
    return lines


def reached(samples: int | None, history: list[dict] | None = None) -> str:
    """Samples to a target, with the training minutes at that validation when ``history`` is given."""
    if samples is None:
        return "not reached"
    minutes = next((h.get("minutes") for h in history or [] if h["samples"] == samples), None)
    return f"{samples:,}" + (f" ({minutes:.1f} min)" if minutes is not None else "")


def run_seed(run_variant: Callable[[str, Path, bool, bool], dict], name: str, out: Path, quick: bool, reuse: bool,
             seed: int) -> dict:
    """One variant's run with ``--seed_everything seed`` (its own directory)."""
    SEED_OVERRIDE[:] = ["--seed_everything", str(seed)]
    try:
        return run_variant(name, out, quick, reuse)
    finally:
        SEED_OVERRIDE[:] = []


def seeded_row(runs: list[dict], seeds: list[int]) -> dict:
    """One row for a variant run once per seed: the first seed's history and timings, the mean of each test
    figure (``test``), and each seed's figures (``seed_runs``)."""
    names = [k for k in runs[0]["test"] if all(k in r["test"] for r in runs)]
    mean = {k: statistics.fmean(r["test"][k] for r in runs) for k in names}
    return {**runs[0], "test": mean, "seed_runs": [{"seed": s, "test": r["test"]} for s, r in zip(seeds, runs,
                                                                                                   strict=True)]}


def seed_bands(rows: list[dict]) -> str:
    """The report's lines for variants run over several seeds: every test figure as mean (min–max, n seeds)."""
    lines = []
    for r in rows:
        if len(r.get("seed_runs", [])) > 1:
            runs = r["seed_runs"]
            seeds = ", ".join(str(x["seed"]) for x in runs)
            bands = [f"{k.removeprefix('test/')} {r['test'][k]:.3f} ({min(x['test'][k] for x in runs):.3f}–"
                     f"{max(x['test'][k] for x in runs):.3f})" for k in sorted(r["test"])]
            lines.append(f"- {r['variant']}, seeds {seeds}: " + ", ".join(bands))
    return ("\nSeed bands: mean (min–max) over the seeds (the table shows the means):\n\n" + "\n".join(lines) + "\n"
            ) if lines else ""


def committed_figures(out_name: str) -> Path:
    """The rows behind a benchmark's section of RESULTS.md, kept in the repository (``benchmarks/figures/``) so that
    a fresh checkout, with no ``benchmarks/out``, can rerun one variant and keep the others' rows."""
    path = RESULTS.parent / "figures" / f"{out_name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def saved_rows(figures: Path, committed: Path) -> list[dict]:
    """Every row measured before: this checkout's ``figures`` (``out/<name>/figures.json``) first, then the rows
    of ``committed`` (``benchmarks/figures/<name>.json``) for variants it lacks."""
    rows = json.loads(figures.read_text()) if figures.is_file() else []
    have = {r["variant"] for r in rows}
    return rows + ([r for r in json.loads(committed.read_text()) if r["variant"] not in have]
                   if committed.is_file() else [])


def benchmark_main(description: str | None, variants: dict[str, list[str]], out_name: str, section: str,
                   run_variant: Callable[[str, Path, bool, bool], dict], report: Callable[[list[dict]], str],
                   default: list[str] | None = None, draw: Callable[[list[dict], Path], None] | None = None) -> None:
    """The command line every quality benchmark shares: pick variants (``default``: those run without
    ``--variants``, all when ``None``; the others are ablations), run each, keep ``figures.json``, print the report
    and (unless ``--quick``) write it as ``section`` of ``benchmarks/RESULTS.md``. ``draw(rows, path)``, if given,
    pictures every row as ``curves.png`` in ``--out`` and (unless ``--quick``) as ``benchmarks/figures/<name>.png``,
    which the report may show."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--variants", nargs="+", default=default or list(variants),
                        choices=list(variants))
    parser.add_argument("--quick", action="store_true", help="tiny runs that only check the script works")
    parser.add_argument("--reuse", action="store_true", help="skip fit where a variant's run already exists")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / out_name))
    parser.add_argument("--max-epochs", type=int, help="train for fewer epochs than the experiment files say")
    parser.add_argument("--seeds", type=int, nargs="+", help="run each variant once per seed (--seed_everything); "
                        "its row holds the mean, and the report the mean and min–max of every test figure")
    args = parser.parse_args()
    if args.max_epochs:
        BUDGET_OVERRIDE[:] = ["--trainer.max_epochs", str(args.max_epochs)]
    figures = Path(args.out) / "figures.json"
    figures.parent.mkdir(parents=True, exist_ok=True)
    # rows of variants not run this time stay, from the last run that measured them (the report says when)
    kept = [] if args.quick else [r for r in saved_rows(figures, committed_figures(out_name))
                                  if r["variant"] not in args.variants and r["variant"] in variants]
    rows: list[dict] = []
    for name in args.variants:
        if args.seeds:
            row = seeded_row([run_seed(run_variant, name, Path(args.out) / name / f"seed{seed}", args.quick,
                                       args.reuse, seed) for seed in args.seeds], args.seeds)
        else:
            row = run_variant(name, Path(args.out) / name, args.quick, args.reuse)
        rows.append({**row, "measured": time.strftime("%Y-%m-%d")})
        figures.write_text(json.dumps(rows + kept, indent=2))
    rows = sorted(rows + kept, key=lambda r: list(variants).index(r["variant"]))
    text = report(rows) + seed_bands(rows)
    if kept:
        text += "\n" + "; ".join(f"Row {r['variant']}: kept from the run of {r.get('measured', 'an earlier day')}"
                                 for r in kept) + f" (this run: `--variants {' '.join(args.variants)}`).\n"
    print(text)
    if draw:
        draw(rows, Path(args.out) / "curves.png")
    if args.quick:
        return
    lost = recorded_rows(section, [n for n in variants if n not in {r["variant"] for r in rows}])
    if lost:  # rewriting the section would drop rows measured before, with no figures here to keep them from
        print(f"benchmarks/RESULTS.md left as it is: its section '{section}' has rows of {', '.join(lost)}, "
              f"which were not run now and whose figures are not in {figures}. Run them too (--variants "
              f"{' '.join(args.variants + lost)}; --reuse skips the fits already done).", file=sys.stderr)
        sys.exit(2)
    update_results(section, text)
    committed_figures(out_name).write_text(json.dumps(rows, indent=1) + "\n")
    if draw:
        draw(rows, committed_figures(out_name).with_suffix(".png"))
