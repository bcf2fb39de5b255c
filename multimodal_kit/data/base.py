"""``PairDataModule``: what every pair type shares — source resolution, splits, checks, tokenizer, loaders.

A pair type (image–caption, text–audio) subclasses it and says how to turn one media value into a tensor
(:meth:`PairDataModule.load_media`) and how to batch those tensors (:meth:`PairDataModule.collate_media`). The batch
dict is built in one place, :class:`PairCollator`, following the batch contract of ``DESIGN.md``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import datasets
import torch
from lightning.pytorch import LightningDataModule
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from lightning.pytorch.utilities import rank_zero_warn
from PIL import Image
from torch.utils.data import BatchSampler, DataLoader, Dataset
from transformers import PreTrainedTokenizerBase

from multimodal_kit.data.problems import DataError, Problem, listing, problems_error
from multimodal_kit.data.resumable import EpochShuffle, ResumableLoader, global_seed
from multimodal_kit.data.sources import load_source, resolve_splits, split_by_column
from multimodal_kit.data.text import encode_texts, load_tokenizer, special_ids, token_counts, train_tokenizer
from multimodal_kit.utils import rank_zero_info

__all__ = ["DataError", "PairDataModule", "PairDataset"]

PRELOAD_LIMIT_BYTES = 2 * 1024**3  # decode a split into memory up front when it takes less than this
REPORT_NAME = "data_report.json"  # in the run directory: every bad row found, skipped or not


def column(split: datasets.Dataset, name: str) -> list[Any]:
    """All values of column ``name`` as Python objects, read through Arrow in one go (iterating
    ``split[name]`` formats row by row, ~25× slower), in the split's row order (``select``/shuffles included)."""
    return split.with_format("arrow")[name].to_pylist()


class PairDataset(Dataset):
    """One split of pairs as dicts ``{media_key: tensor, "text", "references", "id"}``.

    Texts, references and ids are read from the arrow table once, in bulk. Media are decoded on access (the
    media column is read undecoded, ``{bytes, path}``, and decoded by the module), or were decoded once up front
    (``media``: small data sets, e.g. the embedded ones: decoding dominates the loader otherwise).

    Args:
        split: the HF dataset, already reduced to the columns used.
        module: the data module that knows the columns and how to load media.
        random_text: pick a random reference as the training text each time (else the text column).
        media: every item's media tensor, decoded already (``--data.preload``), or ``None``.
    """

    def __init__(self, split: datasets.Dataset, module: PairDataModule, random_text: bool,
                 media: list[torch.Tensor] | None = None) -> None:
        split = module.undecoded(split)
        self.split = split
        self.module = module
        self.random_text = random_text
        self.texts: list[str] = module.texts(split)
        self.references: list[list[str]] = module.references(split)
        self.ids: list[str] = module.ids(split)
        self.media = media
        if media is not None and len(media) != len(self.texts):
            raise ValueError(f"{len(media)} preloaded media for {len(self.texts)} rows")

    def __len__(self) -> int:
        return len(self.texts)

    def index_of(self, item_id: str) -> int:
        """The position of the item with id ``item_id``."""
        if not hasattr(self, "_index"):
            self._index = {item: i for i, item in enumerate(self.ids)}
        return self._index[item_id]

    def media_at(self, index: int) -> torch.Tensor:
        """The media tensor of item ``index`` (what :meth:`PairDataModule.load_media` returns)."""
        if self.media is not None:
            return self.media[index]
        return self.module.load_media(self.split[index][self.module.media_column], self.ids[index])

    def __getitem__(self, index: int) -> dict[str, Any]:
        m = self.module
        references = self.references[index]
        text = self.texts[index]
        if self.random_text and len(references) > 1:
            text = references[int(torch.randint(len(references), ()).item())]
        return {m.media_key: self.media_at(index), "text": text, "references": references, "id": self.ids[index]}


class PredictFiles(Dataset):
    """Media files given to ``predict`` (``--data.predict_path``): one item per file."""

    def __init__(self, files: Sequence[Path], module: PairDataModule) -> None:
        self.files = list(files)
        self.module = module

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.files[index]
        return {self.module.media_key: self.module.load_media_file(path), "id": path.name, "input": str(path)}


class Prompts(Dataset):
    """Text prompts given to ``predict`` for generation (``--data.predict_path prompts.txt``, one per line; blank
    lines skipped): one item per prompt, ids ``prompt_000``, ``prompt_001``, …"""

    def __init__(self, path: Path) -> None:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        self.prompts = [line for line in lines if line]
        if not self.prompts:
            raise DataError(f"{path}: no prompts; write one prompt per line.")

    def __len__(self) -> int:
        return len(self.prompts)

    def __getitem__(self, index: int) -> dict[str, Any]:
        text = self.prompts[index]
        return {"text": text, "references": [text], "id": f"prompt_{index:03d}", "input": text}


class PairCollator:
    """Builds the batch dict of ``DESIGN.md``: media batched by the module, text as ``BOS … EOS`` + PAD."""

    def __init__(self, module: PairDataModule) -> None:
        self.module = module

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        m = self.module
        batch: dict[str, Any] = {}
        if m.media_key in items[0]:  # prompts for generation carry text only
            batch = m.collate_media([item[m.media_key] for item in items])
        batch["id"] = [item["id"] for item in items]
        if "text" in items[0]:
            batch["text"] = [item["text"] for item in items]
            batch["references"] = [item["references"] for item in items]
            batch["tokens"], batch["token_lengths"] = encode_texts(m.tokenizer, batch["text"])
        if "input" in items[0]:
            batch["input"] = [item["input"] for item in items]
        return batch


class PairDataModule(LightningDataModule, ABC):
    """Pairs of one medium and text, from an embedded set, a local directory or the hub.

    Args:
        source: an embedded set's name, a local directory (``imagefolder``/``audiofolder`` layout: split folders
            with media files and ``metadata.jsonl``/``metadata.csv``), or a hub dataset id.
        text_column: the column with the caption or transcript used as the training target.
        captions_column: an optional list column with all reference texts (default ``captions``), or a list of
            columns holding one reference each (e.g. ``[caption_0, …, caption_4]``, empty ones skipped); when absent,
            the text column is the only reference.
        media_column: the image/audio column; default: the pair type's (``image`` / ``audio``).
        id_column: a column naming each row; default: ``id`` if present, else the media file name, else the row.
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
        tokenizer_kind: ``word`` or ``bpe``, for a trained tokenizer.
        trust_remote_code: let a hub tokenizer run the Python code it ships (``auto_map``); off by default.
        min_word_count: words seen fewer times in training become ``<unk>`` (trained tokenizer).
        max_text_length: the most tokens (BOS and EOS included) a text may have; longer texts are bad rows.
        bad_rows: what to do with bad rows (missing, corrupt, truncated, empty or oversized media; empty or too
            long texts; unreadable metadata lines): ``fail`` before training with one message naming each, or
            ``skip`` them, listing them in the log and in ``<run_dir>/data_report.json``.
        check_media: decode every media file once before training, so a corrupt one is found up front rather than
            mid-epoch inside a loader worker; ``false`` only checks that the files exist (for very large,
            trusted data). Preloaded splits are always decoded up front.
        train_text: ``random``: each time a training pair is read, one of its references at random;
            ``first``: always the text column.
        batch_size: pairs per batch and per device.
        eval_batch_size: pairs per batch for validation/test/predict; default: ``batch_size``.
        num_workers: DataLoader worker processes.
        preload: decode all media once into memory before training; default: when a split fits in 2 GiB.
        predict_path: for ``predict``: a media file or a directory of them; for generation (GAN), a ``.txt``
            file of prompts, one per line.
        cache_dir: where datasets are cached; default ``$MMKIT_CACHE`` or ``~/.cache/multimodal_kit``.
    """

    media_key: str = "media"  # the batch key of the medium: "image" or "audio"
    media_extensions: tuple[str, ...] = ()
    #: the ``datasets`` feature of the media column of a local folder (``datasets.Image()`` / ``datasets.Audio()``)
    media_feature: Any = None

    def __init__(
        self,
        source: str,
        text_column: str = "text",
        captions_column: str | list[str] | None = "captions",
        media_column: str | None = None,
        id_column: str | None = None,
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
        tokenizer_kind: Literal["word", "bpe"] = "word",
        trust_remote_code: bool = False,
        min_word_count: int = 1,
        max_text_length: int = 48,
        bad_rows: Literal["fail", "skip"] = "fail",
        check_media: bool = True,
        train_text: Literal["random", "first"] = "random",
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        preload: bool | None = None,
        predict_path: str | None = None,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.source = source
        self.text_column = text_column
        self.captions_column = captions_column
        self.media_column = media_column or self.media_key
        self.id_column = id_column
        self.max_text_length = max_text_length
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.predict_path = predict_path
        self._checked: set[str] = set()
        self._datasets: dict[str, PairDataset] = {}
        self._preloaded: dict[str, list[torch.Tensor]] = {}  # media decoded by the checks, kept for the datasets
        self._skipped_lines: dict[str, list[Problem]] = {}  # unreadable metadata lines left out (bad_rows=skip)
        self.report: dict[str, Any] = {}  # what the checks found, written to <run_dir>/data_report.json

    # ----------------------------------------------------------------- what subclasses provide
    @abstractmethod
    def load_media(self, value: Any, row_id: str) -> torch.Tensor:
        """One undecoded media value of the dataset (``{bytes, path}``; also a path, or a decoded value) → the
        tensor of one item. Bad media raise :class:`DataError` naming ``row_id`` and what is wrong."""

    def conversion_note(self, value: Any) -> str | None:
        """What loading ``value`` changes that a user may want to know (e.g. stereo mixed to mono), or ``None``."""
        return None

    @abstractmethod
    def load_media_file(self, path: Path) -> torch.Tensor:
        """One media file (for ``predict``) → the tensor of one item."""

    @abstractmethod
    def collate_media(self, items: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Item tensors → the media entries of the batch dict."""

    @abstractmethod
    def preview(self, media: torch.Tensor) -> Image.Image:
        """One item's media tensor → a picture of it (the image; a spectrogram for audio)."""

    def wandb_media(self, split: str, item_id: str, caption: str | None = None) -> Any:
        """The W&B object showing item ``item_id`` of ``split`` (a ``wandb.Image``; audio: ``wandb.Audio``)."""
        import wandb

        dataset = self.dataset(split)
        return wandb.Image(self.preview(dataset.media_at(dataset.index_of(item_id))), caption=caption)

    @abstractmethod
    def attention_picture(self, media: torch.Tensor, words: Sequence[str], weights: torch.Tensor) -> Image.Image:
        """One item's media tensor, the generated words and their attention (L, N) over the encoder's N
        positions → a picture of where each word looked."""

    # ----------------------------------------------------------------- generated media (GANs)
    @abstractmethod
    def unbatch_media(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Inverse of :meth:`collate_media`: the media entries of a batch → one tensor per item, as
        :meth:`load_media` makes them (uint8 images; log-mel frames cut to their lengths)."""

    @abstractmethod
    def media_values(self, media: list[torch.Tensor]) -> list[Any]:
        """Item tensors → values :meth:`load_media` accepts (PIL images; ``{"array", "sampling_rate"}`` audio),
        so generated media can be saved, played, or read by another data module's model."""

    @abstractmethod
    def save_media(self, value: Any, stem: Path) -> Path:
        """Write one media value (from :meth:`media_values`) as ``stem`` plus the suffix (PNG, WAV); return it."""

    @abstractmethod
    def wandb_value(self, value: Any, caption: str | None = None) -> Any:
        """One media value as a W&B object (``wandb.Image`` or a playable ``wandb.Audio``)."""

    def train_batch_sampler(self, dataset: PairDataset) -> BatchSampler | None:
        """The training batch sampler; ``None``: uniformly shuffled batches of ``batch_size``."""
        return None

    # ----------------------------------------------------------------- data and tokenizer
    @cached_property
    def splits(self) -> dict[str, datasets.Dataset]:
        """``train``/``validation``/(``test``) splits, reduced to the columns the kit reads."""
        hp = self.hparams
        raw = self._load_source()
        if self._skipped_lines:
            lines = [p for problems in self._skipped_lines.values() for p in problems]
            rank_zero_warn(f"Skipped {len(lines)} unreadable metadata line(s) of {self.source!r} "
                           f"(--data.bad_rows skip):\n{listing(lines)}")
            self.report["metadata"] = {split: [p.to_dict() for p in problems]
                                       for split, problems in self._skipped_lines.items()}
        if hp.split_column:
            raw = split_by_column(raw, hp.split_column, self.source)
        splits = resolve_splits(raw, train_split=hp.train_split, validation_split=hp.validation_split,
                                test_split=hp.test_split, val_fraction=hp.val_fraction, seed=hp.split_seed,
                                source=self.source)
        return {name: self._select_columns(split, name) for name, split in splits.items()}

    def _select_columns(self, split: datasets.Dataset, name: str) -> datasets.Dataset:
        columns = split.column_names
        required = {"text_column": self.text_column, "media_column": self.media_column}
        if self.id_column:
            required["id_column"] = self.id_column
        for flag, column in required.items():
            if column not in columns:
                raise DataError(f"Split '{name}' of {self.source!r} has no column {column!r} (--data.{flag}); its "
                                f"columns are {columns}. Set --data.{flag} to the right one.")
        if self.id_column is None and "id" in columns:
            self.id_column = "id"
        captions = self.captions_column
        if isinstance(captions, list | tuple):
            missing = [c for c in captions if c not in columns]
            if missing:
                raise DataError(f"Split '{name}' of {self.source!r} has no column(s) {missing} of "
                                f"--data.captions_column; its columns are {columns}.")
            captions = list(captions)
        elif captions and captions not in columns:
            self.captions_column = captions = None  # optional: the text column is then the only reference
        else:
            captions = [captions] if captions else []
        text = self.text_column
        if isinstance(split.features[text], datasets.ClassLabel):  # labels as their names (e.g. spoken digits)
            names = split.features[text].names
            split = split.cast_column(text, datasets.Value("int64")).map(
                lambda batch: {text: [names[i] for i in batch[text]]}, batched=True,
                features=datasets.Features({**split.features, text: datasets.Value("string")}), desc="label names")
        keep = [c for c in (self.media_column, text, *(captions or []), self.id_column) if c]
        return split.select_columns(list(dict.fromkeys(keep)))

    @cached_property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        """The loaded tokenizer (``--data.tokenizer``) or one trained on the training texts."""
        hp = self.hparams
        if hp.tokenizer:
            return load_tokenizer(hp.tokenizer, trust_remote_code=hp.trust_remote_code)
        train = self.splits["train"]
        texts = self.texts(train)
        if self.captions_column:
            texts += [c for refs in self.references(train) for c in refs]
        texts = [str(t) for t in texts if t]  # empty texts are bad rows, named by the checks
        tokenizer = train_tokenizer(texts, kind=hp.tokenizer_kind, min_frequency=hp.min_word_count)
        rank_zero_info(f"Trained a {hp.tokenizer_kind}-level tokenizer on {len(texts)} texts: "
                       f"{len(tokenizer)} tokens.")
        return tokenizer

    # values the CLI links into the model
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

    # ----------------------------------------------------------------- row helpers
    def texts(self, split: datasets.Dataset) -> list[str]:
        """Every row's target text: the text column, or the first entry where it holds a list of captions."""
        return [t[0] if isinstance(t, list) and t else t for t in column(split, self.text_column)]

    def references(self, split: datasets.Dataset) -> list[list[str]]:
        """Every row's reference texts: its captions column (a list; a single string is one reference), else its
        text."""
        texts = self.texts(split)
        if not self.captions_column:
            return [[t] for t in texts]
        if isinstance(self.captions_column, list | tuple):  # one reference per column; empty cells skipped
            cells = zip(*(column(split, c) for c in self.captions_column), strict=True)
            return [[r for r in row if r] or [t] for row, t in zip(cells, texts, strict=True)]
        refs = column(split, self.captions_column)
        return [([r] if isinstance(r, str) else list(r)) if r else [t] for r, t in zip(refs, texts, strict=True)]

    def ids(self, split: datasets.Dataset) -> list[str]:
        """Every row's id: its id column, else its media file name, else its position."""
        if self.id_column:
            return [str(i) for i in column(split, self.id_column)]
        return [self.row_id(row, i) for i, row in enumerate(self.undecoded(split).select_columns([self.media_column]))]

    def row_id(self, row: dict[str, Any], index: int) -> str:
        """The id of an undecoded row: its id column, else its media file name, else its index."""
        if self.id_column:
            return str(row[self.id_column])
        value = row[self.media_column]
        path = value.get("path") if isinstance(value, dict) else None
        return Path(path).name if path else str(index)

    def undecoded(self, split: datasets.Dataset) -> datasets.Dataset:
        """``split`` with its media column left as ``{"bytes", "path"}`` (no decoding)."""
        feature = split.features[self.media_column]
        if not hasattr(feature, "decode"):
            return split
        return split.cast_column(self.media_column, dataclasses.replace(feature, decode=False))

    def should_preload(self, split: datasets.Dataset) -> bool:
        """Whether to decode ``split``'s media once into memory; see ``--data.preload``."""
        if self.hparams.preload is not None:
            return self.hparams.preload
        return len(split) * self.media_nbytes() <= PRELOAD_LIMIT_BYTES

    def media_nbytes(self) -> int:
        """Bytes one decoded media item takes in memory (an estimate, for ``preload='auto'``)."""
        return PRELOAD_LIMIT_BYTES  # unknown: never preload automatically

    # ----------------------------------------------------------------- checks
    def check_split(self, name: str) -> None:
        """Check every row of split ``name`` before training: texts, references and (``check_media``, or when
        preloading) each media file decoded once. Bad rows fail with one message naming each, or are skipped
        (``--data.bad_rows skip``); either way they are listed in ``<run_dir>/data_report.json``."""
        if name in self._checked:
            return
        split = self.splits[name]
        ids = self.ids(split)
        problems = self.text_problems(split, ids, training=name == "train")
        preload = self.should_preload(split)
        media, media_problems, notes = self.media_problems(split, ids, decode=preload or self.hparams.check_media,
                                                           keep=preload)
        problems.update(media_problems)
        bad = sorted(problems)
        listed = [Problem(f"row {i} ({ids[i]})", "; ".join(problems[i])) for i in bad]
        self.report[name] = {"rows": len(split), "bad": [p.to_dict() for p in listed],
                             "skipped": len(bad) if self.hparams.bad_rows == "skip" else 0,
                             "converted": [p.to_dict() for p in notes]}
        report = self.write_report()
        subject = f"split '{name}' of {self.source!r}"
        if notes:
            rank_zero_info(f"{len(notes)} media file(s) of {subject} converted on loading:\n{listing(notes)}")
        if bad and self.hparams.bad_rows == "fail":
            where = f" All of them are listed in {report}." if report else ""
            raise problems_error(listed, subject, "Fix the files or the metadata (or raise --data.max_text_length / "
                                 "--data.max_seconds / --data.max_image_pixels for long or large ones), or pass "
                                 f"--data.bad_rows skip to leave these rows out.{where}")
        if bad:
            if len(bad) == len(split):
                raise problems_error(listed, subject, "Every row is bad; nothing is left to train on.")
            keep = [i for i in range(len(split)) if i not in problems]
            self.splits[name] = split.select(keep)
            if media is not None:
                media = [media[i] for i in keep]
            rank_zero_warn(f"Skipped {len(bad)} of {len(split)} rows of {subject} (--data.bad_rows skip):\n"
                           f"{listing(listed)}" + (f"\nAll of them are listed in {report}." if report else ""))
        if media is not None:
            self._preloaded[name] = media
        self._checked.add(name)

    def text_problems(self, split: datasets.Dataset, ids: list[str], training: bool) -> dict[int, list[str]]:
        """Per bad row, what is wrong with its texts: empty, or more tokens than ``max_text_length`` (for the
        training split also every reference, which ``train_text: random`` trains on)."""
        problems: dict[int, list[str]] = {}
        texts = self.texts(split)
        references = self.references(split)
        lengths = token_counts(self.tokenizer, [str(t or "") for t in texts])
        longest = self.max_text_length
        check_refs = training and self.hparams.train_text == "random" and self.captions_column
        ref_lengths = lengths
        if check_refs:
            flat = token_counts(self.tokenizer, [str(r or "") for refs in references for r in refs])
            ends = list(itertools.accumulate(len(refs) for refs in references))
            ref_lengths = [max(flat[end - len(refs):end]) for refs, end in zip(references, ends, strict=True)]
        for i, (text, refs, n, m) in enumerate(zip(texts, references, lengths, ref_lengths, strict=True)):
            found = []
            if text is None or not str(text).strip():
                found.append(f"empty text in column {self.text_column!r}")
            elif n > longest:
                found.append(f"{n} tokens, more than --data.max_text_length={longest}")
            if any(r is None or not str(r).strip() for r in refs):
                found.append(f"an empty reference in column {self.captions_column!r}")
            elif m > longest and n <= longest:
                found.append(f"a reference of {m} tokens in column {self.captions_column!r}, more than "
                             f"--data.max_text_length={longest}")
            if found:
                problems[i] = found
        return problems

    def media_problems(self, split: datasets.Dataset, ids: list[str], decode: bool, keep: bool
                       ) -> tuple[list[torch.Tensor] | None, dict[int, list[str]], list[Problem]]:
        """Check every row's media: the file exists and, with ``decode``, loads (:meth:`load_media`).

        Returns:
            the decoded tensors when ``keep`` (a placeholder where a row is bad), else ``None``;
            per bad row, what is wrong with its media;
            the conversions worth knowing (:meth:`conversion_note`), one per file.
        """
        from tqdm.auto import tqdm

        problems: dict[int, list[str]] = {}
        notes: list[Problem] = []
        media: list[torch.Tensor] | None = [] if keep else None
        values = self.undecoded(split).select_columns([self.media_column])
        rows = tqdm(values, desc="checking media" if decode else "checking files", leave=False, unit="item",
                    disable=len(split) < 2000)
        for i, row in enumerate(rows):
            value = row[self.media_column]
            tensor = torch.empty(0)
            path = value.get("path") if isinstance(value, dict) and value.get("bytes") is None else None
            if path is not None and not Path(path).is_file():
                problems[i] = [f"media file not found: {path}"]
            elif decode:
                try:
                    tensor = self.load_media(value, ids[i])
                    note = self.conversion_note(value)
                    if note:
                        notes.append(Problem(f"row {i} ({ids[i]})", note))
                except DataError as error:
                    problems[i] = [str(error).removeprefix(f"{ids[i]}: ")]
                except Exception as error:  # a decoder may raise anything on a bad file: name it, do not crash
                    problems[i] = [f"cannot be loaded ({type(error).__name__}: {error})"]
            if media is not None:
                media.append(tensor)
        return media, problems, notes

    def write_report(self) -> Path | None:
        """Write :attr:`report` to ``<run_dir>/data_report.json`` (rank zero; only when something was found);
        return its path, or ``None`` without a trainer or with nothing to report."""
        found = any(part.get("bad") or part.get("converted") for part in self.report.values()
                    if isinstance(part, dict) and "rows" in part) or "metadata" in self.report
        if not found or self.trainer is None:
            return None
        path = Path(self.trainer.default_root_dir) / REPORT_NAME
        if self.trainer.is_global_zero:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.report, indent=1) + "\n")
        return path

    # ----------------------------------------------------------------- Lightning hooks
    def setup(self, stage: str) -> None:
        needed = {"fit": ["train", "validation"], "validate": ["validation"], "test": ["test"], "predict": []}
        for name in needed[stage]:
            if name not in self.splits:
                raise DataError(f"{self.source!r} has no '{name}' split (looked for --data.test_split="
                                f"{self.hparams.test_split!r}); its splits are {sorted(self.splits)}.")
            self.check_split(name)

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """The batch dict of :class:`PairCollator` is flat: move its tensors and pass its strings and lists of
        strings as they are (Lightning's generic walk visits every reference string of every item, each step)."""
        if isinstance(batch, dict):
            return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def prepare_data(self) -> None:
        """Download or generate the source once per node before any process reads it (Lightning calls this on
        local rank 0 only, then lets the other ranks go on to :meth:`setup`, which reads the cache). Nothing to do
        when this process has loaded the splits already (the CLI does, to link the vocabulary into the model)."""
        if "splits" in self.__dict__:
            return
        self._load_source()

    def _load_source(self) -> datasets.DatasetDict:
        hp = self.hparams
        self._skipped_lines.clear()
        return load_source(self.source, media=self.media_feature, media_column=self.media_column,
                           subset=hp.subset, revision=hp.revision, embedded_options=hp.embedded_options,
                           cache_dir=hp.cache_dir, skipped=self._skipped_lines if hp.bad_rows == "skip" else None)

    def _loader(self, dataset: Dataset, batch_size: int, training: bool = False, evaluation: bool = False,
                batch_sampler: BatchSampler | None = None) -> DataLoader:
        """Training: shuffled by :class:`EpochShuffle` (or ``batch_sampler``), resumable mid-epoch
        (:class:`ResumableLoader`); evaluation: in order, sharded without repeats under DDP; predict: in order
        (Lightning shards it)."""
        if batch_sampler is not None:
            batching: dict[str, Any] = {"batch_sampler": batch_sampler}
        elif training:
            batching = {"batch_size": batch_size, "sampler": self.train_order(dataset)}
        elif evaluation and self._world_size() > 1:
            batching = {"batch_size": batch_size, "sampler": self._shard(dataset)}
        else:
            batching = {"batch_size": batch_size, "shuffle": False}
        return (ResumableLoader if training else DataLoader)(
            dataset, **batching, num_workers=self.num_workers, collate_fn=PairCollator(self),
            persistent_workers=self.num_workers > 0, pin_memory=torch.cuda.is_available())

    def train_order(self, dataset: Dataset) -> EpochShuffle:
        """The training order: a random permutation per epoch, drawn from the run's seed and the epoch alone."""
        return EpochShuffle(dataset, seed=global_seed() or 0)

    def _world_size(self) -> int:
        return self.trainer.world_size if self.trainer is not None else 1

    def _shard(self, dataset: Dataset) -> UnrepeatedDistributedSampler:
        """This process's share of an evaluation split: every item exactly once across processes (Lightning's
        default ``DistributedSampler`` repeats items to even out the shards, which would count them twice in the
        test metrics); ranks may get one batch more or less, which epoch-end metric reduction allows."""
        trainer = self.trainer
        return UnrepeatedDistributedSampler(dataset, num_replicas=trainer.world_size, rank=trainer.global_rank,
                                            shuffle=False)

    def train_dataloader(self) -> DataLoader:
        dataset = self.dataset("train")
        return self._loader(dataset, self.batch_size, training=True, batch_sampler=self.train_batch_sampler(dataset))

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.dataset("validation"), self.eval_batch_size, evaluation=True)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.dataset("test"), self.eval_batch_size, evaluation=True)

    def dataset(self, name: str) -> PairDataset:
        """The torch dataset of split ``name`` (built once, then reused across epochs and loaders)."""
        if name not in self._datasets:
            self.check_split(name)
            self._datasets[name] = PairDataset(self.splits[name], self, random_text=name == "train" and
                                               self.hparams.train_text == "random",
                                               media=self._preloaded.pop(name, None))
        return self._datasets[name]

    def predict_dataloader(self) -> DataLoader:
        path = Path(self.predict_path).expanduser() if self.predict_path else None
        if path is not None and path.is_file() and path.suffix.lower() == ".txt":
            return self._loader(self.prompts(path), self.eval_batch_size)
        return self._loader(PredictFiles(self.readable(self.predict_files()), self), self.eval_batch_size)

    def readable(self, files: list[Path]) -> list[Path]:
        """The predict inputs that load, each decoded once up front: a bad one fails with one message naming
        every bad file, or is left out with ``--data.bad_rows skip`` (named in a warning)."""
        problems = []
        for path in files:
            try:
                self.load_media_file(path)
            except DataError as error:
                problems.append(Problem(path.name, str(error).removeprefix(f"{path}: ")))
        if problems and (self.hparams.bad_rows == "fail" or len(problems) == len(files)):
            raise problems_error(problems, f"--data.predict_path={self.predict_path!r}",
                                 "Fix or remove these files" + (", or pass --data.bad_rows skip to leave them out."
                                                                if self.hparams.bad_rows == "fail" else "."))
        if problems:
            rank_zero_warn(f"Skipped {len(problems)} of {len(files)} inputs of --data.predict_path (--data.bad_rows "
                           f"skip):\n{listing(problems)}")
        bad = {p.where for p in problems}
        return [path for path in files if path.name not in bad]

    def prompts(self, path: Path) -> Prompts:
        """The prompts of a text file, checked: every word must be known to the tokenizer."""
        prompts = Prompts(path)
        unk = self.tokenizer.unk_token_id
        if unk is not None:
            rows = self.tokenizer(prompts.prompts, add_special_tokens=False)["input_ids"]
            bad = [Problem(f"line {i + 1}", repr(text))
                   for i, (text, row) in enumerate(zip(prompts.prompts, rows, strict=True)) if unk in row]
            if bad:
                raise DataError(f"{path}: {len(bad)} prompt(s) hold words the model never saw in training "
                                f"(they would become {self.tokenizer.unk_token}):\n{listing(bad)}\nUse words of "
                                "the training texts.")
        return prompts

    def predict_files(self) -> list[Path]:
        """The files named by ``--data.predict_path`` (a file, or every media file in a directory)."""
        if not self.predict_path:
            raise DataError("predict needs inputs: pass --data.predict_path FILE_OR_DIRECTORY.")
        path = Path(self.predict_path).expanduser()
        if path.is_file():
            return [path]
        if not path.is_dir():
            raise DataError(f"--data.predict_path={self.predict_path!r}: no such file or directory.")
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in self.media_extensions)
        if not files:
            raise DataError(f"--data.predict_path={self.predict_path!r} holds no media files "
                            f"({', '.join(self.media_extensions)}).")
        return files
