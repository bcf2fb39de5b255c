"""Same-seed check of a core change: short, deterministic fits of the shipped experiments, then ``mmkit test`` on
each checkpoint, their test metrics written to one JSON file; given a reference file (the same command on the
commit before the change), it says, experiment by experiment, whether every metric is identical to the last bit.

    python benchmarks/same_seed.py --out benchmarks/out/same_seed-$(git rev-parse --short HEAD).json \
        [--reference benchmarks/out/same_seed-<before>.json]

Each fit is the shipped file on a small embedded set (the file's own seed, ``--trainer.deterministic true``), a
few dozen steps and one validation batch: long enough that every part of training and decoding runs, short
enough for all six in a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import mmkit  # noqa: E402

SMALL_SHAPES = {"num_train": 640, "num_validation": 64, "num_test": 128}
SMALL_SPOKEN = {"num_train": 320, "num_validation": 32, "num_test": 64}
#: experiment file → the data flags that make it small
EXPERIMENTS: dict[str, list[str]] = {
    "seq2seq_image_caption": ["--data.init_args.embedded_options", json.dumps(SMALL_SHAPES)],
    "attention_image_caption": ["--data.init_args.embedded_options", json.dumps(SMALL_SHAPES)],
    "seq2seq_text_audio": ["--data.init_args.embedded_options", json.dumps(SMALL_SPOKEN)],
    "attention_text_audio": ["--data.init_args.embedded_options", json.dumps(SMALL_SPOKEN)],
    "attention_image_qa": ["--data.init_args.embedded_options", json.dumps(SMALL_SHAPES)],
    "attention_speech_synthesis": ["--data.init_args.embedded_options",
                                   json.dumps({**SMALL_SPOKEN, "voice": "en-us+m3"})],
}
COMMON = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "12", "--trainer.limit_val_batches", "1",
          "--trainer.logger", "false", "--trainer.deterministic", "true", "--trainer.enable_progress_bar", "false",
          "--data.init_args.batch_size", "16", "--data.init_args.eval_batch_size", "32"]


def run(name: str, work: Path) -> dict[str, float]:
    """Fit experiment ``name`` briefly, test its checkpoint; its test metrics."""
    run_dir, results = work / name, work / f"{name}.json"
    mmkit("fit", "-c", f"experiments/{name}.yaml", *EXPERIMENTS[name], *COMMON, "--run_dir", str(run_dir))
    (ckpt,) = (run_dir / "checkpoints").glob("epoch*.ckpt")
    mmkit("test", "--ckpt_path", str(ckpt), "--results_path", str(results), "--trainer.logger", "false",
          "--trainer.enable_progress_bar", "false", "--trainer.limit_test_batches", "2")
    return json.loads(results.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="where this commit's metrics go (JSON)")
    parser.add_argument("--reference", type=Path, help="the metrics of the commit before, to compare with")
    parser.add_argument("--only", nargs="*", choices=sorted(EXPERIMENTS), help="a subset of the experiments")
    args = parser.parse_args()
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as work:
        for name in args.only or EXPERIMENTS:
            figures[name] = run(name, Path(work))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    print(f"Metrics written to {args.out}")
    if args.reference is None:
        return 0
    reference = json.loads(args.reference.read_text())
    same = True
    for name, metrics in figures.items():
        before = reference.get(name)
        added = sorted(set(metrics) - set(before or {})) if before else []
        if before == {k: v for k, v in metrics.items() if k not in added}:  # a metric new since: not a change
            print(f"  {name}: identical ({len(before)} metrics)" + (f"; new: {', '.join(added)}" if added else ""))
            continue
        same = False
        print(f"  {name}: DIFFERENT")
        for key in sorted(set(metrics) | set(before or {})):
            old, new = (before or {}).get(key), metrics.get(key)
            if old != new:
                print(f"      {key}: {old!r} → {new!r}")
    print("Same-seed comparison: " + ("no change" if same else "CHANGED"))
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
