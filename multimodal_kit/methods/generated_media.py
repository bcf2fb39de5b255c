"""What every method that generates media shares (the conditional GAN, speech synthesis): turning its output
into values through the data's codec, the checks that generated audio can become sound, the training items that
statistics are estimated from, and scoring with an evaluator the kit trained (:mod:`multimodal_kit.evaluation`):
the evaluator reads generated media back into text (``*/cycle_*``; the real test media too,
``test/real_cycle_*``, the ceiling) and its features give the Fréchet distance (``*/fid``); and, for images of
``shapes`` scenes, the geometric reader (:mod:`multimodal_kit.data.embedded.shapes_reader`, no learned parameters)
reads each attribute (``*/read_*``; ``test/real_read_*`` its ceiling); generated speech is compared with the real
recording of the same text by mel-cepstral distortion after DTW (``*/mcd``, :mod:`multimodal_kit.mcd`); and a dual
encoder trained apart ranks each sample's prompt among 99 other test captions (``test/r_precision``, AttnGAN's
protocol; ``test/real_r_precision`` the real media's, its ceiling)."""

from __future__ import annotations

import functools
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torchmetrics import MeanMetric

from multimodal_kit.checkpoints import load_checkpoint
from multimodal_kit.data.codec import MediaCodec
from multimodal_kit.data.embedded.shapes_reader import READING_SCORES, reading_scores
from multimodal_kit.errors import ConfigError
from multimodal_kit.evaluation import CycleEvaluator, RetrievalJudge, frechet_distance, r_precision_hits
from multimodal_kit.mcd import MelCepstralDistortion
from multimodal_kit.media import medium_spec
from multimodal_kit.metrics import monitor_of, text_metrics
from multimodal_kit.utils import rank_zero_info

STATS_ITEMS = 1000  # training items the audio feature statistics are estimated from
R_PRECISION_CANDIDATES = 99  # mismatched captions each true one is ranked against (AttnGAN)


def require_sound(method: str, datamodule: Any) -> None:
    """Refuse audio data whose features cannot become sound again (``method`` names who asks)."""
    if getattr(datamodule, "inputs", "log_mel") != "log_mel":
        raise ConfigError(f"{method} generates log-mel frames: use --data.inputs log_mel.")
    if getattr(datamodule, "features", None) is not None and datamodule.features.normalize != "none":
        raise ConfigError(f"{method} on audio needs raw log-mel features (per-utterance normalized ones cannot "
                          "become sound again): set --data.normalize none.")


def cycle_monitor(media: str, evaluator: str | None = None) -> tuple[str, str]:
    """The validation metric (and mode) that picks a generator of ``media``'s best checkpoint: what the evaluator
    reads from the generated media, scored as the text it writes (captions: BLEU-4; transcripts: WER) — its
    ``text_kind``, else the medium's default."""
    return monitor_of(evaluator_text_kind(evaluator) or medium_spec(media).text, "cycle_")


def generator_monitor(media: str, evaluator: str | None, geometric_reader: bool) -> tuple[str | None, str]:
    """What picks a generator's best checkpoint: the geometric reader's exact match, else the evaluator's reading
    (:func:`cycle_monitor`); with neither, no metric (the latest checkpoint)."""
    if geometric_reader:
        return ("val/read_exact_match", "max")
    return cycle_monitor(media, evaluator) if evaluator else (None, "min")


@functools.lru_cache(maxsize=8)
def evaluator_text_kind(evaluator: str | None) -> str | None:
    """The ``text_kind`` an evaluator checkpoint was trained with (``None``: none given, unreadable or unset; its
    load says what is wrong with it)."""
    if not evaluator or not Path(evaluator).expanduser().is_file():
        return None
    try:
        hparams = load_checkpoint(Path(evaluator).expanduser()).get("hyper_parameters", {})
    except ConfigError:
        return None
    return hparams.get("text_kind")


def estimate_audio_statistics(space: Any, datamodule: Any, max_frames: int, limit: int = STATS_ITEMS) -> None:
    """Estimate a GAN's audio space statistics (``space.estimate``) from the first ``limit`` training items,
    saying how many clips are longer than ``max_frames`` (and so cut to it)."""
    items = training_items(datamodule, limit)
    space.estimate(datamodule.codec.collate(items))
    preloaded = datamodule.dataset("train").preloaded.get(datamodule.codec.key)
    too_long = sum(item.shape[0] > max_frames for item in preloaded or items)
    if too_long:
        rank_zero_info(f"ConditionalGAN: {too_long} training clip(s) are longer than --model.max_frames="
                       f"{max_frames} and are cut to it; raise max_frames to keep them whole.")


def training_items(datamodule: Any, limit: int) -> list[torch.Tensor]:
    """The media tensors of the first ``limit`` training items (what feature statistics are estimated from)."""
    dataset = datamodule.dataset("train")
    return [dataset.media_at(i) for i in range(min(len(dataset), limit))]


class LatentNoise:
    """The noise a generator of media draws from: a mixin for a ``LightningModule`` with ``hparams.noise_dim``
    and (optionally) ``hparams.truncation``."""

    def noise(self, n: int, generator: torch.Generator | None = None, inference: bool = False) -> torch.Tensor:
        """Noise z (n, noise_dim), from ``generator`` or the global RNG; for ``inference``, truncated to
        [-truncation, truncation] when ``truncation`` is set."""
        t = self.hparams.get("truncation")
        if inference and t is not None:
            z = torch.nn.init.trunc_normal_(torch.empty(n, self.hparams.noise_dim), a=-t, b=t, generator=generator)
        else:
            z = torch.randn(n, self.hparams.noise_dim, generator=generator)
        return z.to(self.device)

    def item_noise(self, ids: list[str]) -> torch.Tensor:
        """Noise z (B, noise_dim) fixed per item id: evaluation and prediction draw the same sample for an item
        whatever it is batched with and however many processes share the split, so scores are reproducible."""
        return torch.cat([self.noise(1, torch.Generator().manual_seed(zlib.crc32(str(i).encode())), inference=True)
                          for i in ids])


class CycleScoring:
    """Validation and test scoring of a generator of media: a mixin for a ``LightningModule`` with
    ``hparams.evaluator`` (a checkpoint path or ``None``) and ``hparams.media``, whose
    :meth:`generated_media` and :meth:`real_media` give media entries of a batch (the GAN's defaults:
    ``generate(batch, item_noise(ids))`` and ``from_model(to_model(batch))``). With ``hparams.geometric_reader``
    (images of ``shapes`` scenes) the geometric reader scores them too, evaluator or not."""

    evaluator: CycleEvaluator | None = None
    judge: RetrievalJudge | None = None  # R-precision's dual encoder (``hparams.r_precision_judge``), at test
    _judge_pool: tuple[list[str], dict[str, int], torch.Tensor] | None = None  # the test captions, embedded
    codec: MediaCodec | None = None  # the data's, from setup: generated media → images / sound

    def setup(self, stage: str) -> None:
        """The data's codec (generated media → images / sound), and the evaluator for fit, validate and test."""
        super().setup(stage)
        self.codec = getattr(getattr(self.trainer, "datamodule", None), "codec", self.codec)
        if stage in ("fit", "validate", "test"):
            self._load_evaluator(stage)
            if stage == "test" and self.hparams.get("r_precision_judge") and self.judge is None:
                self.judge = RetrievalJudge(self.hparams.r_precision_judge)
                if self.judge.media != self.hparams.media:
                    raise ConfigError(f"--model.init_args.r_precision_judge {self.judge.path} embeds "
                                      f"{self.judge.media}, but {type(self).__name__} generates {self.hparams.media}.")
                self.r_precision = nn.ModuleDict({"generated": MeanMetric(), "real": MeanMetric()})
            if self.hparams.media == "audio" and getattr(self, "mcd_metrics", None) is None:
                self.mcd_metrics = nn.ModuleDict({s: MelCepstralDistortion() for s in ("val", "test")})
            if self.hparams.get("geometric_reader") and self.reading() is None:
                if self.hparams.media != "image":
                    raise ConfigError(f"{type(self).__name__}: geometric_reader reads images of shapes scenes; "
                                      f"this run generates {self.hparams.media}: set it false.")
                self.reading_metrics = nn.ModuleDict({f"{stage}_{prefix}{name}": MeanMetric() for stage in ("val", "test")
                                              for prefix in ("", "real_") for name in READING_SCORES})

    def _load_evaluator(self, stage: str) -> None:
        path, name = self.hparams.evaluator, type(self).__name__
        if not path:
            rank_zero_info(f"{name}: no evaluator checkpoint (--model.evaluator), so */fid and */cycle_* are "
                           "skipped; train a captioner or speech recognizer of the kit and pass its checkpoint.")
            return
        if self.evaluator is None:
            self.evaluator = CycleEvaluator(path)
            if self.evaluator.media != self.hparams.media:
                raise ConfigError(f"--model.evaluator {path} reads {self.evaluator.media}, but {name} generates "
                                  f"{self.hparams.media}.")
            dim = self.evaluator.feature_dim()
            modality, kind = self.hparams.media, self.evaluator.text_kind
            self.val_fid = frechet_distance(dim)
            self.val_cycle = text_metrics(kind, "val", full=False, name="cycle_")
            self.test_fid = frechet_distance(dim)
            self.test_cycle = text_metrics(kind, "test", full=True, name="cycle_")
            self.test_real_cycle = text_metrics(kind, "test", full=True, name="real_cycle_")
            rank_zero_info(f"{name}: evaluator {path} reads the generated {modality}.")

    def media_values(self, media: dict[str, torch.Tensor]) -> list[Any]:
        """Media entries of a batch → values the data's codec saves and evaluators read (PIL / waveforms)."""
        if self.codec is None:
            raise ConfigError(f"{type(self).__name__} turns generated media into images or sound with the data's "
                              "codec: give the Trainer a data module of the kit, or set `model.codec`.")
        return self.codec.to_values(self.codec.uncollate(media))

    def generated_media(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The media generated for the batch's texts, fixed per item (media entries of a batch)."""
        return self.generate(batch, self.item_noise(batch["id"]))

    def real_media(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The batch's real media as the generator could have made them (e.g. cut to its length)."""
        return self.from_model(self.to_model(batch))

    # ------------------------------------------------------------------ evaluation
    def _score(self, batch: dict[str, Any], fid: Any, cycle: Any, real_cycle: Any | None,
               generated: dict[str, torch.Tensor] | None = None) -> None:
        """The evaluator reads generated (and, for ``real_cycle``, real) media; both feed the FID."""
        assert self.evaluator is not None
        evaluator = self.evaluator.to(self.device)
        references = [[evaluator.canonical(r) for r in refs] for refs in batch["references"]]
        fake = evaluator.batch(self.media_values(self.generated_media(batch) if generated is None else generated))
        real = evaluator.batch(self.media_values(self.real_media(batch)))
        fid.update(evaluator.features(real), real=True)
        fid.update(evaluator.features(fake), real=False)
        cycle.update(evaluator.read(fake), references)
        if real_cycle is not None:
            real_cycle.update(evaluator.read(real), references)

    def reading(self) -> nn.ModuleDict | None:
        """The geometric reader's metrics by ``<stage>_<prefix><name>`` (made in setup with
        ``geometric_reader``), else ``None``."""
        return getattr(self, "reading_metrics", None)

    def score_reading(self, batch: dict[str, Any], stage: str, generated: dict[str, torch.Tensor]) -> None:
        """Update and log the geometric reader's scores of the generated images against the batch's prompts
        (``text``), and at test of the real images too (``test/real_read_*``, the ceiling)."""
        reading = self.reading()
        assert reading is not None and self.codec is not None
        shown = {"": generated, **({"real_": self.real_media(batch)} if stage == "test" else {})}
        for prefix, media in shown.items():
            for item, image, prompt in zip(batch["id"], self.codec.uncollate(media), batch["text"], strict=True):
                scores = reading_scores(image.permute(1, 2, 0).cpu().numpy(), prompt)
                if scores is None:
                    raise ConfigError(f"geometric_reader reads shapes scenes, but item {item}'s prompt {prompt!r} "
                                      "is no shapes caption: set --model.init_args.geometric_reader false.")
                for name, right in scores.items():
                    reading[f"{stage}_{prefix}{name}"].update(torch.tensor(float(right)))
        for prefix in shown:
            for name in READING_SCORES:
                self.log(f"{stage}/{prefix}read_{name}", reading[f"{stage}_{prefix}{name}"],
                         prog_bar=stage == "val" and name == "exact_match" and not prefix, batch_size=len(batch["id"]))

    def score_r_precision(self, batch: dict[str, Any], generated: dict[str, torch.Tensor]) -> None:
        """Rank each prompt among :data:`R_PRECISION_CANDIDATES` other captions of the test split (drawn per item
        id) by the judge's similarity to the generated media, and to the real media (the ceiling)."""
        assert self.judge is not None
        judge = self.judge.to(self.device)
        if self._judge_pool is None:
            texts = sorted(set(self.trainer.datamodule.dataset("test").texts))
            if len(texts) <= R_PRECISION_CANDIDATES:
                rank_zero_info(f"R-precision: the test split has {len(texts)} distinct captions, so each prompt is "
                               f"ranked among {len(texts) - 1} others, not {R_PRECISION_CANDIDATES}.")
            self._judge_pool = texts, {t: i for i, t in enumerate(texts)}, judge.embed_texts(texts)
        texts, index, embedded = self._judge_pool
        true = [index[t] for t in batch["text"]]
        candidates = []
        for item, right in zip(batch["id"], true, strict=True):
            rng = np.random.default_rng(zlib.crc32(str(item).encode()))
            others = np.delete(np.arange(len(texts)), right)
            candidates.append(rng.choice(others, min(R_PRECISION_CANDIDATES, len(others)), replace=False).tolist())
        for name, prefix, media in (("generated", "", generated), ("real", "real_", self.real_media(batch))):
            hits = r_precision_hits(judge.embed_media(self.media_values(media)), embedded, true, candidates)
            self.r_precision[name].update(hits.float())
            self.log(f"test/{prefix}r_precision", self.r_precision[name], batch_size=len(true))

    def score_cycle(self, batch: dict[str, Any], stage: str, generated: dict[str, torch.Tensor] | None = None
                    ) -> None:
        """Update and log the stage's cycle metrics and FID (without an evaluator, none), the geometric
        reader's scores (with ``geometric_reader``) and the MCD of generated speech; ``generated`` reuses media
        already generated for this batch."""
        if self.reading() is not None or getattr(self, "mcd_metrics", None) is not None:
            generated = self.generated_media(batch) if generated is None else generated
        if self.reading() is not None:
            self.score_reading(batch, stage, generated)
        if self.judge is not None and stage == "test":
            self.score_r_precision(batch, generated if generated is not None else self.generated_media(batch))
        if getattr(self, "mcd_metrics", None) is not None:
            real, mcd = self.real_media(batch), self.mcd_metrics[stage]
            mcd.update(generated["audio"], generated["audio_lengths"], real["audio"], real["audio_lengths"])
            self.log(f"{stage}/mcd", mcd, batch_size=len(batch["id"]))
        if self.evaluator is None:
            return
        n = len(batch["text_tokens"])
        if stage == "val":
            self._score(batch, self.val_fid, self.val_cycle, None, generated)
            self.log_dict(self.val_cycle, prog_bar=True, batch_size=n)
            self.log("val/fid", self.val_fid, prog_bar=True, batch_size=n)
            return
        self._score(batch, self.test_fid, self.test_cycle, self.test_real_cycle, generated)
        self.log_dict(self.test_cycle, batch_size=n)
        self.log_dict(self.test_real_cycle, batch_size=n)
        self.log("test/fid", self.test_fid, batch_size=n)
