"""``PairDataModule``: Lightning's hooks for pairs of a medium and text, composed of single-job pieces.

The source is read (:mod:`.sources`), its columns mapped onto the task's fields (:mod:`.fields`), every row
checked (:mod:`.checks`), the tokenizer trained on every text field (:mod:`.text`), items built and batched
(:mod:`.datasets`) and loaded (:mod:`.loaders`); the medium itself is a :class:`~.codec.MediaCodec` a pair type
passes in (image–caption, text–audio).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Literal

import datasets
import torch
from lightning.pytorch import LightningDataModule
from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import BatchSampler, DataLoader
from transformers import PreTrainedTokenizerBase

from multimodal_kit.data.augmentation import AugmentsMedia
from multimodal_kit.data.checks import DataReport, check_batch_sizes, check_split
from multimodal_kit.data.codec import MediaCodec, further_codecs
from multimodal_kit.data.datasets import PairCollator, PairDataset, PredictFiles
from multimodal_kit.data.fields import Fields, Rows, field_splits, label_vocabularies
from multimodal_kit.data.loaders import FlatBatches, loader_for
from multimodal_kit.data.predict_inputs import predict_inputs
from multimodal_kit.data.problems import DataError, Problem, listing
from multimodal_kit.data.sources import load_source, resolve_splits, split_by_column
from multimodal_kit.data.text import load_tokenizer, special_ids, tokenizer_of_rows

__all__ = ["DataError", "PairDataModule", "PairDataset"]

STAGE_SPLITS = {"fit": ["train", "validation"], "validate": ["validation"], "test": ["test"], "predict": []}


class PairDataModule(FlatBatches, AugmentsMedia, LightningDataModule):
    """Pairs of one medium and text, from an embedded set, a local directory or the hub.

    Args:
        codec: the medium's :class:`~multimodal_kit.data.codec.MediaCodec` (given by the pair type).
        source: an embedded set's name, a local directory (``imagefolder``/``audiofolder`` layout: split folders
            with media files and ``metadata.jsonl``/``metadata.csv``), or a hub dataset id.
        text_column: the column with the caption or transcript used as the training target; ``null`` for data
            without one (a classifier's: its target is a label field).
        captions_column: an optional list column with all reference texts (default ``captions``), or a list of
            columns holding one reference each (e.g. ``[caption_0, …, caption_4]``, empty ones skipped); when absent,
            the text column is the only reference.
        media_column: the image/audio column; default: the medium's name (``image`` / ``audio``).
        id_column: a column naming each row; default: ``id`` if present, else the media file name, else the row.
        text_fields: a task's further text fields, ``{field: column}`` (e.g. ``{question: question}``): each is
            checked, learnt by the trained tokenizer and batched as ``<field>_tokens``/``<field>_lengths``.
        label_fields: class fields, ``{field: column}`` (e.g. ``{speaker: speaker_id}``): batched as class indices
            (long (B,)) into the training split's classes (``labels``, saved with the run and the checkpoint).
        media_fields: further media fields, ``{field: column}`` (of this data's medium, e.g. an edit's
            ``{target: edited_image}``) or ``{field: {column: …, medium: audio, <its codec's settings>}}`` (another
            medium, built by its registered codec): each checked, decoded and batched under its own name.
        subset: the hub dataset's configuration name.
        revision: the hub dataset's revision (branch, tag or commit).
        train_split: the source's training split.
        validation_split: the source's validation split; default: the first of validation/val/valid/dev, else
            ``val_fraction`` of train carved with ``split_seed``.
        test_split: the source's test split.
        val_fraction: share of train used for validation when the source has no validation split.
        split_seed: seed of that carving.
        split_column: a column naming each row's split (e.g. ``split`` with ``train``/``val``/``test``, as hub copies
            of Karpathy's splits have): the source's splits are pooled and divided by it, then named as above.
        embedded_options: options of the embedded generator, e.g. ``{"num_train": 2000}``.
        tokenizer: a HF tokenizer's hub name or local path; default: train one on the training texts.
        tokenizer_kind: ``word``, ``bpe`` or ``char`` (speech synthesis), for a trained tokenizer.
        trust_remote_code: let a hub tokenizer run the Python code it ships (``auto_map``); off by default.
        min_word_count: words seen fewer times in training become ``<unk>`` (trained tokenizer).
        max_text_length: the most tokens (BOS and EOS included) a text may have; longer texts are bad rows.
        bad_rows: what to do with bad rows (missing, corrupt, truncated, empty or oversized media; empty or too
            long texts; unreadable metadata lines): ``fail`` before training with one message naming each, or
            ``skip`` them, listing them in the log and in ``<run_dir>/data_report.json``.
        check_media: decode every media file once before training, so a corrupt one is found up front rather than
            mid-epoch inside a loader worker (in parallel; the outcome is cached, so a later run decodes only changed
            files); ``false`` only checks that the files exist. Preloaded splits are always decoded up front.
        check_workers: the media check's loader workers; default: this process's cores (from 1000 rows on).
        train_text: ``random``: each time a training pair is read, one of its references at random;
            ``first``: always the text column.
        batch_size: pairs per batch and per device.
        eval_batch_size: pairs per batch for validation/test/predict; default: ``batch_size``.
        num_workers: DataLoader worker processes; default: chosen from the CPU count (on GPUs the node's cores
            shared among its processes less one each, at most 8; on CPU none), said once in the log.
        preload: decode all media once into memory before training; default: when a split fits in 2 GiB.
        predict_path: for ``predict``: a media file or a directory of them; for generation (GAN), a ``.txt``
            file of prompts, one per line.
        cache_dir: where hub and local datasets are cached; default: the Hugging Face cache. The embedded sets
            live under ``$MMKIT_CACHE`` (default ``~/.cache/multimodal_kit``) unless this is set.
        cache_features: with a frozen pretrained encoder, compute its outputs once per split (into Arrow files
            under ``$MMKIT_CACHE/features``, or ``<cache_dir>/multimodal_kit_features``) and train on them instead
            of encoding every step; off by itself when the encoder trains or the media are augmented.
        label_classes: each label field's classes, in class-index order; default: the training split's (``test``
            and ``predict`` from a checkpoint take the checkpoint's).
    """

    def __init__(
        self,
        codec: MediaCodec,
        source: str,
        text_column: str = "text",
        captions_column: str | list[str] | None = "captions",
        media_column: str | None = None,
        id_column: str | None = None,
        text_fields: dict[str, str] | None = None,
        label_fields: dict[str, str] | None = None,
        subset: str | None = None,
        revision: str | None = None,
        train_split: str = "train",
        validation_split: str | None = None,
        test_split: str | None = "test",
        val_fraction: float = 0.1,
        split_seed: int = 0,
        split_column: str | None = None,
        embedded_options: dict[str, Any] | None = None,
        tokenizer: str | None = None,
        tokenizer_kind: Literal["word", "bpe", "char"] = "word",
        trust_remote_code: bool = False,
        min_word_count: int = 1,
        max_text_length: int = 48,
        bad_rows: Literal["fail", "skip"] = "fail",
        check_media: bool = True,
        check_workers: int | None = None,
        train_text: Literal["random", "first"] = "random",
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        num_workers: int | None = None,
        preload: bool | None = None,
        predict_path: str | None = None,
        cache_dir: str | None = None,
        cache_features: bool = True,
        label_classes: dict[str, list[str]] | None = None,
        media_fields: dict[str, str | dict[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["codec"])
        self.codec = codec
        self.source = source
        further = further_codecs(codec, media_fields or {})
        self.fields = Fields(codec.media, media_column or codec.media, text_column, captions_column, id_column,
                             dict(text_fields or {}), dict(label_fields or {}),
                             {c.key: c.media_column for c in further})
        codec.media_column = self.fields.media_column  # decided here, once; the codec names it in messages
        self.codecs = [codec, *further]  # one per media field, the medium's first
        self.batch_size = check_batch_sizes(batch_size, eval_batch_size)
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.said_workers = False  # the automatic worker count is said once
        self.predict_path, self.report = predict_path, DataReport()
        self.checked_splits: set[str] = set()  # splits whose rows are checked (check_split)
        self.longest_training_text: int | None = None  # the check's count: tokens of the longest kept reference
        self._datasets: dict[str, PairDataset] = {}
        self.preloaded_media: dict[str, dict[str, list[torch.Tensor]]] = {}  # per split and field: decoded by checks
        self._skipped_lines: dict[str, list[Problem]] = {}  # unreadable metadata lines left out (bad_rows=skip)

    @property
    def media(self) -> str:
        """The medium of the pairs (``image``/``audio``): its field name and batch key; the CLI links it."""
        return self.codec.media

    @property
    def field_kinds(self) -> dict[str, str]:
        """Every field this data gives, by name → kind (read from the flags, no data loaded: :meth:`Fields.kinds`)."""
        return self.fields.kinds({c.key: c.media for c in self.codecs})

    # ----------------------------------------------------------------- splits, rows, tokenizer
    @cached_property
    def _data(self) -> tuple[dict[str, datasets.Dataset], dict[str, Rows], dict[str, dict[str, str | None]]]:
        """Per split: the media column (undecoded), the other fields' rows, and each field's column name."""
        hp = self.hparams
        raw = self._load_source()
        if self._skipped_lines:
            lines = [p for problems in self._skipped_lines.values() for p in problems]
            rank_zero_warn(f"Skipped {len(lines)} unreadable metadata line(s) of {self.source!r} "
                           f"(--data.bad_rows skip):\n{listing(lines)}")
            self.report.add_metadata(self._skipped_lines)
        if hp.split_column:
            raw = split_by_column(raw, hp.split_column, self.source)
        splits = resolve_splits(raw, train_split=hp.train_split, validation_split=hp.validation_split,
                                test_split=hp.test_split, val_fraction=hp.val_fraction, seed=hp.split_seed,
                                source=self.source)
        return field_splits(splits, self.fields, self.source)

    @property
    def splits(self) -> dict[str, datasets.Dataset]:
        """``train``/``validation``/(``test``) splits' media columns, undecoded."""
        return self._data[0]

    @property
    def text_columns(self) -> dict[str, dict[str, str | None]]:
        """Per split, each text field's column (``references``: the reference columns), for messages."""
        return self._data[2]

    @property
    def rows(self) -> dict[str, Rows]:
        """``train``/``validation``/(``test``) splits' other fields (:class:`~.fields.Rows`)."""
        return self._data[1]

    @cached_property
    def tokenizer(self) -> PreTrainedTokenizerBase | None:
        """The loaded tokenizer (``--data.tokenizer``) or one trained on every text field of the training split;
        ``None`` for data without text fields."""
        hp = self.hparams
        if not self.fields.has_text:
            return None
        if hp.tokenizer:
            return load_tokenizer(hp.tokenizer, trust_remote_code=hp.trust_remote_code)
        return tokenizer_of_rows(self.rows["train"], self.fields.text_fields, hp.tokenizer_kind, hp.min_word_count)

    @cached_property
    def labels(self) -> dict[str, list[str]]:
        """Each label field's classes (``{field: [class, …]}``: ``label_classes``, else the training split's); a
        batch holds each item's index into them; saved as ``<run_dir>/labels.json`` and in every checkpoint."""
        if self.hparams.label_classes or not self.fields.label_fields:
            return dict(self.hparams.label_classes or {})
        return label_vocabularies(self.rows["train"], self.fields.label_fields)

    # values the CLI links into the model
    @property
    def num_classes(self) -> int:
        """The classes of the data's label field (0 when it has none, or several: name the field's own then)."""
        return len(next(iter(self.labels.values()))) if len(self.labels) == 1 else 0

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    @property
    def pad_id(self) -> int:
        return special_ids(self.tokenizer).pad

    @property
    def bos_id(self) -> int:
        return special_ids(self.tokenizer).bos

    @property
    def eos_id(self) -> int:
        return special_ids(self.tokenizer).eos

    # ----------------------------------------------------------------- checks
    check_split = check_split  # every row of a split checked once before training (:func:`~.checks.check_split`)

    # ----------------------------------------------------------------- Lightning hooks
    def prepare_data(self) -> None:
        """Download or generate the source once per node (Lightning: local rank 0 only; the others then read the
        cache in :meth:`setup`), unless this process has loaded the splits already (the CLI's links do)."""
        if "_data" not in self.__dict__:
            self._load_source()

    def setup(self, stage: str) -> None:
        for name in STAGE_SPLITS[stage]:
            if name not in self.splits:
                raise DataError(f"{self.source!r} has no '{name}' split (looked for --data.test_split="
                                f"{self.hparams.test_split!r}); its splits are {sorted(self.splits)}.")
            check_split(self, name, collective=True)

    def train_dataloader(self) -> DataLoader:
        dataset = self.dataset("train")
        return loader_for(self, dataset, self.batch_size, "train", self.train_batch_sampler(dataset))

    def val_dataloader(self) -> DataLoader:
        return loader_for(self, self.dataset("validation"), self.eval_batch_size, "evaluate")

    def test_dataloader(self) -> DataLoader:
        return loader_for(self, self.dataset("test"), self.eval_batch_size, "evaluate")

    def predict_dataloader(self) -> DataLoader:
        dataset = predict_inputs(self.predict_path, self.codec, lambda: self.tokenizer, self.hparams.bad_rows,
                                 tuple(self.fields.text_fields), tuple(self.codecs[1:]), self.hparams.max_text_length)
        return loader_for(self, dataset, self.eval_batch_size, "predict", texts=not isinstance(dataset, PredictFiles))

    # ----------------------------------------------------------------- pieces
    def collator(self, texts: bool = True) -> PairCollator:
        """The collator of this data's batches; ``texts=False``: items without text (predict files), no tokenizer."""
        return PairCollator(self.codec, self.tokenizer if texts else None, tuple(self.fields.text_fields),
                            self.labels if texts else {}, self.codecs[1:])

    def dataset(self, name: str) -> PairDataset:
        """The torch dataset of split ``name`` (built once, then reused across epochs and loaders)."""
        if name not in self._datasets:
            self.check_split(name)
            self._datasets[name] = PairDataset(self.splits[name], self.rows[name], self.codec,
                                               random_text=name == "train" and self.hparams.train_text == "random",
                                               preloaded=self.preloaded_media.pop(name, None),
                                               further=self.codecs[1:])
        return self._datasets[name]

    def train_batch_sampler(self, dataset: PairDataset) -> BatchSampler | None:
        """The training batch sampler; ``None``: uniformly shuffled batches of ``batch_size``."""
        return None

    def _load_source(self) -> datasets.DatasetDict:
        hp = self.hparams
        self._skipped_lines.clear()
        return load_source(self.source, media=self.codec.feature(), media_column=self.fields.media_column,
                           further_media={c.media_column: c.feature() for c in self.codecs[1:]}, subset=hp.subset, revision=hp.revision, embedded_options=hp.embedded_options,
                           cache_dir=hp.cache_dir, skipped=self._skipped_lines if hp.bad_rows == "skip" else None)

