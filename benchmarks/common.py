"""What the quality benchmarks share: run ``mmkit`` as a user does, time training, keep RESULTS.md sections."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
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
