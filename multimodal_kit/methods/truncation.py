"""Outputs cut at a generation limit are counted and said, never silently shortened: a mixin for a method that
generates freely up to ``hparams.<limit_name>`` (text generators: ``max_length`` tokens; synthesizers:
``max_frames``). The method creates ``val_truncated`` / ``test_truncated`` (``SumMetric``), updates and logs them
in its evaluation step, and adds to ``predict_truncated`` in its predict step."""

from __future__ import annotations

from multimodal_kit.utils import rank_zero_warn


class CountsTruncation:
    """Warnings at the end of validation, test and predict when any output was cut at the limit."""

    limit_name = "max_length"  # the hparam that limits generation
    unit = "outputs"  # what is cut, in words
    predict_mark = "truncated: true"  # how a cut prediction record says so
    predict_truncated = 0

    def warn_truncated(self, count: int, what: str) -> None:
        """Warn (rank zero) that ``count`` ``what`` reached the limit, naming the flag that raises it."""
        trainer = getattr(self, "_trainer", None)
        if count and not (trainer is not None and trainer.sanity_checking):  # an untrained model's check: no alarm
            limit = self.hparams[self.limit_name]
            rank_zero_warn(f"{type(self).__name__}: {count} {what} reached {self.limit_name}={limit} without ending "
                           f"and were cut; raise --model.init_args.{self.limit_name}.")

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()  # type: ignore[misc]
        self.warn_truncated(int(self.val_truncated.compute()), f"validation {self.unit}")

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()  # type: ignore[misc]
        self.warn_truncated(int(self.test_truncated.compute()), f"test {self.unit}")

    def on_predict_epoch_start(self) -> None:
        super().on_predict_epoch_start()  # type: ignore[misc]
        self.predict_truncated = 0

    def on_predict_epoch_end(self) -> None:
        super().on_predict_epoch_end()  # type: ignore[misc]
        self.warn_truncated(self.predict_truncated, f"predictions ({self.predict_mark})")
