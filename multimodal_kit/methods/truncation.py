"""Outputs cut at a generation limit are counted and said, never silently shortened: a mixin for a method that
generates freely up to ``hparams.<limit_name>`` (text generators: ``max_length`` tokens; synthesizers:
``max_frames``). The method creates ``val_truncated`` / ``test_truncated`` (``MeanMetric``: ``*/truncated`` is the
share of outputs cut), feeds them through :meth:`CountsTruncation.count_cut` and logs them in its evaluation
step, and adds to ``predict_truncated`` in its predict step; the warnings give the count over all processes."""

from __future__ import annotations

import torch

from multimodal_kit.compat import attached_trainer
from multimodal_kit.utils import rank_zero_warn


class CountsTruncation:
    """Warnings at the end of validation, test and predict when any output was cut at the limit."""

    limit_name = "max_length"  # the hparam that limits generation
    unit = "outputs"  # what is cut, in words
    predict_mark = "truncated: true"  # how a cut prediction record says so
    predict_truncated = 0

    @property
    def _cut_tally(self) -> dict[str, int]:
        return self.__dict__.setdefault("_cut_tally_", {})

    def warn_truncated(self, count: int, what: str) -> None:
        """Warn (rank zero) that ``count`` ``what`` reached the limit, naming the flag that raises it."""
        trainer = attached_trainer(self)
        if count and not (trainer is not None and trainer.sanity_checking):  # an untrained model's check: no alarm
            limit = self.hparams[self.limit_name]
            rank_zero_warn(f"{type(self).__name__}: {count} {what} reached {self.limit_name}={limit} without ending "
                           f"and were cut; raise --model.init_args.{self.limit_name}.")

    def count_cut(self, stage: str, cut: torch.Tensor) -> None:
        """Add a batch's cut outputs (B,) bool to the stage's count: the logged share (``MeanMetric``) and the warning's own
        tally (summed over the processes at the epoch's end, leaving the metric to Lightning alone)."""
        getattr(self, f"{stage}_truncated").update(cut.float())  # logged: the share of outputs cut
        self._cut_tally[stage] = self._cut_tally.get(stage, 0) + int(cut.sum())

    def _warn_epoch(self, stage: str, what: str) -> None:
        local = self._cut_tally.pop(stage, 0)
        total = self.trainer.strategy.reduce(torch.tensor(float(local), device=self.device), reduce_op="sum")
        self.warn_truncated(int(total), what)

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()  # type: ignore[misc]
        self._warn_epoch("val", f"validation {self.unit}")

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()  # type: ignore[misc]
        self._warn_epoch("test", f"test {self.unit}")

    def on_predict_epoch_start(self) -> None:
        super().on_predict_epoch_start()  # type: ignore[misc]
        self.predict_truncated = 0

    def on_predict_epoch_end(self) -> None:
        super().on_predict_epoch_end()  # type: ignore[misc]
        self.warn_truncated(self.predict_truncated, f"predictions ({self.predict_mark})")
