"""The benchmark scripts work (tiny mode); their figures are not asserted here."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_quick(script: str, tmp_path: Path, *args: str) -> list[dict]:
    """``benchmarks/<script> --quick ARGS`` into ``tmp_path``; the rows of its ``figures.json``."""
    out = tmp_path / "bench"
    subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--quick", *args, "--out", str(out)],
                   check=True, cwd=tmp_path, capture_output=True)
    return json.loads((out / "figures.json").read_text())


def test_caption_benchmark_quick_mode(tmp_path: Path) -> None:
    rows = run_quick("caption_quality.py", tmp_path, "--variants", "seq2seq", "attention-multihead")
    assert [r["variant"] for r in rows] == ["seq2seq", "attention-multihead"]
    for row in rows:
        assert {"test/bleu4", "test/cider", "test/exact_match"} <= set(row["test"])
        assert {"one/bleu4", "two/bleu4", "two/exact_match"} <= set(row["scenes"])
        assert row["epochs"] == 1 and row["samples_per_s"] > 0


def test_speech_benchmark_quick_mode(tmp_path: Path) -> None:
    rows = run_quick("speech_quality.py", tmp_path)
    assert [r["variant"] for r in rows] == ["seq2seq", "attention-additive"]
    for row in rows:
        assert {"test/wer", "test/cer", "test/exact_match"} <= set(row["test"])
        assert row["epochs"] == 1 and row["samples_per_s"] > 0 and 0 <= row["best_val_wer"]


def test_gan_benchmark_quick_mode(tmp_path: Path) -> None:
    rows = run_quick("gan_quality.py", tmp_path)
    assert [r["variant"] for r in rows] == ["text-image", "text-audio"]
    for row, score in zip(rows, ["cycle_bleu4", "cycle_wer"], strict=True):
        assert {f"test/{score}", f"test/real_{score}", "test/cycle_exact_match", "test/fid"} <= set(row["test"])
        assert row["evaluator"]["checkpoint"] and row["epochs"] == 1 and row["samples_per_s"] > 0
