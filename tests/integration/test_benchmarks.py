"""The benchmark scripts work (tiny mode); their figures are not asserted here."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_seq2seq_benchmark_quick_mode(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "seq2seq_shapes.py"), "--quick", "--out", str(out)],
                   check=True, cwd=tmp_path, capture_output=True)
    figures = json.loads((out / "figures.json").read_text())
    assert {"test/bleu4", "test/cider", "test/exact_match"} <= set(figures["test"])
    assert figures["epochs"] == 1 and figures["samples_per_s"] > 0
