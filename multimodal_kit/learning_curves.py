"""Learning curves without an account: every fit writes ``<run_dir>/metrics.csv`` and, when it ends, ``curves.png``.

:class:`RunMetricsLogger` is Lightning's ``CSVLogger`` pointed at the run directory itself (no
``lightning_logs/version_N``), beside W&B: one row per logged step (``train/*`` every ``log_every_n_steps``,
``val/*`` after each validation), with the columns ``epoch`` and ``step`` Lightning adds. Two things differ from the
stock logger: a resumed fit (``--ckpt_path last``) appends to the file instead of deleting it, dropping the rows
the stopped fit wrote past the point it resumes from, and the end of the fit draws the curves.
"""

from __future__ import annotations

import csv
import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from lightning.pytorch.utilities import rank_zero_only

from multimodal_kit.compat import ContinuingCSVLogger

METRICS_FILE = "metrics.csv"
CURVES_FILE = "curves.png"


class RunMetricsLogger(ContinuingCSVLogger):
    """``<run_dir>/metrics.csv`` during the fit, ``<run_dir>/curves.png`` at its end (see the module docstring).

    Args:
        run_dir: the run's directory.
        monitor: the metric the checkpoints are chosen by (e.g. ``val/bleu4``), drawn beside the losses.
    """

    def __init__(self, run_dir: str | Path, monitor: str | None = None) -> None:
        super().__init__(save_dir=run_dir, name="", version="", flush_logs_every_n_steps=50)
        self.monitor = monitor

    @property
    def log_dir(self) -> str:
        return self.save_dir

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:
        """Nothing: the run's resolved config is already ``config.yaml`` beside ``metrics.csv``."""

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if not self.started:
            return
        super().finalize(status)
        path = Path(self.log_dir) / METRICS_FILE
        if path.is_file():
            draw_curves(path, Path(self.log_dir) / CURVES_FILE, self.monitor)


def epoch_history(path: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Per metric of ``metrics.csv``, its ``(epoch, value)`` points: the mean over an epoch's rows (a training
    metric logged each ``log_every_n_steps``; a validation metric has one row per epoch)."""
    sums: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    with open(path, newline="") as file:
        for row in csv.DictReader(file):
            if not row.get("epoch"):
                continue
            epoch = int(float(row["epoch"]))
            for key, value in row.items():
                if key not in ("epoch", "step") and value not in (None, "") and math.isfinite(float(value)):
                    sums[key][epoch].append(float(value))
    return {key: [(epoch, sum(v) / len(v)) for epoch, v in sorted(by_epoch.items())]
            for key, by_epoch in sums.items()}


def curve_panels(metrics: list[str], monitor: str | None) -> list[list[str]]:
    """Which metrics go in which panel: the losses (``train/loss`` and ``val/loss``, or every ``train/*loss``
    where a method has no single loss, as the GAN does), then the monitored metric if it is not a loss."""
    losses = [k for k in ("train/loss", "val/loss") if k in metrics]
    if "train/loss" not in losses:
        losses += sorted(k for k in metrics if k.startswith("train/") and k.endswith("loss"))
    panels = [losses] if losses else []
    if monitor and monitor in metrics and monitor not in losses:
        panels.append([monitor])
    return panels


def draw_curves(metrics_path: str | Path, out: str | Path, monitor: str | None = None) -> Path | None:
    """``curves.png`` from ``metrics.csv``: per epoch, the losses in one panel and ``monitor`` in another;
    ``None`` (and no file) when the file holds no epoch of either."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    history = epoch_history(metrics_path)
    panels = curve_panels(list(history), monitor)
    if not panels:
        return None
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.4), squeeze=False)
    for axis, keys in zip(axes[0], panels, strict=True):
        for key in keys:
            epochs, values = zip(*history[key], strict=True)
            axis.plot(epochs, values, marker="o" if len(epochs) < 30 else None, markersize=3, label=key)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_title("loss" if keys[0].endswith("loss") else keys[0])
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(os.path.basename(os.path.dirname(os.path.abspath(out))), fontsize=9)
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return Path(out)
