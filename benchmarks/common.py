"""What the quality benchmarks share: run ``mmkit`` as a user does, time training, keep RESULTS.md sections."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"


def mmkit(*args: str) -> None:
    """``python -m multimodal_kit ARGS`` from the repository root, failing loudly."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    subprocess.run([sys.executable, "-m", "multimodal_kit", *args], check=True, env=env, cwd=ROOT)


def fit_and_test(args: list[str], out: Path, quick_args: list[str] | None, reuse: bool) -> dict:
    """``mmkit fit ARGS`` (with a :class:`~benchmarks.timing.ValidationClock`) into ``out/run``, then ``mmkit test``
    on the best checkpoint. Returns the test metrics, the validation history, the checkpoint and its size."""
    out.mkdir(parents=True, exist_ok=True)
    clock, run_dir = out / "validation_clock.jsonl", out / "run"
    existing = list((run_dir / "checkpoints").glob("epoch*.ckpt"))
    if not (reuse and existing and clock.is_file()):
        extra = out / "clock.yaml"
        extra.write_text(json.dumps({"trainer": {"callbacks": [
            {"class_path": "benchmarks.timing.ValidationClock", "init_args": {"path": str(clock)}}]}}))
        mmkit("fit", *args, "-c", str(extra), "--run_dir", str(run_dir), "--trainer.enable_progress_bar", "false",
              *(quick_args or []))
    (best,) = (run_dir / "checkpoints").glob("epoch*.ckpt")
    results = out / "test_metrics.json"
    mmkit("test", "--ckpt_path", str(best), "--results_path", str(results), "--trainer.logger", "false",
          "--trainer.enable_progress_bar", "false")
    history = [json.loads(line) for line in clock.read_text().splitlines()]
    last = history[-1]
    params = sum(v.numel() for v in torch.load(best, map_location="cpu", weights_only=True)["state_dict"].values())
    return {"test": json.loads(results.read_text()), "history": history, "checkpoint": str(best),
            "epochs": last["epoch"] + 1, "train_minutes": last["minutes"],
            "samples_per_s": last["samples"] / max(last["minutes"] * 60, 1e-9), "parameters": params}


def update_results(section: str, text: str) -> None:
    """Replace (or append) the section headed ``## <section>`` of ``benchmarks/RESULTS.md`` with ``text``."""
    header = "# Benchmark results\n\nWritten by `make bench`; each script rewrites its own section.\n\n"
    current = RESULTS.read_text() if RESULTS.is_file() else header
    pattern = re.compile(rf"^## {re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)
    block = f"## {section}\n\n{text.strip()}\n\n"
    current = pattern.sub(lambda _: block, current) if pattern.search(current) else current.rstrip() + "\n\n" + block
    RESULTS.write_text(current.rstrip() + "\n")


def history_lines(rows: list[dict], metric: str, digits: int) -> list[str]:
    """One line per variant: ``metric`` after each validation, with the training minutes at that point."""
    return [f"- {r['variant']}: " + ", ".join(f"{h[metric]:.{digits}f} ({h['minutes']:.1f})" for h in r["history"])
            for r in rows]


def benchmark_main(description: str | None, variants: dict[str, list[str]], out_name: str, section: str,
                   run_variant: Callable[[str, Path, bool, bool], dict], report: Callable[[list[dict]], str]) -> None:
    """The command line every quality benchmark shares: pick variants, run each, keep ``figures.json``, print the
    report and (unless ``--quick``) write it as ``section`` of ``benchmarks/RESULTS.md``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--variants", nargs="+", default=list(variants), choices=list(variants))
    parser.add_argument("--quick", action="store_true", help="tiny runs that only check the script works")
    parser.add_argument("--reuse", action="store_true", help="skip fit where a variant's run already exists")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / out_name))
    args = parser.parse_args()
    rows = []
    for name in args.variants:
        rows.append(run_variant(name, Path(args.out) / name, args.quick, args.reuse))
        (Path(args.out) / "figures.json").write_text(json.dumps(rows, indent=2))
    text = report(rows)
    print(text)
    if not args.quick:
        update_results(section, text)
