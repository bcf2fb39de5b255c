"""metrics.csv and curves.png: per-epoch means worked by hand, which metrics are drawn, and a resumed fit's file."""

from __future__ import annotations

from pathlib import Path

from multimodal_kit.learning_curves import RunMetricsLogger, curve_panels, draw_curves, epoch_history

CSV = """epoch,step,train/loss,val/bleu4,val/loss
0,0,4.0,,
0,1,2.0,,
0,1,,0.25,3.5
1,2,1.0,,
1,3,,0.5,nan
"""


def test_epoch_history_averages_an_epochs_rows_and_skips_blanks(tmp_path: Path) -> None:
    (tmp_path / "metrics.csv").write_text(CSV)
    history = epoch_history(tmp_path / "metrics.csv")
    assert history == {"train/loss": [(0, 3.0), (1, 1.0)], "val/bleu4": [(0, 0.25), (1, 0.5)],
                       "val/loss": [(0, 3.5)]}  # a NaN is no point


def test_curve_panels_losses_then_the_monitor() -> None:
    assert curve_panels(["train/loss", "val/loss", "val/bleu4", "train/attention_penalty"], "val/bleu4") == [
        ["train/loss", "val/loss"], ["val/bleu4"]]
    # the GAN has no single loss: its two, and a monitored cycle score
    assert curve_panels(["train/d_loss", "train/g_loss", "train/d_real", "val/cycle_wer"], "val/cycle_wer") == [
        ["train/d_loss", "train/g_loss"], ["val/cycle_wer"]]
    assert curve_panels(["train/loss", "val/loss"], "val/loss") == [["train/loss", "val/loss"]]
    assert curve_panels(["epoch_time"], None) == []


def test_draw_curves_writes_a_picture_or_nothing(tmp_path: Path) -> None:
    (tmp_path / "metrics.csv").write_text(CSV)
    out = draw_curves(tmp_path / "metrics.csv", tmp_path / "curves.png", monitor="val/bleu4")
    assert out == tmp_path / "curves.png" and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "empty.csv").write_text("epoch,step,other\n0,0,1.0\n")
    assert draw_curves(tmp_path / "empty.csv", tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()


def test_a_resumed_logger_keeps_the_rows_before_its_first_step(tmp_path: Path) -> None:
    (tmp_path / "metrics.csv").write_text(CSV)
    logger = RunMetricsLogger(tmp_path, monitor="val/bleu4")
    logger.log_metrics({"train/loss": 0.5, "epoch": 1}, step=3)  # resumed from step 3: the old row at 3 goes
    logger.finalize("success")
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[0] == "epoch,step,train/loss,val/bleu4,val/loss"
    assert lines[1:] == CSV.splitlines()[1:5] + ["1,3,0.5,,"]
    assert (tmp_path / "curves.png").is_file()
