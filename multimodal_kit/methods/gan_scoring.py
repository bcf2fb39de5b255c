"""Scoring a conditional GAN's samples with an evaluator the kit trained (:mod:`multimodal_kit.evaluation`): the
evaluator reads generated media back into text (``*/cycle_*``; the real test media too, ``test/real_cycle_*``,
the ceiling) and its features give the Fréchet distance (``*/fid``)."""

from __future__ import annotations

from typing import Any

from multimodal_kit.errors import ConfigError
from multimodal_kit.evaluation import CycleEvaluator, frechet_distance
from multimodal_kit.metrics import ExactMatch, text_metrics
from multimodal_kit.utils import rank_zero_info


class CycleScoring:
    """Validation and test steps of a generator of media: a mixin for a ``LightningModule`` with
    ``hparams.evaluator`` (a checkpoint path or ``None``), ``hparams.media``, ``generate(tokens, lengths, noise)``,
    ``item_noise(ids)``, ``to_model``/``from_model`` and ``media_values``."""

    evaluator: CycleEvaluator | None = None

    def _load_evaluator(self, stage: str) -> None:
        path = self.hparams.evaluator
        if not path:
            rank_zero_info("ConditionalGAN: no evaluator checkpoint (--model.evaluator), so */fid and */cycle_* are "
                           "skipped; train a captioner or speech recognizer of the kit and pass its checkpoint.")
            return
        if self.evaluator is None:
            self.evaluator = CycleEvaluator(path)
            if self.evaluator.media != self.hparams.media:
                raise ConfigError(f"--model.evaluator {path} reads {self.evaluator.media}, but this GAN generates "
                                 f"{self.hparams.media}.")
            dim = self.evaluator.feature_dim()
            modality = self.hparams.media
            self.val_fid = frechet_distance(dim)
            self.val_cycle = text_metrics(modality, "val", full=False, name="cycle_")
            self.val_cycle.add_metrics({"exact_match": ExactMatch()})  # single words: the word accuracy
            self.test_fid = frechet_distance(dim)
            self.test_cycle = text_metrics(modality, "test", full=True, name="cycle_")
            self.test_real_cycle = text_metrics(modality, "test", full=True, name="real_cycle_")
            rank_zero_info(f"ConditionalGAN: evaluator {path} reads the generated {modality}.")

    # ------------------------------------------------------------------ evaluation
    def _score(self, batch: dict[str, Any], fid: Any, cycle: Any, real_cycle: Any | None) -> None:
        """The evaluator reads generated (and, for ``real_cycle``, real) media; both feed the FID."""
        assert self.evaluator is not None
        evaluator = self.evaluator.to(self.device)
        references = [[evaluator.canonical(r) for r in refs] for refs in batch["references"]]
        fake = evaluator.batch(self.media_values(self.generate(batch["tokens"], batch["token_lengths"],
                                                               self.item_noise(batch["id"]))))
        real = evaluator.batch(self.media_values(self.from_model(self.to_model(batch))))
        fid.update(evaluator.features(real), real=True)
        fid.update(evaluator.features(fake), real=False)
        cycle.update(evaluator.read(fake), references)
        if real_cycle is not None:
            real_cycle.update(evaluator.read(real), references)

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        if self.evaluator is None:
            return
        self._score(batch, self.val_fid, self.val_cycle, None)
        n = len(batch["tokens"])
        self.log_dict(self.val_cycle, prog_bar=True, batch_size=n)
        self.log("val/fid", self.val_fid, prog_bar=True, batch_size=n)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        if self.evaluator is None:
            return
        self._score(batch, self.test_fid, self.test_cycle, self.test_real_cycle)
        n = len(batch["tokens"])
        self.log_dict(self.test_cycle, batch_size=n)
        self.log_dict(self.test_real_cycle, batch_size=n)
        self.log("test/fid", self.test_fid, batch_size=n)

